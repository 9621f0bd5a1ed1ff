"""Generate one epoch's pool: plan -> per-slot draws -> translation -> sharded zarr rows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..acceptance import REASON_NAMES, REASONS
from ..datasets import PreparedData
from ..plan import EpochPlan
from ..store import PoolWriter
from ..translate import M2mTranslator
from ..utils import M2mError, state_hash
from .config import TranslationConfig
from .draws import SlotDraws, draw_slots, seed_inputs, start_noise


def make_translator(cfg: TranslationConfig, input_range: tuple[float, float] | None) -> M2mTranslator:
    """The translator of ``cfg``; a bad parameter is an M2mError that names it."""
    t = M2mTranslator(steps=cfg.steps, step_size=cfg.step_size, lam=cfg.lam, gamma=cfg.gamma,
                      gamma_on=cfg.gamma_on, beta=cfg.beta, input_range=input_range)
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
        noise = torch.from_numpy(np.stack([
            start_noise(data.input_shape, cfg.noise_radius, seed, epoch, int(s)) for s in out["slot"][local]]))
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


def generate_pool(*, g: nn.Module, f: nn.Module, data: PreparedData, plan: EpochPlan, cfg: TranslationConfig,
                  seed: int, out: str | Path, provenance: dict[str, Any] | None = None,
                  progress: Callable[[int], None] | None = None) -> PoolSummary:
    """Translate every attempt slot of ``plan`` with g and the f snapshot, and write the pool.

    One shard per translation task of ``cfg.rows_per_shard`` rows. ``progress`` is called with the
    number of rows done after each task. Non-finite results are never accepted (reason
    ``non_finite``); when their share exceeds ``cfg.max_non_finite`` (default 0) the pool is not
    written and M2mError names it.
    """
    translator = make_translator(cfg, data.input_range)
    draws = draw_slots(data, plan, cfg, seed)
    n = len(draws.slot)
    with PoolWriter(out, n_rows=n, input_shape=data.input_shape, input_kind=data.input_kind,
                    rows_per_shard=cfg.rows_per_shard, rows_per_chunk=min(256, cfg.rows_per_shard)) as writer:
        writer.write_plan(plan.order, plan.attempt, plan.aug)
        counts = {name: 0 for name in REASONS}
        for start in range(0, n, cfg.rows_per_shard):
            rows = translate_rows(g, f, data, draws, slice(start, start + cfg.rows_per_shard), translator,
                                  cfg, seed, plan.epoch)
            writer.write_rows(start, rows)
            for code, c in zip(*np.unique(rows["reason"], return_counts=True)):
                counts[REASON_NAMES[int(code)]] += int(c)
            if progress is not None:
                progress(len(rows["slot"]))
        if n and counts["non_finite"] > cfg.max_non_finite * n:
            # Leaving the writer with an error removes the half-built pool.
            raise M2mError(f"translation for pool {out} produced non-finite values in {counts['non_finite']} of "
                           f"{n} attempts; g or f gives NaN/inf (check the checkpoints) or step_size is too "
                           f"large (m2m.max_non_finite tolerates a share)")
        attrs = {
            "dataset": data.name,
            "dataset_fingerprint": data.fingerprint,
            "class_counts": [int(c) for c in data.class_counts],
            "g_hash": state_hash(g.state_dict()),
            "f_hash": state_hash(f.state_dict()),
            "epoch": int(plan.epoch),
            "seed": int(seed),
            "params": asdict(cfg),
            "train_batch_size": int(plan.batch_size),
            "reason_codes": {name: code for name, code in REASONS.items()},
            "summary": {"n_slots": len(plan), "n_attempts": n, "n_accepted": counts["accepted"], "reasons": counts},
            "package_version": __version__,
        }
        attrs.update(provenance or {})
        writer.finish(attrs)
    return PoolSummary(Path(out), len(plan), n, counts["accepted"], counts)


__all__ = ["PoolSummary", "generate_pool", "make_translator", "translate_rows"]
