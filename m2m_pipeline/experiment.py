"""Building blocks of the multi-seed experiments (hyper-parameter selection, reproduction benchmark).

Per seed s: g is trained once (plain ERM, seed ``g_seed``), f's warm phase once per loss ("ce" and
"ldam", Sec. 3.1: deferred methods start after ``deferred_epoch`` epochs of standard training),
and every method continues from the warm checkpoint of its loss (methods.py ``warm``), so the
deferred methods of a seed share their first ``deferred_epoch`` epochs exactly.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .datasets import PreparedData
from .evaluation import evaluate_run
from .pools.config import TranslationConfig
from .jobs.train import pretrain_g, warm_f
from .pipeline import train_method
from .training import FitOptions, Preset, get_method


def load_experiment(dataset: str, *, params_path: str | Path = "params.yaml",
                    data_root: str | Path | None = None) -> tuple[dict[str, Any], PreparedData, Preset]:
    """(params, data, preset) of a benchmark on ``dataset``: params.yaml validated, the dataset's
    recipe run with its ``prepare`` options (``data_root`` or params ``data_root``), its preset."""
    from .config import load_params, prepare_options, preset_for
    from .datasets import create_dataset

    params = load_params(params_path)
    data = create_dataset(dataset, data_root=data_root or params.get("data_root"),
                          **prepare_options(params, dataset))
    return params, data, preset_for(params, dataset)


@dataclass
class SeedModels:
    """The shared models of one seed: g's checkpoint and the warm checkpoints of f."""

    seed: int
    g_seed: int
    g_path: Path
    warm: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)
    g2_path: Path | None = None   # M2m-Ensemble's second classifier (the ERM run of the seed), once trained


def train_seed_models(data: PreparedData, preset: Preset, *, seed: int, g_seed: int, work_dir: str | Path,
                      warm_losses: tuple[str, ...] = ("ce", "ldam"), need_g: bool = True,
                      progress: bool = False) -> SeedModels:
    """Train g (seed ``g_seed``, the full schedule; skipped when ``need_g`` is False) and f's warm
    phase for each loss of ``warm_losses`` (seed ``seed``) under ``work_dir``."""
    work_dir = Path(work_dir)
    seconds: dict[str, float] = {}
    g_path = work_dir / "g" / "best.pt"   # g at its best validation epoch, as the authors' release ships it
    if need_g:
        t = time.perf_counter()
        pretrain_g(data, preset, seed=g_seed, out_dir=work_dir / "g", progress=progress)
        seconds["g"] = time.perf_counter() - t
    warm: dict[str, Path] = {}
    for loss in warm_losses:
        t = time.perf_counter()
        warm_f(data, preset, seed=seed, out_dir=work_dir / f"warm-{loss}", loss=loss, progress=progress)
        warm[loss] = work_dir / f"warm-{loss}"
        seconds[f"warm-{loss}"] = time.perf_counter() - t
    return SeedModels(seed, g_seed, g_path, warm, seconds)


def warm_losses_for(methods: list[str]) -> tuple[str, ...]:
    """The warm checkpoints the methods need ("ce", "ldam"), in that order."""
    needed = {get_method(m).warm for m in methods} - {None}
    return tuple(loss for loss in ("ce", "ldam") if loss in needed)


def run_method(data: PreparedData, preset: Preset, models: SeedModels, method: str, *, out_dir: str | Path,
               m2m: TranslationConfig | None = None, options: FitOptions | None = None,
               keep_pools: bool = False, progress: bool = False, reused_pools: str | Path | None = None,
               method_params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train ``method`` for the seed of ``models`` into ``out_dir`` and evaluate it.

    Returns {"metrics": evaluate_run's dict plus "seed", "history": per-epoch records,
    "seconds": wall time of training}. A translating method writes its pools to
    ``out_dir/pools``, deleted afterwards unless ``keep_pools`` (Reuters: about 20 MB an epoch);
    an ablation that reuses pools reads ``reused_pools`` (the M2m run's ``out_dir/pools``).
    """
    spec = get_method(method)
    out_dir = Path(out_dir)
    pools = out_dir / "pools"
    t = time.perf_counter()
    result = train_method(data, preset, method=method, seed=models.seed, out_dir=out_dir,
                          warm_dir=models.warm[spec.warm] if spec.warm else None, g_path=models.g_path,
                          g2_path=models.g2_path, m2m=m2m, pools_dir=pools, reused_pools=reused_pools,
                          method_params=method_params, options=options, progress=progress)
    seconds = time.perf_counter() - t
    if spec.translate and not keep_pools:
        shutil.rmtree(pools, ignore_errors=True)
    metrics = evaluate_run(out_dir, data, method=method)
    metrics["seed"] = models.seed
    return {"metrics": metrics, "history": result.history, "seconds": seconds}


def deferred_val_scores(history: list[dict[str, Any]], deferred_epoch: int) -> dict[str, float]:
    """Validation bACC over the epochs from ``deferred_epoch`` on (the only epochs where runs that
    share a warm checkpoint differ): their best, last and mean."""
    vals = [float(h["val_bacc"]) for h in history if int(h["epoch"]) >= deferred_epoch]
    if not vals:
        return {"best": float("nan"), "last": float("nan"), "mean": float("nan")}
    return {"best": max(vals), "last": vals[-1], "mean": sum(vals) / len(vals)}


__all__ = ["SeedModels", "load_experiment", "deferred_val_scores", "run_method", "train_seed_models", "warm_losses_for"]
