"""Self-describing checkpoints: weights, optimizer, model config, params, epoch, dataset."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..datasets import PreparedData
from ..models import create_model
from ..utils import M2mError, atomic_write_bytes, state_hash

CHECKPOINT_KIND = "m2m-checkpoint"
# Every key a checkpoint holds (``content_hash`` since issue 20; older files lack it).
CHECKPOINT_KEYS = ("kind", "model_state", "optimizer_state", "config", "params", "epoch", "dataset_fingerprint",
                   "weights_hash", "extra", "content_hash")


def model_config(data: PreparedData, model: str, model_args: dict[str, Any], norm_last: bool,
                 logit_offset: list[float] | None = None) -> dict[str, Any]:
    """Everything needed to rebuild the network without the dataset at hand; with ``logit_offset``
    (post-hoc logit adjustment, LA-posthoc: -tau log pi_k), the per-class offset that every
    prediction adds to the logits before the argmax (:func:`logit_offset_of`)."""
    config = {"model": model, "model_args": dict(model_args), "norm_last": bool(norm_last),
              "input_shape": list(data.input_shape), "num_classes": data.num_classes,
              "mean": list(data.mean), "std": list(data.std)}
    if logit_offset is not None:
        config["logit_offset"] = [float(v) for v in logit_offset]
    return config


# Keys a checkpoint's content hash leaves out: the weights (their own ``weights_hash``), the two
# hashes themselves, and ``path``, which load_checkpoint adds after the check.
_UNHASHED = ("model_state", "weights_hash", "content_hash", "path")


def content_hash(payload: dict[str, Any]) -> str:
    """A hash of everything in a checkpoint but its weights: optimizer state, config, params,
    epoch, dataset fingerprint, extra. Tensors hash by dtype, shape and bytes; containers in their
    order, with their types; scalars by type and repr (exact for floats). Iterative, so no nesting
    depth is a RecursionError; an object of another type (a weights_only load yields none) is
    hashed by its type name and repr."""
    h = hashlib.sha256()
    stack: list[Any] = [{k: v for k, v in payload.items() if k not in _UNHASHED}]
    while stack:
        obj = stack.pop()
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(obj, dict):
            h.update(f"D{len(obj)}:".encode())
            for k, v in reversed(list(obj.items())):   # popped back in the dict's order
                stack.append(v)
                stack.append(k)
        elif isinstance(obj, (list, tuple)):
            h.update(f"{type(obj).__name__[0]}{len(obj)}:".encode())
            stack.extend(reversed(obj))
        else:
            text = repr(obj).encode()
            h.update(f"{type(obj).__name__}{len(text)}:".encode())
            h.update(text)
    return h.hexdigest()[:16]


def _verify_hashes(path: Path, ckpt: dict[str, Any]) -> None:
    """Recompute the weights hash (and, where the checkpoint records one, the content hash) and
    refuse a mismatch: a flipped bit in a weight, the optimizer state or the config is a one-line
    M2mError naming the file, never a silent change of training. Checkpoints older than the content
    hash are checked on their weights only."""
    state = ckpt["model_state"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise M2mError(f"checkpoint {path} holds no model weights (its model_state is not a dict of tensors); "
                       f"it is damaged: delete it and re-run the stage that makes it")
    actual = state_hash(state)
    if actual != ckpt["weights_hash"]:
        raise M2mError(f"checkpoint {path} is damaged: its weights hash to {actual}, not the recorded "
                       f"{str(ckpt['weights_hash'])[:32]!s}; delete it and re-run the stage that makes it")
    if "content_hash" in ckpt:
        actual = content_hash(ckpt)
        if actual != ckpt["content_hash"]:
            raise M2mError(f"checkpoint {path} is damaged: its optimizer state, config or params hash to "
                           f"{actual}, not the recorded {str(ckpt['content_hash'])[:32]!s}; delete it and "
                           f"re-run the stage that makes it")


def logit_offset_of(ckpt: dict[str, Any]) -> torch.Tensor | None:
    """The prediction offset a checkpoint records (``config["logit_offset"]``), or None: a model
    predicts argmax_k z_k + offset_k. A checkpoint is self-describing, so evaluation and the
    prediction files honour a method's post-hoc adjustment without knowing the method."""
    offset = (ckpt.get("config") or {}).get("logit_offset")
    if offset is None:
        return None
    n = ckpt["config"].get("num_classes")
    if not isinstance(offset, (list, tuple)) or len(offset) != n:
        where = f"checkpoint {ckpt['path']}" if ckpt.get("path") else "checkpoint"
        raise M2mError(f"{where} has a logit_offset of {len(offset) if isinstance(offset, (list, tuple)) else offset!r} "
                       f"values for {n} classes; it is damaged: re-run the stage that makes it")
    return torch.tensor([float(v) for v in offset], dtype=torch.float32)


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
    payload["content_hash"] = content_hash(payload)
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
    missing = [k for k in ("model_state", "config", "epoch", "dataset_fingerprint", "weights_hash") if k not in ckpt]
    if missing:
        raise M2mError(f"checkpoint {path} misses {missing}; it is damaged or from another version: "
                       f"re-run the stage that makes it")
    unknown = [str(k)[:40] for k in ckpt if k not in CHECKPOINT_KEYS]
    if unknown:   # e.g. a flipped bit in a key's name: the hashes would not cover it
        raise M2mError(f"checkpoint {path} has unknown keys {unknown}; it is damaged or from another version: "
                       f"re-run the stage that makes it")
    _verify_hashes(path, ckpt)
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
