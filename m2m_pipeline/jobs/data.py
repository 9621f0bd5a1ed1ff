"""Loading a prepared dataset (every job that trains or tests reads one); preparing it is
``jobs.prepare``."""

from __future__ import annotations

from pathlib import Path

from ..datasets import PreparedData
from ..store import read_prepared
from ..utils import M2mError


def load_prepared(path: str | Path) -> PreparedData:
    if not Path(path).exists():
        raise M2mError(f"prepared dataset {path} does not exist; run `m2m-pipeline prepare` (or dvc repro) first")
    return read_prepared(path)


__all__ = ["load_prepared"]
