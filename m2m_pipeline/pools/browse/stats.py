"""Counting what a pool holds (``pools stats``): per (k0, k) pair the attempts, the accept rate
beside the rate eq. (3) predicts (1 - beta^((N_k0 - N_k)^+)) and g's mean loss; per target class
the real class size and how many slots were replaced; the accept rate per class over the epochs
of a run; and the markdown tables of it all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...acceptance import REASON_NAMES, REASONS, accept_prob
from ...store import Pool, open_pool
from ...utils import M2mError
from .listing import run_epochs
from .selection import class_names_of

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


def format_stats(stats: dict[str, Any], *, max_pairs: int | None = 40) -> str:
    """Markdown tables of :func:`pool_stats`: the pairs (most attempts first), then the classes.
    Class names and the dataset come from the data: escaped (markup.md_cell)."""
    from .markup import md_cell as esc

    def pct(v):
        return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}"

    lines = [f"{esc(stats['dataset'])} epoch {stats['epoch']} (seed {stats['seed']}): {stats['accepted']} of "
             f"{stats['attempts']} attempts accepted ({pct(stats['accept_rate'])}%); reasons {stats['reasons']}; "
             f"beta = {stats['beta']}, gamma = {stats['gamma']} on {stats['gamma_on']}", "",
             "| k0 → k | attempts | accepted | accept % | eq. (3) % | beta pass % | mean loss g | mean p g |",
             "|---|---|---|---|---|---|---|---|"]
    pairs = sorted(stats["pairs"], key=lambda p: (-p["attempts"], p["seed_class"], p["target"]))
    shown = pairs if max_pairs is None else pairs[:max_pairs]
    for p in shown:
        lines.append(f"| {esc(p['seed_name'])} → {esc(p['target_name'])} | {p['attempts']} | {p['accepted']} | "
                     f"{pct(p['accept_rate'])} | {pct(p['eq3_rate'])} | {pct(p['beta_pass_rate'])} | "
                     f"{p['mean_loss_g']:.3f} | {p['mean_prob_g']:.3f} |")
    if len(shown) < len(pairs):
        lines.append(f"| ... {len(pairs) - len(shown)} more pairs (--json for all) | | | | | | | |")
    lines += ["", "| class | size N_k | slots | attempts | replaced | replaced % of attempts | flag |",
              "|---|---|---|---|---|---|---|"]
    for c in stats["classes"]:
        flag = "NO ACCEPTED TRANSLATION" if c["no_accepted"] else ""
        lines.append(f"| {esc(c['name'])} | {c['class_size']} | {c['slots']} | {c['attempts']} | {c['replaced']} | "
                     f"{pct(c['replaced_share'])} | {flag} |")
    if stats["flagged"]:
        lines += ["", f"classes with attempts but no accepted translation: {', '.join(map(esc, stats['flagged']))}"]
    return "\n".join(lines) + "\n"


INFO_KEYS = ("dataset", "epoch", "seed", "g_hash", "f_hash", "summary", "params", "package_version")


def pool_info(pool_path: str | Path) -> dict[str, Any]:
    """Provenance and accept/reject counts of one pool (``pools info``): its attributes of
    :data:`INFO_KEYS` (the pool is opened, so a damaged one is a one-line error)."""
    a = open_pool(pool_path).attrs
    return {k: a[k] for k in INFO_KEYS if k in a}


def stats_of(pool_path: str | Path, class_names: list[str], train_labels: np.ndarray) -> dict[str, Any]:
    """:func:`pool_stats` of the pool at ``pool_path`` with each class's plan slots filled from the
    training labels (``pools stats``)."""
    pool = open_pool(pool_path)
    return add_slot_counts(pool_stats(pool, class_names=class_names), pool, train_labels)


__all__ = ["INFO_KEYS", "STATS_ROW_ARRAYS", "acceptance_matrix", "add_slot_counts", "epoch_rates", "format_stats",
           "pool_info", "pool_stats", "stats_of"]
