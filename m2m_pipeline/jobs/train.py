"""Training jobs that use no pool: pretrain g, warm f, train f with a baseline; and the start
(warm checkpoint, or resume of an interrupted run) that every f job shares."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..datasets import PreparedData
from ..training import FitOptions, FitResult, MethodSpec, Preset, fit, get_method, load_checkpoint, write_history
from ..training.loop import COMPLETE_MARKER, run_status
from ..layout import LAST_CHECKPOINT
from ..utils import M2mError, check_output_dir, output_lock, set_torch_threads, user_os_errors
from .data import load_prepared


def pretrain_g(data: PreparedData, preset: Preset, *, seed: int, out_dir: str | Path,
               device: torch.device | None = None, progress: bool = True) -> FitResult:
    """g: plain ERM on the imbalanced training set, the full schedule (Sec. 2.1)."""
    spec = MethodSpec("g", description="generator-side classifier, plain ERM")
    params = {"role": "g"}
    check_run_dir(out_dir)
    with output_lock(out_dir):
        start, resume = resume_point(out_dir, data, spec, seed, params, preset)
        return fit(data=data, preset=preset, method=spec, seed=seed, run_dir=out_dir, end_epoch=preset.epochs,
                   start=start, resume=resume, params=params, device=device, progress=progress)


def warm_f(data: PreparedData, preset: Preset, *, seed: int, out_dir: str | Path, loss: str = "ce",
           options: FitOptions | None = None, device: torch.device | None = None,
           progress: bool = True) -> FitResult:
    """f trained with ERM (or LDAM, or LA for LA-M2m) up to the deferred epoch: the shared start of
    every deferred method. An LA warm phase records its ``la_tau`` (``options``, default 1), which
    the method continuing it must share (:func:`start_for`)."""
    spec = MethodSpec(f"warm-{loss}", loss=loss, description="warm-up phase shared by deferred methods")
    params: dict[str, Any] = {"role": "warm", "loss": loss}
    if loss == "la":
        params["la_tau"] = float((options or FitOptions()).la_tau)
    check_run_dir(out_dir)
    with output_lock(out_dir):
        start, resume = resume_point(out_dir, data, spec, seed, params, preset)
        return fit(data=data, preset=preset, method=spec, seed=seed, run_dir=out_dir,
                   end_epoch=preset.deferred_epoch, start=start, resume=resume,
                   options=options if loss == "la" else None, params=params, device=device,
                   progress=progress)


def check_run_dir(run_dir: str | Path) -> None:
    """A run folder may be new, empty or an earlier run (it holds last.pt): never a folder of other files."""
    check_output_dir(run_dir, "run folder",
                     is_kind=lambda p: (p / LAST_CHECKPOINT).exists() or (p / COMPLETE_MARKER).exists())


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def resume_point(run_dir: str | Path, data: PreparedData, spec: MethodSpec, seed: int, params: dict[str, Any],
                 preset: Preset) -> tuple[dict[str, Any] | None, bool]:
    """(this run's last.pt, True) when ``run_dir`` holds an interrupted run of the same method, seed,
    preset and parameters (it resumes from its last completed epoch); else (None, False) and the
    run starts over. A finished run (completion marker) is trained again from its start."""
    last = Path(run_dir) / LAST_CHECKPOINT
    if not last.is_file() or run_status(run_dir) is not None:
        return None, False
    try:
        ckpt = load_checkpoint(last, data=data)
    except M2mError:
        return None, False  # a damaged or foreign last.pt: start over (fit rewrites the folder)
    want = {"method": spec.name, "seed": seed, "preset": preset.to_dict(), **params}
    if not _same(ckpt.get("params"), want):
        return None, False
    return ckpt, True


def warm_start(warm_dir: str | Path | None, data: PreparedData, spec: MethodSpec, seed: int) -> dict[str, Any]:
    """The warm checkpoint a deferred method continues (checked: same data, seed, loss, finished)."""
    if warm_dir is None:
        raise M2mError(f"{spec.name} starts from a warm checkpoint: pass the warm_f output folder")
    if run_status(warm_dir) is None and (Path(warm_dir) / LAST_CHECKPOINT).is_file():
        raise M2mError(f"warm run {warm_dir} did not finish (no completion marker); re-run warm-f to resume it")
    start = load_checkpoint(Path(warm_dir) / LAST_CHECKPOINT, data=data)
    if start["params"].get("seed") != seed:
        raise M2mError(f"warm checkpoint {warm_dir}/last.pt has seed {start['params'].get('seed')} "
                       f"but train_f runs seed {seed}; use the same seed for warm_f and train_f")
    loss = start["params"].get("loss", "ce")
    if spec.warm is not None and loss != spec.warm:
        raise M2mError(f"{spec.name} continues a warm phase trained with loss {spec.warm!r}, but {warm_dir} was "
                       f"trained with {loss!r}; pass the warm-{spec.warm} run (warm_f --loss {spec.warm})")
    return start


def start_for(spec: MethodSpec, *, data: PreparedData, preset: Preset, seed: int, out_dir: str | Path,
              warm_dir: str | Path | None, params: dict[str, Any]) -> tuple[dict[str, Any] | None, bool, str | None]:
    """(start checkpoint, resume?, warm weights hash) of an f run: its own interrupted run when
    there is one, else the warm checkpoint of a deferred method, else None (from scratch). A
    deferred run's ``params`` get the warm hash (``params["warm_hash"]``), as its checkpoints record it."""
    warm_hash = None
    if spec.deferred:
        if preset.deferred_epoch >= preset.epochs:
            raise M2mError(f"{spec.name} is deferred but the preset's deferred_epoch ({preset.deferred_epoch}) "
                           f"leaves no epoch of the {preset.epochs} to train")
        warm = warm_start(warm_dir, data, spec, seed)
        if spec.warm == "la":
            want = float((params.get("options") or {}).get("la_tau", FitOptions().la_tau))
            got = warm["params"].get("la_tau")
            if got is None or float(got) != want:
                raise M2mError(f"{spec.name} trains with la_tau = {want} but its LA warm phase {warm_dir} was "
                               f"trained with la_tau = {got}; re-run warm_f --loss la with the same la_tau")
        warm_hash = str(warm["weights_hash"])
        params["warm_hash"] = warm_hash
    resumed, resume = resume_point(out_dir, data, spec, seed, params, preset)
    if resume:
        return resumed, True, warm_hash
    return (warm if spec.deferred else None), False, warm_hash


def f_params(spec: MethodSpec, *, options: FitOptions | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """What an f checkpoint records of its parameters (and what a resume must find unchanged)."""
    return {"role": "f", "options": asdict(options or FitOptions()), **(extra or {})}


def train_f(data: PreparedData, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
            warm_dir: str | Path | None = None, options: FitOptions | None = None,
            device: torch.device | None = None, progress: bool = True) -> FitResult:
    """Train f with a method that uses no pool to the end of the schedule. Deferred methods continue
    the warm checkpoint in ``warm_dir``; an interrupted run in ``out_dir`` resumes."""
    spec = get_method(method)
    if spec.uses_pools:
        raise M2mError(f"{method} trains on pools: use jobs.m2m.train_m2m (translating) or "
                       f"jobs.ablate.train_ablation (reusing another run's pools)")
    params = f_params(spec, options=options)
    check_run_dir(out_dir)
    with output_lock(out_dir):
        start, resume, _ = start_for(spec, data=data, preset=preset, seed=seed, out_dir=out_dir,
                                     warm_dir=warm_dir, params=params)
        return fit(data=data, preset=preset, method=spec, seed=seed, run_dir=out_dir, end_epoch=preset.epochs,
                   start=start, resume=resume, options=options, params=params, device=device, progress=progress)


def run_pretrain_g(prepared: str | Path, preset: Preset, *, seed: int, out_dir: str | Path,
                   history: str | Path | None = None, progress: bool = True) -> FitResult:
    set_torch_threads()
    with user_os_errors():
        result = pretrain_g(load_prepared(prepared), preset, seed=seed, out_dir=out_dir, progress=progress)
        if history:
            write_history(history, result.history)
    return result


def run_warm_f(prepared: str | Path, preset: Preset, *, seed: int, out_dir: str | Path, loss: str = "ce",
               progress: bool = True) -> FitResult:
    set_torch_threads()
    with user_os_errors():
        return warm_f(load_prepared(prepared), preset, seed=seed, out_dir=out_dir, loss=loss, progress=progress)


def run_train_f(prepared: str | Path, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
                warm_dir: str | Path | None = None, options: FitOptions | None = None,
                history: str | Path | None = None, progress: bool = True) -> FitResult:
    set_torch_threads()
    with user_os_errors():
        result = train_f(load_prepared(prepared), preset, method=method, seed=seed, out_dir=out_dir,
                         warm_dir=warm_dir, options=options, progress=progress)
        if history:
            write_history(history, result.history)
    return result


__all__ = ["check_run_dir", "f_params", "pretrain_g", "resume_point", "run_pretrain_g", "run_train_f", "run_warm_f", "start_for",
           "train_f", "warm_f", "warm_start"]
