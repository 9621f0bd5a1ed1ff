"""Losses and class weights of the compared training schemes (Sec. 3.1 (a)-(i)).

Reduction of a class-weighted loss over a batch (``reduction``):

- ``"mean"`` (default): the plain batch mean of ``w_{y_i} * l_i``. The authors' release computes
  the per-sample loss with ``reduction='none'`` and takes ``.mean()``; with it the weights'
  normalisation to sum K (Sec. 3.1 (d), (e)) sets the scale of the loss.
- ``"normalized"``: ``sum_i w_{y_i} l_i / sum_i w_{y_i}``, PyTorch's weighted mean, which Cao et
  al.'s LDAM-DRW code uses; invariant to the weights' scale.

Without weights both are the plain mean.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils import M2mError

WEIGHTINGS = ("none", "inverse", "effective")
LOSSES = ("ce", "focal", "ldam", "la", "balanced_softmax")
REDUCTIONS = ("mean", "normalized")


def class_weights(kind: str, class_counts: np.ndarray, *, beta: float = 0.9999) -> torch.Tensor | None:
    """Per-class loss weights normalised to sum to K.

    ``inverse`` (RW): w_k proportional to 1 / N_k. ``effective`` (CB-RW and DRW, Cui et al.):
    w_k proportional to (1 - beta) / (1 - beta^N_k), the inverse "effective number" of samples.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    if kind == "none":
        return None
    if counts.ndim != 1 or len(counts) == 0 or np.any(counts <= 0):
        raise M2mError(f"class weights need a positive count for every class, got {counts.tolist()}")
    if kind == "inverse":
        w = 1.0 / counts
    elif kind == "effective":
        if not 0.0 < beta < 1.0:
            raise M2mError(f"effective-number weights need 0 < beta < 1, got beta={beta}")
        w = (1.0 - beta) / (1.0 - np.power(beta, counts))
    else:
        raise M2mError(f"unknown class weighting {kind!r}; known: {WEIGHTINGS}")
    w = w / w.sum() * len(counts)
    return torch.tensor(w, dtype=torch.float32)


def ldam_margins(class_counts: np.ndarray, max_margin: float = 0.5) -> torch.Tensor:
    """LDAM margins Delta_k proportional to N_k^(-1/4), scaled so the largest is ``max_margin``
    (Cao et al.; Sec. 3.1 (i): max margin 0.5)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if np.any(counts <= 0):
        raise M2mError(f"LDAM margins need a positive count for every class, got {counts.tolist()}")
    m = 1.0 / np.power(counts, 0.25)
    return torch.tensor(m * (max_margin / m.max()), dtype=torch.float32)


def log_prior(class_counts: np.ndarray) -> np.ndarray:
    """log pi_k = log(N_k / sum_j N_j), the log of the training set's class prior (float64)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or np.any(counts <= 0):
        raise M2mError(f"the class prior needs a positive count for every class, got {counts.tolist()}")
    return np.log(counts / counts.sum())


def la_offsets(class_counts: np.ndarray, tau: float = 1.0) -> torch.Tensor:
    """The logit-adjusted loss's offsets b_k = tau * log pi_k (Menon et al., ICLR 2021, eq. 10)."""
    return torch.tensor(tau * log_prior(class_counts), dtype=torch.float32)


def balanced_softmax_offsets(class_counts: np.ndarray) -> torch.Tensor:
    """Balanced Softmax's offsets b_k = log N_k (Ren et al., NeurIPS 2020, eq. 4)."""
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or len(counts) == 0 or np.any(counts <= 0):
        raise M2mError(f"Balanced Softmax needs a positive count for every class, got {counts.tolist()}")
    return torch.tensor(np.log(counts), dtype=torch.float32)


def posthoc_offsets(class_counts: np.ndarray, tau: float = 1.0) -> torch.Tensor:
    """Post-hoc logit adjustment's offsets -tau * log pi_k (Menon et al., eq. 9): predict
    argmax_k z_k - tau * log pi_k with a model trained by plain ERM."""
    return torch.tensor(-tau * log_prior(class_counts), dtype=torch.float32)


def _reduce(per_sample: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
            reduction: str) -> torch.Tensor:
    """The module docstring's reductions; the plain mean without weights."""
    if weight is None:
        return per_sample.mean()
    w = weight[target]
    if reduction == "normalized":
        return (w * per_sample).sum() / w.sum()
    return (w * per_sample).mean()


def _check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise M2mError(f"unknown weight reduction {reduction!r}; known: {REDUCTIONS}")
    return reduction


class WeightedCE(nn.Module):
    """Cross entropy, optionally class-weighted: mean_i w_{y_i} * CE(z_i, y_i) (ERM, RW, CB-RW, DRW)."""

    def __init__(self, weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _reduce(F.cross_entropy(logits, target, reduction="none"), target, self.weight, self.reduction)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al.; Sec. 3.1 (h)): mean_i w_{y_i} (1 - p_i)^gamma * CE_i, with p_i the
    softmax probability of the true class (unweighted). gamma = 0 is cross entropy."""

    def __init__(self, gamma: float = 1.0, weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        if gamma < 0:
            raise M2mError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, reduction="none")
        p = torch.exp(-ce)
        return _reduce((1.0 - p) ** self.gamma * ce, target, self.weight, self.reduction)


class LDAMLoss(nn.Module):
    """LDAM (Cao et al.; Sec. 3.1 (i)): subtract the class margin Delta_y from the true-class logit,
    scale every logit by s (30), then cross entropy, optionally class-weighted (LDAM-DRW):
    mean_i w_{y_i} CE(s * (z_i - Delta_{y_i} e_{y_i}), y_i). Used with the cosine-normalised
    last layer, so the logits z are cosines in [-1, 1]."""

    def __init__(self, class_counts: np.ndarray, *, max_margin: float = 0.5, s: float = 30.0,
                 weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.s = s
        self.register_buffer("margins", ldam_margins(class_counts, max_margin), persistent=False)
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        shifted = logits - F.one_hot(target, logits.shape[1]).to(logits.dtype) * self.margins[target][:, None]
        return _reduce(F.cross_entropy(self.s * shifted, target, reduction="none"), target, self.weight,
                       self.reduction)


class LogitAdjustedCE(nn.Module):
    """Cross entropy of the logits shifted by a fixed per-class offset b, optionally class-weighted:
    mean_i w_{y_i} CE(z_i + b, y_i), with b added to every class's logit.

    - LA, the logit-adjusted loss (Menon et al., ICLR 2021, eq. 10), b_k = tau * log pi_k:
      l(y, z) = -log( exp(z_y + tau log pi_y) / sum_k exp(z_k + tau log pi_k) ), tau = 1 by default.
    - Balanced Softmax (Ren et al., NeurIPS 2020, eq. 4), b_k = log N_k:
      l(y, z) = -log( N_y exp(z_y) / sum_k N_k exp(z_k) ).

    At tau = 1 the two are the same loss: log N_k = log pi_k + log N, and the softmax ignores a
    shift shared by every class. Prediction uses the raw logits z (the offset is training-only).
    """

    def __init__(self, offsets: torch.Tensor, weight: torch.Tensor | None = None, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return _reduce(F.cross_entropy(logits + self.offsets, target, reduction="none"), target, self.weight,
                       self.reduction)


def make_criterion(loss: str, class_counts: np.ndarray, weight: torch.Tensor | None, *,
                   focal_gamma: float = 1.0, ldam_max_margin: float = 0.5, ldam_s: float = 30.0,
                   la_tau: float = 1.0, reduction: str = "mean") -> nn.Module:
    """The criterion of a method's loss with class weights ``weight`` (None = unweighted)."""
    if loss == "ce":
        return WeightedCE(weight, reduction)
    if loss == "focal":
        return FocalLoss(focal_gamma, weight, reduction)
    if loss == "ldam":
        return LDAMLoss(class_counts, max_margin=ldam_max_margin, s=ldam_s, weight=weight, reduction=reduction)
    if loss == "la":
        return LogitAdjustedCE(la_offsets(class_counts, la_tau), weight, reduction)
    if loss == "balanced_softmax":
        return LogitAdjustedCE(balanced_softmax_offsets(class_counts), weight, reduction)
    raise M2mError(f"unknown loss {loss!r}; known: {LOSSES}")
