"""The base of the swap sources: an epoch's swaps already decided, served batch by batch.

A source is driven by the training loop, once per epoch that uses pools:
``begin_epoch(epoch, model) -> (plan, record)``, then ``batch_swaps(slots, model)`` for every
mini-batch, then ``end_epoch(model) -> record``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from ...plan import EpochPlan
from ..reuse import NO_SWAPS, EpochSwaps, Swap


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


__all__ = ["StoredSwaps"]
