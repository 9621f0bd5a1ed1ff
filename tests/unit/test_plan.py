"""The epoch plan (plan.py) on the embedded digits data: the same (seed, epoch) gives the same plan, another
epoch another one. The plan's statistics (Sec. 2.3) are in tests/rules/test_properties.py."""

import numpy as np
import pytest

from m2m_pipeline.plan import make_plan


def _digits_plan(digits, epoch=2, batch_size=64):
    return make_plan(digits.train.y, digits.class_counts, seed=0, epoch=epoch, order="balanced", attempts=True,
                     augment=digits.augment, batch_size=batch_size)


def test_plan_is_a_function_of_seed_and_epoch(digits):
    a, b = _digits_plan(digits), _digits_plan(digits)
    assert np.array_equal(a.order, b.order) and np.array_equal(a.attempt, b.attempt)
    c = _digits_plan(digits, epoch=3)
    assert not np.array_equal(a.order, c.order)


# -- balanced and shuffled plans on hand-sized labels (the mutation run uses these) ----------------

@pytest.mark.mutation
def test_balanced_plan_samples_classes_uniformly():
    counts = np.array([1000, 100, 10])
    labels = np.repeat(np.arange(3), counts)
    seen = np.zeros(3)
    for epoch in range(20):
        plan = make_plan(labels, counts, seed=0, epoch=epoch, order="balanced", attempts=False, augment={},
                         batch_size=64)
        assert len(plan) == len(labels)
        seen += np.bincount(labels[plan.order], minlength=3)
    freq = seen / seen.sum()
    np.testing.assert_allclose(freq, [1 / 3] * 3, atol=0.015)  # 22,200 draws: std ~0.003


@pytest.mark.mutation
def test_shuffle_plan_is_a_permutation_and_plans_are_reproducible():
    counts = np.array([50, 5])
    labels = np.repeat(np.arange(2), counts)
    plan = make_plan(labels, counts, seed=3, epoch=1, order="shuffle", attempts=False, augment={}, batch_size=16)
    assert sorted(plan.order.tolist()) == list(range(55))
    again = make_plan(labels, counts, seed=3, epoch=1, order="shuffle", attempts=False, augment={}, batch_size=16)
    np.testing.assert_array_equal(plan.order, again.order)
    assert plan.n_batches == 4 and plan.batch_slots(3).tolist() == [48, 49, 50, 51, 52, 53, 54]


@pytest.mark.mutation
def test_attempt_probability_is_one_minus_n_over_n1():
    counts = np.array([100, 25])
    labels = np.repeat(np.arange(2), counts)
    rate = []
    for epoch in range(40):
        plan = make_plan(labels, counts, seed=1, epoch=epoch, order="balanced", attempts=True, augment={},
                         batch_size=32)
        y = labels[plan.order]
        assert not plan.attempt[y == 0].any()          # the largest class never gets an attempt
        rate.append(plan.attempt[y == 1].mean())
    assert np.mean(rate) == pytest.approx(1 - 25 / 100, abs=0.02)
