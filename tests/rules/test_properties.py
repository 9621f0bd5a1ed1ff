"""Rules that hold for all inputs, checked over generated class sizes, beta, seeds and shapes (hypothesis).

Each property keeps ``max_examples`` small and ``deadline=None`` so the file runs in a few seconds on
a shared 2-core CPU; hypothesis still shrinks any failure to a minimal case.
"""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from m2m_pipeline.acceptance import REASONS, accept_prob, seed_class_probs
from m2m_pipeline.datasets import PreparedData, Split
from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig, generate_pool
from m2m_pipeline.store import POOL_ROW_ARRAYS, open_pool
from m2m_pipeline.translate import M2mTranslator

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=5, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

sizes = st.lists(st.integers(1, 5000), min_size=2, max_size=8)
betas = st.floats(0.5, 0.9999)


# -- eq. (3) and eq. (5) -------------------------------------------------------------------------

@FAST
@given(n_target=st.integers(1, 5000), gap_a=st.integers(0, 5000), gap_b=st.integers(0, 5000), beta=betas)
def test_eq3_is_a_probability_that_grows_with_the_size_gap(n_target, gap_a, gap_b, beta):
    small, large = sorted((gap_a, gap_b))
    counts = [n_target + small, n_target + large, n_target]
    p_small, p_large = float(accept_prob(counts, 0, 2, beta)), float(accept_prob(counts, 1, 2, beta))
    assert 0.0 <= p_small <= p_large <= 1.0
    assert p_small == pytest.approx(1 - beta ** small, abs=1e-12)
    # a seed no larger than its target is never accepted: (N_k0 - N_k)^+ = 0 gives 1 - beta^0 = 0
    assert float(accept_prob(counts, 2, 0, beta)) == 0.0


@FAST
@given(counts=sizes, beta=betas, data=st.data())
def test_q_sums_to_one_over_larger_classes_and_is_zero_elsewhere(counts, beta, data):
    counts = np.array(counts)
    k = data.draw(st.integers(0, len(counts) - 1))
    q = seed_class_probs(counts, k, beta)
    larger = counts > counts[k]
    assert q.shape == (len(counts),)
    assert np.all(q[~larger] == 0.0)
    if larger.any():
        assert q.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(q[larger] > 0.0)
        # Q grows with the size of the seed class: a larger class is never less likely
        by_size = np.argsort(counts[larger], kind="stable")
        assert np.all(np.diff(q[larger][by_size]) >= -1e-15)
    else:
        assert np.all(q == 0.0)


# -- the plan (Sec. 2.3, re-sampling) ------------------------------------------------------------

@settings(max_examples=15, deadline=None)
@given(counts=st.lists(st.integers(1, 40), min_size=2, max_size=6), seed=st.integers(0, 2**31 - 1))
def test_balanced_plan_is_balanced_in_expectation(counts, seed):
    counts = np.array(counts)
    labels = np.repeat(np.arange(len(counts)), counts)
    n_classes, epochs = len(counts), 30
    slot_class = np.zeros(n_classes)
    real_of_class, expected_real, var_real = np.zeros(n_classes), np.zeros(n_classes), np.zeros(n_classes)
    for e in range(epochs):
        plan = make_plan(labels, counts, seed=seed, epoch=e, order="balanced", attempts=True, augment={},
                         batch_size=16)
        y = labels[plan.order]
        slot_class += np.bincount(y, minlength=n_classes)
        real_of_class += np.bincount(y[~plan.attempt], minlength=n_classes)
        keep = counts[y] / counts.max()          # a class-y slot stays real with probability N_y / N_1
        expected_real += np.bincount(y, weights=keep, minlength=n_classes)
        var_real += np.bincount(y, weights=keep * (1 - keep), minlength=n_classes)
    n = epochs * len(labels)
    # every class fills a slot with probability 1/K: within 5 sigma of a binomial(n, 1/K)
    sigma = np.sqrt(n * (1 / n_classes) * (1 - 1 / n_classes))
    assert np.all(np.abs(slot_class - n / n_classes) <= 5 * sigma)
    assert np.all(np.abs(real_of_class - expected_real) <= 5 * np.sqrt(var_real) + 1e-9)
    largest = counts == counts.max()
    assert np.array_equal(real_of_class[largest], slot_class[largest])  # the largest class is never translated


@settings(max_examples=15, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=2, max_size=6), seed=st.integers(0, 2**31 - 1),
       epoch=st.integers(0, 1000))
def test_shuffle_plan_is_a_permutation_without_attempts(counts, seed, epoch):
    labels = np.repeat(np.arange(len(counts)), counts)
    plan = make_plan(labels, np.array(counts), seed=seed, epoch=epoch, order="shuffle", attempts=False,
                     augment={"crop_pad": 2, "flip": True}, batch_size=7)
    assert np.array_equal(np.sort(plan.order), np.arange(len(labels)))
    assert plan.attempt.dtype == bool and not plan.attempt.any()
    assert plan.aug.shape == (len(labels), 3)
    assert np.all((plan.aug[:, :2] >= 0) & (plan.aug[:, :2] <= 4)) and set(np.unique(plan.aug[:, 2])) <= {0, 1}


# -- pools: identical under any split; never a non-finite accepted row ---------------------------

def _vector_data() -> PreparedData:
    rng = np.random.default_rng(11)
    y = np.repeat([0, 1, 2], [30, 12, 4])
    split = Split(rng.normal(size=(len(y), 5)).astype(np.float32), y)
    return PreparedData(name="vec3", class_names=["a", "b", "c"], train=split, val=split, test=split,
                        input_kind="vector", input_range=None, mean=[0.0] * 5, std=[1.0] * 5)


def _linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(5, 3).eval()


@pytest.fixture(scope="module")
def reference_pool(tmp_path_factory):
    data, g, f = _vector_data(), _linear(0), _linear(1)
    plan = make_plan(data.train.y, data.class_counts, seed=3, epoch=4, order="balanced", attempts=True, augment={},
                     batch_size=16)
    out = tmp_path_factory.mktemp("ref") / "pool"
    cfg = TranslationConfig(steps=3, step_size=0.5, beta=0.9, gamma=0.4, batch_size=1000, rows_per_shard=1000)
    generate_pool(g=g, f=f, data=data, plan=plan, cfg=cfg, seed=3, out=out)
    return data, g, f, plan, cfg, open_pool(out).rows()


@SLOW
@given(batch_size=st.integers(1, 40), rows_per_shard=st.integers(1, 40), scope=st.just("batch"))
def test_pool_is_identical_under_any_split(tmp_path_factory, reference_pool, batch_size, rows_per_shard, scope):
    data, g, f, plan, cfg, ref = reference_pool
    from dataclasses import replace

    out = tmp_path_factory.mktemp("split") / "pool"
    s = generate_pool(g=g, f=f, data=data, plan=plan, cfg=replace(cfg, batch_size=batch_size,
                                                                   rows_per_shard=rows_per_shard),
                      seed=3, out=out)
    rows = open_pool(s.path).rows()
    assert len(rows["slot"]) == len(ref["slot"]) > 0
    assert 0 < int(ref["accepted"].sum()) < len(ref["slot"])   # the reference has both outcomes
    for name in POOL_ROW_ARRAYS:
        if rows[name].dtype.kind == "f":   # batched float math may differ in the last bits
            np.testing.assert_allclose(rows[name], ref[name], rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            assert np.array_equal(rows[name], ref[name]), name


@settings(max_examples=30, deadline=None)
@given(scale_exp=st.integers(0, 38), step_size=st.floats(1e-3, 1e6), lam=st.floats(0.0, 10.0),
       bad=st.sampled_from([None, float("nan"), float("inf"), -float("inf")]), n=st.integers(1, 6),
       gamma_on=st.sampled_from(["prob", "loss"]), seed=st.integers(0, 1000))
def test_no_accepted_row_is_non_finite(scale_exp, step_size, lam, bad, n, gamma_on, seed):
    # Weights up to 1e38 overflow float32 logits to inf (CE and softmax then NaN); a NaN or inf in
    # the start point propagates through every step. None of those rows may be accepted.
    torch.manual_seed(seed)
    g, f = nn.Linear(4, 3), nn.Linear(4, 3)
    with torch.no_grad():
        g.weight.mul_(10.0 ** scale_exp)
    x0 = torch.randn(n, 4)
    if bad is not None:
        x0[0, 0] = bad
    t = M2mTranslator(steps=2, step_size=step_size, lam=lam, gamma=0.0 if gamma_on == "prob" else float(np.finfo(np.float32).max),
                      gamma_on=gamma_on, beta=0.5, input_range=None)
    res = t.translate(g, f, x0, torch.full((n,), 2), torch.zeros(n, dtype=torch.long), class_counts=[100, 50, 1],
                      noise=torch.zeros_like(x0), u_beta=torch.zeros(n))
    finite = torch.isfinite(res.x.flatten(1)).all(1) & torch.isfinite(res.loss_g) & torch.isfinite(res.prob_g)
    assert not torch.any(res.accepted & ~finite)
    assert torch.equal(res.reason == REASONS["non_finite"], ~finite)
    # every finite row passes here (gamma always met, eq. 3 accepts 1 - 0.5^99): the rule removes only the bad ones
    assert torch.equal(res.accepted, finite)
    if bad is not None:
        assert not bool(res.accepted[0])
