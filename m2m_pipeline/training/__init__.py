"""Training of g and f: the three jobs of the pipeline (pretrain g, warm f, train f)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..datasets import PreparedData
from ..pools import TranslationConfig
from ..utils import M2mError, default_device
from .checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from .loop import FitOptions, FitResult, fit, predict, write_history
from .methods import MethodSpec, get_method, list_methods
from .schedule import Preset, lr_at


def pretrain_g(data: PreparedData, preset: Preset, *, seed: int, out_dir: str | Path,
               device: torch.device | None = None, progress: bool = True) -> FitResult:
    """g: plain ERM on the imbalanced training set, the full schedule (Sec. 2.1)."""
    spec = MethodSpec("g", description="generator-side classifier, plain ERM")
    return fit(data=data, preset=preset, method=spec, seed=seed, run_dir=out_dir, end_epoch=preset.epochs,
               params={"role": "g"}, device=device, progress=progress)


def warm_f(data: PreparedData, preset: Preset, *, seed: int, out_dir: str | Path, loss: str = "ce",
           device: torch.device | None = None, progress: bool = True) -> FitResult:
    """f trained with ERM (or LDAM) up to the deferred epoch: the shared start of every deferred method."""
    spec = MethodSpec(f"warm-{loss}", loss=loss, description="warm-up phase shared by deferred methods")
    return fit(data=data, preset=preset, method=spec, seed=seed, run_dir=out_dir,
               end_epoch=preset.deferred_epoch, params={"role": "warm", "loss": loss}, device=device,
               progress=progress)


def train_f(data: PreparedData, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
            warm_dir: str | Path | None = None, g_path: str | Path | None = None,
            m2m: TranslationConfig | None = None, pools_dir: str | Path | None = None,
            options: FitOptions | None = None, device: torch.device | None = None,
            progress: bool = True) -> FitResult:
    """Train f with ``method`` to the end of the schedule. Deferred methods continue the warm
    checkpoint in ``warm_dir``; translating methods also need ``g_path``, ``m2m`` and ``pools_dir``."""
    spec = get_method(method)
    start = start_best = None
    if spec.deferred:
        if preset.deferred_epoch >= preset.epochs:
            raise M2mError(f"{method} is deferred but the preset's deferred_epoch ({preset.deferred_epoch}) "
                           f"leaves no epoch of the {preset.epochs} to train")
        if warm_dir is None:
            raise M2mError(f"{method} starts from a warm checkpoint: pass the warm_f output folder")
        start = load_checkpoint(Path(warm_dir) / "last.pt", data=data)
        if start["params"].get("seed") != seed:
            raise M2mError(f"warm checkpoint {warm_dir}/last.pt has seed {start['params'].get('seed')} "
                           f"but train_f runs seed {seed}; use the same seed for warm_f and train_f")
        start_best = Path(warm_dir) / "best.pt"
    g = None
    if spec.translate:
        if g_path is None:
            raise M2mError(f"{method} translates with g: pass the pretrain_g checkpoint")
        # g must sit on the device fit() puts f on, or translation mixes devices on a GPU machine
        device = device or default_device()
        g = model_from_checkpoint(load_checkpoint(g_path, data=data), device)
        for p in g.parameters():
            p.requires_grad_(False)
    return fit(data=data, preset=preset, method=spec, seed=seed, run_dir=out_dir, end_epoch=preset.epochs,
               start=start, start_best=start_best, g=g, m2m=m2m, pools_dir=pools_dir, options=options,
               params={"role": "f", "m2m": vars(m2m) if m2m is not None else None}, device=device,
               progress=progress)


__all__ = ["FitOptions", "FitResult", "MethodSpec", "Preset", "fit", "get_method", "list_methods",
           "load_checkpoint", "lr_at", "model_from_checkpoint", "predict", "pretrain_g", "save_checkpoint",
           "train_f", "warm_f", "write_history"]
