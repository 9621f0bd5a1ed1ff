"""Testing a finished run: refuses a run folder that training did not finish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..evaluation import evaluate_run
from ..training import load_checkpoint
from ..training.loop import run_status
from ..layout import LAST_CHECKPOINT
from ..utils import M2mError, atomic_write_bytes, set_torch_threads, user_os_errors
from .data import load_prepared


def check_finished(run_dir: str | Path) -> None:
    """Raise M2mError unless ``run_dir`` holds a finished run (its completion marker)."""
    run_dir = Path(run_dir)
    if run_status(run_dir) is not None:
        return
    last = run_dir / LAST_CHECKPOINT
    if not last.is_file():
        raise M2mError(f"run {run_dir} has no checkpoint; train it first (dvc repro, or m2m-pipeline train-f)")
    ckpt = load_checkpoint(last)
    total = ckpt.get("params", {}).get("preset", {}).get("epochs", "?")
    raise M2mError(f"run {run_dir} stopped after {int(ckpt['epoch'])} of {total} epochs (no completion marker); "
                   f"re-run its training (train-f, or dvc repro) to resume it")


def run_evaluate(prepared: str | Path, run_dir: str | Path, *, method: str, out: str | Path,
                 seed: int | None = None) -> dict[str, Any]:
    """Test metrics of a finished run at its best-validation and its last epoch, written to ``out``."""
    set_torch_threads()
    with user_os_errors():
        check_finished(run_dir)
        result = evaluate_run(run_dir, load_prepared(prepared), method=method)
        if seed is not None:
            result["seed"] = int(seed)
        atomic_write_bytes(out, json.dumps(result, indent=1).encode())
    return result


__all__ = ["check_finished", "run_evaluate"]
