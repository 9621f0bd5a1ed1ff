"""Major-to-minor translation (Sec. 2 and Algorithm 1 of the paper): pure math on tensors.

The acceptance rules (eq. 3, eq. 5, the gamma test) live in ``acceptance.py``; this module adds
the gradient steps of eq. (2) and the translator that applies both.

Nothing here draws random numbers or touches files: the start noise and the uniform draw of the
beta test come in as arguments, so a caller can derive them from (seed, epoch, slot) and a pool
does not depend on how the work is batched.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .acceptance import (GAMMA_ON, REASON_NAMES, REASONS, accept_prob, decide, is_confident, passes_beta,
                         seed_class_probs, size_gap, within_range)
from .models.folding import frozen, inference_copy

@dataclass
class TranslationResult:
    """Per-row outcome of :meth:`M2mTranslator.translate` (all tensors on the CPU)."""

    x: torch.Tensor          # x*, the translated input
    loss_g: torch.Tensor     # L(g; x*, k), cross entropy of g at x*
    prob_g: torch.Tensor     # softmax(g(x*))_k
    accepted: torch.Tensor   # bool
    reason: torch.Tensor     # uint8 codes of REASONS


def _frozen_eval(models: Iterable[nn.Module]) -> list[bool]:
    modes = []
    for m in models:
        modes.append(m.training)
        m.eval()
    return modes


def translation_steps(g: nn.Module, f: nn.Module, x_start: torch.Tensor, target: torch.Tensor,
                      seed_class: torch.Tensor, *, steps: int, step_size: float, lam: float,
                      input_range: tuple[float, float] | None) -> torch.Tensor:
    """Approximately solve eq. (2), x* = argmin_x L(g; x, k) + lambda * f_k0(x), from x_start.

    Each of the ``steps`` updates is x <- x - eta * grad / ||grad||_2 with the L2 norm taken per
    sample, so every step moves each sample by exactly ``step_size`` before the clamp to
    ``input_range``. The models must already be in eval mode; only x receives gradients.
    """
    # x is one leaf updated in place: no new input-sized tensors a step (the graph of a step is
    # freed by autograd.grad before the update, so the in-place write is safe)
    x = x_start.detach().clone().requires_grad_(True)
    seed_col = seed_class[:, None]
    # g and f normalise their input the same way (both trained on the same data): normalise once
    # and run both networks on it, one normalisation pass and one backward through it, not two.
    shared = _shared_normalize(g, f)
    for _ in range(steps):
        if shared is not None:
            z = shared(x)
            logits_g = g.net(z)
            logits_f = f.net(z) if lam != 0.0 else None
        else:
            logits_g = g(x)
            logits_f = f(x) if lam != 0.0 else None
        loss = F.cross_entropy(logits_g, target, reduction="sum")
        if logits_f is not None:
            loss = loss + lam * logits_f.gather(1, seed_col).sum()
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            norm = grad.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))
            # A zero gradient (a saturated model) gives a zero step rather than 0/0. One fused
            # multiply-add per element: x - grad * (eta / ||grad||).
            x.addcmul_(grad, norm.clamp_min(1e-12).reciprocal_().mul_(-step_size))
            if input_range is not None:
                x.clamp_(*input_range)
    return x.detach()


def _shared_normalize(g: nn.Module, f: nn.Module) -> nn.Module | None:
    """The input normalisation of g when f's is the same map (both ``Classifier``s), else None."""
    ng, nf = getattr(g, "normalize", None), getattr(f, "normalize", None)
    if ng is None or nf is None or not (hasattr(g, "net") and hasattr(f, "net")):
        return None
    if ng is nf or (isinstance(ng, nn.Identity) and isinstance(nf, nn.Identity)):
        return ng
    bg, bf = dict(ng.named_buffers()), dict(nf.named_buffers())
    if type(ng) is type(nf) and bg.keys() == bf.keys() and bg and all(torch.equal(bg[n], bf[n]) for n in bg):
        return ng
    return None


class M2mTranslator:
    """Translate majority seeds into minority samples and decide which to keep (Algorithm 1).

    Shaped like an imbalanced-learn sampler: the constructor only stores its keyword arguments;
    :meth:`translate` validates its inputs once and runs the math in ``_translate``; run
    diagnostics are attributes with a trailing underscore (``n_attempts_``, ``n_accepted_``,
    ``reason_counts_``, ``accept_rate_``), accumulated over calls until :meth:`reset`.

    Parameters (Sec. 3.1 defaults): ``steps`` T = 10, ``step_size`` eta = 0.1, ``lam`` lambda = 0.5,
    ``gamma`` = 0.9 and ``gamma_on`` = "prob" (the authors' release: keep x* when softmax(g(x*))_k
    >= gamma) or "loss" (Algorithm 1: reject when L(g; x*, k) > gamma), ``beta`` = 0.999 for the
    rejection rule of eq. (3). ``input_range`` is the clamp range of the input, None for none.
    ``max_abs``: rows of x* with a value beyond it are rejected as ``out_of_range`` (None: no
    test; :func:`m2m_pipeline.acceptance.range_bound` derives it from the data).
    """

    def __init__(self, *, steps: int = 10, step_size: float = 0.1, lam: float = 0.5, gamma: float = 0.9,
                 gamma_on: str = "prob", beta: float = 0.999,
                 input_range: tuple[float, float] | None = (0.0, 1.0), max_abs: float | None = None):
        self.steps = steps
        self.step_size = step_size
        self.lam = lam
        self.gamma = gamma
        self.gamma_on = gamma_on
        self.beta = beta
        self.input_range = input_range
        self.max_abs = max_abs
        self.reset()

    def reset(self) -> "M2mTranslator":
        self.n_attempts_ = 0
        self.n_accepted_ = 0
        self.reason_counts_: Counter = Counter()
        return self

    @property
    def accept_rate_(self) -> float:
        return self.n_accepted_ / self.n_attempts_ if self.n_attempts_ else float("nan")

    def get_params(self) -> dict:
        return {"steps": self.steps, "step_size": self.step_size, "lam": self.lam, "gamma": self.gamma,
                "gamma_on": self.gamma_on, "beta": self.beta,
                "input_range": list(self.input_range) if self.input_range is not None else None}

    def check_params(self) -> None:
        """Raise ValueError naming the first bad parameter."""
        if not (isinstance(self.steps, int) and self.steps >= 0):
            raise ValueError(f"steps must be a non-negative int, got {self.steps!r}")
        if not self.step_size > 0:
            raise ValueError(f"step_size must be > 0, got {self.step_size!r}")
        if not self.lam >= 0:
            raise ValueError(f"lam must be >= 0, got {self.lam!r}")
        if not 0 <= self.beta < 1:   # eq. (3): beta in [0, 1)
            raise ValueError(f"beta must be in [0, 1), got {self.beta!r}")
        if self.gamma_on not in GAMMA_ON:
            raise ValueError(f"gamma_on must be one of {GAMMA_ON}, got {self.gamma_on!r}")
        if self.gamma_on == "prob" and not 0 <= self.gamma <= 1:
            raise ValueError(f"gamma must be in [0, 1] when gamma_on='prob', got {self.gamma!r}")
        if self.gamma_on == "loss" and not self.gamma >= 0:
            raise ValueError(f"gamma must be >= 0 when gamma_on='loss', got {self.gamma!r}")
        if self.input_range is not None and not self.input_range[0] < self.input_range[1]:
            raise ValueError(f"input_range must be (low, high) with low < high, got {self.input_range!r}")
        if not (np.isfinite(self.step_size) and np.isfinite(self.lam) and np.isfinite(self.gamma)):
            raise ValueError(f"step_size, lam and gamma must be finite, got {self.step_size!r}, {self.lam!r}, "
                             f"{self.gamma!r}")
        if self.max_abs is not None and not (np.isfinite(self.max_abs) and self.max_abs > 0):
            raise ValueError(f"max_abs must be a finite number > 0 or None, got {self.max_abs!r}")

    def translate(self, g: nn.Module, f: nn.Module, x0: torch.Tensor, target: torch.Tensor,
                  seed_class: torch.Tensor, *, class_counts: Iterable[int], noise: torch.Tensor,
                  u_beta: torch.Tensor) -> TranslationResult:
        """Translate the seeds ``x0`` (of classes ``seed_class``) towards classes ``target``.

        ``noise`` is added to x0 for the start point (clamped to ``input_range``); ``u_beta`` are
        uniform [0, 1) draws for the beta test: a row passes when u_beta < 1 - beta^((N_k0-N_k)^+).
        g and f are put in eval mode for the call and restored afterwards.
        """
        self.check_params()
        counts = np.asarray(list(class_counts), dtype=np.int64)
        n = len(x0)
        if target.shape != (n,) or seed_class.shape != (n,) or u_beta.shape != (n,):
            raise ValueError(f"target, seed_class and u_beta must have shape ({n},); got "
                             f"{tuple(target.shape)}, {tuple(seed_class.shape)}, {tuple(u_beta.shape)}")
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
        if n and (int(target.min()) < 0 or int(target.max()) >= len(counts)):
            raise ValueError(f"target classes must lie in 0..{len(counts) - 1}")
        if n and (int(seed_class.min()) < 0 or int(seed_class.max()) >= len(counts)):
            raise ValueError(f"seed classes must lie in 0..{len(counts) - 1}")
        if n and np.any(counts[seed_class.cpu().numpy()] <= counts[target.cpu().numpy()]):
            raise ValueError("every seed class must be larger than its target class (N_k0 > N_k)")
        return self._translate(g, f, x0, target, seed_class, counts, noise, u_beta)

    def _translate(self, g: nn.Module, f: nn.Module, x0: torch.Tensor, target: torch.Tensor,
                   seed_class: torch.Tensor, counts: np.ndarray, noise: torch.Tensor,
                   u_beta: torch.Tensor) -> TranslationResult:
        device = next(g.parameters()).device
        modes = _frozen_eval((g, f))
        try:
            # Eval-mode copies with BN folded into the convs (cached per weights version) and
            # frozen parameters: the same functions, fewer passes (docs/performance.md).
            g_fast, f_fast = inference_copy(g), inference_copy(f)
            x_start = (x0 + noise).to(device)
            if self.input_range is not None:
                x_start = x_start.clamp(*self.input_range)
            tgt, src = target.to(device), seed_class.to(device)
            with frozen(g_fast, f_fast), torch.enable_grad():
                x_star = translation_steps(g_fast, f_fast, x_start, tgt, src, steps=self.steps,
                                           step_size=self.step_size, lam=self.lam,
                                           input_range=self.input_range)
            with torch.no_grad():
                logits = g_fast(x_star)
                loss_g = F.cross_entropy(logits, tgt, reduction="none")
                prob_g = logits.softmax(dim=1).gather(1, tgt[:, None]).squeeze(1)
        finally:
            # restored last-in first-out: when f is g, g's own mode (recorded first) is what stays
            for m, mode in reversed(list(zip((g, f), modes))):
                m.train(mode)
        # float32 on the CPU whatever the device and autocast dtype (bf16 under torch.autocast)
        x_star, loss_g, prob_g = x_star.float().cpu(), loss_g.float().cpu(), prob_g.float().cpu()

        finite = torch.isfinite(x_star.flatten(1)).all(dim=1) & torch.isfinite(loss_g) & torch.isfinite(prob_g)
        confident = is_confident(prob_g.numpy(), loss_g.numpy(), self.gamma, self.gamma_on)
        beta_ok = passes_beta(u_beta.cpu().numpy(), counts, seed_class.cpu().numpy(), target.cpu().numpy(),
                              self.beta)
        in_range = None if self.max_abs is None or x_star.numel() == 0 else within_range(
            x_star.flatten(1).abs().amax(dim=1).numpy(), self.max_abs)
        reason = torch.from_numpy(decide(finite=finite.numpy(), confident=confident, beta_ok=beta_ok,
                                         in_range=in_range))
        accepted = reason == REASONS["accepted"]

        self.n_attempts_ += len(x0)
        self.n_accepted_ += int(accepted.sum())
        self.reason_counts_.update(REASON_NAMES[int(c)] for c in reason)
        return TranslationResult(x_star, loss_g, prob_g, accepted, reason)


__all__ = ["GAMMA_ON", "REASONS", "REASON_NAMES", "M2mTranslator", "TranslationResult", "accept_prob",
           "seed_class_probs", "size_gap", "translation_steps"]
