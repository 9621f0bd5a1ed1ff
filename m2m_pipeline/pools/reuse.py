"""Reading pools back: provenance checks, and the rows an epoch of training swaps in.

Two sources of swaps live here, both without translating anything: :class:`StoredSwaps` (the base:
an epoch's rows already decided) and :class:`ReusedPools`, which reads another run's pools (the
main M2m run of the seed) and applies an ablation's rule (``rules.py``) to the stored rows. The
translating sources (``generate.TranslatedPools``, ``online.OnlinePools``) build on the same base.

A source is driven by the training loop, once per epoch that uses pools:
``begin_epoch(epoch, model) -> (plan, record)``, then ``batch_swaps(slots, model)`` for every
mini-batch, then ``end_epoch(model) -> record``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np
from torch import nn

from ..datasets import PreparedData
from ..plan import EpochPlan
from ..store import Pool, open_pool
from ..utils import M2mError
from .codec import read_x
from .draws import seed_inputs
from .rules import RULE_COLUMNS, apply_rule, check_rule


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

    def between(self, first: int, last: int) -> dict[int, Swap]:
        """The swaps of slots ``first``..``last`` (a mini-batch is a contiguous run of slots)."""
        lo = int(np.searchsorted(self.slot, first, side="left"))
        hi = int(np.searchsorted(self.slot, last, side="right"))
        return {int(self.slot[i]): Swap(self.x[i], int(self.label[i])) for i in range(lo, hi)}


NO_SWAPS = EpochSwaps(np.zeros(0, np.int64), np.zeros((0,), np.float32), np.zeros(0, np.int64))


def check_provenance(pool: Pool, **expected: Any) -> None:
    """Raise M2mError when a pool attribute differs from what its user expects (e.g.
    ``dataset_fingerprint``, ``g_hash``, ``f_hash``, ``warm_hash``, ``epoch``, ``seed``)."""
    attrs = pool.attrs
    for key, want in expected.items():
        have = attrs.get(key)
        if have != want:
            raise M2mError(f"pool {pool.path} was made with {key}={have!r} but is used with {want!r}; "
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


def read_swaps(path: str | Path, data: PreparedData, *, rule: str = "accepted", seed: int | None = None,
               rule_params: Mapping[str, Any] | None = None,
               **expected: Any) -> tuple[EpochPlan, EpochSwaps, dict[str, int]]:
    """Read an epoch's plan and the swaps that ``rule`` takes from its rows.

    ``expected`` provenance (``dataset_fingerprint`` always, ``seed`` when given) is compared with
    the pool's attributes first; the seed also keys the random relabelling of ``rule="rand"``.
    Returns (plan, EpochSwaps, counts) where counts has ``n_attempts`` (stored rows), ``n_used``
    (rows the rule uses) and ``n_accepted`` (rows M2m's own rule accepted).
    """
    check_rule(rule, rule_params)
    pool = open_pool(path)
    # the seed first: a pool of another seed differs in its warm start too, and the seed is the cause
    checks = {"dataset_fingerprint": data.fingerprint, **({"seed": int(seed)} if seed is not None else {}),
              **expected}
    check_provenance(pool, **checks)
    attrs = pool.attrs
    plan = pool_plan(pool)
    cols = pool.rows(RULE_COLUMNS)
    outcome = apply_rule(rule, cols, attrs, num_classes=data.num_classes, seed=int(attrs["seed"]), epoch=plan.epoch,
                         rule_params=rule_params)
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


class StoredSwaps:
    """Base of the swap sources: serves the swaps of the current epoch batch by batch.

    The epoch's swaps are kept as arrays sorted by slot (a batch is a contiguous run of slots, so
    its swaps are found by binary search): building thousands of per-row objects in the prefetch
    thread would hold the GIL the training loop needs.
    """

    def __init__(self) -> None:
        self._swaps = NO_SWAPS

    def _set_swaps(self, swaps: EpochSwaps) -> None:
        # read_swaps returns slots in increasing order already; a source built otherwise is sorted
        if len(swaps) > 1 and np.any(np.diff(swaps.slot) <= 0):
            order = np.argsort(swaps.slot, kind="stable")
            swaps = EpochSwaps(swaps.slot[order], swaps.x[order], swaps.label[order])
        self._swaps = swaps

    def begin_epoch(self, epoch: int, model: nn.Module) -> tuple[EpochPlan, dict[str, Any]]:
        raise NotImplementedError

    def batch_swaps(self, slots: np.ndarray, model: nn.Module) -> dict[int, Swap]:
        if not len(slots) or not len(self._swaps):
            return {}
        return self._swaps.between(int(slots[0]), int(slots[-1]))

    def end_epoch(self, model: nn.Module) -> dict[str, Any]:
        return {}


class ReusedPools(StoredSwaps):
    """Another run's pools under ``pools_dir/epoch_<e>``, re-decided with ``rule`` (an ablation).

    ``expected`` provenance is checked on every epoch's pool: the seed and the warm checkpoint's
    weights hash must be this run's, so the ablation differs from the reused run only by its rule.
    Nothing is translated: this module does not import the translation code.
    """

    def __init__(self, pools_dir: str | Path, data: PreparedData, *, rule: str, seed: int,
                 rule_params: Mapping[str, Any] | None = None, expected: Mapping[str, Any] | None = None):
        super().__init__()
        check_rule(rule, rule_params)
        self.pools_dir = Path(pools_dir)
        self.data, self.rule, self.seed = data, rule, int(seed)
        self.rule_params = dict(rule_params or {})
        self.expected = dict(expected or {})
        self._prefetch: dict[int, Any] = {}
        self._pool = None

    def _read(self, epoch: int) -> tuple[EpochPlan, dict[int, Swap], dict[str, int]]:
        path = self.pools_dir / f"epoch_{epoch}"
        if not path.exists():
            raise M2mError(f"pool {path} does not exist: the reused run has no pool for epoch {epoch}; "
                           f"run it first (dvc repro, or m2m-pipeline train-f --method "
                           f"{self.expected.get('run', 'M2m')})")
        return read_swaps(path, self.data, rule=self.rule, rule_params=self.rule_params, seed=self.seed,
                          epoch=epoch, **self.expected)

    def begin_epoch(self, epoch: int, model: nn.Module) -> tuple[EpochPlan, dict[str, Any]]:
        # The reused pools all exist before training starts: while this epoch trains, a background
        # thread reads and re-decides the next one (zarr reads and decoding overlap the training).
        pending = self._prefetch.pop(epoch, None)
        plan, swaps, counts = pending.result() if pending is not None else self._read(epoch)
        for stale in list(self._prefetch):
            self._prefetch.pop(stale).cancel()
        if (self.pools_dir / f"epoch_{epoch + 1}").exists():
            self._prefetch[epoch + 1] = self._executor().submit(self._read, epoch + 1)
        self._set_swaps(swaps)
        return plan, counts

    def _executor(self):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool-prefetch")
        return self._pool


__all__ = ["EpochSwaps", "ReusedPools", "StoredSwaps", "Swap", "check_provenance", "load_swaps", "pool_plan", "read_pool_x",
           "read_swaps"]
