"""Evaluate trained runs on the balanced test set and collect them into tables."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import PreparedData
from .layout import BEST_CHECKPOINT, LAST_CHECKPOINT
from .metrics import balanced_metrics
from .training import load_checkpoint, model_from_checkpoint, predict
from .training.checkpoint import logit_offset_of
from .utils import default_device


def evaluate_checkpoint(path: str | Path, data: PreparedData, device=None) -> dict[str, Any]:
    """Validation and test metrics of one checkpoint, with the epoch it was saved at; predictions
    honour the checkpoint's post-hoc logit adjustment (LA-posthoc), as its training selected with it."""
    device = device or default_device()
    ckpt = load_checkpoint(path, data=data, map_location=device)
    model = model_from_checkpoint(ckpt, device)
    out: dict[str, Any] = {"epoch": int(ckpt["epoch"]) - 1}
    for split_name in ("val", "test"):
        split = getattr(data, split_name)
        out[split_name] = balanced_metrics(split.y, predict(model, data, split, logit_offset=logit_offset_of(ckpt)),
                                           data.class_counts)
    return out


def evaluate_run(run_dir: str | Path, data: PreparedData, *, method: str, device=None) -> dict[str, Any]:
    """The run's test numbers at the epoch of best validation bACC (the authors' selection rule,
    labelled ``best_val``) and at the last epoch (``last``). A re-deciding ablation's metrics say
    the mode that produced its rows (``ablation_mode``: "reuse" | "fresh", from its checkpoint)."""
    run_dir = Path(run_dir)
    best = evaluate_checkpoint(run_dir / BEST_CHECKPOINT, data, device)
    last = evaluate_checkpoint(run_dir / LAST_CHECKPOINT, data, device)
    out = {"dataset": data.name, "method": method, "dataset_fingerprint": data.fingerprint,
           "best_val": best, "last": last}
    mode = (load_checkpoint(run_dir / LAST_CHECKPOINT, map_location="cpu").get("params") or {}).get("ablation_mode")
    if mode is not None:
        out["ablation_mode"] = mode
    return out


def _fmt(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def results_table(results: list[dict[str, Any]], *, which: str = "best_val") -> str:
    """A markdown table of test bACC, GM (strict), GM corrected (a zero recall counted as 1e-3; "-"
    for metrics files written before it existed), Major, Minor per method."""
    lines = [f"| method | test bACC | test GM | test GM corrected | Major | Minor | val bACC | epoch ({which}) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        sel = r[which]
        t = sel["test"]
        label = r["method"] if r.get("seed") is None else f"{r['method']} (seed {r['seed']})"
        lines.append(f"| {label} | {_fmt(t['bacc'])} | {_fmt(t['gm'])} | {_fmt(t.get('gm_corrected'))} | "
                     f"{_fmt(t['major'])} | "
                     f"{_fmt(t['minor'])} | {_fmt(sel['val']['bacc'])} | {sel['epoch']} |")
    return "\n".join(lines)


def load_results(paths: list[str | Path]) -> list[dict[str, Any]]:
    return [json.loads(Path(p).read_text()) for p in paths]


# -- predictions and penultimate features, for the paper's figures ----------------------------------

def balanced_subset(y: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Row indices of at most ``per_class`` rows of every class (sorted), drawn without replacement
    with a fixed seed: the class-balanced test subset of Figure 4's t-SNE."""
    rng = np.random.default_rng(seed)
    idx = [rng.permutation(np.flatnonzero(y == k))[:per_class] for k in np.unique(y)]
    return np.sort(np.concatenate(idx)) if idx else np.zeros(0, dtype=np.int64)


def penultimate_features(model, data: PreparedData, x: np.ndarray, *, batch_size: int = 512) -> np.ndarray:
    """The input of the model's last ``nn.Linear`` layer (its penultimate features) for raw rows
    ``x``, captured with a forward hook, so no model class needs a feature method."""
    import torch
    from torch import nn

    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to take features from")
    captured: list[np.ndarray] = []
    hook = last[-1].register_forward_hook(lambda _m, inputs, _out: captured.append(
        inputs[0].detach().flatten(1).cpu().numpy()))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(data.to_float(x[start:start + batch_size]).to(device))
    finally:
        hook.remove()
        model.train(was_training)
    return np.concatenate(captured) if captured else np.zeros((0, last[-1].in_features), np.float32)


def write_predictions(run_dir: str | Path, data: PreparedData, out: str | Path, *, method: str,
                      seed: int | None = None, checkpoint: str = "best", features_per_class: int = 50,
                      device=None) -> Path:
    """Test labels and predictions of a run's checkpoint (``best`` = best validation bACC, or
    ``last``), plus the penultimate features of a class-balanced test subset (at most
    ``features_per_class`` rows a class), in one ``.npz`` that ``figures.paper_figures`` reads."""
    device = device or default_device()
    ckpt = load_checkpoint(Path(run_dir) / f"{checkpoint}.pt", data=data, map_location=device)
    model = model_from_checkpoint(ckpt, device)
    y_pred = predict(model, data, data.test, logit_offset=logit_offset_of(ckpt))
    sub = balanced_subset(data.test.y, features_per_class)
    feats = penultimate_features(model, data, data.test.x[sub])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez_compressed(tmp, y_true=data.test.y.astype(np.int64), y_pred=np.asarray(y_pred, dtype=np.int64),
                        feature_index=sub.astype(np.int64), features=feats.astype(np.float32),
                        class_counts=np.asarray(data.class_counts, dtype=np.int64),
                        class_names=np.asarray(list(data.class_names), dtype=str),
                        method=np.asarray(method), seed=np.asarray(-1 if seed is None else int(seed)),
                        epoch=np.asarray(int(ckpt["epoch"]) - 1), checkpoint=np.asarray(checkpoint))
    tmp.replace(out)
    return out
