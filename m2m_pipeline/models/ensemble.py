"""A classifier made of several: the mean of their softmax outputs (M2m-Ensemble, Table 5)."""

from __future__ import annotations

import torch
from torch import nn


class MeanSoftmax(nn.Module):
    """Returns log(mean_i softmax(m_i(x))): log-probabilities, so ``cross_entropy`` of the output
    is -log of the ensemble's probability of the label and ``softmax`` of it gives the ensemble's
    probabilities back (log-softmax of normalised log-probabilities is the identity)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        if len(members) < 1:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        log_probs = torch.stack([m(x).log_softmax(dim=1) for m in self.members])
        return torch.logsumexp(log_probs, dim=0) - torch.log(torch.tensor(float(len(self.members))))
