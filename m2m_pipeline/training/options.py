"""Method parameters beyond the method specs (params.yaml ``train_f``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FitOptions:
    """Method parameters beyond the spec (params.yaml ``train_f``)."""

    focal_gamma: float = 1.0
    cb_beta: float = 0.9999
    ldam_max_margin: float = 0.5
    ldam_s: float = 30.0
    smote_k_neighbors: int = 5
    smote_max_bytes: int | None = None   # SMOTE output limit; None = half the memory available
    weight_reduction: str = "mean"       # class-weighted loss: "mean" (release) | "normalized" (losses.py)
    extra: dict[str, Any] = field(default_factory=dict)


__all__ = ["FitOptions"]
