"""Browse translation pools: list them, show what translation did, and count what was accepted.

Three views, as the ``m2m-pipeline pools`` commands:

* :func:`list_pools` (``pools ls``): one row per pool (run and epoch) found under a folder, read
  from each pool's ``zarr.json`` alone, so a listing opens no array and an incomplete pool still
  shows (as incomplete).
* :func:`select_rows` + :func:`show_pool` (``pools show``): chosen rows of one pool, stratified over
  target classes, drawn as x0 | x* | (x* - x0) for images (the paper's Figure 6), as the words
  switched on and off for bag-of-words inputs, and as the nearest vocabulary tokens of x0 and x*
  for word embeddings.
* :func:`pool_stats` (``pools stats``): per (k0, k) pair the attempts, the accept rate beside the
  rate eq. (3) predicts (1 - beta^((N_k0 - N_k)^+)) and g's mean loss; per target class the real
  class size and how many slots were replaced; a heatmap of acceptance by (k0, k) and the accept
  rate per class over the epochs of a run.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..acceptance import REASON_NAMES, REASONS, accept_prob
from ..datasets import PreparedData
from ..store import Pool, open_pool
from ..utils import M2mError, save_figure
from .codec import read_x

_EPOCH_DIR = re.compile(r"^epoch_(\d+)$")
_RUN_DIR = re.compile(r"^(?P<method>.+?)-seed(?P<seed>\d+)$")


# -- finding pools -------------------------------------------------------------------------------

@dataclass
class PoolEntry:
    """One pool as ``pools ls`` lists it."""

    path: str
    dataset: str | None
    method: str | None
    seed: int | None
    epoch: int | None
    attempts: int | None
    accepted: int | None
    accept_rate: float | None
    reasons: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0
    created: str | None = None
    complete: bool = False
    g_hash: str | None = None
    f_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _group_attrs(path: Path) -> dict[str, Any] | None:
    """The attributes of the zarr v3 group at ``path`` (read from zarr.json as JSON), or None."""
    meta = path / "zarr.json"
    try:
        doc = json.loads(meta.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("node_type") != "group":
        return None
    return dict(doc.get("attributes") or {})


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _looks_like_pool(path: Path, attrs: dict[str, Any] | None) -> bool:
    if attrs is not None and attrs.get("kind") == "m2m-pool":
        return True
    # a pool that crashed before its attributes: an epoch_<e> folder holding the row arrays
    return bool(_EPOCH_DIR.match(path.name)) and (path / "accepted").is_dir()


def pool_entry(path: str | Path) -> PoolEntry:
    """The :class:`PoolEntry` of one pool folder (complete or not)."""
    path = Path(path)
    attrs = _group_attrs(path) or {}
    summary = attrs.get("summary") or {}
    m_epoch = _EPOCH_DIR.match(path.name)
    m_run = _RUN_DIR.match(path.parent.name)
    attempts = summary.get("n_attempts")
    accepted = summary.get("n_accepted")
    created = datetime.fromtimestamp((path / "zarr.json").stat().st_mtime, tz=timezone.utc) \
        if (path / "zarr.json").exists() else None
    return PoolEntry(
        path=str(path),
        dataset=attrs.get("dataset"),
        method=attrs.get("method") or (m_run.group("method") if m_run else attrs.get("run")),
        seed=int(attrs["seed"]) if "seed" in attrs else (int(m_run.group("seed")) if m_run else None),
        epoch=int(attrs["epoch"]) if "epoch" in attrs else (int(m_epoch.group(1)) if m_epoch else None),
        attempts=attempts, accepted=accepted,
        accept_rate=(accepted / attempts) if attempts else None,
        reasons={k: int(v) for k, v in (summary.get("reasons") or {}).items()},
        size_bytes=_folder_bytes(path),
        created=created.strftime("%Y-%m-%d %H:%M") if created else None,
        complete=bool(attrs.get("complete")),
        g_hash=(attrs.get("g_hash") or "")[:8] or None,
        f_hash=(attrs.get("f_hash") or "")[:8] or None,
    )


def list_pools(root: str | Path = "pools") -> list[PoolEntry]:
    """Every pool folder under ``root`` (or ``root`` itself), sorted by dataset, method, seed, epoch."""
    root = Path(root)
    if not root.exists():
        raise M2mError(f"pool folder {root} does not exist; pools are written by `m2m-pipeline train-f "
                       f"--method M2m` (or dvc repro) and `m2m-pipeline generate`")
    found = []
    candidates = [root] + [p.parent for p in root.rglob("zarr.json")] + [p for p in root.rglob("epoch_*")]
    seen: set[Path] = set()
    for path in candidates:
        if path in seen or not path.is_dir():
            continue
        seen.add(path)
        if _looks_like_pool(path, _group_attrs(path)):
            found.append(pool_entry(path))
    return sorted(found, key=lambda e: (e.dataset or "", e.method or "", e.seed if e.seed is not None else -1,
                                        e.epoch if e.epoch is not None else -1, e.path))


def format_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# -- one pool ------------------------------------------------------------------------------------

def run_epochs(run_dir: str | Path) -> dict[int, Path]:
    """{epoch: pool folder} of the ``epoch_<e>`` folders of a run folder."""
    out = {}
    for p in Path(run_dir).iterdir() if Path(run_dir).is_dir() else []:
        m = _EPOCH_DIR.match(p.name)
        if m and p.is_dir():
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def resolve_pool(run: str | Path, epoch: int | None = None) -> Path:
    """The pool folder meant by ``run`` and ``epoch``: ``run`` itself when it is a pool, else its
    ``epoch_<epoch>`` folder (the last epoch when ``epoch`` is None)."""
    run = Path(run)
    if not run.exists():
        raise M2mError(f"{run} does not exist; give a pool folder (pools/digits/M2m-seed0/epoch_40) or a run "
                       f"folder of pools (pools/digits/M2m-seed0); `m2m-pipeline pools ls` lists them")
    if (run / "zarr.json").is_file() and _looks_like_pool(run, _group_attrs(run)):
        if epoch is not None and pool_entry(run).epoch not in (None, epoch):
            raise M2mError(f"{run} is the pool of epoch {pool_entry(run).epoch}, not {epoch}")
        return run
    epochs = run_epochs(run)
    if not epochs:
        raise M2mError(f"{run} holds no epoch_<e> pool folders")
    if epoch is None:
        return epochs[max(epochs)]
    if epoch not in epochs:
        raise M2mError(f"{run} has no pool of epoch {epoch}; epochs present: "
                       f"{', '.join(str(e) for e in epochs)}")
    return epochs[epoch]


def class_names_of(pool: Pool, data: PreparedData | None = None) -> list[str]:
    """Class names: the prepared data's, else the pool's ``class`` coordinate, else the indices."""
    if data is not None:
        return list(data.class_names)
    if "class" in pool.group:
        return [str(c) for c in pool.array("class")]
    return [str(i) for i in range(len(pool.attrs.get("class_counts", [])))]


def select_rows(rows: dict[str, np.ndarray], *, target: int | None = None, seed_class: int | None = None,
                accepted: bool | None = None, limit: int = 16) -> np.ndarray:
    """Row indices matching the filters, stratified over target classes: one row of each target
    class in turn (in row order within a class), so a small ``limit`` still shows every class
    rather than the first rows, which all belong to the first slots' classes."""
    mask = np.ones(len(rows["target"]), dtype=bool)
    if target is not None:
        mask &= rows["target"] == target
    if seed_class is not None:
        mask &= rows["seed_class"] == seed_class
    if accepted is not None:
        mask &= rows["accepted"] == accepted
    mask &= rows["seed_index"] >= 0  # no_seed rows have no x0 to show
    idx = np.flatnonzero(mask)
    per_class = [idx[rows["target"][idx] == k] for k in np.unique(rows["target"][idx])]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < limit and any(depth < len(c) for c in per_class):
        for c in per_class:
            if depth < len(c) and len(chosen) < limit:
                chosen.append(int(c[depth]))
        depth += 1
    return np.asarray(sorted(chosen, key=lambda i: (rows["target"][i], i)), dtype=np.int64)


def decision_of(rows: dict[str, np.ndarray], i: int) -> str:
    return REASON_NAMES[int(rows["reason"][i])]


SHOW_ROW_ARRAYS = ("target", "seed_class", "seed_index", "seed_aug", "prob_g", "loss_g", "accepted", "reason")


def view_kind(data: PreparedData) -> str:
    """``image``, ``bag_of_words`` (prepared data with a ``vocabulary``) or ``embedding``."""
    if data.input_kind == "image" and len(data.input_shape) == 3:
        return "image"
    if data.meta.get("vocabulary"):
        return "bag_of_words"
    return "embedding"


def image_grid(pool: Pool, data: PreparedData, idx: np.ndarray, out: str | Path | None, *,
               title: str | None = None, per_row: int = 4, rows: dict[str, np.ndarray] | None = None):
    """Figure 6 of the paper for chosen rows: x0 | x* | (x* - x0) per example, ``per_row``
    examples a row. The difference uses ONE colour scale for the whole figure (the largest
    |x* - x0| shown), so magnitudes compare across panels; the scale is in the title. Each example
    is titled ``k0 -> k``, with g's probability of k at x* and the decision. Writes a PNG when
    ``out`` is given; returns the matplotlib figure (closed when written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .draws import seed_inputs

    if len(idx) == 0:
        raise M2mError("no pool rows match the filters; loosen --target/--seed-class/--accepted")
    rows = rows if rows is not None else pool.rows(SHOW_ROW_ARRAYS)
    names = class_names_of(pool, data)
    x_star = read_x(pool, data, idx)
    x0 = seed_inputs(data, rows["seed_index"][idx], rows["seed_aug"][idx]).numpy()
    diff = x_star - x0
    scale = float(np.abs(diff).max()) or 1e-8
    n = len(idx)
    per_row = max(1, min(per_row, n))
    n_rows = -(-n // per_row)
    fig, axes = plt.subplots(n_rows, 3 * per_row, figsize=(1.25 * 3 * per_row, 1.55 * n_rows + 0.6),
                             squeeze=False)
    gray = x0.shape[1] == 1

    def draw(ax, img, **kw):
        ax.imshow(np.transpose(img, (1, 2, 0)).squeeze(), **kw)

    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for j, i in enumerate(idx):
        r, c = divmod(j, per_row)
        a0, a1, a2 = axes[r, 3 * c: 3 * c + 3]
        lo, hi = data.input_range or (float(min(x0.min(), x_star.min())), float(max(x0.max(), x_star.max())))
        draw(a0, np.clip(x0[j], lo, hi), cmap="gray" if gray else None, vmin=lo, vmax=hi)
        draw(a1, np.clip(x_star[j], lo, hi), cmap="gray" if gray else None, vmin=lo, vmax=hi)
        d = diff[j].mean(axis=0, keepdims=True) if not gray else diff[j]
        draw(a2, d, cmap="seismic", vmin=-scale, vmax=scale)
        a0.set_frame_on(True)
        a1.set_frame_on(True)
        a2.set_frame_on(True)
        k0, k = int(rows["seed_class"][i]), int(rows["target"][i])
        decision = decision_of(rows, i)
        a1.set_title(f"{names[k0]} → {names[k]}\np={rows['prob_g'][i]:.2f} {decision}", fontsize=7,
                     color="tab:green" if decision == "accepted" else "tab:red")
        if r == 0:
            a0.set_xlabel("x0", fontsize=6)
            a1.set_xlabel("x*", fontsize=6)
            a2.set_xlabel("x*−x0", fontsize=6)
    fig.suptitle((title + "\n" if title else "") + f"x0 | x* | x*−x0 (blue −, red +; one scale: ±{scale:.3f})",
                 fontsize=8)
    fig.tight_layout()
    if out is not None:
        save_figure(fig, out)
    return fig


def word_changes(pool: Pool, data: PreparedData, idx: np.ndarray, *, top: int = 8,
                 rows: dict[str, np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Bag-of-words rows: the words translation switched on (largest x* - x0) and off (most
    negative), ranked, each with its change; one dict per row with the class names."""
    from .draws import seed_inputs

    rows = rows if rows is not None else pool.rows(SHOW_ROW_ARRAYS)
    vocab = list(data.meta.get("vocabulary") or [])
    names = class_names_of(pool, data)
    x_star = read_x(pool, data, idx)
    x0 = seed_inputs(data, rows["seed_index"][idx], rows["seed_aug"][idx]).numpy()
    width = x_star.shape[1]
    words = vocab + [f"<unknown {i}>" for i in range(len(vocab), width)]
    out = []
    for j, i in enumerate(idx):
        delta = (x_star[j] - x0[j]).reshape(-1)
        order = np.argsort(delta)
        on = [(words[w], float(delta[w])) for w in order[::-1][:top] if delta[w] > 0]
        off = [(words[w], float(delta[w])) for w in order[:top] if delta[w] < 0]
        out.append({"row": int(i), "seed_class": names[int(rows["seed_class"][i])],
                    "target": names[int(rows["target"][i])], "prob_g": float(rows["prob_g"][i]),
                    "decision": decision_of(rows, i), "words_in_x0": int((x0[j] > 0.5).sum()),
                    "switched_on": on, "switched_off": off})
    return out


def token_table(data: PreparedData) -> tuple[list[str], np.ndarray]:
    """(tokens, vectors) of the word embedding behind a Twitter-like dataset: the distinct training
    tokens, embedded by the recipe's own embedding (its file, or the hashed fallback)."""
    from ..datasets import twitter

    src = (data.meta.get("source") or {}).get("train")
    if not src or not Path(src).is_file():
        raise M2mError(f"the token file of {data.name} ({src}) is not readable here, so its vocabulary cannot "
                       f"be rebuilt for nearest-token lookups")
    tokens = sorted({tok for tok, _ in twitter.read_tagged_tokens(Path(src))})
    emb = data.meta.get("embedding") or {}
    table = twitter.read_embedding_file(Path(emb["path"])) if emb.get("kind") == "file" else None
    vectors, _ = twitter._embed(tokens, table)
    return tokens, vectors


def nearest_tokens(pool: Pool, data: PreparedData, idx: np.ndarray, *, top: int = 5,
                   rows: dict[str, np.ndarray] | None = None,
                   table: tuple[list[str], np.ndarray] | None = None) -> list[dict[str, Any]]:
    """Embedding rows: the ``top`` vocabulary tokens nearest (cosine) to x0 and to x*."""
    from .draws import seed_inputs

    rows = rows if rows is not None else pool.rows(SHOW_ROW_ARRAYS)
    tokens, vectors = table or token_table(data)
    names = class_names_of(pool, data)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    x_star = read_x(pool, data, idx).reshape(len(idx), -1)
    x0 = seed_inputs(data, rows["seed_index"][idx], rows["seed_aug"][idx]).numpy().reshape(len(idx), -1)

    def near(v):
        sim = unit @ (v / max(np.linalg.norm(v), 1e-12))
        best = np.argsort(-sim)[:top]
        return [(tokens[b], float(sim[b])) for b in best]

    return [{"row": int(i), "seed_class": names[int(rows["seed_class"][i])],
             "target": names[int(rows["target"][i])], "prob_g": float(rows["prob_g"][i]),
             "decision": decision_of(rows, i), "near_x0": near(x0[j]), "near_x_star": near(x_star[j])}
            for j, i in enumerate(idx)]


def format_text_rows(kind: str, items: list[dict[str, Any]]) -> str:
    """Markdown for ``word_changes`` / ``nearest_tokens`` results."""
    lines = []
    if kind == "bag_of_words":
        lines += ["| row | k0 → k | p | decision | switched on (Δ) | switched off (Δ) |", "|---|---|---|---|---|---|"]
        for it in items:
            on = ", ".join(f"{w} (+{d:.2f})" for w, d in it["switched_on"]) or "-"
            off = ", ".join(f"{w} ({d:.2f})" for w, d in it["switched_off"]) or "-"
            lines.append(f"| {it['row']} | {it['seed_class']} → {it['target']} | {it['prob_g']:.2f} | "
                         f"{it['decision']} | {on} | {off} |")
    else:
        lines += ["| row | k0 → k | p | decision | nearest to x0 | nearest to x* |", "|---|---|---|---|---|---|"]
        for it in items:
            n0 = ", ".join(f"{t} ({s:.2f})" for t, s in it["near_x0"])
            n1 = ", ".join(f"{t} ({s:.2f})" for t, s in it["near_x_star"])
            lines.append(f"| {it['row']} | {it['seed_class']} → {it['target']} | {it['prob_g']:.2f} | "
                         f"{it['decision']} | {n0} | {n1} |")
    return "\n".join(lines) + "\n"


def show_pool(pool_path: str | Path, data: PreparedData, out: str | Path, *, target: int | None = None,
              seed_class: int | None = None, accepted: bool | None = None, limit: int = 16) -> tuple[Path, str]:
    """Write the view of ``pools show`` to ``out`` (PNG for images, markdown otherwise); returns
    (path, a one-line description)."""
    from .reuse import check_provenance

    pool = open_pool(pool_path)
    check_provenance(pool, dataset_fingerprint=data.fingerprint)
    rows = pool.rows(SHOW_ROW_ARRAYS)
    for opt, k in (("--target", target), ("--seed-class", seed_class)):
        if k is not None and not 0 <= k < data.num_classes:
            raise M2mError(f"{opt} {k} is not a class index of {data.name} (0..{data.num_classes - 1})")
    idx = select_rows(rows, target=target, seed_class=seed_class, accepted=accepted, limit=limit)
    if len(idx) == 0:
        raise M2mError("no pool rows match the filters; loosen --target/--seed-class/--accepted/--rejected")
    kind = view_kind(data)
    out = Path(out)
    a = pool.attrs
    if kind == "image":
        image_grid(pool, data, idx, out, rows=rows,
                   title=f"{a.get('dataset')} epoch {a.get('epoch')}: {len(idx)} rows, stratified over targets")
    else:
        items = word_changes(pool, data, idx, rows=rows) if kind == "bag_of_words" else \
            nearest_tokens(pool, data, idx, rows=rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(f"# {a.get('dataset')} epoch {a.get('epoch')}: {len(idx)} rows ({kind})\n\n"
                       + format_text_rows(kind, items))
    return out, f"{kind} view of {len(idx)} rows -> {out}"


# -- statistics ----------------------------------------------------------------------------------

STATS_ROW_ARRAYS = ("target", "seed_class", "loss_g", "prob_g", "u_beta", "accepted", "reason")


def pool_stats(pool: Pool, *, class_names: list[str] | None = None) -> dict[str, Any]:
    """Counts of one pool.

    ``pairs``: one dict per (k0, k) with attempts: ``attempts``, ``accepted``, ``accept_rate``,
    ``eq3_rate`` (what eq. (3) predicts for the beta test alone, 1 - beta^((N_k0 - N_k)^+); the
    observed rate is at most this, times the share that also passes the gamma test),
    ``beta_pass_rate`` (observed), ``mean_loss_g`` and ``mean_prob_g``.
    ``classes``: one dict per class with ``class_size`` (N_k), ``slots`` (plan slots holding k),
    ``attempts``, ``replaced`` (accepted: slots whose real sample x* replaces) and
    ``no_accepted`` (attempted but never accepted).
    """
    a = pool.attrs
    counts = np.asarray(a["class_counts"], dtype=np.int64)
    k = len(counts)
    names = class_names or class_names_of(pool)
    beta = float((a.get("params") or {}).get("beta", float("nan")))
    rows = pool.rows(STATS_ROW_ARRAYS)
    has_seed = rows["seed_class"] >= 0
    pairs = []
    t, s = rows["target"][has_seed], rows["seed_class"][has_seed]
    acc = rows["accepted"][has_seed]
    beta_pass = rows["reason"][has_seed] != REASONS["beta"]
    loss, prob = rows["loss_g"][has_seed], rows["prob_g"][has_seed]
    pair_id = s.astype(np.int64) * k + t
    for pid in np.unique(pair_id):
        m = pair_id == pid
        k0, kk = divmod(int(pid), k)
        n = int(m.sum())
        pairs.append({"seed_class": k0, "seed_name": names[k0], "target": kk, "target_name": names[kk],
                      "attempts": n, "accepted": int(acc[m].sum()), "accept_rate": float(acc[m].mean()),
                      "eq3_rate": float(accept_prob(counts, k0, kk, beta)),
                      "beta_pass_rate": float(beta_pass[m].mean()),
                      "mean_loss_g": float(np.nanmean(loss[m])) if np.isfinite(loss[m]).any() else float("nan"),
                      "mean_prob_g": float(np.mean(prob[m]))})
    # slots per class need the training labels, which the pool does not hold: add_slot_counts
    slots_per_class = np.zeros(k, dtype=np.int64)
    n_plan_slots = int(pool.group["plan/order"].shape[0]) if "plan" in pool.group else None
    attempts = np.bincount(rows["target"], minlength=k)
    replaced = np.bincount(rows["target"][rows["accepted"]], minlength=k)
    classes = []
    for c in range(k):
        classes.append({"class": c, "name": names[c], "class_size": int(counts[c]),
                        "slots": int(slots_per_class[c]), "attempts": int(attempts[c]),
                        "replaced": int(replaced[c]),
                        "replaced_share": float(replaced[c] / attempts[c]) if attempts[c] else None,
                        "no_accepted": bool(attempts[c] > 0 and replaced[c] == 0)})
    total = len(rows["target"])
    return {"path": str(pool.path), "dataset": a.get("dataset"), "epoch": a.get("epoch"), "seed": a.get("seed"),
            "beta": beta, "gamma": (a.get("params") or {}).get("gamma"),
            "gamma_on": (a.get("params") or {}).get("gamma_on"),
            "attempts": int(total), "accepted": int(rows["accepted"].sum()),
            "accept_rate": float(rows["accepted"].mean()) if total else None,
            "reasons": {REASON_NAMES[int(c)]: int(n) for c, n in zip(*np.unique(rows["reason"], return_counts=True))},
            "n_plan_slots": n_plan_slots,
            "pairs": pairs, "classes": classes,
            "flagged": [c["name"] for c in classes if c["no_accepted"]]}


def add_slot_counts(stats: dict[str, Any], pool: Pool, train_labels: np.ndarray) -> dict[str, Any]:
    """Fill each class's ``slots`` (plan slots holding a sample of the class) from the training
    labels, which the pool does not store."""
    if "plan" not in pool.group:
        return stats
    order = pool.plan_arrays()["order"]
    per = np.bincount(np.asarray(train_labels)[order], minlength=len(stats["classes"]))
    for c in stats["classes"]:
        c["slots"] = int(per[c["class"]])
    return stats


def acceptance_matrix(stats: dict[str, Any], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(attempts, accept rate) as K x K arrays indexed [k0, k]; the rate is NaN without attempts."""
    att = np.zeros((k, k), dtype=np.int64)
    rate = np.full((k, k), np.nan)
    for p in stats["pairs"]:
        att[p["seed_class"], p["target"]] = p["attempts"]
        rate[p["seed_class"], p["target"]] = p["accept_rate"]
    return att, rate


def plot_heatmap(stats: dict[str, Any], names: list[str], out: str | Path) -> Path:
    """Accept rate by (seed class k0, target k), both axes from the largest to the smallest class
    (so eq. (5)'s "seeds come from larger classes" shows as the upper triangle); blank where no
    attempt; rate and attempts written in the cells when there are at most 12 classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(names)
    att, rate = acceptance_matrix(stats, k)
    sizes = np.array([c["class_size"] for c in stats["classes"]])
    order = np.argsort(-sizes, kind="stable")
    att, rate = att[np.ix_(order, order)], rate[np.ix_(order, order)]
    size = min(14, 3 + 0.3 * k)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(np.ma.masked_invalid(rate), cmap="viridis", vmin=0, vmax=1, origin="upper")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="accept rate")
    ticks = np.arange(k)
    labels = [f"{names[c]} ({sizes[c]})" for c in order]
    fs = 8 if k <= 12 else (6 if k <= 40 else 4)
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, rotation=90, fontsize=fs)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=fs)
    ax.set_xlabel("target class k (training size), largest first")
    ax.set_ylabel("seed class k0 (training size)")
    if k <= 12:
        for i in range(k):
            for j in range(k):
                if att[i, j]:
                    ax.text(j, i, f"{100 * rate[i, j]:.0f}%\n{att[i, j]}", ha="center", va="center",
                            fontsize=6, color="w" if rate[i, j] < 0.6 else "k")
    ax.set_title(f"{stats['dataset']} epoch {stats['epoch']}: accept rate by (k0, k), "
                 f"{stats['accepted']}/{stats['attempts']} accepted\n"
                 f"({'cells: rate, attempts; ' if k <= 12 else ''}blank: no attempt)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out)


def epoch_rates(run_dir: str | Path) -> dict[str, Any]:
    """Accept rate per target class for every complete pool of a run: {"epochs": [...],
    "rates": K x E array (NaN where a class had no attempt), "class_counts": [...]}."""
    epochs, cols, counts = [], [], None
    for e, path in run_epochs(run_dir).items():
        try:
            pool = open_pool(path)
        except M2mError:
            continue  # an incomplete epoch is listed by `pools ls`, not counted here
        rows = pool.rows(("target", "accepted"))
        counts = pool.attrs["class_counts"]
        k = len(counts)
        att = np.bincount(rows["target"], minlength=k)
        acc = np.bincount(rows["target"][rows["accepted"]], minlength=k)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols.append(np.where(att > 0, acc / np.maximum(att, 1), np.nan))
        epochs.append(e)
    return {"epochs": epochs, "rates": np.stack(cols, axis=1) if cols else np.zeros((0, 0)),
            "class_counts": counts}


def plot_epoch_rates(run_dir: str | Path, names: list[str], out: str | Path) -> Path:
    """Accept rate per target class over the epochs of a run, one line per class (coloured from
    the largest class, dark, to the smallest, light)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = epoch_rates(run_dir)
    if not r["epochs"]:
        raise M2mError(f"{run_dir} holds no complete pool")
    counts = np.asarray(r["class_counts"])
    order = np.argsort(-counts, kind="stable")
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    k = len(counts)
    for rank, c in enumerate(order):
        if np.all(np.isnan(r["rates"][c])):
            continue
        ax.plot(r["epochs"], 100 * r["rates"][c], marker="o" if len(r["epochs"]) < 3 else None, lw=1.2,
                color=cmap(rank / max(k - 1, 1)), label=f"{names[c]} (N={counts[c]})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accept rate of attempts (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"accept rate per target class over the epochs of {Path(run_dir).name}", fontsize=9)
    if k <= 12:
        ax.legend(fontsize=7, ncol=2, loc="best")
    else:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, k - 1))
        fig.colorbar(sm, ax=ax, label="class rank by size (0 = largest)")
    fig.tight_layout()
    return save_figure(fig, out)


def format_stats(stats: dict[str, Any], *, max_pairs: int | None = 40) -> str:
    """Markdown tables of :func:`pool_stats`: the pairs (most attempts first), then the classes."""
    def pct(v):
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}"

    lines = [f"{stats['dataset']} epoch {stats['epoch']} (seed {stats['seed']}): {stats['accepted']} of "
             f"{stats['attempts']} attempts accepted ({pct(stats['accept_rate'])}%); reasons {stats['reasons']}; "
             f"beta = {stats['beta']}, gamma = {stats['gamma']} on {stats['gamma_on']}", "",
             "| k0 → k | attempts | accepted | accept % | eq. (3) % | beta pass % | mean loss g | mean p g |",
             "|---|---|---|---|---|---|---|---|"]
    pairs = sorted(stats["pairs"], key=lambda p: (-p["attempts"], p["seed_class"], p["target"]))
    shown = pairs if max_pairs is None else pairs[:max_pairs]
    for p in shown:
        lines.append(f"| {p['seed_name']} → {p['target_name']} | {p['attempts']} | {p['accepted']} | "
                     f"{pct(p['accept_rate'])} | {pct(p['eq3_rate'])} | {pct(p['beta_pass_rate'])} | "
                     f"{p['mean_loss_g']:.3f} | {p['mean_prob_g']:.3f} |")
    if len(shown) < len(pairs):
        lines.append(f"| ... {len(pairs) - len(shown)} more pairs (--json for all) | | | | | | | |")
    lines += ["", "| class | size N_k | slots | attempts | replaced | replaced % of attempts | flag |",
              "|---|---|---|---|---|---|---|"]
    for c in stats["classes"]:
        flag = "NO ACCEPTED TRANSLATION" if c["no_accepted"] else ""
        lines.append(f"| {c['name']} | {c['class_size']} | {c['slots']} | {c['attempts']} | {c['replaced']} | "
                     f"{pct(c['replaced_share'])} | {flag} |")
    if stats["flagged"]:
        lines += ["", f"classes with attempts but no accepted translation: {', '.join(stats['flagged'])}"]
    return "\n".join(lines) + "\n"


__all__ = ["PoolEntry", "acceptance_matrix", "add_slot_counts", "class_names_of", "epoch_rates", "format_size",
           "format_stats", "image_grid", "list_pools", "nearest_tokens", "plot_epoch_rates", "plot_heatmap",
           "pool_entry", "pool_stats", "resolve_pool", "run_epochs", "select_rows", "show_pool", "token_table",
           "view_kind", "word_changes"]
