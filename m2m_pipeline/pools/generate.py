"""Generate one epoch's pool: plan -> per-slot draws -> translation -> sharded zarr rows.

The shards are translated by a translation backend (pools/backends.py: this process, or
dask.distributed) running the shard task (pools/shard.py); this module plans the pool, resumes a
half-built one, and writes the attributes that make it complete.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from torch import nn

from .. import __version__
from ..acceptance import REASONS, range_bound
from ..datasets import PreparedData
from ..plan import EpochPlan
from ..store import PoolWriter, open_pool
from ..translate import M2mTranslator
from ..utils import M2mError, state_hash
from .backends import InProcessBackend, TranslationBackend
from .codec import encode_rows
from .config import TranslationConfig
from .draws import draw_slots
from .shard import ShardJob, reason_counts


def data_max_abs(data: PreparedData) -> float:
    """The largest absolute input value of the data: its clamp range's, or for unbounded inputs
    (embeddings) the training split's; the out_of_range test scales it (acceptance.range_bound)."""
    if data.input_range is not None:
        return float(max(abs(data.input_range[0]), abs(data.input_range[1])))
    x = data.train.x
    return float(np.nanmax(np.abs(x))) if x.size else 1.0


def make_translator(cfg: TranslationConfig, input_range: tuple[float, float] | None, *,
                    data_max_abs: float | None = None) -> M2mTranslator:
    """The translator of ``cfg``; a bad parameter is an M2mError that names it. Rows of x* beyond
    ``range_bound(data_max_abs)`` (default: from ``input_range``; no test when both are None) are
    rejected as ``out_of_range``."""
    if data_max_abs is None and input_range is not None:
        data_max_abs = max(abs(input_range[0]), abs(input_range[1]))
    t = M2mTranslator(steps=cfg.steps, step_size=cfg.step_size, lam=cfg.lam, gamma=cfg.gamma,
                      gamma_on=cfg.gamma_on, beta=cfg.beta, input_range=input_range,
                      max_abs=None if data_max_abs is None else range_bound(data_max_abs))
    try:
        t.check_params()
    except ValueError as exc:
        raise M2mError(f"m2m parameters: {exc}") from None
    return t


@dataclass
class PoolSummary:
    path: Path
    n_slots: int
    n_attempts: int
    n_accepted: int
    reasons: dict[str, int] = field(default_factory=dict)
    # generate_pool(keep_accepted=True): the accepted rows as training takes them (reuse.EpochSwaps,
    # x* decoded from the stored bytes), when every shard was committed by this process; else None
    swaps: Any = field(default=None, repr=False, compare=False)
    attrs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)   # the pool's attributes, as sealed

    @property
    def accept_rate(self) -> float:
        return self.n_accepted / self.n_attempts if self.n_attempts else float("nan")


def pool_attrs(*, data: PreparedData, plan: EpochPlan, cfg: TranslationConfig, seed: int, g_hash: str,
               f_hash: str, counts: dict[str, int], n_attempts: int) -> dict[str, Any]:
    """The provenance and summary attributes every pool carries (docs/design.md, pool schema)."""
    return {
        "dataset": data.name,
        "dataset_fingerprint": data.fingerprint,
        "class_counts": [int(c) for c in data.class_counts],
        "g_hash": g_hash,
        "f_hash": f_hash,
        "epoch": int(plan.epoch),
        "seed": int(seed),
        "params": asdict(cfg),
        "train_batch_size": int(plan.batch_size),
        "reason_codes": {name: code for name, code in REASONS.items()},
        "summary": {"n_slots": len(plan), "n_attempts": int(n_attempts), "n_accepted": counts["accepted"],
                    "reasons": counts},
        "package_version": __version__,
        "store": cfg.store,   # params.yaml pools.store: whose x* the pool keeps (all, or accepted rows only)
    }


def write_pool(out: str | Path, *, data: PreparedData, plan: EpochPlan, cfg: TranslationConfig, seed: int,
               rows: dict[str, np.ndarray], g_hash: str, f_hash: str,
               provenance: dict[str, Any] | None = None) -> PoolSummary:
    """Write rows translated elsewhere (M2m-Online translates them batch by batch during training)
    as one epoch's pool, with the same layout and attributes as :func:`generate_pool`."""
    n = len(rows["slot"])
    counts = reason_counts(rows["reason"])
    with PoolWriter(out, n_rows=n, input_shape=data.input_shape, input_kind=data.input_kind,
                    rows_per_shard=cfg.rows_per_shard,
                    class_names=data.class_names) as writer:
        writer.write_plan(plan.order, plan.attempt, plan.aug)
        writer.write_rows(0, encode_rows(rows, data, cfg.store))   # x* stored compactly (pools/codec.py)
        attrs = pool_attrs(data=data, plan=plan, cfg=cfg, seed=seed, g_hash=g_hash, f_hash=f_hash, counts=counts,
                           n_attempts=n)
        attrs.update(provenance or {})
        writer.finish(attrs)
    return PoolSummary(Path(out), len(plan), n, counts["accepted"], counts)


def _job_key(*, data: PreparedData, plan: EpochPlan, cfg: TranslationConfig, seed: int, g_hash: str, f_hash: str,
             allowed_seeds: np.ndarray | None, provenance: dict[str, Any] | None) -> dict[str, Any]:
    """What a pool's rows are a function of: a re-run with the same key may keep committed shards."""
    h = hashlib.sha256()
    for arr in (plan.order, plan.attempt, plan.aug) + (() if allowed_seeds is None else (allowed_seeds,)):
        h.update(np.ascontiguousarray(arr).tobytes())
    return json.loads(json.dumps({
        "dataset_fingerprint": data.fingerprint, "g_hash": g_hash, "f_hash": f_hash, "epoch": int(plan.epoch),
        "seed": int(seed), "params": asdict(cfg), "train_batch_size": int(plan.batch_size),
        "plan_sha256": h.hexdigest(), "allowed_seeds": allowed_seeds is not None,
        "provenance": provenance or {}, "package_version": __version__}, default=str))


def _finished_pool(out: Path, job_hash: str) -> PoolSummary | None:
    """The summary of a complete pool at ``out`` made by the same job, else None."""
    if not (out / "zarr.json").is_file():
        return None
    try:
        attrs = open_pool(out).attrs
    except M2mError:
        return None
    if attrs.get("job_hash") != job_hash:
        return None
    s = attrs["summary"]
    return PoolSummary(out, int(s["n_slots"]), int(s["n_attempts"]), int(s["n_accepted"]), dict(s["reasons"]),
                       attrs=attrs)


def generate_pool(*, g: nn.Module, f: nn.Module, data: PreparedData, plan: EpochPlan, cfg: TranslationConfig,
                  seed: int, out: str | Path, provenance: dict[str, Any] | None = None,
                  progress: Callable[[int], None] | None = None,
                  allowed_seeds: np.ndarray | None = None, backend: TranslationBackend | None = None,
                  model_configs: tuple[dict[str, Any], dict[str, Any]] | None = None,
                  keep_accepted: bool = False) -> PoolSummary:
    """Translate every attempt slot of ``plan`` with g and the f snapshot, and write the pool.

    One shard per translation task of ``cfg.rows_per_shard`` rows (rounded down to whole
    256-row chunks). ``progress`` is called with the number of rows done after each task.
    Non-finite results are never accepted (reason ``non_finite``); when their share exceeds
    ``cfg.max_non_finite`` (default 0) the pool is not written and M2mError names it.

    Resumable: shards are committed one by one, so a run killed at any point and started again
    with the same arguments translates only the missing shards and ends byte-identical to an
    uninterrupted run; a complete pool of the same job is returned as is.

    ``backend`` translates the shards (pools/backends.py; default: this process). A distributed
    one (dask) needs ``model_configs`` (g's and f's checkpoint ``config``): the models travel as
    weights. The pool does not depend on the backend, nor on how many workers it has.
    """
    translator = make_translator(cfg, data.input_range, data_max_abs=data_max_abs(data))
    draws = draw_slots(data, plan, cfg, seed, allowed_seeds)
    n = len(draws.slot)
    out = Path(out)
    g_hash, f_hash = state_hash(g.state_dict()), state_hash(f.state_dict())
    job = _job_key(data=data, plan=plan, cfg=cfg, seed=seed, g_hash=g_hash, f_hash=f_hash,
                   allowed_seeds=allowed_seeds, provenance=provenance)
    job_hash = hashlib.sha256(json.dumps(job, sort_keys=True).encode()).hexdigest()[:16]
    done = _finished_pool(out, job_hash)
    if done is not None:
        if progress is not None:
            progress(n)
        return done
    backend = backend if backend is not None else InProcessBackend()
    if backend.distributed and model_configs is None:
        raise M2mError("translation on dask workers needs the models' configs (model_configs=(g's, f's) "
                       "checkpoint 'config'): workers rebuild g and f from weights, not live modules")
    with PoolWriter(out, n_rows=n, input_shape=data.input_shape, input_kind=data.input_kind,
                    rows_per_shard=cfg.rows_per_shard,
                    job=job, class_names=data.class_names) as writer:
        writer.write_plan(plan.order, plan.attempt, plan.aug)
        records = writer.done_shards()
        counts = {name: 0 for name in REASONS}
        for record in records.values():
            for name, c in record["reasons"].items():
                counts[name] += int(c)
        if progress is not None and records:
            progress(sum(int(r["rows"]) for r in records.values()))
        todo = [i for i in range(writer.n_shards) if i not in records]
        job = ShardJob(data=data, draws=draws, translator=translator, cfg=cfg, seed=seed, epoch=plan.epoch,
                       work=writer.work, shard_rows=writer.shard_rows, kept={} if keep_accepted else None)
        results = backend.translate_shards(job, g=g, f=f, shards=todo, model_configs=model_configs,
                                           progress=progress)
        for shard_counts in results:
            for name, c in shard_counts.items():
                counts[name] += int(c)
        if n and counts["non_finite"] > cfg.max_non_finite * n:
            # Leaving the writer with an error removes the half-built pool.
            raise M2mError(f"translation for pool {out} produced non-finite values in {counts['non_finite']} of "
                           f"{n} attempts; g or f gives NaN/inf (check the checkpoints) or step_size is too "
                           f"large (m2m.max_non_finite tolerates a share)")
        attrs = pool_attrs(data=data, plan=plan, cfg=cfg, seed=seed, g_hash=g_hash, f_hash=f_hash, counts=counts,
                           n_attempts=n)
        attrs.update(provenance or {})
        attrs["job_hash"] = job_hash
        writer.finish(attrs)
    swaps = None
    if keep_accepted and job.kept is not None and len(job.kept) == writer.n_shards and not records:
        from .reuse import EpochSwaps

        parts = [job.kept[i] for i in range(writer.n_shards)]   # shards hold rows in slot order
        swaps = EpochSwaps(*(np.concatenate([p[k] for p in parts]) if parts else empty
                             for k, empty in enumerate((np.zeros(0, np.int64),
                                                        np.zeros((0, *data.input_shape), np.float32),
                                                        np.zeros(0, np.int64)))))
    return PoolSummary(out, len(plan), n, counts["accepted"], counts, swaps, attrs)


__all__ = ["PoolSummary", "data_max_abs", "generate_pool", "make_translator", "pool_attrs", "write_pool"]
