"""Training f with an ablation that re-decides another run's pools (M2m-Clean, M2m-Rand,
M2m-No-Reject, M2m-No-Gamma, M2m-Gamma): the same warm start, plan and draws as the reused run,
only the rule over the stored rows differs. Nothing here imports the translation code."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ..datasets import PreparedData
from ..params import check_ablation_params
from ..pools.sources.reused import ReusedPools
from ..training import FitOptions, FitResult, Preset, fit, get_method, write_history
from ..utils import M2mError, output_lock, set_torch_threads, user_os_errors
from .data import load_prepared
from .train import check_run_dir, f_params, start_for


def train_ablation(data: PreparedData, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
                   reused_pools: str | Path, warm_dir: str | Path, method_params: Mapping[str, Any] | None = None,
                   options: FitOptions | None = None, device: torch.device | None = None,
                   progress: bool = True) -> FitResult:
    """Train f from the seed's warm checkpoint on the pools of the run the ablation reuses
    (``reused_pools``: e.g. pools/<dataset>/M2m-seed<s>), re-deciding every epoch's rows with the
    ablation's rule. Each pool must come from that run with this seed and this warm checkpoint
    (else a one-line error names the mismatch)."""
    spec = get_method(method)
    if spec.reuse is None:
        raise M2mError(f"{method} does not reuse pools; train it with train-f")
    method_params = check_ablation_params(method, method_params)
    params = f_params(spec, options=options, extra={"ablation_mode": "reuse", "rule": spec.pool_rule,
                                                    "rule_params": dict(method_params or {}),
                                                    "reused_pools": str(reused_pools)})
    check_run_dir(out_dir)
    with output_lock(out_dir):
        start, resume, warm_hash = start_for(spec, data=data, preset=preset, seed=seed, out_dir=out_dir,
                                             warm_dir=warm_dir, params=params)
        source = ReusedPools(reused_pools, data, rule=spec.pool_rule, seed=seed, rule_params=method_params,
                             expected={"run": spec.reuse, "warm_hash": warm_hash}, method=method)
        # every epoch's pool checked before fit() makes the run folder: a refusal writes nothing
        source.check_ready(int(start["epoch"]) if start is not None else 0, preset.epochs)
        return fit(data=data, preset=preset, method=spec, seed=seed, run_dir=out_dir, end_epoch=preset.epochs,
                   start=start, resume=resume, swaps=source, options=options, params=params, device=device,
                   progress=progress)


def run_ablation(prepared: str | Path, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
                 reused_pools: str | Path, warm_dir: str | Path, method_params: Mapping[str, Any] | None = None,
                 options: FitOptions | None = None, history: str | Path | None = None,
                 progress: bool = True) -> FitResult:
    set_torch_threads()
    with user_os_errors():
        result = train_ablation(load_prepared(prepared), preset, method=method, seed=seed, out_dir=out_dir,
                                reused_pools=reused_pools, warm_dir=warm_dir, method_params=method_params,
                                options=options, progress=progress)
        if history:
            write_history(history, result.history)
    return result


__all__ = ["run_ablation", "train_ablation"]
