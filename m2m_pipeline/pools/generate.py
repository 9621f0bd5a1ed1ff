"""Generate one epoch's pool: plan -> per-slot draws -> translation -> sharded zarr rows."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..acceptance import REASON_NAMES, REASONS, range_bound
from ..datasets import PreparedData
from ..plan import EpochPlan, make_plan
from ..store import PoolWriter, open_pool, write_pool_shard
from ..translate import M2mTranslator
from ..utils import M2mError, progress_bar, state_hash
from .codec import encode_rows
from .config import TranslationConfig
from .draws import SlotDraws, draw_slots, seed_inputs, start_noise_batch
from .reuse import StoredSwaps, read_swaps
from .rules import check_rule


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


def translate_rows(g: nn.Module, f: nn.Module, data: PreparedData, draws: SlotDraws, rows: slice,
                   translator: M2mTranslator, cfg: TranslationConfig, seed: int, epoch: int) -> dict[str, np.ndarray]:
    """Translate attempt rows ``rows`` of ``draws`` in batches of ``cfg.batch_size``; the pool rows."""
    idx = np.arange(len(draws.slot))[rows]
    n = len(idx)
    out = {
        "slot": draws.slot[idx], "target": draws.target[idx].astype(np.int32),
        "seed_class": draws.seed_class[idx].astype(np.int32), "seed_index": draws.seed_index[idx],
        "seed_aug": draws.seed_aug[idx], "u_beta": draws.u_beta[idx],
        "x": np.zeros((n, *data.input_shape), dtype=np.float32),
        "loss_g": np.full(n, np.nan, dtype=np.float32), "prob_g": np.zeros(n, dtype=np.float32),
        "accepted": np.zeros(n, dtype=bool), "reason": np.full(n, REASONS["no_seed"], dtype=np.uint8),
    }
    has_seed = np.flatnonzero(out["seed_index"] >= 0)
    for start in range(0, len(has_seed), cfg.batch_size):
        local = has_seed[start:start + cfg.batch_size]
        x0 = seed_inputs(data, out["seed_index"][local], out["seed_aug"][local])
        noise = torch.from_numpy(start_noise_batch(data.input_shape, cfg.noise_radius, seed, epoch, out["slot"][local]))
        res = translator.translate(
            g, f, x0, torch.from_numpy(out["target"][local].astype(np.int64)),
            torch.from_numpy(out["seed_class"][local].astype(np.int64)), class_counts=data.class_counts,
            noise=noise, u_beta=torch.from_numpy(out["u_beta"][local]))
        out["x"][local] = res.x.numpy()
        out["loss_g"][local] = res.loss_g.numpy()
        out["prob_g"][local] = res.prob_g.numpy()
        out["accepted"][local] = res.accepted.numpy()
        out["reason"][local] = res.reason.numpy()
    return out


@dataclass
class PoolSummary:
    path: Path
    n_slots: int
    n_attempts: int
    n_accepted: int
    reasons: dict[str, int] = field(default_factory=dict)

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
    }


def reason_counts(reason: np.ndarray) -> dict[str, int]:
    """{reason name: rows} over every reason of REASONS (zeros included)."""
    counts = {name: 0 for name in REASONS}
    for code, c in zip(*np.unique(reason, return_counts=True)):
        counts[REASON_NAMES[int(code)]] += int(c)
    return counts


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
        writer.write_rows(0, encode_rows(rows, data))   # x* stored compactly (pools/codec.py)
        attrs = pool_attrs(data=data, plan=plan, cfg=cfg, seed=seed, g_hash=g_hash, f_hash=f_hash, counts=counts,
                           n_attempts=n)
        attrs.update(provenance or {})
        writer.finish(attrs)
    return PoolSummary(Path(out), len(plan), n, counts["accepted"], counts)


def translate_shard(g: nn.Module, f: nn.Module, data: PreparedData, draws: SlotDraws, index: int, shard_rows: int,
                    translator: M2mTranslator, cfg: TranslationConfig, seed: int, epoch: int,
                    work: str | Path) -> dict[str, int]:
    """One translation task: translate row shard ``index`` of the pool being built in ``work``,
    encode x* (pools/codec.py, after the accept decisions) and commit the shard. Returns its
    reason counts. Runs in this process or on a dask worker (pools/distributed.py)."""
    rows = translate_rows(g, f, data, draws, slice(index * shard_rows, (index + 1) * shard_rows), translator,
                          cfg, seed, epoch)
    return commit_shard(rows, data, work, index)


def commit_shard(rows: dict[str, np.ndarray], data: PreparedData, work: str | Path, index: int) -> dict[str, int]:
    """Encode translated rows (exact x*, decisions taken) and write and commit them as shard ``index``."""
    counts = reason_counts(rows["reason"])
    write_pool_shard(work, index, encode_rows(rows, data), counts)
    return counts


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
    return PoolSummary(out, int(s["n_slots"]), int(s["n_attempts"]), int(s["n_accepted"]), dict(s["reasons"]))


def generate_pool(*, g: nn.Module, f: nn.Module, data: PreparedData, plan: EpochPlan, cfg: TranslationConfig,
                  seed: int, out: str | Path, provenance: dict[str, Any] | None = None,
                  progress: Callable[[int], None] | None = None,
                  allowed_seeds: np.ndarray | None = None, workers: int | None = None,
                  scheduler: str | None = None,
                  model_configs: tuple[dict[str, Any], dict[str, Any]] | None = None,
                  client: Any = None) -> PoolSummary:
    """Translate every attempt slot of ``plan`` with g and the f snapshot, and write the pool.

    One shard per translation task of ``cfg.rows_per_shard`` rows (rounded down to whole
    256-row chunks). ``progress`` is called with the number of rows done after each task.
    Non-finite results are never accepted (reason ``non_finite``); when their share exceeds
    ``cfg.max_non_finite`` (default 0) the pool is not written and M2mError names it.

    Resumable: shards are committed one by one, so a run killed at any point and started again
    with the same arguments translates only the missing shards and ends byte-identical to an
    uninterrupted run; a complete pool of the same job is returned as is.

    ``workers`` (a local dask cluster of that many processes) or ``scheduler`` (the address of
    a running one) translate the shards on dask.distributed (pools/distributed.py); the models
    then travel as weights plus ``model_configs`` (g's and f's checkpoint ``config``). The pool
    does not depend on how many workers made it. ``client``: a connected dask client to reuse
    (``distributed.dask_client``), e.g. for every epoch of a training run.
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
    distributed = bool(workers) or bool(scheduler) or client is not None
    if distributed and model_configs is None:
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
        if distributed:
            from .distributed import translate_shards_on_dask

            results = translate_shards_on_dask(
                g=g, f=f, model_configs=model_configs, data=data, draws=draws, translator=translator, cfg=cfg,
                seed=seed, epoch=plan.epoch, work=writer.work, shard_rows=writer.shard_rows, shards=todo,
                workers=workers, scheduler=scheduler, client=client, progress=progress)
        else:
            results = _translate_here(g=g, f=f, data=data, draws=draws, translator=translator, cfg=cfg, seed=seed,
                                      epoch=plan.epoch, work=writer.work, shard_rows=writer.shard_rows, shards=todo,
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
    return PoolSummary(out, len(plan), n, counts["accepted"], counts)


def _translate_here(*, g, f, data, draws, translator, cfg, seed, epoch, work, shard_rows, shards,
                    progress) -> list[dict[str, int]]:
    """The shards in this process: shard i is encoded and written by a writer thread while shard
    i + 1 is translated (torch and zstd release the GIL), one write in flight at a time."""
    results: list[dict[str, int]] = []

    def done(future) -> None:
        counts = future.result()
        results.append(counts)
        if progress is not None:
            progress(sum(counts.values()))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool-writer") as writer_thread:
        pending = None
        for index in shards:
            rows = translate_rows(g, f, data, draws, slice(index * shard_rows, (index + 1) * shard_rows), translator,
                                  cfg, seed, epoch)
            if pending is not None:
                done(pending)
            pending = writer_thread.submit(commit_shard, rows, data, work, index)
        if pending is not None:
            done(pending)
    return results


__all__ = ["PoolSummary", "TranslatedPools", "generate_pool", "make_translator", "pool_attrs", "reason_counts",
           "commit_shard", "translate_rows", "translate_shard", "write_pool"]


class TranslatedPools(StoredSwaps):
    """The swap source of a translating method: for each epoch, plan it, translate every attempt
    with the generator and the snapshot of f at the start of the epoch, write the pool to
    ``pools_dir/epoch_<e>``, and read the rows back through the pool store with ``rule``.

    ``generator``: g (M2m), or None for f itself (M2m-Self: the current f generates). ``provenance``
    is written into every pool (e.g. the run name and the warm checkpoint's hash, which ablations
    that reuse the pools check).
    """

    def __init__(self, *, g: nn.Module | None, data: PreparedData, cfg: TranslationConfig, seed: int,
                 pools_dir: str | Path, batch_size: int, rule: str = "accepted",
                 rule_params: dict[str, Any] | None = None, allowed_seeds: np.ndarray | None = None,
                 provenance: dict[str, Any] | None = None, progress: bool = True, client: Any = None,
                 model_configs: tuple[dict[str, Any], dict[str, Any]] | None = None):
        super().__init__()
        check_rule(rule, rule_params)
        self.client, self.model_configs = client, model_configs   # dask.distributed translation, when set
        self.g, self.data, self.cfg, self.seed = g, data, cfg, int(seed)
        self.pools_dir, self.batch_size = Path(pools_dir), int(batch_size)
        self.rule, self.rule_params = rule, dict(rule_params or {})
        self.allowed_seeds = allowed_seeds
        self.provenance = dict(provenance or {})
        self.progress = progress

    def begin_epoch(self, epoch: int, model: nn.Module) -> tuple[EpochPlan, dict[str, Any]]:
        data = self.data
        plan = make_plan(data.train.y, data.class_counts, seed=self.seed, epoch=epoch, order="balanced",
                         attempts=True, augment=data.augment, batch_size=self.batch_size)
        generator = model if self.g is None else self.g
        path = self.pools_dir / f"epoch_{epoch}"
        with progress_bar(total=int(plan.attempt.sum()), desc=f"translate epoch {epoch}", enabled=self.progress,
                          unit="row") as bar:
            summary = generate_pool(g=generator, f=model, data=data, plan=plan, cfg=self.cfg, seed=self.seed,
                                    out=path, provenance={**self.provenance, "f_epoch": epoch},
                                    progress=bar.update, allowed_seeds=self.allowed_seeds, client=self.client,
                                    model_configs=self.model_configs)
        # Training reads the plan and the rows back through the pool store.
        plan, swaps, counts = read_swaps(path, data, rule=self.rule, rule_params=self.rule_params,
                                               seed=self.seed, g_hash=state_hash(generator.state_dict()),
                                               f_hash=state_hash(model.state_dict()), epoch=epoch)
        self._set_swaps(swaps)
        return plan, {"n_attempts": summary.n_attempts, "n_accepted": summary.n_accepted,
                      "n_used": counts["n_used"], "reasons": summary.reasons}
