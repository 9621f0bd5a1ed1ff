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
    la_tau: float = 1.0                  # LA, LA-posthoc, LA-M2m: the prior's exponent tau (Menon et al.)
    cmo_prob: float = 0.5                # CMO: share of batches that get a CutMix box (the release's mixup_prob)
    cmo_beta: float = 1.0                # CMO: lambda ~ Beta(cmo_beta, cmo_beta) before the box is cut
    cmo_start_epoch: int = 3             # CMO mixes in epochs e with cmo_start_epoch < e < epochs - cmo_end_epochs
    cmo_end_epochs: int = 3              # (the release's start_data_aug and end_data_aug)
    extra: dict[str, Any] = field(default_factory=dict)


__all__ = ["FitOptions"]
