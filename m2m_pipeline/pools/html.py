"""``pools report``: one self-contained HTML page about a pool, readable offline with no server.

Everything is inside the one file: the pictures are PNGs inlined as base64 ``data:`` URIs, the
style is an inline ``<style>`` block, and there is no script and no outside link, so a browser
opened on the file makes no request. The page holds the pool's listing row, the per-(k0, k) and
per-class tables of :func:`~m2m_pipeline.pools.browser.pool_stats`, the acceptance heatmap, the
accept rate per class over the run's epochs, and one grid per target class (``<section
class="class-grid" data-target="k">``; accepted rows first, then rejected ones).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import PreparedData
from ..store import open_pool
from . import browser

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th { background: #f2f2f2; } td.l, th.l { text-align: left; }
tr.flag td { background: #fde8e8; }
img { max-width: 100%; }
.note { color: #555; font-size: 0.85em; }
nav a { margin-right: 0.6em; font-size: 0.85em; }
"""


def _file_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _table(header: list[str], rows: list[list[Any]], *, left: int = 1, flags: list[bool] | None = None) -> str:
    esc = html.escape
    out = ["<table><thead><tr>" + "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>'
                                          for i, h in enumerate(header)) + "</tr></thead><tbody>"]
    for r, row in enumerate(rows):
        cls = ' class="flag"' if flags and flags[r] else ""
        out.append(f"<tr{cls}>" + "".join(f'<td class="{"l" if i < left else ""}">{esc(str(v))}</td>'
                                          for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _pct(v) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}"


def _to_rgb(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """A CHW float image as HWC uint8 RGB, values mapped from [lo, hi]."""
    hwc = np.transpose(np.clip((img - lo) / max(hi - lo, 1e-12), 0, 1), (1, 2, 0))
    if hwc.shape[2] == 1:
        hwc = np.repeat(hwc, 3, axis=2)
    return (255 * hwc[..., :3]).round().astype(np.uint8)


def triple_png(x0: np.ndarray, x_star: np.ndarray, scale: float, lo: float, hi: float, *, size: int = 72) -> str:
    """x0 | x* | x* - x0 of one row as one PNG data URI, each panel scaled up (nearest) to about
    ``size`` pixels; the difference is averaged over channels and drawn blue (-) to red (+) on the
    fixed scale ``[-scale, scale]`` shared by the whole page, so magnitudes compare."""
    from matplotlib import colormaps
    from PIL import Image

    zoom = max(1, size // max(x0.shape[1:]))
    diff = (x_star - x0).mean(axis=0)
    diff_rgb = (255 * colormaps["seismic"](np.clip(diff / (2 * scale) + 0.5, 0, 1))[..., :3]).round().astype(np.uint8)
    gap = np.full((x0.shape[1], 2, 3), 255, np.uint8)
    strip = np.concatenate([_to_rgb(x0, lo, hi), gap, _to_rgb(x_star, lo, hi), gap, diff_rgb], axis=1)
    img = Image.fromarray(strip).resize((strip.shape[1] * zoom, strip.shape[0] * zoom), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def class_rows(rows: dict[str, np.ndarray], k: int, per_class: int) -> np.ndarray:
    """Rows shown in class k's grid: accepted ones first, then rejected, ``per_class`` at most."""
    acc = browser.select_rows(rows, target=k, accepted=True, limit=per_class)
    rej = browser.select_rows(rows, target=k, accepted=False, limit=per_class - len(acc))
    return np.concatenate([acc, rej]).astype(np.int64)


def build_report(pool_path: str | Path, data: PreparedData, out_dir: str | Path, *, per_class: int = 8,
                 max_pairs: int = 60) -> Path:
    """Write ``out_dir/index.html`` for the pool at ``pool_path``; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    from .reuse import check_provenance

    pool_path = Path(pool_path)
    pool = open_pool(pool_path)
    check_provenance(pool, dataset_fingerprint=data.fingerprint)
    names = list(data.class_names)
    entry = browser.pool_entry(pool_path)
    stats = browser.add_slot_counts(browser.pool_stats(pool, class_names=names), pool, data.train.y)
    rows = pool.rows(browser.SHOW_ROW_ARRAYS)
    kind = browser.view_kind(data)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    a = pool.attrs
    title = f"Pool {entry.dataset} {entry.method or ''} seed {entry.seed} epoch {entry.epoch}"
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
             f'<p class="note">{esc(str(pool_path))} &middot; written by m2m-pipeline {esc(str(a.get("package_version")))}'
             f" &middot; g {esc(str(entry.g_hash))}, f {esc(str(entry.f_hash))} &middot; "
             f"{esc(str(entry.created))} UTC &middot; {'complete' if entry.complete else 'INCOMPLETE'}</p>"]
    params = a.get("params") or {}
    parts.append(_table(["attempts", "accepted", "accept %", "rejections by reason", "size on disk", "beta", "gamma",
                         "gamma on", "steps", "step size", "lambda"],
                        [[entry.attempts, entry.accepted, _pct(entry.accept_rate),
                          ", ".join(f"{k}: {v}" for k, v in entry.reasons.items() if k != "accepted"),
                          browser.format_size(entry.size_bytes), params.get("beta"), params.get("gamma"),
                          params.get("gamma_on"), params.get("steps"), params.get("step_size"), params.get("lam")]],
                        left=0))
    targets = [c["class"] for c in stats["classes"] if c["attempts"] > 0]
    parts.append("<nav>Grids: " + "".join(f'<a href="#class-{k}">{esc(names[k])}</a>' for k in targets) + "</nav>")

    parts.append("<h2>Acceptance by seed class and target class</h2>")
    heat = browser.plot_heatmap(stats, names, out_dir / "heatmap.png")
    parts.append(f'<img alt="accept rate heatmap" src="{_file_data_uri(heat)}">')
    epochs = browser.run_epochs(pool_path.parent)
    if len(epochs) > 1:
        parts.append("<h2>Accept rate per target class over the epochs of the run</h2>")
        line = browser.plot_epoch_rates(pool_path.parent, names, out_dir / "epochs.png")
        parts.append(f'<img alt="accept rate per class over epochs" src="{_file_data_uri(line)}">')

    parts.append("<h2>Per target class</h2>")
    parts.append('<p class="note">slots: plan slots holding the class; replaced: accepted translations, whose x* '
                 "stands in for the slot's real sample. Red rows: attempts but no accepted translation.</p>")
    parts.append(_table(["class", "size N_k", "slots", "attempts", "replaced", "replaced % of attempts"],
                        [[c["name"], c["class_size"], c["slots"], c["attempts"], c["replaced"],
                          _pct(c["replaced_share"])] for c in stats["classes"]],
                        flags=[c["no_accepted"] for c in stats["classes"]]))
    parts.append("<h2>Per (seed class k0, target class k) pair</h2>")
    parts.append(f'<p class="note">eq. (3) %: 1 &minus; &beta;^((N_k0 &minus; N_k)^+), the beta test alone; the '
                 f"observed rate also needs g's confidence (gamma test). The {max_pairs} pairs with the most "
                 f"attempts of {len(stats['pairs'])}.</p>")
    pairs = sorted(stats["pairs"], key=lambda p: (-p["attempts"], p["seed_class"], p["target"]))[:max_pairs]
    parts.append(_table(["k0 → k", "attempts", "accepted", "accept %", "eq. (3) %", "beta pass %", "mean loss g",
                         "mean p g"],
                        [[f"{p['seed_name']} → {p['target_name']}", p["attempts"], p["accepted"], _pct(p["accept_rate"]),
                          _pct(p["eq3_rate"]), _pct(p["beta_pass_rate"]), f"{p['mean_loss_g']:.3f}",
                          f"{p['mean_prob_g']:.3f}"] for p in pairs]))

    parts.append("<h2>Examples, one grid per target class</h2>")
    token_table = None
    shown = {k: class_rows(rows, k, per_class) for k in targets}
    if kind == "image":
        # one difference scale for the whole page: the largest |x* - x0| of any row shown
        from .draws import seed_inputs

        all_idx = np.concatenate([v for v in shown.values()] + [np.zeros(0, np.int64)]).astype(np.int64)
        x_star_all = browser.read_x(pool, data, np.sort(all_idx))
        x0_all = seed_inputs(data, rows["seed_index"][np.sort(all_idx)], rows["seed_aug"][np.sort(all_idx)]).numpy() \
            if len(all_idx) else x_star_all
        where = {int(i): j for j, i in enumerate(np.sort(all_idx))}
        scale = float(np.abs(x_star_all - x0_all).max()) if len(all_idx) else 1.0
        scale = scale or 1e-8
        lo, hi = data.input_range or (float(min(x0_all.min(), x_star_all.min())),
                                      float(max(x0_all.max(), x_star_all.max())))
        parts.append(f'<p class="note">Each example: x0 | x* | x* &minus; x0 (blue negative, red positive, one scale '
                     f"for the whole page: &plusmn;{scale:.3f}); caption: k0 &rarr; k, g's probability of k at x*, "
                     f"decision.</p>")
    if kind == "embedding":
        try:
            token_table = browser.token_table(data)
        except Exception as exc:  # the raw token file may be absent where the report is built
            parts.append(f'<p class="note">nearest tokens unavailable: {esc(str(exc))}</p>')
    for k in targets:
        idx = shown[k]
        c = stats["classes"][k]
        parts.append(f'<section class="class-grid" id="class-{k}" data-target="{k}">'
                     f"<h3>target {esc(names[k])} (N = {c['class_size']}): {c['replaced']} of {c['attempts']} "
                     f"attempts accepted</h3>")
        if len(idx) == 0:
            parts.append('<p class="note">no attempt with a seed</p>')
        elif kind == "image":
            cells = []
            for i in idx:
                j = where[int(i)]
                decision = browser.decision_of(rows, int(i))
                color = "#1a7f37" if decision == "accepted" else "#b42318"
                cells.append(f'<figure style="display:inline-block;margin:4px 8px;text-align:center">'
                             f'<img alt="row {int(i)}" src="{triple_png(x0_all[j], x_star_all[j], scale, lo, hi)}">'
                             f'<figcaption style="font-size:0.75em;color:{color}">'
                             f"{esc(names[int(rows['seed_class'][i])])} &rarr; {esc(names[k])}, "
                             f"p={rows['prob_g'][i]:.2f}, {esc(decision)}</figcaption></figure>")
            parts.append("<div>" + "".join(cells) + "</div>")
        elif kind == "bag_of_words":
            items = browser.word_changes(pool, data, idx, rows=rows, top=6)
            parts.append(_table(["row", "k0 → k", "p", "decision", "switched on (Δ)", "switched off (Δ)"],
                                [[it["row"], f"{it['seed_class']} → {it['target']}", f"{it['prob_g']:.2f}",
                                  it["decision"], ", ".join(f"{w} (+{d:.2f})" for w, d in it["switched_on"]) or "-",
                                  ", ".join(f"{w} ({d:.2f})" for w, d in it["switched_off"]) or "-"] for it in items],
                                left=6))
        elif token_table is not None:
            items = browser.nearest_tokens(pool, data, idx, rows=rows, table=token_table)
            parts.append(_table(["row", "k0 → k", "p", "decision", "nearest to x0", "nearest to x*"],
                                [[it["row"], f"{it['seed_class']} → {it['target']}", f"{it['prob_g']:.2f}",
                                  it["decision"], ", ".join(f"{t} ({s:.2f})" for t, s in it["near_x0"]),
                                  ", ".join(f"{t} ({s:.2f})" for t, s in it["near_x_star"])] for it in items],
                                left=6))
        parts.append("</section>")
    parts.append("</body></html>")
    page = out_dir / "index.html"
    page.write_text("\n".join(parts), encoding="utf-8")
    return page


__all__ = ["build_report", "class_rows"]
