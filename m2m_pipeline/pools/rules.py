"""What training takes from a pool's stored rows: M2m's rule and the ablations' (Sec. 3.4, Tables 4-5).

A rule is a function of the stored columns only (``target``, ``seed_class``, ``reason``, ``u_beta``,
``prob_g``, ``loss_g``, ``accepted``) and of the pool's recorded parameters, so an ablation that
re-decides rows never translates. Every rule returns, for each row, whether training uses it, the
label it trains under and whether its input is x* or the clean seed x0.

Rules:
- ``accepted`` (M2m, Algorithm 1): the rows that passed every test, x* labelled with the target k.
- ``clean`` (M2m-Clean, Table 4): the same rows, but the clean seed x0 (before noise and steps)
  labelled with k.
- ``rand`` (M2m-Rand, M2m-RS-Rand, Table 4): the same rows, x* labelled with a class drawn uniformly
  from the classes other than k and k0, from the seeded stream ``rand_label`` keyed by (epoch, slot).
- ``no_reject`` (M2m-No-Reject, Table 5): the rejection rule of eq. (3) dropped, the gamma threshold
  kept: every attempted row whose x* is finite (and in range) and passes the pool's own gamma test
  (from the stored ``prob_g`` / ``loss_g``). The paper ablates the two separately (Table 5 has both
  "M2m-No-Reject" and "gamma").
- ``no_reject_no_gamma`` (M2m-No-Reject-No-Gamma, a variant with no paper row): every attempted row
  whose x* is finite (and in range), no beta test and no gamma threshold.
- ``no_gamma`` (Table 5, gamma = infinity): the beta test of eq. (3) re-drawn from the stored
  ``u_beta``, the threshold dropped.
- ``gamma``: the beta test kept and the threshold re-decided with another gamma from the stored
  ``prob_g`` (or ``loss_g`` under ``gamma_on="loss"``); with the pool's own gamma it gives ``accepted``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ..acceptance import REASONS, is_confident, passes_beta
from ..utils import M2mError, rng_for

RULES = ("accepted", "clean", "rand", "no_reject", "no_reject_no_gamma", "no_gamma", "gamma")
# Columns a rule reads; the pool's x is read only for the rows a rule uses.
RULE_COLUMNS = ("slot", "target", "seed_class", "seed_index", "seed_aug", "u_beta", "prob_g", "loss_g",
                "accepted", "reason")
# Rules that train on the x* of rows M2m rejected: a ``pools.store: accepted`` pool cannot serve
# them (``gamma`` can need them too, with a more lenient gamma: read_swaps checks the rows it uses).
NEEDS_REJECTED_X = ("no_reject", "no_reject_no_gamma", "no_gamma")
# Attempts that never produced a usable x*: no seed in the batch, NaN/inf, or far outside the data range.
_UNUSABLE = tuple(REASONS[name] for name in ("non_finite", "no_seed", "out_of_range") if name in REASONS)


@dataclass
class RuleOutcome:
    """Per stored row: ``used`` (bool), ``label`` (int64, -1 where unused), ``clean`` (bool: train
    on x0 instead of x*)."""

    used: np.ndarray
    label: np.ndarray
    clean: np.ndarray


def check_rule(rule: str, rule_params: Mapping[str, Any] | None = None) -> None:
    """Raise M2mError for an unknown rule or a bad rule parameter (names it)."""
    if rule not in RULES:
        raise M2mError(f"unknown pool rule {rule!r}; known: {', '.join(RULES)}")
    if rule == "gamma":
        gamma = (rule_params or {}).get("gamma")
        if gamma is None:
            raise M2mError("pool rule 'gamma' needs a gamma value (ablation_params.M2m-Gamma.gamma)")
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not np.isfinite(gamma) or gamma < 0:
            raise M2mError(f"pool rule 'gamma': gamma must be a finite number >= 0, got {gamma!r}")


def refuse_unstored(path: Any, rule: str, store: str, *, method: str | None = None, run: str = "M2m",
                    rows_needed: int | None = None) -> None:
    """One-line M2mError when a pool of ``store`` (``pools.store``) lacks x* that ``rule`` trains
    on: always for :data:`NEEDS_REJECTED_X` on an accepted-only pool; for another rule when
    ``rows_needed`` (its used rows that were not accepted, whose x* it would read) is not 0."""
    if store != "accepted" or rule == "clean":
        return
    if rule in NEEDS_REJECTED_X or rows_needed:
        who = f"{method} (rule {rule!r})" if method else f"pool rule {rule!r}"
        raise M2mError(f"pool {path} stores x* of accepted rows only (pools.store: accepted) but {who} trains on "
                       f"rejected rows' x*; generate {run}'s pools again with pools.store: all")


def random_other_labels(target: np.ndarray, seed_class: np.ndarray, slot: np.ndarray, num_classes: int,
                        *, seed: int, epoch: int) -> np.ndarray:
    """A label per row drawn uniformly from {0..K-1} minus {k, k0} (M2m-RS-Rand's "random class
    chosen from all the possible classes except for the target and original classes").

    The uniform of row ``i`` is element ``slot[i]`` of the stream ``(seed, rand_label, epoch)``, so
    the draw depends on the slot only: re-runs and any subset of rows agree.
    """
    if num_classes < 3:
        raise M2mError(f"random relabelling needs at least 3 classes (other than k and k0); got {num_classes}")
    n_slots = int(slot.max()) + 1 if len(slot) else 0
    u = rng_for(seed, "rand_label", epoch).random(n_slots)[slot] if len(slot) else np.zeros(0)
    k, k0 = np.asarray(target, dtype=np.int64), np.asarray(seed_class, dtype=np.int64)
    # Index j in 0..K-3 of the allowed classes in increasing order, then skip past k and k0.
    j = np.minimum((u * (num_classes - 2)).astype(np.int64), num_classes - 3)
    lo, hi = np.minimum(k, k0), np.maximum(k, k0)
    label = j + (j >= lo)
    label = label + (label >= hi)
    return label


def apply_rule(rule: str, rows: Mapping[str, np.ndarray], attrs: Mapping[str, Any], *, num_classes: int,
               seed: int, epoch: int, rule_params: Mapping[str, Any] | None = None) -> RuleOutcome:
    """Decide, for every stored row of one epoch's pool, whether and how training uses it.

    ``rows``: the columns of :data:`RULE_COLUMNS`; ``attrs``: the pool's attributes (its
    ``params`` give beta and gamma_on, its ``class_counts`` the N_k of eq. 3).
    """
    check_rule(rule, rule_params)
    n = len(rows["slot"])
    target = np.asarray(rows["target"], dtype=np.int64)
    seed_class = np.asarray(rows["seed_class"], dtype=np.int64)
    reason = np.asarray(rows["reason"])
    usable = ~np.isin(reason, _UNUSABLE)
    params = attrs.get("params", {})
    counts = attrs["class_counts"]

    def beta_ok() -> np.ndarray:
        beta = params.get("beta") if isinstance(params, Mapping) else None
        if (isinstance(beta, bool) or not isinstance(beta, (int, float)) or not np.isfinite(beta)
                or not 0.0 <= beta < 1.0):   # eq. (3): beta in [0, 1), as params.py and POOL_SCHEMA
            raise M2mError(f"pool attribute params.beta must be a finite number in [0, 1), got {beta!r}")
        ok = np.zeros(n, dtype=bool)
        ok[usable] = passes_beta(rows["u_beta"][usable], counts, seed_class[usable], target[usable],
                                 float(beta))
        return ok

    if rule in ("accepted", "clean", "rand"):
        used = np.asarray(rows["accepted"], dtype=bool).copy()
    elif rule == "no_reject":
        used = usable & is_confident(rows["prob_g"], rows["loss_g"], float(params["gamma"]),
                                     str(params.get("gamma_on", "prob")))
    elif rule == "no_reject_no_gamma":
        used = usable
    elif rule == "no_gamma":
        used = beta_ok()
    else:  # gamma
        confident = is_confident(rows["prob_g"], rows["loss_g"], float(rule_params["gamma"]),
                                 str(params.get("gamma_on", "prob")))
        used = beta_ok() & confident
    used &= usable
    label = np.where(used, target, -1)
    if rule == "rand" and used.any():
        label[used] = random_other_labels(target[used], seed_class[used], np.asarray(rows["slot"])[used],
                                          num_classes, seed=seed, epoch=epoch)
    clean = used & (rule == "clean")
    return RuleOutcome(used=used, label=label.astype(np.int64), clean=clean)


__all__ = ["NEEDS_REJECTED_X", "RULES", "RULE_COLUMNS", "RuleOutcome", "apply_rule", "check_rule",
           "random_other_labels", "refuse_unstored"]
