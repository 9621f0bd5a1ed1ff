"""Translating one epoch's pool on its own (``m2m-pipeline generate``), from a g and an f checkpoint."""

from __future__ import annotations

from pathlib import Path

from ..plan import make_plan
from ..pools.backends import TranslationBackend
from ..pools.config import TranslationConfig
from ..pools.generate import PoolSummary, generate_pool
from ..training import Preset, load_checkpoint, model_from_checkpoint
from ..utils import check_output_dir, default_device, output_lock, progress_bar, set_torch_threads, user_os_errors
from .data import load_prepared


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
                 progress=None, backend: TranslationBackend | None = None) -> PoolSummary:
    """Translate one epoch's pool on its own, with g and an f checkpoint (f's epoch by default).
    ``out`` must be new, empty or a pool; one writer at a time (``output_lock``).

    ``backend``: where the shards are translated (``pools.backends.create_backend``: this process,
    a local dask cluster or a running one; docs/operations.md). A run killed at any point and
    started again with the same arguments keeps the shards already written."""
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
                             backend=backend, model_configs=(g_ckpt["config"], f_ckpt["config"]))


def checkpoint_epoch(path: str | Path) -> int:
    """The epoch an f checkpoint was saved at (``generate``'s default epoch)."""
    return int(load_checkpoint(path)["epoch"])


def check_pool_out(out: str | Path) -> None:
    """Refuse a ``--out`` that holds anything but a pool, before any work."""
    check_output_dir(out, "m2m-pool")


def attempts_bar(prepared: str | Path, preset: Preset, seed: int, epoch: int):
    """A progress bar over the epoch's translation attempts, its total taken from the epoch's plan
    (the same ``make_plan`` call as :func:`run_generate`'s), quiet-ish in log files
    (utils.progress_bar)."""
    data = load_prepared(prepared)
    plan = make_plan(data.train.y, data.class_counts, seed=seed, epoch=epoch, order="balanced", attempts=True,
                     augment=data.augment, batch_size=preset.batch_size)
    return progress_bar(total=int(plan.attempt.sum()), desc=f"translate epoch {epoch}", unit="row", leave=True)


__all__ = ["attempts_bar", "check_pool_out", "checkpoint_epoch", "run_generate"]
