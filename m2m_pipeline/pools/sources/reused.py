"""The swap source of the ablations that translate nothing: another run's pools, re-decided.

:class:`ReusedPools` reads the pools of another run (the main M2m run of the seed) and applies an
ablation's rule (pools/rules.py) to the stored rows. This module does not import the translation
code (tests check it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from torch import nn

from ...datasets import PreparedData
from ...layout import epoch_name
from ...plan import EpochPlan
from ...utils import M2mError
from ...store import open_pool
from ..reuse import Swap, check_provenance, read_swaps
from ..rules import check_rule, refuse_unstored
from .stored import StoredSwaps


class ReusedPools(StoredSwaps):
    """Another run's pools under ``pools_dir/epoch_<e>``, re-decided with ``rule`` (an ablation).

    ``expected`` provenance is checked on every epoch's pool: the seed and the warm checkpoint's
    weights hash must be this run's, so the ablation differs from the reused run only by its rule.
    Nothing is translated: this module does not import the translation code.
    """

    def __init__(self, pools_dir: str | Path, data: PreparedData, *, rule: str, seed: int,
                 rule_params: Mapping[str, Any] | None = None, expected: Mapping[str, Any] | None = None,
                 method: str | None = None):
        super().__init__()
        check_rule(rule, rule_params)
        self.pools_dir = Path(pools_dir)
        self.data, self.rule, self.seed = data, rule, int(seed)
        self.rule_params = dict(rule_params or {})
        self.expected = dict(expected or {})
        self.method = method   # the ablation's name, for the errors
        self._prefetch: dict[int, Any] = {}
        self._opened: dict[int, Any] = {}   # epoch -> its Pool, opened and checked by check_ready
        self._pool = None

    def check_ready(self, first: int, end: int) -> None:
        """Refuse, before the run writes anything, pools of epochs ``first``..``end - 1`` that are
        missing or not the reused run's (another seed, warm start or dataset): each pool's
        attributes are opened and compared, no row is read. A refused ablation leaves no run folder."""
        for epoch in range(int(first), int(end)):
            path = self.pools_dir / epoch_name(epoch)
            if not path.exists():
                raise M2mError(f"pool {path} does not exist: the reused run has no pool for epoch {epoch}; "
                               f"run it first (dvc repro, or m2m-pipeline train-f --method "
                               f"{self.expected.get('run', 'M2m')})")
            pool = open_pool(path)
            check_provenance(pool, dataset_fingerprint=self.data.fingerprint, seed=self.seed, **self.expected)
            refuse_unstored(path, self.rule, str(pool.attrs.get("store", "all")), method=self.method,
                            run=str(self.expected.get("run", "M2m")))
            self._opened[epoch] = pool   # read_swaps takes it as opened: one open per pool a run
            if epoch == int(first) and epoch not in self._prefetch:
                # the first epoch's pool is read while the others are checked and the run sets up
                self._prefetch[epoch] = self._executor().submit(self._read, epoch)

    def _read(self, epoch: int) -> tuple[EpochPlan, dict[int, Swap], dict[str, int]]:
        path = self.pools_dir / epoch_name(epoch)
        if epoch not in self._opened and not path.exists():
            raise M2mError(f"pool {path} does not exist: the reused run has no pool for epoch {epoch}; "
                           f"run it first (dvc repro, or m2m-pipeline train-f --method "
                           f"{self.expected.get('run', 'M2m')})")
        return read_swaps(self._opened.pop(epoch, path), self.data, rule=self.rule, rule_params=self.rule_params,
                          seed=self.seed, epoch=epoch, method=self.method, **self.expected)

    def begin_epoch(self, epoch: int, model: nn.Module) -> tuple[EpochPlan, dict[str, Any]]:
        # The reused pools all exist before training starts: while this epoch trains, a background
        # thread reads and re-decides the next one (zarr reads and decoding overlap the training).
        pending = self._prefetch.pop(epoch, None)
        plan, swaps, counts = pending.result() if pending is not None else self._read(epoch)
        for stale in list(self._prefetch):
            self._prefetch.pop(stale).cancel()
        if (self.pools_dir / epoch_name(epoch + 1)).exists():
            self._prefetch[epoch + 1] = self._executor().submit(self._read, epoch + 1)
        self._set_swaps(swaps)
        return plan, counts

    def _executor(self):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool-prefetch")
        return self._pool


__all__ = ["ReusedPools"]
