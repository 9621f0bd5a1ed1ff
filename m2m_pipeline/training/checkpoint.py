"""Self-describing checkpoints: weights, optimizer, model config, params, epoch, dataset."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets import PreparedData
from ..models import create_model
from ..utils import M2mError, atomic_write_bytes, state_hash

CHECKPOINT_KIND = "m2m-checkpoint"


def model_config(data: PreparedData, model: str, model_args: dict[str, Any], norm_last: bool) -> dict[str, Any]:
    """Everything needed to rebuild the network without the dataset at hand."""
    return {"model": model, "model_args": dict(model_args), "norm_last": bool(norm_last),
            "input_shape": list(data.input_shape), "num_classes": data.num_classes,
            "mean": list(data.mean), "std": list(data.std)}


def build_model(config: dict[str, Any]) -> nn.Module:
    return create_model(config["model"], input_shape=tuple(config["input_shape"]),
                        num_classes=config["num_classes"], mean=config["mean"], std=config["std"],
                        norm_last=config["norm_last"], **config["model_args"])


def save_checkpoint(path: str | Path, *, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    config: dict[str, Any], params: dict[str, Any], epoch: int, dataset_fingerprint: str,
                    extra: dict[str, Any] | None = None) -> None:
    """Write atomically; ``epoch`` is the number of epochs trained (the next epoch to run)."""
    state = model.state_dict()
    payload = {
        "kind": CHECKPOINT_KIND,
        "model_state": state,
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "config": config,
        "params": params,
        "epoch": int(epoch),
        "dataset_fingerprint": dataset_fingerprint,
        "weights_hash": state_hash(state),
        "extra": extra or {},
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, *, data: PreparedData | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint; a missing, corrupt or mismatched file raises M2mError."""
    path = Path(path)
    if not path.is_file():
        raise M2mError(f"checkpoint {path} does not exist; run the stage that makes it (dvc repro) or pass another")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise M2mError(f"checkpoint {path} cannot be read ({type(exc).__name__}); it is corrupt or not a "
                       f"checkpoint: delete it and re-run the stage that makes it") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") != CHECKPOINT_KIND:
        raise M2mError(f"{path} is not an m2m-pipeline checkpoint")
    missing = [k for k in ("model_state", "config", "epoch", "dataset_fingerprint") if k not in ckpt]
    if missing:
        raise M2mError(f"checkpoint {path} misses {missing}; it is damaged or from another version: "
                       f"re-run the stage that makes it")
    ckpt["path"] = str(path)   # for the messages of model_from_checkpoint
    if data is not None:
        n = ckpt["config"]["num_classes"]
        if n != data.num_classes:
            raise M2mError(f"checkpoint {path} has {n} classes but dataset {data.name!r} has "
                           f"{data.num_classes}; use a checkpoint trained on this dataset")
        if ckpt["dataset_fingerprint"] != data.fingerprint:
            raise M2mError(f"checkpoint {path} was trained on dataset fingerprint {ckpt['dataset_fingerprint']} "
                           f"but the prepared data is {data.fingerprint}; re-run its training stage")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], device: torch.device | str = "cpu") -> nn.Module:
    """The network of a checkpoint; weights that do not fit the network its config describes
    (missing or extra keys, other tensor shapes) are a one-line M2mError, not a torch traceback."""
    where = f"checkpoint {ckpt['path']}" if ckpt.get("path") else "checkpoint"
    try:
        model = build_model(ckpt["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise M2mError(f"{where} has an unusable model config ({type(exc).__name__}: {exc}); "
                       f"re-run the stage that makes it") from None
    state = ckpt.get("model_state")
    if not isinstance(state, dict):
        raise M2mError(f"{where} holds no model weights; re-run the stage that makes it")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in expected.items()
             if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes {_few(wrong)}")
    if problems:
        raise M2mError(f"{where} does not fit its {ckpt['config'].get('model')!r} model: {'; '.join(problems)}; "
                       f"it is damaged or from another version: re-run the stage that makes it")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise M2mError(f"{where} weights cannot be loaded ({str(exc).splitlines()[0]})") from None
    return model.to(device)


def _few(items: list[str], n: int = 3) -> str:
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")
