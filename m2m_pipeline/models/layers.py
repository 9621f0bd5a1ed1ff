"""Layers every architecture shares: input normalisation and the cosine-normalised last layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Normalize(nn.Module):
    """(x - mean) / std inside the forward pass, so translation moves x in the input's own space."""

    def __init__(self, mean: list[float], std: list[float], image: bool):
        super().__init__()
        shape = (1, -1, 1, 1) if image else (1, -1)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class NormedLinear(nn.Module):
    """Cosine-similarity last layer without bias, as LDAM uses it (logits scaled by s in the loss)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-1, 1))
        # renorm keeps the initial columns at unit scale, as a start for the cosine layer
        with torch.no_grad():
            self.weight.renorm_(2, 1, 1e-5).mul_(1e5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) @ F.normalize(self.weight, dim=0)


def classifier_head(in_features: int, num_classes: int, norm_last: bool) -> nn.Module:
    return NormedLinear(in_features, num_classes) if norm_last else nn.Linear(in_features, num_classes)
