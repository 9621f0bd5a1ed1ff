"""The shard task: translate the planned attempt rows of one pool shard, encode them and commit them.

A pool's rows are cut into shards of ``rows_per_shard`` rows (``PoolWriter`` fixes the
boundaries; the store writes each shard's files on their own and commits it with a record).
Everything a shard needs but the models travels as one :class:`ShardJob`, so the same task runs
in this process or on a dask worker (pools/backends.py). Every draw is a function of (seed, epoch,
slot), so a shard's rows do not depend on where, or in which order, the shards run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..acceptance import REASON_NAMES, REASONS
from ..datasets import PreparedData
from ..store import write_pool_shard
from ..translate import M2mTranslator
from .codec import decode_x, encode_rows
from .config import TranslationConfig
from .draws import SlotDraws, seed_inputs, start_noise_batch


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


def reason_counts(reason: np.ndarray) -> dict[str, int]:
    """{reason name: rows} over every reason of REASONS (zeros included)."""
    counts = {name: 0 for name in REASONS}
    for code, c in zip(*np.unique(reason, return_counts=True)):
        counts[REASON_NAMES[int(code)]] += int(c)
    return counts


@dataclass
class ShardJob:
    """Everything a shard task needs but the models: the data, the epoch's per-slot draws, the
    translator and its parameters, and the pool being built (``work``, in ``shard_rows``-row shards)."""

    data: PreparedData
    draws: SlotDraws
    translator: M2mTranslator
    cfg: TranslationConfig
    seed: int
    epoch: int
    work: str | Path
    shard_rows: int
    # Filled by shards committed in this process (InProcessBackend): {shard: (slot, x*, target)} of
    # the accepted rows, x* decoded from exactly the bytes stored, so training can take them from
    # the writer instead of reading the pool back (issue 16). A job sent to dask workers is a copy:
    # their shards add nothing here, and the rows are read back from the pool.
    kept: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = field(default=None, repr=False)


def translate_shard(g: nn.Module, f: nn.Module, data: PreparedData, draws: SlotDraws, index: int, shard_rows: int,
                    translator: M2mTranslator, cfg: TranslationConfig, seed: int, epoch: int,
                    work: str | Path) -> dict[str, int]:
    """One translation task: translate row shard ``index`` of the pool being built in ``work``,
    encode x* (pools/codec.py, after the accept decisions) and commit the shard. Returns its
    reason counts. Runs in this process or on a dask worker (pools/backends.py)."""
    rows = translate_rows(g, f, data, draws, slice(index * shard_rows, (index + 1) * shard_rows), translator,
                          cfg, seed, epoch)
    return commit_shard(rows, data, work, index, store=cfg.store)


def commit_shard(rows: dict[str, np.ndarray], data: PreparedData, work: str | Path, index: int,
                 store: str = "all", kept: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
                 ) -> dict[str, int]:
    """Encode translated rows (exact x*, decisions taken) and write and commit them as shard
    ``index``; ``store`` is ``pools.store`` (``accepted``: x* of the accepted rows only). With
    ``kept`` (a dict), ``kept[index]`` gets the accepted rows' (slot, x*, target), x* decoded from
    the stored x_delta/x_exp as any reader of the pool decodes it (pools/codec.read_x)."""
    counts = reason_counts(rows["reason"])
    encoded, x0 = encode_rows(rows, data, store, return_x0=True)
    write_pool_shard(work, index, encoded, counts)
    if kept is not None:
        acc = np.flatnonzero(rows["accepted"])
        x = decode_x(encoded["x_delta"][acc], encoded["x_exp"][acc], x0[acc], rows["seed_index"][acc] >= 0,
                     data.input_range)
        kept[int(index)] = (np.asarray(rows["slot"])[acc].astype(np.int64), x, rows["target"][acc].astype(np.int64))
    return counts


__all__ = ["ShardJob", "commit_shard", "reason_counts", "translate_rows", "translate_shard"]
