"""Preparing a dataset once: the job that runs a dataset recipe (``create_dataset``) and writes it.

Kept apart from ``jobs.data`` (loading a prepared dataset, which every training job does) so that
only the prepare stage's import-derived DVC deps reach a recipe (stages/deps.py adds the recipe of
params.yaml's dataset to the stages whose code calls ``create_dataset``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import PreparedData, create_dataset
from ..store import prepared_fingerprint, write_prepared
from ..utils import M2mError, check_output_dir, output_lock, user_os_errors


# The fewest training samples a class may have: a class of one sample has no second sample of its
# own to tell what the class is, and a one-sample class is most often a stray file in a wrong folder.
MIN_TRAIN_PER_CLASS = 2


def check_trainable(data: PreparedData) -> None:
    """Refuse, before anything is written, a dataset no classifier can be trained and measured on:
    fewer than 2 classes (balanced accuracy over one class is 100 whatever the model learns), a
    class with fewer than :data:`MIN_TRAIN_PER_CLASS` training samples, or a class absent from the
    validation or the test split (its recall, and so bACC, is undefined). One line naming the class."""
    names = list(data.class_names)
    if len(names) < 2:
        raise M2mError(f"dataset {data.name} has {len(names)} class{'' if len(names) == 1 else 'es'} "
                       f"({', '.join(map(repr, names)) or 'none'}): a classifier needs at least 2 (balanced "
                       f"accuracy over one class is 100 whatever it learns); add the other classes")
    for split, least in (("train", MIN_TRAIN_PER_CLASS), ("val", 1), ("test", 1)):
        counts = np.bincount(np.asarray(getattr(data, split).y, dtype=np.int64), minlength=len(names))
        short = [k for k in range(len(names)) if counts[k] < least]
        if short:
            k = short[0]
            raise M2mError(f"dataset {data.name}: class {names[k]!r} has {int(counts[k])} {split} sample"
                           f"{'' if counts[k] == 1 else 's'}, needs at least {least}"
                           f"{f' ({len(short)} classes are short)' if len(short) > 1 else ''}; add samples "
                           f"or remove the class")


def prepare(dataset: str, out: str | Path, *, data_root: str | Path | None = None,
            options: dict[str, Any] | None = None) -> tuple[PreparedData, bool]:
    """Build the dataset and write it as zarr; returns (data, written). A second call with the
    same inputs finds the same fingerprint and writes nothing. ``out`` must be new, empty or a
    prepared dataset (a folder of other files is refused, not replaced)."""
    check_output_dir(out, "m2m-prepared-dataset")
    data = create_dataset(dataset, data_root=data_root, **(options or {}))
    check_trainable(data)
    with user_os_errors(), output_lock(out):
        if prepared_fingerprint(out) == data.fingerprint:
            return data, False
        write_prepared(out, data)
    return data, True


__all__ = ["MIN_TRAIN_PER_CLASS", "check_trainable", "prepare"]
