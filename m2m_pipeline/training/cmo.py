"""CMO, context-rich minority oversampling (Park et al., "The Majority Can Help the Minority",
CVPR 2022): minority images CutMixed onto the natural-order batch.

Per training batch B (the shuffled, natural-order plan) the release draws a second batch B' of
the same slots from a minority-weighted sampler (each training row drawn with replacement with
probability proportional to 1 / N_y, its ``weighted_alpha = 1``), and with probability
``cmo_prob`` (0.5) pastes one box of B' onto every image of B:

    lambda ~ Beta(beta, beta);  the box has side sqrt(1 - lambda) of the image's (floored),
    a centre (cy, cx) uniform over the pixels, clipped to the image (the release's ``rand_bbox``);
    x_i[:, r0:r1, c0:c1] = x'_i[:, r0:r1, c0:c1]
    lambda' = 1 - (r1 - r0)(c1 - c0) / (H W)            (the label weight, from the clipped box)
    loss = lambda' * l(f(x), y) + (1 - lambda') * l(f(x), y')

in the epochs e with ``start < e < epochs - end`` (the release: 3 and 3). Every draw comes from
the project's ``rng_for(seed, stream, epoch[, batch])`` streams, so an epoch's minority batch and
its boxes are a pure function of (seed, epoch, batch) and a resumed run draws what an
uninterrupted one does. CMO cuts boxes of pixels: it is defined for images only
(``methods.check_method`` refuses it for text and tabular vectors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..plan import EpochPlan, draw_augment
from ..utils import rng_for


def cmo_active(epoch: int, epochs: int, start_epoch: int, end_epochs: int) -> bool:
    """Whether epoch ``epoch`` (0-based) of ``epochs`` mixes: start < epoch < epochs - end."""
    return start_epoch < epoch < epochs - end_epochs


def minority_plan(labels: np.ndarray, class_counts: np.ndarray, *, seed: int, epoch: int, augment: dict,
                  batch_size: int) -> EpochPlan:
    """The minority-weighted batches of epoch ``epoch``: as many slots as training rows, each row
    drawn with replacement with probability proportional to 1 / N_y (stream ``cmo_sampler``), with
    its own crop and flip (stream ``cmo_augment``). Slot s of it is pasted onto slot s of the epoch."""
    labels = np.asarray(labels)
    counts = np.asarray(class_counts, dtype=np.float64)
    n = len(labels)
    w = 1.0 / counts[labels]
    rows = rng_for(seed, "cmo_sampler", epoch).choice(n, size=n, replace=True, p=w / w.sum())
    aug = draw_augment(rng_for(seed, "cmo_augment", epoch), n, augment)
    return EpochPlan(epoch=epoch, order=rows.astype(np.int64), attempt=np.zeros(n, dtype=bool), aug=aug,
                     batch_size=batch_size)


def cutmix_box(height: int, width: int, lam: float, cy: int, cx: int) -> tuple[int, int, int, int]:
    """(r0, c0, r1, c1): the release's ``rand_bbox`` for a centre (cy, cx). Sides
    int(H sqrt(1 - lam)) and int(W sqrt(1 - lam)); r0 = clip(cy - cut_h // 2, 0, H),
    r1 = clip(cy + cut_h // 2, 0, H), the same for columns. Rows are dim 2 and columns dim 3 of
    (N, C, H, W)."""
    cut = float(np.sqrt(1.0 - lam))
    cut_h, cut_w = int(height * cut), int(width * cut)
    r0 = int(np.clip(cy - cut_h // 2, 0, height))
    r1 = int(np.clip(cy + cut_h // 2, 0, height))
    c0 = int(np.clip(cx - cut_w // 2, 0, width))
    c1 = int(np.clip(cx + cut_w // 2, 0, width))
    return r0, c0, r1, c1


def label_weight(box: tuple[int, int, int, int], height: int, width: int) -> float:
    """lambda' = 1 - box area / image area: the weight of the background (natural-order) label."""
    r0, c0, r1, c1 = box
    return 1.0 - (r1 - r0) * (c1 - c0) / float(height * width)


@dataclass(frozen=True)
class CutMix:
    box: tuple[int, int, int, int]   # (r0, c0, r1, c1)
    weight: float                    # lambda': the background label's weight; 1 - lambda' the pasted one's


def draw_cutmix(seed: int, epoch: int, batch: int, height: int, width: int, *, prob: float = 0.5,
                beta: float = 1.0) -> CutMix | None:
    """Batch ``batch``'s CutMix of epoch ``epoch``, or None when it does not mix. From stream
    ``cmo_mix`` keyed by (epoch, batch), in this order: u ~ U[0, 1) (mix when u < prob),
    lambda ~ Beta(beta, beta), cy ~ U{0..H-1}, cx ~ U{0..W-1}."""
    rng = rng_for(seed, "cmo_mix", epoch, batch)
    if not rng.random() < prob:
        return None
    lam = float(rng.beta(beta, beta))
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    box = cutmix_box(height, width, lam, cy, cx)
    return CutMix(box, label_weight(box, height, width))


def mixed_loss(criterion, logits, y, y2, weight: float):
    """The CutMix loss: weight * l(logits, y) + (1 - weight) * l(logits, y2), ``weight`` = lambda'
    (the background label y's share of the pixels, y2 the pasted minority image's label)."""
    return weight * criterion(logits, y) + (1.0 - weight) * criterion(logits, y2)


def paste(x, x2, box: tuple[int, int, int, int]):
    """x with the box of x2 pasted in (in place; numpy arrays or tensors of (N, C, H, W))."""
    r0, c0, r1, c1 = box
    x[:, :, r0:r1, c0:c1] = x2[:, :, r0:r1, c0:c1]
    return x


__all__ = ["CutMix", "cmo_active", "cutmix_box", "draw_cutmix", "label_weight", "minority_plan", "mixed_loss",
           "paste"]
