"""One function per pipeline job for the CLI: re-exports of ``m2m_pipeline.jobs`` (where the DVC
stages import each job from its own module, so a stage depends only on the code it runs), plus
``run_generate`` (one epoch's pool on its own) and ``run_any_train`` (any method by name).

Each job reads its inputs from paths, takes typed parameters, and writes its outputs; none of
them reads params.yaml (that is the callers' business).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .jobs.ablate import run_ablation, train_ablation
from .jobs.data import load_prepared, prepare
from .jobs.evaluate import run_evaluate
from .jobs.m2m import run_train_m2m, train_m2m
from .jobs.train import pretrain_g, run_pretrain_g, run_train_f, run_warm_f, train_f, warm_f
from .plan import make_plan
from .pools.config import TranslationConfig
from .pools.generate import PoolSummary, generate_pool
from .datasets import PreparedData
from .training import (FitOptions, FitResult, Preset, get_method, load_checkpoint, model_from_checkpoint,
                       write_history)
from .utils import M2mError, check_output_dir, default_device, output_lock, set_torch_threads, user_os_errors


def _job(fn):
    """A job's boundary: a read-only output folder or a full disk (OSError EACCES, EROFS, ENOSPC)
    becomes a one-line M2mError instead of a traceback; the writers are atomic, so nothing
    half-written stays behind."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with user_os_errors():
            return fn(*args, **kwargs)
    return wrapper


@_job
def run_generate(prepared: str | Path, preset: Preset, *, g_path: str | Path, f_path: str | Path,
                 cfg: TranslationConfig, seed: int, out: str | Path, epoch: int | None = None,
                 progress=None, workers: int | None = None, scheduler: str | None = None) -> PoolSummary:
    """Translate one epoch's pool on its own, with g and an f checkpoint (f's epoch by default).
    ``out`` must be new, empty or a pool; one writer at a time (``output_lock``).

    ``workers`` / ``scheduler``: translate the shards on a local dask cluster of that many
    processes, or on the running cluster at that address (docs/operations.md). A run killed at
    any point and started again with the same arguments keeps the shards already written."""
    set_torch_threads()
    check_output_dir(out, "m2m-pool")
    data = load_prepared(prepared)
    device = default_device()
    g_ckpt = load_checkpoint(g_path, data=data)
    g = model_from_checkpoint(g_ckpt, device)
    f_ckpt = load_checkpoint(f_path, data=data)
    f = model_from_checkpoint(f_ckpt, device)
    epoch = int(f_ckpt["epoch"]) if epoch is None else int(epoch)
    plan = make_plan(data.train.y, data.class_counts, seed=seed, epoch=epoch, order="balanced", attempts=True,
                     augment=data.augment, batch_size=preset.batch_size)
    with output_lock(out):
        return generate_pool(g=g, f=f, data=data, plan=plan, cfg=cfg, seed=seed, out=out, progress=progress,
                             provenance={"run": "generate", "f_epoch": int(f_ckpt["epoch"]),
                                         "g_checkpoint": str(g_path), "f_checkpoint": str(f_path)},
                             workers=workers, scheduler=scheduler,
                             model_configs=(g_ckpt["config"], f_ckpt["config"]))


def train_method(data: PreparedData, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
                 warm_dir: str | Path | None = None, g_path: str | Path | None = None,
                 g2_path: str | Path | None = None, m2m: TranslationConfig | None = None,
                 pools_dir: str | Path | None = None, reused_pools: str | Path | None = None,
                 method_params: Mapping[str, Any] | None = None, options: FitOptions | None = None,
                 workers: int | None = None, scheduler: str | None = None,
                 device=None, progress: bool = True) -> FitResult:
    """Train f with any registered method: a baseline (``jobs.train``), a translating method writing
    its pools under ``pools_dir`` (``jobs.m2m``) or an ablation re-deciding another run's pools
    ``reused_pools`` (``jobs.ablate``). Arguments a method does not use are ignored."""
    spec = get_method(method)
    if spec.reuse is not None:
        if reused_pools is None:
            raise M2mError(f"{method} re-decides the pools of {spec.reuse}: pass that run's pools folder")
        return train_ablation(data, preset, method=method, seed=seed, out_dir=out_dir, reused_pools=reused_pools,
                              warm_dir=warm_dir, method_params=method_params, options=options, device=device,
                              progress=progress)
    if spec.translate:
        if m2m is None or pools_dir is None:
            raise M2mError(f"{method} translates: it needs the m2m parameters and a pools folder")
        return train_m2m(data, preset, method=method, seed=seed, out_dir=out_dir, pools_dir=pools_dir, m2m=m2m,
                         g_path=g_path, g2_path=g2_path, warm_dir=warm_dir, method_params=method_params,
                         options=options, workers=workers, scheduler=scheduler, device=device, progress=progress)
    return train_f(data, preset, method=method, seed=seed, out_dir=out_dir, warm_dir=warm_dir, options=options,
                   device=device, progress=progress)


def run_any_train(prepared: str | Path, preset: Preset, *, history: str | Path | None = None,
                  **kwargs: Any) -> FitResult:
    """:func:`train_method` on a prepared dataset folder, writing the per-epoch history."""
    set_torch_threads()
    with user_os_errors():
        result = train_method(load_prepared(prepared), preset, **kwargs)
        if history:
            write_history(history, result.history)
    return result


__all__ = ["load_prepared", "prepare", "pretrain_g", "run_ablation", "run_any_train", "run_evaluate", "run_generate",
           "run_pretrain_g", "run_train_f", "run_train_m2m", "run_warm_f", "train_ablation", "train_f",
           "train_m2m", "train_method", "warm_f"]
