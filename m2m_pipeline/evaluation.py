"""Evaluate trained runs on the balanced test set and collect them into tables."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .datasets import PreparedData
from .metrics import balanced_metrics
from .training import load_checkpoint, model_from_checkpoint, predict
from .utils import default_device


def evaluate_checkpoint(path: str | Path, data: PreparedData, device=None) -> dict[str, Any]:
    """Validation and test metrics of one checkpoint, with the epoch it was saved at."""
    device = device or default_device()
    ckpt = load_checkpoint(path, data=data, map_location=device)
    model = model_from_checkpoint(ckpt, device)
    out: dict[str, Any] = {"epoch": int(ckpt["epoch"]) - 1}
    for split_name in ("val", "test"):
        split = getattr(data, split_name)
        out[split_name] = balanced_metrics(split.y, predict(model, data, split), data.class_counts)
    return out


def evaluate_run(run_dir: str | Path, data: PreparedData, *, method: str, device=None) -> dict[str, Any]:
    """The run's test numbers at the epoch of best validation bACC (the authors' selection rule,
    labelled ``best_val``) and at the last epoch (``last``)."""
    run_dir = Path(run_dir)
    best = evaluate_checkpoint(run_dir / "best.pt", data, device)
    last = evaluate_checkpoint(run_dir / "last.pt", data, device)
    return {"dataset": data.name, "method": method, "dataset_fingerprint": data.fingerprint,
            "best_val": best, "last": last}


def _fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def results_table(results: list[dict[str, Any]], *, which: str = "best_val") -> str:
    """A markdown table of test bACC, GM, Major, Minor per method."""
    lines = [f"| method | test bACC | test GM | Major | Minor | val bACC | epoch ({which}) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        sel = r[which]
        t = sel["test"]
        label = r["method"] if r.get("seed") is None else f"{r['method']} (seed {r['seed']})"
        lines.append(f"| {label} | {_fmt(t['bacc'])} | {_fmt(t['gm'])} | {_fmt(t['major'])} | "
                     f"{_fmt(t['minor'])} | {_fmt(sel['val']['bacc'])} | {sel['epoch']} |")
    return "\n".join(lines)


def load_results(paths: list[str | Path]) -> list[dict[str, Any]]:
    return [json.loads(Path(p).read_text()) for p in paths]
