"""The translation parameters (params.yaml ``m2m``), validated once when they are read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..utils import M2mError

SEED_SCOPES = ("batch", "dataset")
# What a pool stores (params.yaml ``pools.store``; store/pool_schema.POOL_STORES, tests check they agree).
POOL_STORES = ("all", "accepted")


@dataclass
class TranslationConfig:
    """The translation parameters of params.yaml's ``m2m`` section (defaults: Sec. 3.1 and the
    authors' release; see docs/design.md for where the two differ)."""

    steps: int = 10
    step_size: float = 0.1
    lam: float = 0.5
    gamma: float = 0.9
    gamma_on: str = "prob"
    beta: float = 0.999
    seed_scope: str = "batch"
    noise_radius: float = 0.1
    batch_size: int = 256
    rows_per_shard: int = 1024
    max_non_finite: float = 0.0   # share of attempts allowed to come out non-finite before the pool is refused
    # 0: the staged design, an epoch translated with f as it was at the start of the epoch. R >= 1:
    # translated in sub-epoch parts of R mini-batches, each with f as it is when training reaches
    # the part (R = 1 is the paper's online loop, M2m-Online).
    refresh_batches: int = 0
    # params.yaml ``pools.store`` (not ``m2m``): ``all`` stores every attempt's x*; ``accepted`` the
    # accepted rows' x* only (smaller, but M2m-No-Reject and M2m-No-Gamma cannot reuse such pools).
    store: str = "all"

    def __post_init__(self) -> None:
        if not (isinstance(self.refresh_batches, int) and self.refresh_batches >= 0):
            raise M2mError(f"m2m.refresh_batches must be an int >= 0, got {self.refresh_batches!r}")
        if self.seed_scope not in SEED_SCOPES:
            raise M2mError(f"m2m.seed_scope must be one of {SEED_SCOPES}, got {self.seed_scope!r}")
        if self.store not in POOL_STORES:
            raise M2mError(f"pools.store must be one of {', '.join(POOL_STORES)}, got {self.store!r}")
        if self.batch_size < 1 or self.rows_per_shard < 1:
            raise M2mError("m2m.batch_size and m2m.rows_per_shard must be >= 1")
        if self.noise_radius < 0:
            raise M2mError(f"m2m.noise_radius must be >= 0, got {self.noise_radius}")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TranslationConfig":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(params) - known)
        if unknown:
            raise M2mError(f"unknown m2m parameter(s) {unknown}; known: {sorted(known)}")
        return cls(**params)


__all__ = ["POOL_STORES", "SEED_SCOPES", "TranslationConfig"]
