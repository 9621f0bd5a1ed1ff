"""Bring your own table: ``table:<file>``, a CSV (or Parquet) file of feature columns and a label.

Recipe (no paper section: tabular data is not in the paper; it follows the Reuters/Twitter vector
recipes of Sec. 3.3 where it can):

- One sample a row. The label column is ``label`` (option ``label``); an optional ``split`` column
  (option ``split_column``) with values ``train``/``test`` gives the split; without one, a
  stratified ``test_fraction`` of each class (drawn from the seed) is the test set.
- Every other column is a feature. A column whose every value parses as a number is numeric; any
  other column is categorical and one-hot encoded (one 0/1 column per distinct value seen in the
  training rows, sorted; a value seen only in test rows is all zeros), unless ``one_hot`` is
  false, which refuses such a column. A missing value (empty cell) is an error naming the row.
- Validation: ``val_fraction`` of each training class (at least one row for a class of two or
  more), drawn from the seed, as the text recipe.
- Standardisation: each feature column's mean and std are computed over the **training rows only**
  (after the validation hold-out) and every split is stored standardised, float32. The fitted
  values are recorded in ``meta["standardize"]`` (``columns``, ``mean``, ``std``; a constant
  column gets std 1), so the prepared data's own ``mean``/``std`` are the identity [0]/[1]: the
  translation steps of eq. (2) (L2 length ``step_size``) then move every feature in units of its
  training std, not in the file's units. The pool browser's ``table`` view maps x0 and x* back.
- Class order: label values sorted (numbers numerically, else as strings).
- ``input_range`` None (unbounded), augmentation none, preset ``table`` (an MLP).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ..utils import M2mError, rng_for
from .base import PreparedData, Split, hold_out_fraction
from .registry import register_dataset

SPLIT_VALUES = ("train", "test")
LAYOUT = "a CSV or Parquet file with a header row, numeric feature columns and a label column"


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows of strings) of a CSV or Parquet file; a one-line M2mError otherwise."""
    if not path.is_file():
        raise M2mError(f"table: {path} is not a file; expected {LAYOUT}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _read_parquet(path)
    if suffix not in (".csv", ".tsv", ".txt"):
        raise M2mError(f"table: {path} is not a .csv or .parquet file; expected {LAYOUT}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise M2mError(f"table: {path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                       f"expected {LAYOUT}") from None
    delimiter = "\t" if suffix == ".tsv" else ","
    rows = [r for r in csv.reader(text.splitlines(), delimiter=delimiter) if r]
    if len(rows) < 2:
        raise M2mError(f"table: {path} has no data rows; expected {LAYOUT}")
    header = [h.strip() for h in rows[0]]
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise M2mError(f"table: {path} line {i} has {len(row)} fields, the header {len(header)}")
    return header, [[v.strip() for v in r] for r in rows[1:]]


def _read_parquet(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        import pandas as pd
        frame = pd.read_parquet(path)
    except ImportError:
        raise M2mError(f"table: reading {path} needs pandas and pyarrow: pip install pyarrow") from None
    except Exception as exc:   # pyarrow's own errors: not a Parquet file, truncated, ...
        raise M2mError(f"table: {path} is not a readable Parquet file ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}); expected {LAYOUT}") from None
    header = [str(c) for c in frame.columns]
    rows = [["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in r]
            for r in frame.itertuples(index=False, name=None)]
    if not rows:
        raise M2mError(f"table: {path} has no data rows; expected {LAYOUT}")
    return header, rows


def _as_numbers(values: list[str]) -> np.ndarray | None:
    try:
        return np.asarray([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return None


def _sort_labels(labels: set[str]) -> list[str]:
    numeric = _as_numbers(sorted(labels))
    if numeric is not None:
        return sorted(labels, key=float)
    return sorted(labels)


def stratified_test_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices: ``fraction`` of each class (rounded, at least one row) drawn from the
    seed is test; a class needs two rows so that both splits have it."""
    rng = rng_for(seed, "split", 1)   # stream key 1: the validation hold-out uses 0
    test = []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        if len(idx) < 2:
            raise M2mError(f"class index {k} has {len(idx)} row; a stratified split needs at least 2")
        n = min(max(int(round(fraction * len(idx))), 1), len(idx) - 1)
        test.append(rng.choice(idx, size=n, replace=False))
    test_idx = np.sort(np.concatenate(test))
    return np.setdiff1d(np.arange(len(y)), test_idx), test_idx


def fit_standardize(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and (population) std of the training rows; std 1 for a constant column."""
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[~(std > 1e-12)] = 1.0
    return mean, std


@register_dataset("table")
def build_table(data_root: Path, *, label: str = "label", split_column: str = "split",
                test_fraction: float = 0.2, val_fraction: float = 0.1, one_hot: bool = True,
                seed: int = 0) -> PreparedData:
    """Any table (``table:<file>``, CSV or Parquet): numeric/one-hot features, a label column, standardised.

    ``label`` names the label column; a ``split_column`` (train/test) gives the split, else a
    stratified ``test_fraction`` from the seed; ``val_fraction`` of each training class is the
    validation set; standardisation is fitted on the training rows only (module docstring).
    """
    path = Path(data_root)
    if not 0.0 < val_fraction < 1.0:
        raise M2mError(f"table: val_fraction must be in (0, 1), got {val_fraction}")
    if not 0.0 < test_fraction < 1.0:
        raise M2mError(f"table: test_fraction must be in (0, 1), got {test_fraction}")
    header, rows = read_table(path)
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise M2mError(f"table: {path} repeats column name(s) {dup}")
    if label not in header:
        raise M2mError(f"table: {path} has no label column {label!r} (columns: {header[:8]}); "
                       f"set prepare.table.label")
    columns = {h: [r[i] for r in rows] for i, h in enumerate(header)}
    for h, values in columns.items():
        if "" in values:
            raise M2mError(f"table: {path} column {h!r} has an empty value on line {values.index('') + 2}; "
                           f"fill or drop missing values first")
    labels = columns.pop(label)
    class_names = _sort_labels(set(labels))
    if len(class_names) < 2:
        raise M2mError(f"table: {path} has a single class {class_names[0]!r} in column {label!r}; "
                       f"a classifier needs at least 2")
    index = {c: i for i, c in enumerate(class_names)}
    y = np.asarray([index[v] for v in labels], dtype=np.int64)

    if split_column in columns:
        split = columns.pop(split_column)
        bad = sorted(set(split) - set(SPLIT_VALUES))
        if bad:
            raise M2mError(f"table: {path} column {split_column!r} has value(s) {bad[:5]}; expected train or test")
        train_idx = np.flatnonzero(np.asarray(split) == "train")
        test_idx = np.flatnonzero(np.asarray(split) == "test")
        split_source = f"column {split_column!r}"
        if not len(test_idx):
            raise M2mError(f"table: {path} column {split_column!r} marks no row as test")
    else:
        train_idx, test_idx = stratified_test_split(y, test_fraction, seed)
        split_source = f"stratified {test_fraction:.0%} of each class (seed {seed})"
    counts = np.bincount(y[train_idx], minlength=len(class_names))
    few = [class_names[k] for k in np.flatnonzero(counts < 2)]
    if few:
        raise M2mError(f"table: {path}: class(es) {few[:5]} have fewer than 2 training rows; "
                       f"each class needs 2 (one for validation)")
    unseen = sorted({class_names[k] for k in y[test_idx]} - {class_names[k] for k in y[train_idx]})
    if unseen:
        raise M2mError(f"table: {path}: test label(s) {unseen[:5]} have no training row")

    feats, names, categorical = [], [], {}
    for h, values in columns.items():
        numbers = _as_numbers(values)
        if numbers is not None:
            if not np.isfinite(numbers).all():
                raise M2mError(f"table: {path} column {h!r} holds a non-finite number")
            feats.append(numbers[:, None])
            names.append(h)
            continue
        if not one_hot:
            first = next(v for v in values if _as_numbers([v]) is None)
            raise M2mError(f"table: {path} column {h!r} is not numeric ({first!r}); "
                           f"one-hot encode it or set prepare.table.one_hot: true")
        levels = sorted({values[i] for i in train_idx})
        categorical[h] = levels
        arr = np.asarray(values)
        feats.append(np.stack([(arr == v).astype(np.float64) for v in levels], axis=1))
        names.extend(f"{h}={v}" for v in levels)
    if not feats:
        raise M2mError(f"table: {path} has no feature column besides {label!r}")
    x_all = np.concatenate(feats, axis=1)

    rest_pos, held_pos = hold_out_fraction(y[train_idx], val_fraction, seed)
    fit_idx, val_idx = train_idx[rest_pos], train_idx[held_pos]
    mean, std = fit_standardize(x_all[fit_idx])
    z = ((x_all - mean) / std).astype(np.float32)
    meta: dict[str, Any] = {
        "source": {"layout": "table", "path": str(path)},
        "label_column": label, "split_source": split_source, "seed": seed,
        "class_order": "sorted label values",
        "feature_names": names, "categorical": categorical,
        "standardize": {"fitted_on": "training rows after the validation hold-out",
                        "columns": names, "mean": [float(v) for v in mean], "std": [float(v) for v in std]},
        "val_fraction": val_fraction, "val_source": f"{val_fraction:.0%} of each training class",
        "n_train_before_holdout": int(len(train_idx)),
        "train_counts_before_holdout": [int(c) for c in counts],
        "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
    }
    return PreparedData(
        name=f"table:{path.name}", class_names=class_names,
        train=Split(z[fit_idx], y[fit_idx]), val=Split(z[val_idx], y[val_idx]), test=Split(z[test_idx], y[test_idx]),
        input_kind="vector", input_range=None, mean=[0.0], std=[1.0], augment={}, preset="table", meta=meta,
    )
