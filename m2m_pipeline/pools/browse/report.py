"""``pools report``: one self-contained HTML page about a pool, readable offline with no server.

Everything is inside the one file: the pictures are PNGs inlined as base64 ``data:`` URIs, the
style is an inline ``<style>`` block, and there is no script and no outside link, so a browser
opened on the file makes no request. The page holds the pool's listing row, the per-(k0, k) and
per-class tables of :func:`~m2m_pipeline.pools.browse.stats.pool_stats`, the acceptance heatmap, the
accept rate per class over the run's epochs, and one grid per target class (``<section
class="class-grid" data-target="k">``; accepted rows first, then rejected ones), drawn by the
data's view (views.py).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from ...datasets import PreparedData
from ...store import open_pool
from .listing import format_size, pool_entry, run_epochs
from .markup import file_data_uri, pct, table
from .output import check_out_folder, mark_out_folder, write_text
from .plots import plot_epoch_rates, plot_heatmap
from .selection import SHOW_ROW_ARRAYS, select_rows
from .stats import add_slot_counts, pool_stats
from .views import view_for

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


def class_rows(rows: dict[str, np.ndarray], k: int, per_class: int) -> np.ndarray:
    """Rows shown in class k's grid: accepted ones first, then rejected, ``per_class`` at most."""
    acc = select_rows(rows, target=k, accepted=True, limit=per_class)
    rej = select_rows(rows, target=k, accepted=False, limit=per_class - len(acc))
    return np.concatenate([acc, rej]).astype(np.int64)


def build_pool_report(pool_path: str | Path, data: PreparedData, out_dir: str | Path, *, per_class: int = 8,
                      max_pairs: int = 60) -> Path:
    """Write ``out_dir/index.html`` for the pool at ``pool_path``; returns its path. ``out_dir``
    must be new, empty or the browser's (output.check_out_folder); every file is written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from ..reuse import check_provenance

    pool_path = Path(pool_path)
    out_dir = check_out_folder(out_dir)
    pool = open_pool(pool_path)
    check_provenance(pool, dataset_fingerprint=data.fingerprint)
    names = list(data.class_names)
    entry = pool_entry(pool_path)
    stats = add_slot_counts(pool_stats(pool, class_names=names), pool, data.train.y)
    rows = pool.rows(SHOW_ROW_ARRAYS)
    view = view_for(data)
    mark_out_folder(out_dir, ("index.html", "heatmap.png", "epochs.png"))   # before any file: the folder is ours
    esc = html.escape
    a = pool.attrs
    title = f"Pool {entry.dataset} {entry.method or ''} seed {entry.seed} epoch {entry.epoch}"
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>",
             f"<style>{_STYLE}</style></head><body>", f"<h1>{esc(title)}</h1>",
             f'<p class="note">{esc(str(pool_path))} &middot; written by m2m-pipeline {esc(str(a.get("package_version")))}'
             f" &middot; g {esc(str(entry.g_hash))}, f {esc(str(entry.f_hash))} &middot; "
             f"{esc(str(entry.created))} UTC &middot; {'complete' if entry.complete else 'INCOMPLETE'}</p>"]
    params = a.get("params") or {}
    parts.append(table(["attempts", "accepted", "accept %", "rejections by reason", "size on disk", "beta", "gamma",
                        "gamma on", "steps", "step size", "lambda"],
                       [[entry.attempts, entry.accepted, pct(entry.accept_rate),
                         ", ".join(f"{k}: {v}" for k, v in entry.reasons.items() if k != "accepted"),
                         format_size(entry.size_bytes), params.get("beta"), params.get("gamma"),
                         params.get("gamma_on"), params.get("steps"), params.get("step_size"), params.get("lam")]],
                       left=0))
    targets = [c["class"] for c in stats["classes"] if c["attempts"] > 0]
    parts.append("<nav>Grids: " + "".join(f'<a href="#class-{k}">{esc(names[k])}</a>' for k in targets) + "</nav>")

    parts.append("<h2>Acceptance by seed class and target class</h2>")
    heat = plot_heatmap(stats, names, out_dir / "heatmap.png")
    parts.append(f'<img alt="accept rate heatmap" src="{file_data_uri(heat)}">')
    epochs = run_epochs(pool_path.parent)
    if len(epochs) > 1:
        parts.append("<h2>Accept rate per target class over the epochs of the run</h2>")
        line = plot_epoch_rates(pool_path.parent, names, out_dir / "epochs.png")
        parts.append(f'<img alt="accept rate per class over epochs" src="{file_data_uri(line)}">')

    parts.append("<h2>Per target class</h2>")
    parts.append('<p class="note">slots: plan slots holding the class; replaced: accepted translations, whose x* '
                 "stands in for the slot's real sample. Red rows: attempts but no accepted translation.</p>")
    parts.append(table(["class", "size N_k", "slots", "attempts", "replaced", "replaced % of attempts"],
                       [[c["name"], c["class_size"], c["slots"], c["attempts"], c["replaced"],
                         pct(c["replaced_share"])] for c in stats["classes"]],
                       flags=[c["no_accepted"] for c in stats["classes"]]))
    parts.append("<h2>Per (seed class k0, target class k) pair</h2>")
    parts.append(f'<p class="note">eq. (3) %: 1 &minus; &beta;^((N_k0 &minus; N_k)^+), the beta test alone; the '
                 f"observed rate also needs g's confidence (gamma test). The {max_pairs} pairs with the most "
                 f"attempts of {len(stats['pairs'])}.</p>")
    pairs = sorted(stats["pairs"], key=lambda p: (-p["attempts"], p["seed_class"], p["target"]))[:max_pairs]
    parts.append(table(["k0 → k", "attempts", "accepted", "accept %", "eq. (3) %", "beta pass %", "mean loss g",
                        "mean p g"],
                       [[f"{p['seed_name']} → {p['target_name']}", p["attempts"], p["accepted"], pct(p["accept_rate"]),
                         pct(p["eq3_rate"]), pct(p["beta_pass_rate"]), f"{p['mean_loss_g']:.3f}",
                         f"{p['mean_prob_g']:.3f}"] for p in pairs]))

    parts.append("<h2>Examples, one grid per target class</h2>")
    shown = {k: class_rows(rows, k, per_class) for k in targets}
    notes, grids = view.report_grids(pool, data, rows, {k: idx for k, idx in shown.items() if len(idx)})
    parts.extend(notes)
    for k in targets:
        c = stats["classes"][k]
        parts.append(f'<section class="class-grid" id="class-{k}" data-target="{k}">'
                     f"<h3>target {esc(names[k])} (N = {c['class_size']}): {c['replaced']} of {c['attempts']} "
                     f"attempts accepted</h3>")
        if len(shown[k]) == 0:
            parts.append('<p class="note">no attempt with a seed</p>')
        elif k in grids:
            parts.append(grids[k])
        parts.append("</section>")
    parts.append("</body></html>")
    return write_text(out_dir / "index.html", "\n".join(parts))


__all__ = ["build_pool_report", "class_rows"]
