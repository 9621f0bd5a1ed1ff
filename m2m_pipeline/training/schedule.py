"""Presets of model and schedule (Sec. 3.1, Appendix A) and the learning-rate schedule."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from ..utils import M2mError


@dataclass(frozen=True)
class Preset:
    """Model and optimisation recipe of one dataset (params.yaml ``presets.<name>``)."""

    model: str
    epochs: int
    batch_size: int
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 2e-4
    warmup_epochs: int = 5
    milestones: tuple[int, ...] = ()
    lr_factor: float = 0.1
    deferred_epoch: int = 0
    model_args: dict[str, Any] = field(default_factory=dict)
    m2m: dict[str, Any] = field(default_factory=dict)   # per-dataset overrides of the m2m section
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.epochs < 1:
            raise M2mError(f"preset epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            # the loop skips one-row batches (batch norm cannot train on them): nothing would train
            raise M2mError(f"preset batch_size must be >= 2, got {self.batch_size}")
        if not 0 <= self.deferred_epoch <= self.epochs:
            raise M2mError(f"preset deferred_epoch {self.deferred_epoch} must lie in 0..epochs={self.epochs}")
        if list(self.milestones) != sorted(self.milestones):
            raise M2mError(f"preset milestones must be increasing, got {list(self.milestones)}")

    @classmethod
    def from_params(cls, params: dict[str, Any], name: str = "") -> "Preset":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise M2mError(f"preset {name!r}: unknown key(s) {unknown}; known: {sorted(known)}")
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["milestones"] = list(self.milestones)
        return out


def lr_at(epoch: int, preset: Preset) -> float:
    """Learning rate of ``epoch`` (0-based): a linear warm-up over the first ``warmup_epochs``
    epochs (lr * (epoch + 1) / warmup), then ``lr_factor`` applied once per milestone passed
    (CIFAR-LT: x0.01 at 160 and again at 180; Appendix A)."""
    if epoch < preset.warmup_epochs:
        return preset.lr * (epoch + 1) / preset.warmup_epochs
    passed = sum(1 for m in preset.milestones if epoch >= m)
    return preset.lr * preset.lr_factor ** passed
