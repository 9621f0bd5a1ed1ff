"""Reading pools back: provenance checks, an epoch's stored plan, and the swaps a rule takes
from the stored rows (:func:`read_swaps`), as arrays sorted by slot (:class:`EpochSwaps`).

Nothing here translates; the swap sources that training drives (pools/sources/: stored,
translated, online, reused) build on these readers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from ..datasets import PreparedData
from ..plan import EpochPlan
from ..store import Pool, open_pool
from ..utils import M2mError
from .codec import read_x
from .draws import seed_inputs
from .rules import RULE_COLUMNS, apply_rule, check_rule, refuse_unstored


class Swap(NamedTuple):
    """What training puts in a slot in place of its real sample: an input and its label."""

    x: np.ndarray
    label: int


class EpochSwaps(NamedTuple):
    """An epoch's swaps as arrays, sorted by slot: ``slot`` (n,), ``x`` (n, *input), ``label`` (n,)."""

    slot: np.ndarray
    x: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.slot)

    def as_dict(self) -> dict[int, Swap]:
        return {int(s): Swap(self.x[i], int(self.label[i])) for i, s in enumerate(self.slot)}

    def between(self, first: int, last: int) -> "BatchSwaps":
        """The swaps of slots ``first``..``last`` (a mini-batch is a contiguous run of slots): views
        of the arrays, read as a ``{slot: Swap}`` mapping or whole (training.loop.batch_inputs)."""
        lo = int(np.searchsorted(self.slot, first, side="left"))
        hi = int(np.searchsorted(self.slot, last, side="right"))
        return BatchSwaps(self.slot[lo:hi], self.x[lo:hi], self.label[lo:hi])


class BatchSwaps(Mapping):
    """A mini-batch's swaps as arrays sorted by slot (views of the epoch's EpochSwaps), and as the
    ``{slot: Swap}`` mapping every swap source gives: a batch builder copies them in one go
    rather than one row at a time."""

    def __init__(self, slot: np.ndarray, x: np.ndarray, label: np.ndarray):
        self.slot, self.x, self.label = slot, x, label

    def __len__(self) -> int:
        return len(self.slot)

    def __iter__(self):
        return iter(int(s) for s in self.slot)

    def __getitem__(self, slot: int) -> Swap:
        i = int(np.searchsorted(self.slot, slot))
        if i >= len(self.slot) or int(self.slot[i]) != int(slot):
            raise KeyError(slot)
        return Swap(self.x[i], int(self.label[i]))

    def __contains__(self, slot: object) -> bool:
        try:
            self[int(slot)]   # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError):
            return False
        return True


def swap_rows(slots: np.ndarray, swaps: Mapping[int, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions in the batch, x (float32), labels (int64)) of the slots of ``slots`` that ``swaps``
    names: a source's BatchSwaps (arrays sorted by slot) in a few numpy calls, any other mapping
    of ``{slot: Swap}`` row by row."""
    if not len(swaps):
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
    if isinstance(swaps, BatchSwaps):
        slots = np.asarray(slots, dtype=np.int64)
        first = int(slots[0])
        if swaps.slot[0] >= first and swaps.slot[-1] <= int(slots[-1]) and bool((np.diff(slots) == 1).all()):
            # a mini-batch is a contiguous run of slots (plan.batch_slots): positions by subtraction
            return swaps.slot - first, np.asarray(swaps.x, dtype=np.float32), np.asarray(swaps.label, dtype=np.int64)
        order = np.argsort(slots, kind="stable")
        at = np.minimum(np.searchsorted(slots[order], swaps.slot), len(slots) - 1)
        hit = slots[order][at] == swaps.slot
        return (order[at[hit]], np.asarray(swaps.x[hit], dtype=np.float32),
                np.asarray(swaps.label[hit], dtype=np.int64))
    positions = [i for i, s in enumerate(slots) if int(s) in swaps]
    if not positions:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.int64)
    swapped = [swaps[int(slots[i])] for i in positions]
    return (np.asarray(positions, dtype=np.int64), np.stack([np.asarray(sw.x, dtype=np.float32) for sw in swapped]),
            np.asarray([int(sw.label) for sw in swapped], dtype=np.int64))


NO_SWAPS = EpochSwaps(np.zeros(0, np.int64), np.zeros((0,), np.float32), np.zeros(0, np.int64))


def check_provenance(pool: Pool, **expected: Any) -> None:
    """Raise M2mError when a pool attribute differs from what its user expects (e.g.
    ``dataset_fingerprint``, ``g_hash``, ``f_hash``, ``warm_hash``, ``epoch``, ``seed``)."""
    check_attrs(pool.path, pool.attrs, **expected)


def check_attrs(path: str | Path, attrs: Mapping[str, Any], **expected: Any) -> None:
    """:func:`check_provenance` on the attributes ``attrs`` of the pool at ``path`` (a writer's
    summary holds them: generate.PoolSummary.attrs)."""
    for key, want in expected.items():
        have = attrs.get(key)
        if have != want:
            raise M2mError(f"pool {path} was made with {key}={have!r} but is used with {want!r}; "
                           f"regenerate it (m2m-pipeline generate) or point at the matching pool")


def pool_plan(pool: Pool) -> EpochPlan:
    """The epoch's plan as stored beside the rows (training reads it back, never recomputes it)."""
    attrs = pool.attrs
    p = pool.plan_arrays()
    return EpochPlan(epoch=int(attrs["epoch"]), order=p["order"], attempt=p["attempt"], aug=p["aug"],
                     batch_size=int(attrs["train_batch_size"]))


def read_pool_x(pool: Pool, rows: np.ndarray, data: PreparedData) -> np.ndarray:
    """x* of the stored ``rows`` (row indices), as the model's float input."""
    if not len(rows):
        return np.zeros((0, *data.input_shape), np.float32)
    return read_x(pool, data, rows)   # decoded from the compact x_delta/x_exp (pools/codec.py)


def read_swaps(path: str | Path | Pool, data: PreparedData, *, rule: str = "accepted", seed: int | None = None,
               rule_params: Mapping[str, Any] | None = None, method: str | None = None,
               **expected: Any) -> tuple[EpochPlan, EpochSwaps, dict[str, int]]:
    """Read an epoch's plan and the swaps that ``rule`` takes from its rows (``path``: the pool's
    folder, or the Pool a caller opened and checked already).

    ``expected`` provenance (``dataset_fingerprint`` always, ``seed`` when given) is compared with
    the pool's attributes first; the seed also keys the random relabelling of ``rule="rand"``.
    Returns (plan, EpochSwaps, counts) where counts has ``n_attempts`` (stored rows), ``n_used``
    (rows the rule uses) and ``n_accepted`` (rows M2m's own rule accepted). A pool written with
    ``pools.store: accepted`` refuses a rule that needs rejected rows' x* (one-line M2mError naming
    ``method`` when given).
    """
    check_rule(rule, rule_params)
    pool = path if isinstance(path, Pool) else open_pool(path)   # a Pool: opened (and checked) by the caller
    # the seed first: a pool of another seed differs in its warm start too, and the seed is the cause
    checks = {"dataset_fingerprint": data.fingerprint, **({"seed": int(seed)} if seed is not None else {}),
              **expected}
    check_provenance(pool, **checks)
    attrs = pool.attrs
    store, run = str(attrs.get("store", "all")), str(attrs.get("run", attrs.get("method", "M2m")))
    refuse_unstored(pool.path, rule, store, method=method, run=run)
    plan = pool_plan(pool)
    cols = pool.rows(RULE_COLUMNS)
    outcome = apply_rule(rule, cols, attrs, num_classes=data.num_classes, seed=int(attrs["seed"]), epoch=plan.epoch,
                         rule_params=rule_params)
    refuse_unstored(pool.path, rule, store, method=method, run=run,
                    rows_needed=int(np.count_nonzero(outcome.used & ~outcome.clean & ~np.asarray(cols["accepted"]))))
    used = np.flatnonzero(outcome.used)
    clean = outcome.clean[used]
    xs = np.empty((len(used), *data.input_shape), np.float32)
    if (~clean).any():
        xs[~clean] = read_pool_x(pool, used[~clean], data)
    if clean.any():
        # M2m-Clean: x0 exactly as it entered translation (the seed row with its recorded augmentation).
        rows_clean = used[clean]
        xs[clean] = seed_inputs(data, cols["seed_index"][rows_clean], cols["seed_aug"][rows_clean]).numpy()
    # rows are stored in slot order, so the swaps come out sorted by slot
    swaps = EpochSwaps(np.asarray(cols["slot"])[used].astype(np.int64), xs, outcome.label[used].astype(np.int64))
    return plan, swaps, {"n_attempts": int(len(cols["slot"])), "n_used": int(len(used)),
                         "n_accepted": int(np.count_nonzero(cols["accepted"]))}


def load_swaps(path: str | Path, data: PreparedData, **expected: Any) -> tuple[EpochPlan, dict[int, Swap]]:
    """M2m's own rule: the plan and ``{slot: Swap(x*, k)}`` for every accepted row."""
    plan, swaps, _ = read_swaps(path, data, rule="accepted", **expected)
    return plan, swaps.as_dict()


__all__ = ["NO_SWAPS", "BatchSwaps", "EpochSwaps", "Swap", "check_attrs", "check_provenance", "load_swaps", "pool_plan", "read_pool_x", "read_swaps", "swap_rows"]
