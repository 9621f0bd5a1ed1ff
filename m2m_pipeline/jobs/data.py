"""Preparing a dataset once, and loading a prepared one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..datasets import PreparedData, create_dataset
from ..store import prepared_fingerprint, read_prepared, write_prepared
from ..utils import M2mError, check_output_dir, output_lock, user_os_errors


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


def load_prepared(path: str | Path) -> PreparedData:
    if not Path(path).exists():
        raise M2mError(f"prepared dataset {path} does not exist; run `m2m-pipeline prepare` (or dvc repro) first")
    return read_prepared(path)


__all__ = ["load_prepared", "prepare"]
