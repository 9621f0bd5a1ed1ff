"""The swap source of the staged translating methods (M2m, LDAM-M2m, the ablations with pools of
their own): every epoch's attempts translated into a pool with f as it is at the start of the epoch,
then read back through the pool store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ...datasets import PreparedData
from ...layout import epoch_name
from ...plan import EpochPlan, make_plan
from ...utils import M2mError, progress_bar, state_hash
from ..backends import TranslationBackend
from ..config import TranslationConfig
from ..generate import generate_pool
from ..reuse import check_attrs, read_swaps
from ..rules import NEEDS_REJECTED_X, check_rule
from .stored import StoredSwaps


class TranslatedPools(StoredSwaps):
    """The swap source of a translating method: for each epoch, plan it, translate every attempt
    with the generator and the snapshot of f at the start of the epoch, write the pool to
    ``pools_dir/epoch_<e>``, and take the rows ``rule`` uses: from the writer for M2m's own rule
    (the same rows a read back gives), else read back through the pool store.

    ``generator``: g (M2m), or None for f itself (M2m-Self: the current f generates). ``provenance``
    is written into every pool (e.g. the run name and the warm checkpoint's hash, which ablations
    that reuse the pools check). ``backend`` translates the shards (pools/backends.py; a
    distributed one needs ``model_configs``, g's and f's checkpoint configs).
    """

    def __init__(self, *, g: nn.Module | None, data: PreparedData, cfg: TranslationConfig, seed: int,
                 pools_dir: str | Path, batch_size: int, rule: str = "accepted",
                 rule_params: dict[str, Any] | None = None, allowed_seeds: np.ndarray | None = None,
                 provenance: dict[str, Any] | None = None, progress: bool = True,
                 backend: TranslationBackend | None = None,
                 model_configs: tuple[dict[str, Any], dict[str, Any]] | None = None):
        super().__init__()
        check_rule(rule, rule_params)
        # a rule that trains on rejected rows' x* cannot read pools that keep only the accepted ones:
        # refused before anything is translated (pools.store: accepted)
        if cfg.store == "accepted" and rule in NEEDS_REJECTED_X:
            who = (provenance or {}).get("run", "this run")
            raise M2mError(f"pools.store: accepted keeps x* of accepted rows only, but {who} (rule {rule!r}) "
                           f"trains on rejected rows' x*; set pools.store: all to run it")
        self.backend, self.model_configs = backend, model_configs   # where the shards are translated
        self.g, self.data, self.cfg, self.seed = g, data, cfg, int(seed)
        self.pools_dir, self.batch_size = Path(pools_dir), int(batch_size)
        self.rule, self.rule_params = rule, dict(rule_params or {})
        self.allowed_seeds = allowed_seeds
        self.provenance = dict(provenance or {})
        self.progress = progress

    @property
    def _takes_accepted(self) -> bool:
        """M2m's own rule (every accepted row, nothing else): the writer can hand its rows over."""
        return self.rule == "accepted" and not self.rule_params

    def begin_epoch(self, epoch: int, model: nn.Module) -> tuple[EpochPlan, dict[str, Any]]:
        data = self.data
        plan = make_plan(data.train.y, data.class_counts, seed=self.seed, epoch=epoch, order="balanced",
                         attempts=True, augment=data.augment, batch_size=self.batch_size)
        generator = model if self.g is None else self.g
        path = self.pools_dir / epoch_name(epoch)
        with progress_bar(total=int(plan.attempt.sum()), desc=f"translate epoch {epoch}", enabled=self.progress,
                          unit="row") as bar:
            summary = generate_pool(g=generator, f=model, data=data, plan=plan, cfg=self.cfg, seed=self.seed,
                                    out=path, provenance={**self.provenance, "f_epoch": epoch},
                                    progress=bar.update, allowed_seeds=self.allowed_seeds, backend=self.backend,
                                    model_configs=self.model_configs, keep_accepted=self._takes_accepted)
        expected = {"seed": self.seed, "g_hash": state_hash(generator.state_dict()),
                    "f_hash": state_hash(model.state_dict()), "epoch": epoch}
        if summary.swaps is not None:
            # M2m's own rule: the accepted rows as the writer stored and decoded them, and the plan that
            # was written; the same rows a read back gives (tests/unit/pools), without reading them. The
            # pool's sealed provenance is checked as a read back checks it.
            check_attrs(path, summary.attrs, dataset_fingerprint=data.fingerprint, **expected)
            swaps, counts = summary.swaps, {"n_used": len(summary.swaps)}
        else:
            # Another rule, or shards written elsewhere (resumed, dask): read back through the pool store.
            plan, swaps, counts = read_swaps(path, data, rule=self.rule, rule_params=self.rule_params, **expected)
        self._set_swaps(swaps)
        return plan, {"n_attempts": summary.n_attempts, "n_accepted": summary.n_accepted,
                      "n_used": counts["n_used"], "reasons": summary.reasons}


__all__ = ["TranslatedPools"]
