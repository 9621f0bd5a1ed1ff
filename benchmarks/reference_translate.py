"""A plain restatement of the paper's practical implementation of M2m (Sec. 2.3, "Practical
implementation via re-sampling"), written apart from the library on purpose.

It is two things:
- the baseline of ``translate_speed.py`` and ``gpu_check.sh``: translation done the simple way,
  one class-balanced mini-batch at a time, as the paper describes it;
- a correctness oracle: on the same inputs and draws it must give the same x*, softmax
  probability, loss and accept decisions as ``M2mTranslator.translate``
  (``tests/system/test_benchmarks.py``).

Nothing here imports ``m2m_pipeline``: the rules are restated from the paper.

Per mini-batch B = {(x_i, y_i)} (Sec. 2.3):
1. item i generates with probability 1 - N_{y_i} / N_1;
2. its seed x0 is an item j of B drawn with probability proportional to
   Q(y_j | y_i) = 1 - beta^((N_{y_j} - N_{y_i})^+)  (eq. 5; the authors' release draws among the
   batch's items, so a class that fills more of the batch is picked more often);
3. T steps of x <- clamp(x - eta * grad / ||grad||_2) from x0 + delta, grad of
   CE(g(x), y_i) + lambda * f(x)_{y_j}  (eq. 2, per-sample L2 norm);
4. keep x* when g is confident (softmax(g(x*))_{y_i} >= gamma, the release; or
   CE(g(x*), y_i) <= gamma, Algorithm 1) and u < 1 - beta^((N_{y_j} - N_{y_i})^+)  (eq. 3), and
   x* is finite.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Reason codes, in the library's numbering (so decisions compare one to one).
ACCEPTED, BETA, GAMMA, NON_FINITE, NO_SEED = 0, 1, 2, 3, 4


@dataclass
class BatchDraws:
    """The random choices of one mini-batch (one entry per generating item)."""

    rows: torch.Tensor        # index in the batch of each generating item (target y_i)
    seed_rows: torch.Tensor   # index in the batch of its seed x0 (class y_j)
    noise: torch.Tensor       # delta added to x0, shaped like x0
    u_beta: torch.Tensor      # uniform [0, 1) draw of the eq. (3) test, float64


@dataclass
class BatchResult:
    x_star: torch.Tensor
    target: torch.Tensor
    seed_class: torch.Tensor
    loss: torch.Tensor
    prob: torch.Tensor
    reason: torch.Tensor      # uint8, codes above


def draw_batch(y: torch.Tensor, counts: torch.Tensor, x_shape: tuple[int, ...], *, beta: float,
               noise_radius: float, gen: torch.Generator) -> BatchDraws:
    """Steps 1 and 2 for one batch. Items whose batch holds no larger class have no seed and are
    dropped (the release skips them too). Noise: uniform, rescaled to L2 norm ``noise_radius``
    per sample."""
    counts = counts.double()
    n_max = counts.max()
    p_generate = 1.0 - counts[y] / n_max
    generating = torch.rand(len(y), generator=gen, dtype=torch.float64) < p_generate
    rows, seed_rows = [], []
    for i in torch.nonzero(generating).flatten().tolist():
        gap = (counts[y] - counts[y[i]]).clamp_min(0)
        weight = 1.0 - beta ** gap                       # eq. (5) over the batch's items
        if weight.sum() <= 0:
            continue
        rows.append(i)
        seed_rows.append(int(torch.multinomial(weight, 1, generator=gen)))
    rows_t = torch.tensor(rows, dtype=torch.long)
    seed_t = torch.tensor(seed_rows, dtype=torch.long)
    noise = torch.rand((len(rows), *x_shape), generator=gen) * 2 - 1
    norm = noise.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * len(x_shape)))
    noise = noise / norm * noise_radius
    u_beta = torch.rand(len(rows), generator=gen, dtype=torch.float64)
    return BatchDraws(rows_t, seed_t, noise, u_beta)


def translate_batch(g: nn.Module, f: nn.Module, x: torch.Tensor, y: torch.Tensor, counts: torch.Tensor,
                    draws: BatchDraws, *, steps: int, step_size: float, lam: float, gamma: float,
                    beta: float, gamma_on: str = "prob",
                    input_range: tuple[float, float] | None = (0.0, 1.0)) -> BatchResult:
    """Steps 3 and 4 for one batch (x on the models' device; g and f already in eval mode)."""
    target = y[draws.rows]
    seed_class = y[draws.seed_rows]
    x_gen = x[draws.seed_rows] + draws.noise.to(x.device)
    if input_range is not None:
        x_gen = x_gen.clamp(*input_range)
    tgt, src = target.to(x.device), seed_class.to(x.device)
    for _ in range(steps):
        x_gen = x_gen.detach().requires_grad_(True)
        objective = F.cross_entropy(g(x_gen), tgt, reduction="sum")
        objective = objective + lam * f(x_gen).gather(1, src[:, None]).sum()
        grad, = torch.autograd.grad(objective, x_gen)
        with torch.no_grad():
            norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (x.dim() - 1)))
            x_gen = x_gen - step_size * grad / norm
            if input_range is not None:
                x_gen = x_gen.clamp(*input_range)
    x_star = x_gen.detach()
    with torch.no_grad():
        logits = g(x_star)
        loss = F.cross_entropy(logits, tgt, reduction="none")
        prob = F.softmax(logits, dim=1).gather(1, tgt[:, None]).flatten()
    x_star, loss, prob = x_star.cpu(), loss.cpu(), prob.cpu()

    counts = counts.double()
    gap = (counts[seed_class] - counts[target]).clamp_min(0)
    passes_beta = draws.u_beta < 1.0 - beta ** gap                       # eq. (3)
    confident = prob >= gamma if gamma_on == "prob" else loss <= gamma
    finite = torch.isfinite(x_star.flatten(1)).all(dim=1) & torch.isfinite(loss) & torch.isfinite(prob)
    reason = torch.full((len(target),), ACCEPTED, dtype=torch.uint8)
    reason[~passes_beta] = BETA
    reason[~confident] = GAMMA
    reason[~finite] = NON_FINITE
    return BatchResult(x_star, target, seed_class, loss, prob, reason)


def reference_m2m_batch(g: nn.Module, f: nn.Module, x: torch.Tensor, y: torch.Tensor, counts: torch.Tensor, *,
                        gen: torch.Generator, steps: int = 10, step_size: float = 0.1, lam: float = 0.5,
                        gamma: float = 0.9, beta: float = 0.999, noise_radius: float = 0.1,
                        gamma_on: str = "prob") -> tuple[torch.Tensor, BatchResult]:
    """One mini-batch of Sec. 2.3: the batch with accepted x* in place of its items, and the
    per-attempt result."""
    draws = draw_batch(y.cpu(), counts.cpu(), tuple(x.shape[1:]), beta=beta, noise_radius=noise_radius, gen=gen)
    result = translate_batch(g, f, x, y.cpu(), counts.cpu(), draws, steps=steps, step_size=step_size, lam=lam,
                             gamma=gamma, beta=beta, gamma_on=gamma_on)
    out = x.clone()
    keep = result.reason == ACCEPTED
    out[draws.rows[keep].to(x.device)] = result.x_star[keep].to(x.device)
    return out, result
