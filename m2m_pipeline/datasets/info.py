"""What ``m2m-pipeline data info`` prints: the class table, the imbalance ratio, the split sizes
and the majority/minority split of Sec. 3.4."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from .base import PreparedData, majority_classes


def describe_dataset(data: PreparedData) -> dict[str, Any]:
    """A JSON-serialisable summary of ``data``.

    ``classes``: one row a class (index, name, training count after the validation hold-out,
    its share of the training set, the count before the hold-out, validation and test counts,
    ``group`` major/minor). ``imbalance_ratio``: largest / smallest training class (after the
    hold-out; ``imbalance_ratio_before_holdout`` from the recipe's ``meta`` where it held
    validation data out of the training files). ``splits``: training before and after the
    hold-out, validation, test, and where the validation set came from. ``majority``/``minority``:
    Sec. 3.4's split (the fewest most frequent classes holding more than 50% of the training set).
    """
    k = data.num_classes
    counts = data.class_counts
    total = int(counts.sum())
    before = data.meta.get("train_counts_before_holdout")
    before = [int(c) for c in before] if before is not None and len(before) == k else [int(c) for c in counts]
    n_before = int(data.meta.get("n_train_before_holdout", sum(before)))
    val_counts = np.bincount(data.val.y, minlength=k)
    test_counts = np.bincount(data.test.y, minlength=k)
    major = majority_classes(counts)
    classes = [
        {
            "index": i,
            "name": data.class_names[i],
            "count": int(counts[i]),
            "share": float(counts[i] / total) if total else 0.0,
            "count_before_holdout": before[i],
            "val": int(val_counts[i]),
            "test": int(test_counts[i]),
            "group": "major" if major[i] else "minor",
        }
        for i in range(k)
    ]
    largest, smallest = int(counts.max()), int(counts.min())
    b_largest, b_smallest = max(before), min(before)
    return {
        "name": data.name,
        "preset": data.preset,
        "fingerprint": data.fingerprint,
        "input_kind": data.input_kind,
        "input_shape": list(data.input_shape),
        "input_range": list(data.input_range) if data.input_range is not None else None,
        "dtype": str(data.train.x.dtype),
        "augment": dict(data.augment),
        "num_classes": k,
        "classes": classes,
        "largest": largest,
        "smallest": smallest,
        "imbalance_ratio": largest / smallest if smallest else float("inf"),
        "largest_before_holdout": b_largest,
        "smallest_before_holdout": b_smallest,
        "imbalance_ratio_before_holdout": b_largest / b_smallest if b_smallest else float("inf"),
        "splits": {
            "train_before_holdout": n_before,
            "train": int(len(data.train)),
            "val": int(len(data.val)),
            "test": int(len(data.test)),
            "val_source": str(data.meta.get("val_source", "")),
        },
        "majority": [data.class_names[i] for i in np.flatnonzero(major)],
        "minority": [data.class_names[i] for i in np.flatnonzero(~major)],
        "majority_share": float(counts[major].sum() / total) if total else 0.0,
    }


def _show(name: str) -> str:
    """A class name as is when it is a plain word, else quoted (Twitter's tags "," and "^")."""
    return name if re.fullmatch(r"[\w./-]+", name) else repr(name)


def _shape(desc: dict[str, Any]) -> str:
    kind = desc["input_kind"]
    shape = "x".join(str(s) for s in desc["input_shape"])
    rng = desc["input_range"]
    rng_s = f"[{rng[0]:g}, {rng[1]:g}]" if rng is not None else "unbounded"
    return f"{kind} {shape} {desc['dtype']}, range {rng_s}"


def format_dataset_info(data: PreparedData) -> str:
    """A readable plain-text rendering of :func:`describe_dataset`."""
    d = describe_dataset(data)
    s = d["splits"]
    held_from_train = s["train_before_holdout"] != s["train"]
    lines = [
        f"dataset      {d['name']}  (preset {d['preset']}, fingerprint {d['fingerprint']})",
        f"input        {_shape(d)}",
        f"augment      {d['augment'] or 'none'}",
    ]
    std = data.meta.get("standardize")
    if std:   # table:<file>: the features and their fit (datasets/table.py)
        lines.append(f"features     {', '.join(std['columns'][:8])}{' ...' if len(std['columns']) > 8 else ''}; "
                     f"standardised ({std['fitted_on']})")
    lines += [
        f"classes      {d['num_classes']}",
        f"imbalance    {d['largest']}/{d['smallest']} = {d['imbalance_ratio']:.1f} (training set used)",
    ]
    if held_from_train:
        lines.append(f"             {d['largest_before_holdout']}/{d['smallest_before_holdout']} = "
                     f"{d['imbalance_ratio_before_holdout']:.1f} (before the validation hold-out)")
    lines += [
        "splits",
        f"  train before validation hold-out  {s['train_before_holdout']}",
        f"  train after                       {s['train']}",
        f"  validation                        {s['val']}" + (f"  ({s['val_source']})" if s['val_source'] else ""),
        f"  test                              {s['test']}",
        f"majority     {len(d['majority'])} classes holding {d['majority_share']:.1%} of training "
        f"(Sec. 3.4): {', '.join(_show(n) for n in d['majority'])}",
        f"minority     {len(d['minority'])} classes",
        "",
    ]
    name_w = max(5, *(len(c["name"]) for c in d["classes"]))
    cols = ["   #", "class".ljust(name_w), "  train", "  share"]
    if held_from_train:
        cols.append(" before")
    cols += ["    val", "   test", "  group"]
    lines.append(" ".join(cols))
    for c in d["classes"]:
        row = [f"{c['index']:4d}", c["name"].ljust(name_w), f"{c['count']:7d}", f"{c['share']:7.2%}"]
        if held_from_train:
            row.append(f"{c['count_before_holdout']:7d}")
        row += [f"{c['val']:7d}", f"{c['test']:7d}", f"  {c['group']}"]
        lines.append(" ".join(row))
    return "\n".join(lines)
