"""M2m-Online: the paper's loop (Algorithm 1), translating each mini-batch with the current f.

The staged design (``generate.TranslatedPools``) translates a whole epoch with f as it was at the
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

from ..acceptance import REASONS
from ..datasets import PreparedData
from ..plan import EpochPlan, make_plan
from ..utils import state_hash
from .config import TranslationConfig
from .draws import SlotDraws, draw_slots
from .generate import data_max_abs, make_translator, translate_rows, write_pool
from .reuse import StoredSwaps, Swap


class OnlinePools(StoredSwaps):
    """Swap source translating the attempt slots of every mini-batch when training reaches it."""

    def __init__(self, *, g: nn.Module, data: PreparedData, cfg: TranslationConfig, seed: int,
                 pools_dir: str | Path, batch_size: int, provenance: dict[str, Any] | None = None):
        super().__init__()
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
        self._f_hash_start = state_hash(model.state_dict())
        return self._plan, {}

    def batch_swaps(self, slots: np.ndarray, model: nn.Module) -> dict[int, Swap]:
        """Translate this batch's attempts with the current f; swap in the accepted x* (label k)."""
        assert self._draws is not None and self._plan is not None, "begin_epoch first"
        if not len(slots):
            return {}
        # Attempt slots are sorted, and a batch is a contiguous run of slots.
        lo = int(np.searchsorted(self._draws.slot, slots[0], side="left"))
        hi = int(np.searchsorted(self._draws.slot, slots[-1], side="right"))
        if hi <= lo:
            return {}
        rows = translate_rows(self.g, model, self.data, self._draws, slice(lo, hi), self.translator, self.cfg,
                              self.seed, self._plan.epoch)
        self._parts.append(rows)
        accepted = np.flatnonzero(rows["accepted"])
        return {int(rows["slot"][i]): Swap(rows["x"][i], int(rows["target"][i])) for i in accepted}

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
        path = self.pools_dir / f"epoch_{self._plan.epoch}"
        summary = write_pool(path, data=self.data, plan=self._plan, cfg=self.cfg, seed=self.seed, rows=rows,
                             g_hash=state_hash(self.g.state_dict()), f_hash=self._f_hash_start,
                             provenance={**self.provenance, "f_epoch": self._plan.epoch, "online": True})
        return {"n_attempts": summary.n_attempts, "n_accepted": summary.n_accepted,
                "n_used": summary.n_accepted, "reasons": summary.reasons,
                "n_no_seed": int(np.count_nonzero(rows["reason"] == REASONS["no_seed"]))}


__all__ = ["OnlinePools"]
