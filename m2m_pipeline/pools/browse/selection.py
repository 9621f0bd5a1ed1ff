"""Choosing the rows of a pool to show: filters, stratified over target classes, and what a shown
row needs (its class names, its decision, x0 and x*)."""

from __future__ import annotations

import numpy as np

from ...acceptance import REASON_NAMES
from ...datasets import PreparedData
from ...store import Pool
from ..codec import read_x
from ..draws import seed_inputs

SHOW_ROW_ARRAYS = ("target", "seed_class", "seed_index", "seed_aug", "prob_g", "loss_g", "accepted", "reason")


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


def seeds_and_translations(pool: Pool, data: PreparedData, rows: dict[str, np.ndarray],
                           idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x0, x*) of the pool rows ``idx``: x0 rebuilt from the seed row and its recorded
    augmentation, x* decoded (pools/codec.py); both as the model's float input."""
    x_star = read_x(pool, data, idx)
    x0 = seed_inputs(data, rows["seed_index"][idx], rows["seed_aug"][idx]).numpy()
    return x0, x_star


__all__ = ["SHOW_ROW_ARRAYS", "class_names_of", "decision_of", "seeds_and_translations", "select_rows"]
