"""The one-row-per-run tables of ``m2m-pipeline evaluate`` and ``m2m-pipeline table`` (no statistics
over seeds: each metrics file is a row; the rows' format is ``evaluation.results_table``'s, which the
evaluate stage prints too). Apart from ``tables`` so the report stage does not load the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..errors import M2mError
from ..evaluation import results_table
from .aggregate import read_metrics_file, seed_and_method_of

RUN_TABLE_TITLES = {"best_val": "at the epoch of best validation bACC (the authors' selection rule)",
                    "last": "at the last epoch"}


def run_table(results: list[dict[str, Any]], *, which: str = "best_val") -> str:
    """One row per run (evaluate_run's dicts): test bACC, GM, GM corrected, Major, Minor, val bACC."""
    return results_table(results, which=which)


def run_tables(files: Iterable[str | Path], *, which: str = "both") -> dict[str, str]:
    """{checkpoint: :func:`run_table` of the metrics ``files``} for ``which`` (best_val, last or both)."""
    if which not in ("best_val", "last", "both"):
        raise M2mError(f"--which must be best_val, last or both, got {which!r}")
    results = []
    for path in files:   # each checked as report checks it: a malformed file is one line naming it
        result = read_metrics_file(path)
        method, seed = seed_and_method_of(Path(path), result)
        results.append({**result, "method": method, "seed": seed})
    return {w: run_table(results, which=w) for w in (("best_val", "last") if which == "both" else (which,))}


__all__ = ["RUN_TABLE_TITLES", "run_table", "run_tables"]
