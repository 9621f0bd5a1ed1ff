"""Exact tests of the translation math (Sec. 2, eq. 2, 3, 5, Algorithm 1) on tiny fixed models."""

import numpy as np
import pytest
import torch
from torch import nn

from m2m_pipeline.translate import (REASONS, M2mTranslator, accept_prob, seed_class_probs,
                                    translation_steps)

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these

COUNTS = np.array([500, 200, 50, 10])


def linear(seed: int, d: int = 6, k: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(d, k)


class Const(nn.Module):
    """Logits that do not depend on x except through a tiny weight (so gradients exist)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits.expand(len(x), -1) + 1e-3 * x.flatten(1).sum(1, keepdim=True) + self.w


def test_seed_class_probs_is_normalised_eq5():
    beta = 0.99
    for k in range(len(COUNTS)):
        q = seed_class_probs(COUNTS, k, beta)
        gap = np.maximum(COUNTS - COUNTS[k], 0)
        expected = 1 - beta ** gap
        if expected.sum() == 0:
            assert np.all(q == 0)
            continue
        np.testing.assert_allclose(q, expected / expected.sum(), rtol=1e-12)
        assert np.all(q[COUNTS <= COUNTS[k]] == 0), "a class no larger than k must never be a seed"
        assert q.sum() == pytest.approx(1.0)


def test_accept_prob_eq3_values():
    assert accept_prob(COUNTS, 0, 3, 0.999) == pytest.approx(1 - 0.999 ** 490)
    assert accept_prob(COUNTS, 3, 0, 0.999) == 0.0


def test_each_step_moves_exactly_eta_before_clamp():
    g, f = linear(0).eval(), linear(1).eval()
    x0 = torch.randn(8, 6)
    target = torch.full((8,), 3)
    seed = torch.zeros(8, dtype=torch.long)
    x = x0
    for _ in range(5):
        x_next = translation_steps(g, f, x, target, seed, steps=1, step_size=0.37, lam=0.5, input_range=None)
        np.testing.assert_allclose((x_next - x).norm(dim=1).numpy(), 0.37, rtol=1e-5)
        x = x_next


def test_clamp_keeps_input_range():
    g, f = linear(0).eval(), linear(1).eval()
    x0 = torch.rand(8, 6)
    x = translation_steps(g, f, x0, torch.full((8,), 3), torch.zeros(8, dtype=torch.long), steps=10,
                          step_size=2.0, lam=0.1, input_range=(0.0, 1.0))
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


def test_lambda_zero_ignores_f():
    g = linear(0).eval()
    x0 = torch.randn(5, 6)
    args = dict(steps=4, step_size=0.2, lam=0.0, input_range=None)
    t, s = torch.full((5,), 2), torch.zeros(5, dtype=torch.long)
    a = translation_steps(g, linear(1).eval(), x0, t, s, **args)
    b = translation_steps(g, linear(2).eval(), x0, t, s, **args)
    assert torch.equal(a, b)
    c = translation_steps(g, linear(1).eval(), x0, t, s, **{**args, "lam": 0.5})
    d = translation_steps(g, linear(2).eval(), x0, t, s, **{**args, "lam": 0.5})
    assert not torch.equal(c, d), "with lambda > 0 the f term must matter"


def test_descent_raises_target_probability():
    g, f = linear(0).eval(), linear(1).eval()
    x0 = torch.randn(16, 6)
    t = torch.full((16,), 3)
    before = g(x0).softmax(1)[:, 3]
    x = translation_steps(g, f, x0, t, torch.zeros(16, dtype=torch.long), steps=10, step_size=0.5, lam=0.0,
                          input_range=None)
    assert torch.all(g(x).softmax(1)[:, 3] > before)


def _run(translator, g, n, target, seed_class, u_beta):
    return translator.translate(g, g, torch.zeros(n, 6), torch.full((n,), target),
                                torch.full((n,), seed_class), class_counts=COUNTS,
                                noise=torch.zeros(n, 6), u_beta=u_beta)


def test_empirical_acceptance_rate_matches_eq3():
    beta, n = 0.995, 20000
    tr = M2mTranslator(steps=1, step_size=0.1, lam=0.0, gamma=0.0, gamma_on="prob", beta=beta, input_range=None)
    u = torch.from_numpy(np.random.default_rng(0).random(n))
    res = _run(tr, linear(0), n, target=2, seed_class=1, u_beta=u)
    p = 1 - beta ** (200 - 50)
    rate = res.accepted.float().mean().item()
    assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / n)
    assert tr.n_attempts_ == n and tr.n_accepted_ == int(res.accepted.sum())
    assert set(tr.reason_counts_) <= {"accepted", "beta"}


def test_non_finite_is_never_accepted():
    class NaNNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x[:, :4] * float("nan") * self.w

    tr = M2mTranslator(steps=2, gamma=0.0, beta=0.5, input_range=None)
    res = _run(tr, NaNNet(), 3, 3, 0, torch.zeros(3))
    assert torch.all(res.reason == REASONS["non_finite"]) and not res.accepted.any()


def test_models_restored_to_their_mode():
    g, f = linear(0).train(), linear(1).train()
    tr = M2mTranslator(steps=1, gamma=0.0, beta=0.5, input_range=None)
    tr.translate(g, f, torch.zeros(2, 6), torch.full((2,), 3), torch.zeros(2, dtype=torch.long),
                 class_counts=COUNTS, noise=torch.zeros(2, 6), u_beta=torch.zeros(2))
    assert g.training and f.training
    assert all(p.grad is None for p in list(g.parameters()) + list(f.parameters()))


@pytest.mark.parametrize("kwargs, match", [
    ({"beta": 1.0}, "beta"), ({"gamma_on": "logit"}, "gamma_on"), ({"step_size": 0.0}, "step_size"),
    ({"gamma": 2.0}, "gamma"), ({"steps": -1}, "steps"),
])
def test_bad_parameters_are_named(kwargs, match):
    tr = M2mTranslator(**{"input_range": None, **kwargs})
    with pytest.raises(ValueError, match=match):
        _run(tr, linear(0), 2, 3, 0, torch.zeros(2))


def test_seed_smaller_than_target_is_refused():
    tr = M2mTranslator(input_range=None)
    with pytest.raises(ValueError, match="larger than its target"):
        _run(tr, linear(0), 2, target=0, seed_class=3, u_beta=torch.zeros(2))
