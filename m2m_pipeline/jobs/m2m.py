"""Training f with a translating method: M2m, LDAM-M2m, the ablations that need pools of their
own (M2m-Lambda0, M2m-Self, M2m-Ensemble, M2m-Seeds<n>, M2m-RS, M2m-RS-Rand, M2m-Online), and the
re-deciding ablations in mode ``fresh`` (M2m-Clean, M2m-Rand, M2m-No-Reject, ... translated with
their own f, then their rule: ``train_m2m(..., mode="fresh")``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import torch

from ..datasets import PreparedData
from ..models.ensemble import MeanSoftmax
from ..params import check_ablation_params
from ..pools.config import TranslationConfig
from ..pools.draws import seed_subset_mask
from ..pools.backends import InProcessBackend, TranslationBackend
from ..pools.sources.online import OnlinePools
from ..pools.sources.translated import TranslatedPools
from ..training import FitOptions, FitResult, Preset, fit, get_method, load_checkpoint, model_from_checkpoint
from ..training import write_history
from ..utils import M2mError, default_device, output_lock, set_torch_threads, user_os_errors
from .data import load_prepared
from .train import check_run_dir, f_params, start_for

# M2m-Ensemble uses "a higher gamma due to the smoothed prediction from the ensemble" (Appendix B).
# That gamma is Algorithm 1's loss threshold (reject when L(g; x*, k) > gamma), so "higher" is more
# lenient: the averaged softmax is less peaked. Its default, when ablation_params does not set one,
# doubles the loss threshold of the run's own gamma: gamma_on "loss": 2 * gamma; gamma_on "prob"
# (keep p >= gamma, i.e. -log p <= -log gamma): -log p <= 2 * (-log gamma), i.e. p >= gamma ** 2
# (0.9 -> 0.81, 0.99 -> 0.9801). docs/design.md, "M2m-Ensemble's gamma".
ENSEMBLE_LOSS_FACTOR = 2.0


def ensemble_gamma(gamma: float, gamma_on: str) -> float:
    """M2m-Ensemble's default gamma from the run's: the loss threshold times ENSEMBLE_LOSS_FACTOR."""
    if gamma_on == "loss":
        return float(gamma) * ENSEMBLE_LOSS_FACTOR
    return float(gamma) ** ENSEMBLE_LOSS_FACTOR


def method_config(method: str, m2m: TranslationConfig, method_params: Mapping[str, Any] | None = None) -> TranslationConfig:
    """The translation parameters of ``method``: params.yaml's (with the dataset preset's
    overrides), then what the method fixes (M2m-Lambda0: lam = 0), then ``method_params``
    (params.yaml ``ablation_params.<method>``, e.g. M2m-Ensemble's gamma)."""
    spec = get_method(method)
    overrides = dict(spec.m2m_overrides)
    if spec.generator == "ensemble":
        overrides.setdefault("gamma", ensemble_gamma(m2m.gamma, m2m.gamma_on))
    if spec.seed_subset:
        # Table 3 varies only the seeds' diversity: k0 ~ Q(.|k), then a uniform seed within k0's fixed
        # subset (Algorithm 1's draw), so every attempt has a seed. Under the batch scope a small
        # subset would leave most attempts without a seed in the mini-batch (no_seed).
        overrides.setdefault("seed_scope", "dataset")
    extra = check_ablation_params(method, method_params) if spec.is_ablation else dict(method_params or {})
    unknown = sorted(set(extra) - set(TranslationConfig.__dataclass_fields__))
    if unknown:
        raise M2mError(f"ablation_params.{method}: unknown translation parameter(s) {unknown}")
    overrides.update(extra)
    return dataclasses.replace(m2m, **overrides) if overrides else m2m


def load_generator(spec_generator: str, *, g_path: str | Path | None, g2_path: str | Path | None,
                   data: PreparedData, device: torch.device) -> torch.nn.Module | None:
    """The classifier that translates: g; None for M2m-Self (f itself); the mean softmax of g and a
    second ERM classifier of another seed (M2m-Ensemble: the ERM f of the seed)."""
    if spec_generator == "self":
        return None
    if g_path is None:
        raise M2mError("this method translates with g: pass the pretrain_g checkpoint")
    g = model_from_checkpoint(load_checkpoint(g_path, data=data), device)
    if spec_generator == "ensemble":
        if g2_path is None:
            raise M2mError("M2m-Ensemble needs a second ERM classifier: pass the ERM run's checkpoint (--g2)")
        g = MeanSoftmax([g, model_from_checkpoint(load_checkpoint(g2_path, data=data), device)])
    for p in g.parameters():
        p.requires_grad_(False)
    return g.to(device)


def train_m2m(data: PreparedData, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
              pools_dir: str | Path, m2m: TranslationConfig, g_path: str | Path | None = None,
              g2_path: str | Path | None = None, warm_dir: str | Path | None = None,
              method_params: Mapping[str, Any] | None = None, options: FitOptions | None = None,
              backend: TranslationBackend | None = None, mode: str | None = None,
              device: torch.device | None = None, progress: bool = True) -> FitResult:
    """Train f with a translating method to the end of the schedule; its pools go to
    ``pools_dir/epoch_<e>``. An interrupted run in ``out_dir`` resumes from its last epoch.

    ``mode="fresh"`` trains a re-deciding ablation (M2m-Clean, M2m-Rand, M2m-No-Reject, ...) by
    its paper definition: translated each epoch with its own f and M2m's translation parameters,
    then its rule (with ``method_params`` as the rule's, e.g. M2m-Gamma's gamma) over those rows.

    ``backend`` translates each epoch's pool shard by shard (pools/backends.py, built from params
    ``translate`` by ``create_backend``; default: this process); a dask one serves the whole run.
    The pools, and so the run, do not depend on it."""
    spec = get_method(method, mode)
    if not spec.translate:
        raise M2mError(f"{method} does not translate; train it with train-f (or the ablation job)")
    if spec.fresh:   # M2m's translation, the ablation's rule: method_params are the rule's parameters
        rule_params, cfg = check_ablation_params(method, method_params), m2m
    else:
        rule_params, cfg = {}, method_config(method, m2m, method_params)
    # g must sit on the device fit() puts f on, or translation mixes devices on a GPU machine
    device = device or default_device()
    g = load_generator(spec.generator, g_path=g_path, g2_path=g2_path, data=data, device=device)
    allowed = (seed_subset_mask(data.train.y, data.num_classes, spec.seed_subset, seed)
               if spec.seed_subset else None)
    extra: dict[str, Any] = {"m2m": dataclasses.asdict(cfg)}
    if spec.fresh:
        extra.update(ablation_mode="fresh", rule=spec.pool_rule, rule_params=dict(rule_params))
    params = f_params(spec, options=options, extra=extra)
    check_run_dir(out_dir)
    # the run folder and its pools folder: a second run writing the same pools (another --out, the
    # same --pools) is refused naming the holder, instead of both rewriting one epoch's partial pool
    with output_lock(out_dir), output_lock(pools_dir):
        start, resume, warm_hash = start_for(spec, data=data, preset=preset, seed=seed, out_dir=out_dir,
                                             warm_dir=warm_dir, params=params)
        # Every pool names the run and the warm start it came from: the ablations that reuse the
        # pools check both before re-deciding the rows.
        provenance = {"run": method, "warm_hash": warm_hash}
        backend = backend if backend is not None else InProcessBackend()
        if backend.distributed and (spec.online or cfg.refresh_batches or spec.generator != "g"):
            raise M2mError(f"{method}: translation on dask workers needs whole-epoch pools translated by g "
                           f"(not online, not m2m.refresh_batches, not M2m-Self/M2m-Ensemble); unset translate.workers "
                           f"and translate.scheduler for it")
        if spec.online or cfg.refresh_batches:
            if spec.pool_rule != "accepted" or spec.generator == "self" or spec.seed_subset:
                raise M2mError(f"{method}: m2m.refresh_batches (sub-epoch translation) supports M2m's own "
                               f"rule with g; set it to 0 for this method")
            source = OnlinePools(g=g, data=data, cfg=cfg, seed=seed, pools_dir=pools_dir,
                                 batch_size=preset.batch_size, provenance=provenance,
                                 refresh_batches=1 if spec.online else cfg.refresh_batches)
        else:
            source = TranslatedPools(g=g, data=data, cfg=cfg, seed=seed, pools_dir=pools_dir,
                                     batch_size=preset.batch_size, rule=spec.pool_rule, rule_params=rule_params,
                                     allowed_seeds=allowed,
                                     provenance={**provenance, "seed_subset": spec.seed_subset},
                                     progress=progress, backend=backend)
            if backend.distributed:
                from ..training.checkpoint import model_config

                # workers rebuild g and each epoch's f from weights + configs
                source.model_configs = (load_checkpoint(g_path, data=data)["config"],
                                        model_config(data, preset.model, preset.model_args, spec.norm_last))
        with backend:   # one cluster (a distributed backend's) for the whole run
            return fit(data=data, preset=preset, method=spec, seed=seed, run_dir=out_dir, end_epoch=preset.epochs,
                       start=start, resume=resume, swaps=source, options=options, params=params, device=device,
                       progress=progress)


def run_train_m2m(prepared: str | Path, preset: Preset, *, method: str, seed: int, out_dir: str | Path,
                  pools_dir: str | Path, m2m: TranslationConfig, g_path: str | Path | None = None,
                  g2_path: str | Path | None = None, warm_dir: str | Path | None = None,
                  method_params: Mapping[str, Any] | None = None, options: FitOptions | None = None,
                  backend: TranslationBackend | None = None, mode: str | None = None,
                  history: str | Path | None = None, progress: bool = True) -> FitResult:
    set_torch_threads()
    with user_os_errors():
        result = train_m2m(load_prepared(prepared), preset, method=method, seed=seed, out_dir=out_dir,
                           pools_dir=pools_dir, m2m=m2m, g_path=g_path, g2_path=g2_path, warm_dir=warm_dir,
                           method_params=method_params, options=options, backend=backend, mode=mode,
                           progress=progress)
        if history:
            write_history(history, result.history)
    return result


__all__ = ["ENSEMBLE_LOSS_FACTOR", "ensemble_gamma", "load_generator", "method_config", "run_train_m2m", "train_m2m"]
