"""Reading pools back: provenance checks and the rows an epoch of training swaps in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import PreparedData
from ..plan import EpochPlan
from ..store import Pool, open_pool
from ..utils import M2mError


def check_provenance(pool: Pool, **expected: Any) -> None:
    """Raise M2mError when a pool attribute differs from what its user expects (e.g.
    ``dataset_fingerprint``, ``g_hash``, ``f_hash``, ``epoch``, ``seed``)."""
    attrs = pool.attrs
    for key, want in expected.items():
        have = attrs.get(key)
        if have != want:
            raise M2mError(f"pool {pool.path} was made with {key}={have!r} but is used with {want!r}; "
                           f"regenerate it (m2m-pipeline generate) or point at the matching pool")


def load_swaps(path: str | Path, data: PreparedData, **expected: Any) -> tuple[EpochPlan, dict[int, np.ndarray]]:
    """Read an epoch's plan and its accepted rows: the slots whose real sample training replaces.

    Returns the plan stored in the pool and ``{slot: x*}`` for every accepted row.
    """
    pool = open_pool(path)
    check_provenance(pool, dataset_fingerprint=data.fingerprint, **expected)
    attrs = pool.attrs
    p = pool.plan_arrays()
    plan = EpochPlan(epoch=int(attrs["epoch"]), order=p["order"], attempt=p["attempt"], aug=p["aug"],
                     batch_size=int(attrs["train_batch_size"]))
    accepted = pool.array("accepted")
    rows = np.flatnonzero(accepted)
    slots = pool.array("slot")[rows]
    xs = pool.array("x", rows) if len(rows) else np.zeros((0, *data.input_shape), np.float32)
    return plan, {int(s): xs[i] for i, s in enumerate(slots)}


__all__ = ["check_provenance", "load_swaps"]
