"""Any registered method by name: :func:`train_method` picks the job that trains it (a baseline,
a translating method or an ablation that re-decides another run's pools), for the CLI's
``train-f`` and the in-process studies; :func:`method_inputs` names, in the DAG's layout, the runs
and pools a method starts from; :func:`translation_backend` builds where translation runs from
params. (The DVC stages import each job from its own module, so a stage depends only on the code
it runs.)

Each job reads its inputs from paths, takes typed parameters, and writes its outputs; none of
them reads params.yaml (that is the callers' business).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..datasets import PreparedData
from ..layout import BEST_CHECKPOINT, Layout
from ..pools.backends import TranslationBackend, create_backend
from ..pools.config import TranslationConfig
from ..training import FitOptions, FitResult, Preset, get_method, write_history
from ..utils import M2mError, set_torch_threads, user_os_errors
from .ablate import train_ablation
from .data import load_prepared
from .m2m import train_m2m
from .train import train_f


def train_method(data: PreparedData, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
                 warm_dir: str | Path | None = None, g_path: str | Path | None = None,
                 g2_path: str | Path | None = None, m2m: TranslationConfig | None = None,
                 pools_dir: str | Path | None = None, reused_pools: str | Path | None = None,
                 method_params: Mapping[str, Any] | None = None, options: FitOptions | None = None,
                 backend: TranslationBackend | None = None, mode: str | None = None, device=None,
                 progress: bool = True) -> FitResult:
    """Train f with any registered method: a baseline (``jobs.train``), a translating method writing
    its pools under ``pools_dir`` (``jobs.m2m``) or an ablation re-deciding another run's pools
    ``reused_pools`` (``jobs.ablate``). ``mode`` ("reuse" | "fresh") picks how a re-deciding ablation
    gets its rows; "fresh" trains it as a translating run (MethodSpec.in_mode). Arguments a method
    does not use are ignored."""
    spec = get_method(method, mode)
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
                         options=options, backend=backend, mode=mode if spec.fresh else None, device=device,
                         progress=progress)
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


def method_inputs(layout: Layout, method: str, seed: int, mode: str | None = None) -> dict[str, Path | None]:
    """Where ``method``'s run of ``seed`` starts from, in the DAG's layout: ``warm_dir`` (the warm
    phase of its loss, ``warm-ce`` for a method with none), ``g_path`` (g at its best epoch),
    ``g2_path`` (M2m-Ensemble's second classifier: the seed's ERM run) and ``reused_pools`` (the
    pools of the run an ablation re-decides, else None; None in mode "fresh")."""
    spec = get_method(method, mode)
    return {"warm_dir": layout.warm(spec.warm or "ce", seed), "g_path": layout.g_checkpoint(seed),
            "g2_path": layout.run("ERM", seed) / BEST_CHECKPOINT,
            "reused_pools": layout.pools(spec.reuse, seed) if spec.reuse else None}


def resolve_mode(params: Mapping[str, Any], method: str, mode: str | None = None) -> str | None:
    """The mode ``method`` trains in: ``mode`` when given, else, for an ablation that re-decides
    rows, the one params' ``ablations`` section gives it ("reuse" when it names none), else None.
    An unknown mode, or a mode for a method without modes, is an M2mError naming it."""
    from ..params import ablation_modes

    if mode is None and get_method(method).redecides:
        mode = ablation_modes(params).get(method, "reuse")
    get_method(method, mode)
    return mode


def translation_backend(params: Mapping[str, Any], *, workers: int | None = None,
                        scheduler: str | None = None) -> TranslationBackend:
    """Where translation runs, built once from params ``translate`` with ``--workers`` /
    ``--scheduler`` over it (``pools.backends.create_backend``; a bad value fails here)."""
    return create_backend(params.get("translate"), workers=workers, scheduler=scheduler)


__all__ = ["method_inputs", "resolve_mode", "run_any_train", "train_method", "translation_backend"]
