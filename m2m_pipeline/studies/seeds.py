"""Building blocks of the in-process multi-seed studies (hyper-parameter grid, reproduction and the
other benchmarks/): the DAG's jobs called in one process on data built in memory, not DVC stages.

Per seed s: g is trained once (plain ERM, seed ``g_seed``), f's warm phase once per loss ("ce" and
"ldam", Sec. 3.1: deferred methods start after ``deferred_epoch`` epochs of standard training),
and every method continues from the warm checkpoint of its loss (methods.py ``warm``), so the
deferred methods of a seed share their first ``deferred_epoch`` epochs exactly.

Every folder is the DAG's (``layout.Layout`` under a study's work folder): g in
``<work>/runs/<slug>/g-seed<s>``, the warm phases in ``warm-<loss>-seed<s>``, a method's run in
``<name>-seed<s>`` and its pools in ``<work>/pools/<slug>/<name>-seed<s>``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..datasets import PreparedData
from ..evaluation import evaluate_run
from ..jobs.dispatch import method_inputs, train_method
from ..jobs.train import pretrain_g, warm_f
from ..layout import Layout
from ..pools.config import TranslationConfig
from ..training import FitOptions, Preset, get_method


def load_experiment(dataset: str, *, params_path: str | Path = "params.yaml",
                    data_root: str | Path | None = None) -> tuple[dict[str, Any], PreparedData, Preset]:
    """(params, data, preset) of a benchmark on ``dataset``: params.yaml validated, the dataset's
    recipe run with its ``prepare`` options (``data_root`` or params ``data_root``), its preset."""
    from ..datasets import create_dataset
    from ..params import load_params, prepare_options, preset_for

    params = load_params(params_path)
    data = create_dataset(dataset, data_root=data_root or params.get("data_root"),
                          **prepare_options(params, dataset))
    return params, data, preset_for(params, dataset, prepared=data)


@dataclass
class SeedModels:
    """The shared models of one seed, in ``layout``: g's checkpoint and the warm runs of f."""

    seed: int
    g_seed: int
    layout: Layout
    warm: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def g_path(self) -> Path:
        """g at its best validation epoch, as the authors' release ships it."""
        return self.layout.g_checkpoint(self.seed)


def train_seed_models(data: PreparedData, preset: Preset, *, seed: int, g_seed: int, layout: Layout,
                      warm_losses: tuple[str, ...] = ("ce", "ldam"), need_g: bool = True,
                      options: FitOptions | None = None, progress: bool = False) -> SeedModels:
    """Train g (seed ``g_seed``, the full schedule; skipped when ``need_g`` is False) and f's warm
    phase for each loss of ``warm_losses`` (seed ``seed``) into ``layout``'s run folders."""
    seconds: dict[str, float] = {}
    if need_g:
        t = time.perf_counter()
        pretrain_g(data, preset, seed=g_seed, out_dir=layout.g(seed), progress=progress)
        seconds["g"] = time.perf_counter() - t
    warm: dict[str, Path] = {}
    for loss in warm_losses:
        t = time.perf_counter()
        warm_f(data, preset, seed=seed, out_dir=layout.warm(loss, seed), loss=loss, options=options,
               progress=progress)
        warm[loss] = layout.warm(loss, seed)
        seconds[f"warm-{loss}"] = time.perf_counter() - t
    return SeedModels(seed, g_seed, layout, warm, seconds)


def warm_losses_for(methods: list[str]) -> tuple[str, ...]:
    """The warm checkpoints the methods need ("ce", "ldam", "la" for LA-M2m), in that order."""
    needed = {get_method(m).warm for m in methods} - {None}
    return tuple(loss for loss in ("ce", "ldam", "la") if loss in needed)


def run_method(data: PreparedData, preset: Preset, models: SeedModels, method: str, *, name: str | None = None,
               m2m: TranslationConfig | None = None, options: FitOptions | None = None,
               keep_pools: bool = False, progress: bool = False, reused_pools: str | Path | None = None,
               method_params: dict[str, Any] | None = None, mode: str | None = None) -> dict[str, Any]:
    """Train ``method`` for the seed of ``models`` and evaluate it.

    The run is ``models.layout.run(name, seed)`` (``name``: the method's, or another to keep
    several runs of one method apart, e.g. a grid point). Returns {"metrics": evaluate_run's dict
    plus "seed", "history": per-epoch records, "seconds": wall time of training, "run_dir"}. A
    translating method writes its pools to ``layout.pools(name, seed)``, deleted afterwards unless
    ``keep_pools`` (Reuters: about 20 MB an epoch); an ablation that reuses pools reads
    ``reused_pools`` (default: the layout's pools of the run it re-decides, M2m of the seed);
    M2m-Ensemble's second classifier is the seed's ERM run in the layout. ``mode`` ("reuse" |
    "fresh"): how a re-deciding ablation gets its rows (MethodSpec.in_mode; give ``name`` to keep
    both modes' runs apart).
    """
    spec = get_method(method, mode)
    name = name or method
    layout = models.layout
    out_dir, pools = layout.run(name, models.seed), layout.pools(name, models.seed)
    inputs = method_inputs(layout, method, models.seed, mode)
    t = time.perf_counter()
    result = train_method(data, preset, method=method, seed=models.seed, out_dir=out_dir,
                          warm_dir=models.warm[spec.warm] if spec.warm else None, g_path=models.g_path,
                          g2_path=inputs["g2_path"], m2m=m2m, pools_dir=pools,
                          reused_pools=reused_pools if reused_pools is not None else inputs["reused_pools"],
                          method_params=method_params, options=options, mode=mode, progress=progress)
    seconds = time.perf_counter() - t
    if spec.translate and not keep_pools:
        shutil.rmtree(pools, ignore_errors=True)
    metrics = evaluate_run(out_dir, data, method=method)
    metrics["seed"] = models.seed
    return {"metrics": metrics, "history": result.history, "seconds": seconds, "run_dir": out_dir}


def deferred_val_scores(history: list[dict[str, Any]], deferred_epoch: int) -> dict[str, float]:
    """Validation bACC over the epochs from ``deferred_epoch`` on (the only epochs where runs that
    share a warm checkpoint differ): their best, last and mean."""
    vals = [float(h["val_bacc"]) for h in history if int(h["epoch"]) >= deferred_epoch]
    if not vals:
        return {"best": float("nan"), "last": float("nan"), "mean": float("nan")}
    return {"best": max(vals), "last": vals[-1], "mean": sum(vals) / len(vals)}


__all__ = ["SeedModels", "load_experiment", "deferred_val_scores", "run_method", "train_seed_models", "warm_losses_for"]
