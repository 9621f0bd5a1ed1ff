"""M2m-Online: the paper's loop (Algorithm 1), translating each mini-batch with the current f; and
the refresh in between (``m2m.refresh_batches`` = R: parts of R mini-batches, each translated
with f as it is when training reaches the part).

The staged design (``sources.translated.TranslatedPools``) translates a whole epoch with f as it was at the
start of the epoch; here the λ·f_k0 term of eq. (2) uses f as it is at the mini-batch, exactly as
the paper and the authors' release do. Everything else is shared with the staged path: the plan,
the per-slot draws (seed, start noise, beta uniform) and the translator, so with an f that does
not change during the epoch both write identical pools. The rows of the epoch are still written
to ``pools_dir/epoch_<e>`` at its end, so they can be browsed and reused like any pool.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ...datasets import PreparedData
from ...layout import epoch_name
from ...plan import EpochPlan, make_plan
from ...utils import state_hash
from ..config import TranslationConfig
from ..draws import SlotDraws, draw_slots
from ..generate import data_max_abs, make_translator, write_pool
from ..reuse import Swap
from ..shard import translate_rows
from .stored import StoredSwaps


class OnlinePools(StoredSwaps):
    """Swap source translating the attempt slots of every mini-batch when training reaches it."""

    def __init__(self, *, g: nn.Module, data: PreparedData, cfg: TranslationConfig, seed: int,
                 pools_dir: str | Path, batch_size: int, provenance: dict[str, Any] | None = None,
                 refresh_batches: int = 1):
        super().__init__()
        if refresh_batches < 1:
            raise ValueError(f"refresh_batches must be >= 1, got {refresh_batches}")
        self.refresh_batches = int(refresh_batches)
        self._part_swaps: dict[int, Swap] = {}
        self._part_end = -1
        self.g, self.data, self.cfg, self.seed = g, data, cfg, int(seed)
        self.pools_dir, self.batch_size = Path(pools_dir), int(batch_size)
        self.provenance = dict(provenance or {})
        self.translator = make_translator(cfg, data.input_range, data_max_abs=data_max_abs(data))
        self._plan: EpochPlan | None = None
        self._draws: SlotDraws | None = None
        self._parts: list[dict[str, np.ndarray]] = []
        self._f_hash_start = ""

    def begin_epoch(self, epoch: int, model: nn.Module) -> tuple[EpochPlan, dict[str, Any]]:
        data = self.data
        self._plan = make_plan(data.train.y, data.class_counts, seed=self.seed, epoch=epoch, order="balanced",
                               attempts=True, augment=data.augment, batch_size=self.batch_size)
        self._draws = draw_slots(data, self._plan, self.cfg, self.seed)
        self._parts = []
        self._part_swaps, self._part_end = {}, -1
        self._f_hash_start = state_hash(model.state_dict())
        return self._plan, {}

    def batch_swaps(self, slots: np.ndarray, model: nn.Module) -> dict[int, Swap]:
        """The accepted x* (label k) of this batch's attempts. When training reaches a slot past the
        current part, the attempts of the next ``refresh_batches`` mini-batches are translated with
        the current f (one mini-batch at a time: the paper's loop)."""
        assert self._draws is not None and self._plan is not None, "begin_epoch first"
        if not len(slots):
            return {}
        if int(slots[-1]) > self._part_end:
            first = int(slots[0])
            last = min(first + self.refresh_batches * self._plan.batch_size, len(self._plan)) - 1
            # Attempt slots are sorted, and a part is a contiguous run of slots.
            lo = int(np.searchsorted(self._draws.slot, first, side="left"))
            hi = int(np.searchsorted(self._draws.slot, last, side="right"))
            self._part_swaps, self._part_end = {}, last
            if hi > lo:
                rows = translate_rows(self.g, model, self.data, self._draws, slice(lo, hi), self.translator,
                                      self.cfg, self.seed, self._plan.epoch)
                self._parts.append(rows)
                self._part_swaps = {int(rows["slot"][i]): Swap(rows["x"][i], int(rows["target"][i]))
                                    for i in np.flatnonzero(rows["accepted"])}
        return {int(s): self._part_swaps[int(s)] for s in slots if int(s) in self._part_swaps}

    def end_epoch(self, model: nn.Module) -> dict[str, Any]:
        """Write the epoch's rows (every attempt, in slot order) as its pool."""
        assert self._draws is not None and self._plan is not None, "begin_epoch first"
        n_attempts = len(self._draws.slot)
        done = sum(len(p["slot"]) for p in self._parts)
        if done < n_attempts:
            # Batches training skipped (a last batch of one row) still get their attempts translated,
            # with the f of the end of the epoch, so the pool holds every planned attempt.
            covered = np.concatenate([p["slot"] for p in self._parts]) if self._parts else np.zeros(0, np.int64)
            missing = np.flatnonzero(~np.isin(self._draws.slot, covered))
            for idx in missing:
                self._parts.append(translate_rows(self.g, model, self.data, self._draws, slice(idx, idx + 1),
                                                  self.translator, self.cfg, self.seed, self._plan.epoch))
        rows = {k: np.concatenate([p[k] for p in self._parts]) for k in self._parts[0]} if self._parts else \
            translate_rows(self.g, model, self.data, self._draws, slice(0, 0), self.translator, self.cfg, self.seed,
                           self._plan.epoch)
        order = np.argsort(rows["slot"], kind="stable")
        rows = {k: v[order] for k, v in rows.items()}
        path = self.pools_dir / epoch_name(self._plan.epoch)
        summary = write_pool(path, data=self.data, plan=self._plan, cfg=self.cfg, seed=self.seed, rows=rows,
                             g_hash=state_hash(self.g.state_dict()), f_hash=self._f_hash_start,
                             provenance={**self.provenance, "f_epoch": self._plan.epoch, "online": True,
                                         "refresh_batches": self.refresh_batches})
        return {"n_attempts": summary.n_attempts, "n_accepted": summary.n_accepted,
                "n_used": summary.n_accepted, "reasons": summary.reasons}


__all__ = ["OnlinePools"]
