"""Generate one epoch's pool: plan -> per-slot draws -> translation -> sharded zarr rows.

Every random draw of a row derives from (seed, epoch, slot) and the plan, never from the
translation batch or the task split, so the same pool comes out however the work is cut.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from . import __version__
from .datasets import PreparedData
from .plan import EpochPlan, apply_augment, draw_augment
from .store import POOL_ROW_ARRAYS, Pool, PoolWriter, open_pool
from .translate import REASON_NAMES, REASONS, M2mTranslator, seed_class_probs
from .utils import M2mError, rng_for, state_hash

SEED_SCOPES = ("batch", "dataset")


@dataclass
class TranslationConfig:
    """The translation parameters of params.yaml's ``m2m`` section (defaults: Sec. 3.1 and the
    authors' release; see docs/design.md for where the two differ)."""

    steps: int = 10
    step_size: float = 0.1
    lam: float = 0.5
    gamma: float = 0.9
    gamma_on: str = "prob"
    beta: float = 0.999
    seed_scope: str = "batch"
    noise_radius: float = 0.1
    batch_size: int = 256
    rows_per_shard: int = 1024
    max_non_finite: float = 0.0   # share of attempts allowed to come out non-finite before the pool is refused

    def __post_init__(self) -> None:
        if self.seed_scope not in SEED_SCOPES:
            raise M2mError(f"m2m.seed_scope must be one of {SEED_SCOPES}, got {self.seed_scope!r}")
        if self.batch_size < 1 or self.rows_per_shard < 1:
            raise M2mError("m2m.batch_size and m2m.rows_per_shard must be >= 1")
        if self.noise_radius < 0:
            raise M2mError(f"m2m.noise_radius must be >= 0, got {self.noise_radius}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TranslationConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise M2mError(f"unknown m2m parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**params)

    def translator(self, input_range: tuple[float, float] | None) -> M2mTranslator:
        t = M2mTranslator(steps=self.steps, step_size=self.step_size, lam=self.lam, gamma=self.gamma,
                          gamma_on=self.gamma_on, beta=self.beta, input_range=input_range)
        try:
            t.check_params()
        except ValueError as exc:
            raise M2mError(f"m2m parameters: {exc}") from None
        return t


@dataclass
class SlotDraws:
    """The random choices of the attempt slots of one epoch (one entry per attempt)."""

    slot: np.ndarray
    target: np.ndarray
    seed_class: np.ndarray   # -1 where no seed exists (reason no_seed)
    seed_index: np.ndarray   # -1 likewise
    seed_aug: np.ndarray
    u_beta: np.ndarray


def draw_slots(data: PreparedData, plan: EpochPlan, cfg: TranslationConfig, seed: int) -> SlotDraws:
    """Choose the seed of every attempt slot of the plan (Algorithm 1, lines 5-7).

    ``seed_scope="dataset"`` (Algorithm 1): k0 ~ Q(k0 | k) of eq. (5), then a uniformly random
    training sample of class k0, with its own augmentation draw. ``seed_scope="batch"`` (the
    authors' release): a sample of the slot's training batch, chosen with probability
    proportional to Q(y_j | k) over the batch items j, so P(k0) also grows with how many items of
    k0 the batch holds; x0 is that item exactly as the batch holds it (same augmentation).
    """
    labels, counts = data.train.y, data.class_counts
    epoch, n_slots = plan.epoch, len(plan)
    slots = np.flatnonzero(plan.attempt)
    targets = labels[plan.order[slots]]
    u_seed = rng_for(seed, "seed", epoch).random((n_slots, 2))
    u_beta = rng_for(seed, "beta", epoch).random(n_slots)
    q_table = np.stack([seed_class_probs(counts, k, cfg.beta) for k in range(len(counts))])  # [k, k0]
    seed_class = np.full(len(slots), -1, dtype=np.int64)
    seed_index = np.full(len(slots), -1, dtype=np.int64)
    seed_aug = np.zeros((len(slots), 3), dtype=np.int16)

    if cfg.seed_scope == "dataset":
        rows_of = [np.flatnonzero(labels == k) for k in range(len(counts))]
        aug_all = draw_augment(rng_for(seed, "seed", epoch, 1), n_slots, data.augment)
        for i, (s, k) in enumerate(zip(slots, targets)):
            q = q_table[k]
            if q.sum() <= 0:
                continue
            k0 = min(int(np.searchsorted(np.cumsum(q), u_seed[s, 0] * q.sum(), side="right")), len(q) - 1)
            members = rows_of[k0]
            seed_class[i] = k0
            seed_index[i] = members[min(int(u_seed[s, 1] * len(members)), len(members) - 1)]
            seed_aug[i] = aug_all[s]
    else:
        slot_labels = labels[plan.order]
        for i, (s, k) in enumerate(zip(slots, targets)):
            batch = plan.batch_slots(int(s) // plan.batch_size)
            w = q_table[k][slot_labels[batch]]
            total = w.sum()
            if total <= 0:
                continue
            j = batch[min(int(np.searchsorted(np.cumsum(w), u_seed[s, 0] * total, side="right")), len(batch) - 1)]
            seed_class[i] = slot_labels[j]
            seed_index[i] = plan.order[j]
            seed_aug[i] = plan.aug[j]
    return SlotDraws(slots.astype(np.int64), targets.astype(np.int64), seed_class, seed_index, seed_aug,
                     u_beta[slots])


def start_noise(shape: tuple[int, ...], radius: float, seed: int, epoch: int, slot: int) -> np.ndarray:
    """Per-sample start noise: a uniform [-1, 1] draw rescaled to L2 norm ``radius``.

    The authors' release rescales one uniform draw to norm 0.5 per colour channel over the whole
    generation batch, about 0.09 per image at 96 rows; a per-sample radius makes that size explicit
    and independent of the batch.
    """
    u = rng_for(seed, "noise", epoch, slot).uniform(-1.0, 1.0, size=shape)
    norm = np.linalg.norm(u)
    return (u * (radius / norm) if norm > 0 else u).astype(np.float32)


def seed_inputs(data: PreparedData, seed_index: np.ndarray, seed_aug: np.ndarray) -> torch.Tensor:
    """Rebuild x0 exactly: the training row, with its recorded augmentation, as float input."""
    raw = apply_augment(data.train.x[seed_index], seed_aug, data.augment)
    return data.to_float(raw)


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
    translator = cfg.translator(data.input_range)
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


def check_provenance(pool: Pool, **expected: Any) -> None:
    """Raise M2mError when a pool attribute differs from what its user expects (e.g.
    ``dataset_fingerprint``, ``g_hash``, ``f_hash``, ``epoch``, ``seed``)."""
    attrs = pool.attrs
    for key, want in expected.items():
        have = attrs.get(key)
        if have != want:
            raise M2mError(f"pool {pool.path} was made with {key}={have!r} but is used with {want!r}; "
                           f"regenerate it (m2m-pipeline generate) or point at the matching pool")


def load_swaps(path: str | Path, data: PreparedData, **expected: Any) -> tuple[EpochPlan, dict[int, np.ndarray]]:
    """Read an epoch's plan and its accepted rows: the slots whose real sample training replaces.

    Returns the plan stored in the pool and ``{slot: x*}`` for every accepted row.
    """
    pool = open_pool(path)
    check_provenance(pool, dataset_fingerprint=data.fingerprint, **expected)
    attrs = pool.attrs
    p = pool.plan_arrays()
    plan = EpochPlan(epoch=int(attrs["epoch"]), order=p["order"], attempt=p["attempt"], aug=p["aug"],
                     batch_size=int(attrs["train_batch_size"]))
    accepted = pool.array("accepted")
    rows = np.flatnonzero(accepted)
    slots = pool.array("slot")[rows]
    xs = pool.array("x", rows) if len(rows) else np.zeros((0, *data.input_shape), np.float32)
    return plan, {int(s): xs[i] for i, s in enumerate(slots)}


__all__ = ["POOL_ROW_ARRAYS", "PoolSummary", "SlotDraws", "TranslationConfig", "check_provenance",
           "draw_slots", "generate_pool", "load_swaps", "seed_inputs", "start_noise", "translate_rows"]
