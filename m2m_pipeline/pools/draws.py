"""The random choices of an epoch's translation attempts: seed class, seed row, start noise, beta draw.

Every draw derives from (seed, epoch, slot) and the plan, never from the translation batch or the
task split, so the same pool comes out however the work is cut.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from ..acceptance import seed_class_probs
from ..datasets import PreparedData
from ..plan import EpochPlan, apply_augment, draw_augment
from ..utils import rng_for
from .config import TranslationConfig


@dataclass
class SlotDraws:
    """The random choices of the attempt slots of one epoch (one entry per attempt)."""

    slot: np.ndarray
    target: np.ndarray
    seed_class: np.ndarray   # -1 where no seed exists (reason no_seed)
    seed_index: np.ndarray   # -1 likewise
    seed_aug: np.ndarray
    u_beta: np.ndarray


def seed_subset_mask(labels: np.ndarray, num_classes: int, size: int, seed: int) -> np.ndarray:
    """Training rows allowed as seeds when each class may seed only from a fixed random subset of
    ``size`` of its samples (Table 3, "# Seeds"); a class with fewer keeps all. Fixed before f
    trains: a function of (seed, class) only, the same for every epoch."""
    if size < 1:
        raise ValueError(f"seed subset size must be >= 1, got {size}")
    mask = np.zeros(len(labels), dtype=bool)
    for k in range(num_classes):
        members = np.flatnonzero(labels == k)
        if len(members) > size:
            members = rng_for(seed, "seed_subset", k).choice(members, size=size, replace=False)
        mask[members] = True
    return mask


def draw_slots(data: PreparedData, plan: EpochPlan, cfg: TranslationConfig, seed: int,
               allowed_seeds: np.ndarray | None = None) -> SlotDraws:
    """Choose the seed of every attempt slot of the plan (Algorithm 1, lines 5-7).

    ``seed_scope="dataset"`` (Algorithm 1): k0 ~ Q(k0 | k) of eq. (5), then a uniformly random
    training sample of class k0, with its own augmentation draw. ``seed_scope="batch"`` (the
    authors' release): a sample of the slot's training batch, chosen with probability
    proportional to Q(y_j | k) over the batch items j, so P(k0) also grows with how many items of
    k0 the batch holds; x0 is that item exactly as the batch holds it (same augmentation).
    ``allowed_seeds`` (a bool mask over training rows, :func:`seed_subset_mask`) restricts the
    seed rows in both scopes; a slot left with no allowed seed is ``no_seed``.
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
        allowed = np.ones(len(labels), dtype=bool) if allowed_seeds is None else allowed_seeds
        rows_of = [np.flatnonzero((labels == k) & allowed) for k in range(len(counts))]
        aug_all = draw_augment(rng_for(seed, "seed", epoch, 1), n_slots, data.augment)
        for i, (s, k) in enumerate(zip(slots, targets)):
            cq = np.cumsum(q_table[k])
            if cq[-1] <= 0:
                continue
            # u * cq[-1] < cq[-1] for u in [0, 1): the search lands on a class of positive Q
            # (scaling by q.sum(), summed in another order, could pass the end by an ulp)
            k0 = int(np.searchsorted(cq, u_seed[s, 0] * cq[-1], side="right"))
            members = rows_of[k0]
            if not len(members):
                continue
            seed_class[i] = k0
            seed_index[i] = members[int(u_seed[s, 1] * len(members))]   # u * n < n for u in [0, 1)
            seed_aug[i] = aug_all[s]
    else:
        slot_labels = labels[plan.order]
        for i, (s, k) in enumerate(zip(slots, targets)):
            batch = plan.batch_slots(int(s) // plan.batch_size)
            w = q_table[k][slot_labels[batch]]
            if allowed_seeds is not None:
                w = w * allowed_seeds[plan.order[batch]]
            cw = np.cumsum(w)
            if cw[-1] <= 0:
                continue
            j = batch[int(np.searchsorted(cw, u_seed[s, 0] * cw[-1], side="right"))]   # as for k0 above
            seed_class[i] = slot_labels[j]
            seed_index[i] = plan.order[j]
            seed_aug[i] = plan.aug[j]
    return SlotDraws(slots.astype(np.int64), targets.astype(np.int64), seed_class, seed_index, seed_aug,
                     u_beta[slots])


@functools.lru_cache(maxsize=8)
def _noise_key(seed: int, epoch: int) -> tuple[int, int]:
    """The 128-bit key of an epoch's noise generator, from the seeded stream ``noise`` of (seed, epoch)."""
    k = rng_for(seed, "noise", epoch).integers(0, 2**63, size=2)
    return int(k[0]), int(k[1])


def start_noise_batch(shape: tuple[int, ...], radius: float, seed: int, epoch: int, slots: np.ndarray) -> np.ndarray:
    """Start noise of every slot of ``slots``: per slot a uniform [-1, 1] draw rescaled to L2 norm
    ``radius``, shape ``(len(slots), *shape)``.

    The authors' release rescales one uniform draw to norm 0.5 per colour channel over the whole
    generation batch, about 0.09 per image at 96 rows; a per-sample radius makes that size explicit
    and independent of the batch.

    The numbers come from a counter-based generator (Philox4x64) keyed once per (seed, epoch),
    whose counter is the slot: the draw of a slot depends only on (seed, epoch, slot), so a pool
    is the same however its attempts are batched or split into shards and workers, and no seeded
    generator (SeedSequence hashing) is built per slot (docs/performance.md, "Pool overhead").
    """
    slots = np.asarray(slots, dtype=np.int64).reshape(-1)
    size = int(np.prod(shape))
    key = _noise_key(int(seed), int(epoch))
    u = np.empty((len(slots), size), dtype=np.float32)
    for i, s in enumerate(slots):
        if s < 0:
            raise ValueError(f"slots must be non-negative, got {s}")
        np.random.Generator(np.random.Philox(key=key, counter=[0, 0, 0, int(s)])).random(size, dtype=np.float32,
                                                                                       out=u[i])
    u *= 2.0
    u -= 1.0
    norm = np.sqrt(np.einsum("ij,ij->i", u, u, dtype=np.float64))[:, None]
    u *= (radius / np.where(norm > 0, norm, 1.0)).astype(np.float32)
    return u.reshape(len(slots), *shape)


def start_noise(shape: tuple[int, ...], radius: float, seed: int, epoch: int, slot: int) -> np.ndarray:
    """The start noise of one slot (:func:`start_noise_batch` of that slot alone)."""
    return start_noise_batch(shape, radius, seed, epoch, np.array([slot]))[0]


def seed_inputs(data: PreparedData, seed_index: np.ndarray, seed_aug: np.ndarray) -> torch.Tensor:
    """Rebuild x0 exactly: the training row, with its recorded augmentation, as float input."""
    raw = apply_augment(data.train.x[seed_index], seed_aug, data.augment)
    return data.to_float(raw)


__all__ = ["SlotDraws", "draw_slots", "seed_inputs", "seed_subset_mask", "start_noise", "start_noise_batch"]
