"""Preparing a dataset once: the job that runs a dataset recipe (``create_dataset``) and writes it.

Kept apart from ``jobs.data`` (loading a prepared dataset, which every training job does) so that
only the prepare stage's import-derived DVC deps reach a recipe (stages/deps.py adds the recipe of
params.yaml's dataset to the stages whose code calls ``create_dataset``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..datasets import PreparedData, create_dataset
from ..store import prepared_fingerprint, write_prepared
from ..utils import check_output_dir, output_lock, user_os_errors


def prepare(dataset: str, out: str | Path, *, data_root: str | Path | None = None,
            options: dict[str, Any] | None = None) -> tuple[PreparedData, bool]:
    """Build the dataset and write it as zarr; returns (data, written). A second call with the
    same inputs finds the same fingerprint and writes nothing. ``out`` must be new, empty or a
    prepared dataset (a folder of other files is refused, not replaced)."""
    check_output_dir(out, "m2m-prepared-dataset")
    data = create_dataset(dataset, data_root=data_root, **(options or {}))
    with user_os_errors(), output_lock(out):
        if prepared_fingerprint(out) == data.fingerprint:
            return data, False
        write_prepared(out, data)
    return data, True


__all__ = ["prepare"]
