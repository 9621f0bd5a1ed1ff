"""The paper's acceptance rules as plain numpy: eq. (3), eq. (5) and the gamma test.

Kept apart from the gradient steps of ``translate.py`` because two kinds of code decide from the
same rules: translation (on fresh x*) and the ablations that re-decide stored pool rows
(``pools/rules.py``) without translating anything. A stage that only re-decides rows therefore
does not depend on the translation code.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

# Why an attempt ended as it did; the pool stores the code, the names are in its attributes.
# A row with several failing tests gets the highest-priority reason: non_finite, out_of_range,
# gamma, beta. out_of_range: x* lies far outside the data (see OUT_OF_RANGE_FACTOR), where g's
# confidence means nothing (e.g. step sizes that overflow unbounded embedding inputs).
REASONS = {"accepted": 0, "beta": 1, "gamma": 2, "non_finite": 3, "no_seed": 4, "out_of_range": 5}

# A translated row is out of range when one of its values exceeds this many times the largest
# absolute value of the data (its clamp range for bounded inputs, the training split otherwise).
# Each of the T steps moves a row by eta in L2 (eq. 2 with normalised gradients), so with the
# defaults (T = 10, eta <= 1) no honest row comes near it; only a runaway step size does.
OUT_OF_RANGE_FACTOR = 10.0
REASON_NAMES = {code: name for name, code in REASONS.items()}

GAMMA_ON = ("prob", "loss")


def size_gap(class_counts: Iterable[int], seed_class: np.ndarray | int, target: np.ndarray | int) -> np.ndarray:
    """(N_k0 - N_k)^+ for arrays (or scalars) of seed and target classes."""
    counts = np.asarray(list(class_counts), dtype=np.float64)
    return np.maximum(counts[np.asarray(seed_class)] - counts[np.asarray(target)], 0.0)


def accept_prob(class_counts: Iterable[int], seed_class: np.ndarray | int, target: np.ndarray | int,
                beta: float) -> np.ndarray:
    """Eq. (3): P(accept x* translated from k0 to k) = 1 - beta^((N_k0 - N_k)^+)."""
    return 1.0 - np.power(float(beta), size_gap(class_counts, seed_class, target))


def seed_class_probs(class_counts: Iterable[int], target: int, beta: float) -> np.ndarray:
    """Eq. (5): Q(k0 | k) proportional to 1 - beta^((N_k0 - N_k)^+), normalised over k0.

    Classes no larger than k get probability 0, so they are never seeds. Returns all zeros when
    no class is larger than k (the largest class has no seed to translate from).
    """
    counts = np.asarray(list(class_counts), dtype=np.int64)
    weights = accept_prob(counts, np.arange(len(counts)), np.full(len(counts), target), beta)
    total = weights.sum()
    return weights / total if total > 0 else weights


def is_confident(prob_g: np.ndarray, loss_g: np.ndarray, gamma: float, gamma_on: str) -> np.ndarray:
    """The gamma test. ``gamma_on="prob"`` (the authors' release): keep when softmax(g(x*))_k >= gamma.
    ``gamma_on="loss"`` (Algorithm 1, line 12): reject when L(g; x*, k) > gamma, i.e. keep when
    the loss is <= gamma. Both boundaries are inclusive on the keep side."""
    if gamma_on == "prob":
        return np.asarray(prob_g) >= gamma
    if gamma_on == "loss":
        return np.asarray(loss_g) <= gamma
    raise ValueError(f"gamma_on must be one of {GAMMA_ON}, got {gamma_on!r}")


def passes_beta(u_beta: np.ndarray, class_counts: Iterable[int], seed_class: np.ndarray, target: np.ndarray,
                beta: float) -> np.ndarray:
    """Eq. (3) as a draw: a row passes when its uniform ``u_beta`` < 1 - beta^((N_k0 - N_k)^+)."""
    return np.asarray(u_beta, dtype=np.float64) < accept_prob(class_counts, seed_class, target, beta)


def decide(*, finite: np.ndarray, confident: np.ndarray, beta_ok: np.ndarray,
           in_range: np.ndarray | None = None) -> np.ndarray:
    """Reason codes (uint8) from the tests; 0 (accepted) only where all pass. ``in_range``
    (None: not tested) marks rows inside the data's range (:func:`within_range`)."""
    reason = np.full(len(finite), REASONS["accepted"], dtype=np.uint8)
    reason[~np.asarray(beta_ok, dtype=bool)] = REASONS["beta"]
    reason[~np.asarray(confident, dtype=bool)] = REASONS["gamma"]
    if in_range is not None:
        reason[~np.asarray(in_range, dtype=bool)] = REASONS["out_of_range"]
    reason[~np.asarray(finite, dtype=bool)] = REASONS["non_finite"]
    return reason


def range_bound(data_max_abs: float) -> float:
    """The largest absolute value a translated row may hold: OUT_OF_RANGE_FACTOR times the data's."""
    return OUT_OF_RANGE_FACTOR * max(float(data_max_abs), 1e-12)


def within_range(row_max_abs: np.ndarray, bound: float) -> np.ndarray:
    """True for rows whose largest absolute value is at most ``bound`` (NaN rows count as inside:
    the non-finite test names them)."""
    return ~(np.asarray(row_max_abs, dtype=np.float64) > bound)


__all__ = ["GAMMA_ON", "OUT_OF_RANGE_FACTOR", "REASONS", "REASON_NAMES", "accept_prob", "decide", "is_confident",
           "passes_beta", "range_bound", "seed_class_probs", "size_gap", "within_range"]
