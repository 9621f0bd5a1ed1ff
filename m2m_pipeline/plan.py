"""The plan of one training epoch: which training row fills each slot, with which augmentation,
and which slots get a generation attempt (Sec. 2.3, "Practical implementation via re-sampling").

A plan is a pure function of (seed, epoch) and the labels, so the translation of an epoch and
the training on it can run apart (even on other machines) and still agree slot by slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .utils import rng_for

ORDERS = ("shuffle", "balanced")


@dataclass
class EpochPlan:
    epoch: int
    order: np.ndarray      # (S,) int64: row of the training split that fills slot s
    attempt: np.ndarray    # (S,) bool: slot s gets a translation attempt
    aug: np.ndarray        # (S, 3) int16: crop offsets (dy, dx) and flip of slot s's real sample
    batch_size: int

    def __len__(self) -> int:
        return len(self.order)

    @property
    def n_batches(self) -> int:
        return -(-len(self.order) // self.batch_size)

    def batch_slots(self, b: int) -> np.ndarray:
        return np.arange(b * self.batch_size, min((b + 1) * self.batch_size, len(self.order)))


def draw_augment(rng: np.random.Generator, n: int, augment: dict) -> np.ndarray:
    """n draws of (dy, dx, flip): random crop after zero padding by ``crop_pad`` and a horizontal
    flip with probability 1/2, the CIFAR recipe (Sec. 3.1). Without augmentation: (pad, pad, 0) = identity."""
    pad = int(augment.get("crop_pad", 0))
    out = np.zeros((n, 3), dtype=np.int16)
    out[:, :2] = pad
    if pad:
        out[:, :2] = rng.integers(0, 2 * pad + 1, size=(n, 2))
    if augment.get("flip"):
        out[:, 2] = rng.integers(0, 2, size=n)
    return out


def apply_augment(x: np.ndarray, aug: np.ndarray, augment: dict) -> np.ndarray:
    """Apply per-row (dy, dx, flip) to uint8 images (N, C, H, W); vectors pass through."""
    if x.ndim != 4 or not augment:
        return x
    pad = int(augment.get("crop_pad", 0))
    n, c, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    out = np.empty_like(x)
    for i in range(n):
        dy, dx, flip = int(aug[i, 0]), int(aug[i, 1]), int(aug[i, 2])
        img = padded[i, :, dy:dy + h, dx:dx + w]
        out[i] = img[:, :, ::-1] if flip else img
    return out


def make_plan(labels: np.ndarray, class_counts: np.ndarray, *, seed: int, epoch: int, order: str,
              attempts: bool, augment: dict, batch_size: int) -> EpochPlan:
    """Plan epoch ``epoch``.

    ``order="shuffle"``: a permutation of the training rows (ERM). ``order="balanced"``: as many
    slots as training rows, each drawn with replacement with probability proportional to
    1/N_y, so every class is equally likely in every slot (the release's weighted sampler,
    balanced in expectation). ``attempts``: a slot holding class y gets a translation attempt
    with probability 1 - N_y / N_1 (N_1 the largest class), so that in expectation the balanced
    batch keeps N_y / N_1 of its class-y slots real, the rest become translation attempts.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    labels = np.asarray(labels)
    counts = np.asarray(class_counts, dtype=np.float64)
    n = len(labels)
    rng = rng_for(seed, "plan", epoch)
    if order == "shuffle":
        rows = rng.permutation(n)
    else:
        w = 1.0 / counts[labels]
        rows = rng.choice(n, size=n, replace=True, p=w / w.sum())
    if attempts:
        p_attempt = 1.0 - counts[labels[rows]] / counts.max()
        attempt = rng_for(seed, "attempt", epoch).random(n) < p_attempt
    else:
        attempt = np.zeros(n, dtype=bool)
    aug = draw_augment(rng_for(seed, "augment", epoch), n, augment)
    return EpochPlan(epoch=epoch, order=rows.astype(np.int64), attempt=attempt, aug=aug, batch_size=batch_size)
