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
    model = build_model(ckpt["config"])
    model.load_state_dict(ckpt["model_state"])
    return model.to(device)
