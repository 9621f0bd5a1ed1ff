"""One function per pipeline job, shared by the DVC stages and the CLI (both stay thin).

Each job reads its inputs from paths, takes typed parameters, and writes its outputs; none of
them reads params.yaml (that is the callers' business).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .datasets import PreparedData, create_dataset
from .evaluation import evaluate_run
from .plan import make_plan
from .pools import PoolSummary, TranslationConfig, generate_pool
from .store import prepared_fingerprint, read_prepared, write_prepared
from .training import (FitOptions, FitResult, Preset, load_checkpoint, model_from_checkpoint, pretrain_g,
                       train_f, warm_f, write_history)
from .utils import M2mError, default_device, set_torch_threads


def prepare(dataset: str, out: str | Path, *, data_root: str | Path | None = None,
            options: dict[str, Any] | None = None) -> tuple[PreparedData, bool]:
    """Build the dataset and write it as zarr; returns (data, written). A second call with the
    same inputs finds the same fingerprint and writes nothing."""
    data = create_dataset(dataset, data_root=data_root, **(options or {}))
    if prepared_fingerprint(out) == data.fingerprint:
        return data, False
    write_prepared(out, data)
    return data, True


def load_prepared(path: str | Path) -> PreparedData:
    if not Path(path).exists():
        raise M2mError(f"prepared dataset {path} does not exist; run `m2m-pipeline prepare` (or dvc repro) first")
    return read_prepared(path)


def run_pretrain_g(prepared: str | Path, preset: Preset, *, seed: int, out_dir: str | Path,
                   history: str | Path | None = None, progress: bool = True) -> FitResult:
    set_torch_threads()
    result = pretrain_g(load_prepared(prepared), preset, seed=seed, out_dir=out_dir, progress=progress)
    if history:
        write_history(history, result.history)
    return result


def run_warm_f(prepared: str | Path, preset: Preset, *, seed: int, out_dir: str | Path, loss: str = "ce",
               progress: bool = True) -> FitResult:
    set_torch_threads()
    return warm_f(load_prepared(prepared), preset, seed=seed, out_dir=out_dir, loss=loss, progress=progress)


def run_train_f(prepared: str | Path, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
                warm_dir: str | Path | None = None, g_path: str | Path | None = None,
                m2m: TranslationConfig | None = None, pools_dir: str | Path | None = None,
                options: FitOptions | None = None, history: str | Path | None = None,
                progress: bool = True) -> FitResult:
    set_torch_threads()
    result = train_f(load_prepared(prepared), preset, method=method, seed=seed, out_dir=out_dir,
                     warm_dir=warm_dir, g_path=g_path, m2m=m2m, pools_dir=pools_dir, options=options,
                     progress=progress)
    if history:
        write_history(history, result.history)
    return result


def run_generate(prepared: str | Path, preset: Preset, *, g_path: str | Path, f_path: str | Path,
                 cfg: TranslationConfig, seed: int, out: str | Path, epoch: int | None = None,
                 progress=None) -> PoolSummary:
    """Translate one epoch's pool on its own, with g and an f checkpoint (f's epoch by default)."""
    set_torch_threads()
    data = load_prepared(prepared)
    device = default_device()
    g = model_from_checkpoint(load_checkpoint(g_path, data=data), device)
    f_ckpt = load_checkpoint(f_path, data=data)
    f = model_from_checkpoint(f_ckpt, device)
    epoch = int(f_ckpt["epoch"]) if epoch is None else int(epoch)
    plan = make_plan(data.train.y, data.class_counts, seed=seed, epoch=epoch, order="balanced", attempts=True,
                     augment=data.augment, batch_size=preset.batch_size)
    return generate_pool(g=g, f=f, data=data, plan=plan, cfg=cfg, seed=seed, out=out, progress=progress,
                         provenance={"run": "generate", "f_epoch": int(f_ckpt["epoch"]),
                                     "g_checkpoint": str(g_path), "f_checkpoint": str(f_path)})


def run_evaluate(prepared: str | Path, run_dir: str | Path, *, method: str, out: str | Path,
                 seed: int | None = None) -> dict[str, Any]:
    set_torch_threads()
    result = evaluate_run(run_dir, load_prepared(prepared), method=method)
    if seed is not None:
        result["seed"] = int(seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return result
