"""Value tests of m2m_pipeline/pools/draws.py (fast; used by the mutation run).

Hand-sized plans over the tiny image sets of tests/tiny.py with beta 0.5, so the weights of
eq. (5) are simple fractions: for each attempt slot the seed class, seed row and augmentation are
worked out here from the seeded uniforms of (seed, epoch, slot) and written thresholds, not with
the code under test. The statistics of the seed classes are in tests/rules/test_paper_rules.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from m2m_pipeline.acceptance import seed_class_probs
from m2m_pipeline.plan import EpochPlan, make_plan
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.pools import draws as draws_mod
from m2m_pipeline.pools.draws import _noise_key, draw_slots, seed_inputs, start_noise, start_noise_batch
from m2m_pipeline.utils import rng_for

from tests.tiny import tiny_images, tiny_vectors

SEED, EPOCH = 7, 3


def _u_seed(n_slots: int, seed: int = SEED, epoch: int = EPOCH) -> np.ndarray:
    """The two seed uniforms of every slot: row s of the stream (seed, "seed", epoch)."""
    return rng_for(seed, "seed", epoch).random((n_slots, 2))


def _u_beta(n_slots: int, seed: int = SEED, epoch: int = EPOCH) -> np.ndarray:
    return rng_for(seed, "beta", epoch).random(n_slots)


# -- dataset scope (Algorithm 1): k0 ~ Q(k0 | k), then a uniform row of k0 with its own augmentation --

# N = (3, 5, 10): rows 0-2 class 0, 3-7 class 1, 8-17 class 2. With beta 0.5 the weights of eq. (5):
# target 0: (0, 1 - 0.5^2, 1 - 0.5^7) = (0, 0.75, 0.9921875), so k0 = 1 when u0 * 1.7421875 < 0.75;
# target 1: (0, 0, 1 - 0.5^5): k0 = 2 always; target 2 (the largest class): no seed.
DS_COUNTS = (3, 5, 10)
DS_ORDER = np.array([8, 0, 3, 9, 1, 4, 10, 2, 5, 11, 6, 12, 7, 13, 14, 15, 16, 17], dtype=np.int64)
DS_ATTEMPT = [0, 1, 2, 4, 5, 7, 8, 10, 12, 13]
DS_TARGETS = [2, 0, 1, 0, 1, 0, 1, 1, 1, 2]      # the first attempt has no seed, the ones after it do


def _ds_plan() -> EpochPlan:
    attempt = np.zeros(18, dtype=bool)
    attempt[DS_ATTEMPT] = True
    return EpochPlan(epoch=EPOCH, order=DS_ORDER, attempt=attempt, aug=np.ones((18, 3), np.int16), batch_size=6)


def _ds_by_hand(k: int, u0: float, u1: float, members_of: dict[int, list[int]]):
    """(k0, row) of a dataset-scope attempt of target k, from the thresholds above."""
    if k == 0:
        k0 = 1 if u0 * (0.75 + 0.9921875) < 0.75 else 2
    elif k == 1:
        k0 = 2
    else:
        return -1, -1
    members = members_of[k0]
    if not members:
        return -1, -1
    return k0, members[int(u1 * len(members))]


def _ds_aug_by_hand(n_slots: int, seed: int = SEED, epoch: int = EPOCH) -> np.ndarray:
    """The seed's own crop-and-flip draw: stream (seed, "seed", epoch, 1), crops in 0..2 then flips."""
    rng = rng_for(seed, "seed", epoch, 1)
    crops = rng.integers(0, 3, size=(n_slots, 2))
    flips = rng.integers(0, 2, size=n_slots)
    return np.column_stack([crops, flips]).astype(np.int16)


@pytest.mark.mutation
def test_dataset_scope_draws_by_hand():
    data = tiny_images(DS_COUNTS)
    plan = _ds_plan()
    d = draw_slots(data, plan, TranslationConfig(seed_scope="dataset", beta=0.5), SEED)
    u, aug = _u_seed(18), _ds_aug_by_hand(18)
    members = {0: [0, 1, 2], 1: [3, 4, 5, 6, 7], 2: list(range(8, 18))}
    want = [_ds_by_hand(k, u[s, 0], u[s, 1], members) for s, k in zip(DS_ATTEMPT, DS_TARGETS)]
    assert d.slot.tolist() == DS_ATTEMPT and d.slot.dtype == np.int64
    assert d.target.tolist() == DS_TARGETS and d.target.dtype == np.int64
    assert d.seed_class.tolist() == [k0 for k0, _ in want] and d.seed_class.dtype == np.int64
    assert d.seed_index.tolist() == [i for _, i in want] and d.seed_index.dtype == np.int64
    # both seed classes occur, and the last row of each is drawn (u1 in the top bin of the class)
    assert {k0 for k0, _ in want} == {-1, 1, 2}
    assert {7, 17} <= {i for _, i in want}
    has = np.array([k0 >= 0 for k0, _ in want])
    np.testing.assert_array_equal(d.seed_aug[has], aug[np.array(DS_ATTEMPT)[has]])
    assert d.seed_aug.dtype == np.int16 and not d.seed_aug[~has].any()
    np.testing.assert_array_equal(d.u_beta, _u_beta(18)[DS_ATTEMPT])


@pytest.mark.mutation
@pytest.mark.parametrize("seed", [0, 5, 8, 11])
def test_dataset_scope_draws_by_hand_other_seeds(seed):
    # several streams so that every branch of the hand rule is met (k0 1 and 2, first and last rows)
    data = tiny_images(DS_COUNTS)
    plan = _ds_plan()
    d = draw_slots(data, plan, TranslationConfig(seed_scope="dataset", beta=0.5), seed)
    u = _u_seed(18, seed)
    members = {0: [0, 1, 2], 1: [3, 4, 5, 6, 7], 2: list(range(8, 18))}
    want = [_ds_by_hand(k, u[s, 0], u[s, 1], members) for s, k in zip(DS_ATTEMPT, DS_TARGETS)]
    assert d.seed_class.tolist() == [k0 for k0, _ in want]
    assert d.seed_index.tolist() == [i for _, i in want]
    has = d.seed_class >= 0
    np.testing.assert_array_equal(d.seed_aug[has], _ds_aug_by_hand(18, seed)[d.slot[has]])
    np.testing.assert_array_equal(d.u_beta, _u_beta(18, seed)[DS_ATTEMPT])


@pytest.mark.mutation
def test_dataset_scope_keeps_to_allowed_seeds():
    data = tiny_images(DS_COUNTS)
    plan = _ds_plan()
    cfg = TranslationConfig(seed_scope="dataset", beta=0.5)
    # class 1 may seed only from row 6, class 2 only from rows 9 and 17; class 0 from none
    allowed = np.zeros(18, dtype=bool)
    allowed[[6, 9, 17]] = True
    d = draw_slots(data, plan, cfg, SEED, allowed_seeds=allowed)
    u = _u_seed(18)
    members = {0: [], 1: [6], 2: [9, 17]}
    want = [_ds_by_hand(k, u[s, 0], u[s, 1], members) for s, k in zip(DS_ATTEMPT, DS_TARGETS)]
    assert d.seed_class.tolist() == [k0 for k0, _ in want]
    assert d.seed_index.tolist() == [i for _, i in want]
    assert 6 in d.seed_index and 17 in d.seed_index and set(d.seed_index.tolist()) <= {-1, 6, 9, 17}
    # class 2 not allowed at all: target 1 (whose only seed class is 2) has no seed, and the
    # attempts after it still draw theirs
    allowed[[9, 17]] = False
    d = draw_slots(data, plan, cfg, SEED, allowed_seeds=allowed)
    want = [_ds_by_hand(k, u[s, 0], u[s, 1], {0: [], 1: [6], 2: []}) for s, k in zip(DS_ATTEMPT, DS_TARGETS)]
    assert d.seed_index.tolist() == [i for _, i in want] and d.seed_class.tolist() == [k0 for k0, _ in want]
    assert d.seed_index.tolist()[-2:] == [-1, -1] and 6 in d.seed_index.tolist()[:4]
    t1 = d.target == 1
    assert np.all(d.seed_class[t1] == -1) and np.all(d.seed_index[t1] == -1) and not d.seed_aug[t1].any()


# -- batch scope (the authors' release): an item of the slot's batch, weight Q(y_j | k) ---------------

# N = (10, 5, 3): rows 0-9 class 0, 10-14 class 1, 15-17 class 2; batches of 4 slots, the last one
# holds 2. Raw eq. (5) weights with beta 0.5: target 2: class 0 1 - 0.5^7 = 0.9921875, class 1
# 1 - 0.5^2 = 0.75; target 1: class 0 1 - 0.5^5 = 0.96875; target 0: none.
B_ORDER = np.array([0, 10, 15, 1, 11, 16, 2, 12, 17, 3], dtype=np.int64)   # slot labels 0 1 2 0 | 1 2 0 1 | 2 0
B_ATTEMPT = [2, 4, 5, 8, 9]                                                 # targets 2, 1, 2, 2, 0


def _b_plan() -> EpochPlan:
    attempt = np.zeros(10, dtype=bool)
    attempt[B_ATTEMPT] = True
    aug = np.array([[s % 3, (s + 1) % 3, s % 2] for s in range(10)], dtype=np.int16)   # distinct per slot
    return EpochPlan(epoch=EPOCH, order=B_ORDER, attempt=attempt, aug=aug, batch_size=4)


def _b_pick_by_hand(s: int, u0: float, row_allowed=lambda r: True) -> int:
    """The chosen slot j of attempt slot s (-1: none), from the weights written out per batch."""
    w = {0: 0.9921875, 1: 0.75, 2: 0.0}     # target 2
    if s == 2:      # batch slots 0..3, classes 0 1 2 0
        items = [(0, w[0]), (1, w[1]), (2, 0.0), (3, w[0])]
    elif s == 4:    # target 1 in batch 4..7, classes 1 2 0 1: only slot 6 (class 0) weighs
        items = [(4, 0.0), (5, 0.0), (6, 0.96875), (7, 0.0)]
    elif s == 5:    # target 2 in batch 4..7
        items = [(4, w[1]), (5, 0.0), (6, w[0]), (7, w[1])]
    elif s == 8:    # target 2 in batch 8..9, classes 2 0: only slot 9
        items = [(8, 0.0), (9, w[0])]
    else:           # target 0: no larger class
        return -1
    items = [(j, wj if row_allowed(B_ORDER[j]) else 0.0) for j, wj in items]
    total = sum(wj for _, wj in items)
    if total <= 0:
        return -1
    x, acc = u0 * total, 0.0
    for j, wj in items:
        acc += wj
        if wj > 0 and x < acc:
            return j
    return items[-1][0]


@pytest.mark.mutation
@pytest.mark.parametrize("seed", [SEED, 0, 1, 5])
def test_batch_scope_draws_by_hand(seed):
    data = tiny_images((10, 5, 3))
    plan = _b_plan()
    d = draw_slots(data, plan, TranslationConfig(seed_scope="batch", beta=0.5), seed)
    u = _u_seed(10, seed)
    picks = [_b_pick_by_hand(s, u[s, 0]) for s in B_ATTEMPT]
    labels = data.train.y[B_ORDER]
    assert d.slot.tolist() == B_ATTEMPT and d.target.tolist() == [2, 1, 2, 2, 0]
    assert d.seed_class.tolist() == [int(labels[j]) if j >= 0 else -1 for j in picks]
    assert d.seed_index.tolist() == [int(B_ORDER[j]) if j >= 0 else -1 for j in picks]
    # x0 is the batch item as the batch holds it: the slot's own augmentation
    np.testing.assert_array_equal(d.seed_aug, np.array([plan.aug[j] if j >= 0 else [0, 0, 0] for j in picks]))
    assert d.seed_aug.dtype == np.int16 and d.seed_class.dtype == np.int64 and d.seed_index.dtype == np.int64
    np.testing.assert_array_equal(d.u_beta, _u_beta(10, seed)[B_ATTEMPT])
    # the fixed picks: slot 4 takes slot 6 (row 2), slot 8 the last item of its short batch (row 3)
    assert picks[1] == 6 and picks[3] == 9 and picks[4] == -1


@pytest.mark.mutation
def test_batch_scope_picks_spread_over_the_batch():
    # over a few seeds the hand rule above reaches each weighted item of slot 2 and slot 5
    seen = {2: set(), 5: set()}
    for seed in range(12):
        u = _u_seed(10, seed)
        for s in seen:
            seen[s].add(_b_pick_by_hand(s, u[s, 0]))
    assert seen == {2: {0, 1, 3}, 5: {4, 6, 7}}
    data = tiny_images((10, 5, 3))
    for seed in range(12):
        d = draw_slots(data, _b_plan(), TranslationConfig(seed_scope="batch", beta=0.5), seed)
        u = _u_seed(10, seed)
        assert d.seed_index.tolist() == [int(B_ORDER[j]) if j >= 0 else -1
                                         for j in (_b_pick_by_hand(s, u[s, 0]) for s in B_ATTEMPT)]


@pytest.mark.mutation
@pytest.mark.parametrize("seed", [SEED, 0, 1, 5])
def test_batch_scope_keeps_to_allowed_seeds(seed):
    data = tiny_images((10, 5, 3))
    plan = _b_plan()
    allowed = np.ones(18, dtype=bool)
    allowed[[2, 0]] = False          # rows 2 (slot 6) and 0 (slot 0) may not seed
    d = draw_slots(data, plan, TranslationConfig(seed_scope="batch", beta=0.5), seed, allowed_seeds=allowed)
    u = _u_seed(10, seed)
    picks = [_b_pick_by_hand(s, u[s, 0], lambda r: allowed[r]) for s in B_ATTEMPT]
    assert picks[1] == -1              # slot 4: its only seed, row 2, is not allowed: no_seed
    assert picks[2] in (4, 7)          # slot 5: only the class-1 items remain
    assert d.seed_index.tolist() == [int(B_ORDER[j]) if j >= 0 else -1 for j in picks]
    assert d.seed_class.tolist() == [int(data.train.y[B_ORDER[j]]) if j >= 0 else -1 for j in picks]
    np.testing.assert_array_equal(d.seed_aug, np.array([plan.aug[j] if j >= 0 else [0, 0, 0] for j in picks]))


# -- the edges of the seed uniforms -------------------------------------------------------------------
# A uniform of [0, 1) can be exactly 0 (and 1 - 2**-53): the seed uniforms are replaced here by such
# a value, the other streams kept.

class _FixedUniform:
    def __init__(self, u: float):
        self.u = u

    def random(self, size):
        return np.full(size, self.u)


def _fix_seed_uniforms(monkeypatch, u: float) -> None:
    real = draws_mod.rng_for

    def fake(seed, stream, *keys):
        return _FixedUniform(u) if stream == "seed" and len(keys) == 1 else real(seed, stream, *keys)

    monkeypatch.setattr(draws_mod, "rng_for", fake)


@pytest.mark.mutation
def test_a_zero_uniform_takes_the_first_seed_of_positive_weight(monkeypatch):
    _fix_seed_uniforms(monkeypatch, 0.0)
    # dataset scope: target 0 has Q = (0, 0.43, 0.57): class 1, its first row 3; target 1: class 2, row 8
    d = draw_slots(tiny_images(DS_COUNTS), _ds_plan(), TranslationConfig(seed_scope="dataset", beta=0.5), SEED)
    assert d.seed_class.tolist() == [{0: 1, 1: 2, 2: -1}[k] for k in DS_TARGETS]
    assert d.seed_index.tolist() == [{0: 3, 1: 8, 2: -1}[k] for k in DS_TARGETS]
    # batch scope: slot 2 takes slot 0 (row 0); slot 4 its one weighted item, slot 6 (row 2), not the
    # zero-weight slot 4 before it; slot 5 slot 4 (row 11); slot 8 slot 9 (row 3); slot 9 none
    d = draw_slots(tiny_images((10, 5, 3)), _b_plan(), TranslationConfig(seed_scope="batch", beta=0.5), SEED)
    assert d.seed_index.tolist() == [0, 2, 11, 3, -1]
    assert d.seed_class.tolist() == [0, 0, 1, 0, -1]


# Ten classes where eq. (5)'s weights for the smallest class sum (pairwise, numpy's sum) to one ulp
# more than their running sum: the top uniform 1 - 2**-53 then lands past the last cumulative weight.
EDGE_COUNTS = (29, 28, 23, 19, 17, 12, 7, 6, 3, 2)


@pytest.mark.mutation
@pytest.mark.parametrize("scope", ["dataset", "batch"])
def test_the_top_uniform_takes_the_last_seed_of_positive_weight(monkeypatch, scope):
    data = tiny_vectors(EDGE_COUNTS)
    labels = data.train.y
    first = np.array([int(np.flatnonzero(labels == k)[0]) for k in range(10)])   # one row of each class
    plan = EpochPlan(epoch=0, order=first, attempt=np.arange(10) == 9, aug=np.zeros((10, 3), np.int16),
                     batch_size=10)
    _fix_seed_uniforms(monkeypatch, float(np.nextafter(1.0, 0.0)))
    d = draw_slots(data, plan, TranslationConfig(seed_scope=scope, beta=0.9), 0)
    assert d.target.tolist() == [9]
    k0, row = int(d.seed_class[0]), int(d.seed_index[0])
    # The top uniform takes the last class with Q(k0 | 9) > 0: class 8 (3 rows > 2), never class 9
    # itself (Q = 0), which a search past the end of the cumulative weights would clamp to.
    assert k0 == 8 and labels[row] == 8
    # batch scope: the batch's one row of class 8; dataset scope: the last row of class 8 (u * 3 -> 2)
    assert row == (first[8] if scope == "batch" else int(np.flatnonzero(labels == 8)[-1]))


@pytest.mark.mutation
def test_the_top_uniform_stays_inside_cumulative_weights_short_of_one(monkeypatch):
    # N = (35, 34, 29, 23, 21, 7), beta 0.9, target 5: Q(. | 5) sums to 1 but its running sum ends
    # at 1 - 2^-53. The top uniform scaled by that last value still lands on class 4 (the last
    # class of positive Q); scaled by anything above it (e.g. divided by it), it would run past
    # the end.
    counts = (35, 34, 29, 23, 21, 7)
    data = tiny_vectors(counts)
    assert np.cumsum(seed_class_probs(np.array(counts), 5, 0.9))[-1] < 1.0
    first = np.array([int(np.flatnonzero(data.train.y == k)[0]) for k in range(6)])
    plan = EpochPlan(epoch=0, order=first, attempt=np.arange(6) == 5, aug=np.zeros((6, 3), np.int16), batch_size=6)
    _fix_seed_uniforms(monkeypatch, float(np.nextafter(1.0, 0.0)))
    d = draw_slots(data, plan, TranslationConfig(seed_scope="dataset", beta=0.9), 0)
    assert int(d.seed_class[0]) == 4 and data.train.y[int(d.seed_index[0])] == 4


@pytest.mark.mutation
def test_no_attempts_give_empty_draws():
    data = tiny_vectors()
    plan = EpochPlan(epoch=0, order=np.arange(21), attempt=np.zeros(21, bool), aug=np.zeros((21, 3), np.int16),
                     batch_size=5)
    for scope in ("batch", "dataset"):
        d = draw_slots(data, plan, TranslationConfig(seed_scope=scope), 0)
        assert len(d.slot) == len(d.seed_index) == len(d.u_beta) == 0
        assert d.seed_aug.shape == (0, 3)


# -- start noise --------------------------------------------------------------------------------------

@pytest.mark.mutation
def test_noise_key_is_two_draws_of_the_noise_stream():
    want = rng_for(9, "noise", 4).integers(0, 2**63, size=2)
    key = _noise_key(9, 4)
    assert key == (int(want[0]), int(want[1])) and all(type(k) is int for k in key)
    assert _noise_key(9, 5) != key and _noise_key(8, 4) != key


def _noise_by_hand(shape, radius, seed, epoch, slot) -> np.ndarray:
    """Philox4x64 keyed by (seed, epoch), counter = the slot: uniform [0, 1) in float32, mapped to
    [-1, 1], then scaled to L2 norm ``radius`` (norm in float64)."""
    size = int(np.prod(shape))
    r = np.random.Generator(np.random.Philox(key=_noise_key(seed, epoch), counter=[0, 0, 0, slot]))
    u = r.random(size, dtype=np.float32) * np.float32(2) - np.float32(1)
    norm = np.sqrt(np.sum(u.astype(np.float64) ** 2))
    return (u * np.float32(radius / norm)).reshape(shape)


@pytest.mark.mutation
def test_start_noise_batch_values_by_hand():
    slots = np.array([5, 0, 9, 1000])
    got = start_noise_batch((3, 2, 2), 0.3, 7, 2, slots)
    assert got.shape == (4, 3, 2, 2) and got.dtype == np.float32
    for i, s in enumerate(slots):
        np.testing.assert_array_equal(got[i], _noise_by_hand((3, 2, 2), 0.3, 7, 2, int(s)))
    np.testing.assert_allclose(np.linalg.norm(got.reshape(4, -1).astype(np.float64), axis=1), 0.3, rtol=1e-6)
    # both signs occur: [0, 1) mapped onto [-1, 1]
    assert (got < 0).any() and (got > 0).any()


@pytest.mark.mutation
def test_start_noise_of_an_image_exactly():
    # a CIFAR-sized draw: the norm over 3,072 values is summed in float64, the scale rounded to float32 once
    got = start_noise_batch((3, 32, 32), 0.5, 1, 8, np.array([0, 77]))
    for i, s in enumerate((0, 77)):
        np.testing.assert_array_equal(got[i], _noise_by_hand((3, 32, 32), 0.5, 1, 8, s))


@pytest.mark.mutation
def test_start_noise_has_the_radius_also_when_the_draw_is_short():
    # 2 values per slot: many raw draws have L2 norm below 1 and must still be scaled up to the radius
    got = start_noise_batch((2,), 1.5, 0, 1, np.arange(40))
    norms = np.linalg.norm(got.astype(np.float64), axis=1)
    np.testing.assert_allclose(norms, 1.5, rtol=1e-6)
    raw = np.stack([_noise_by_hand((2,), 1.0, 0, 1, s) for s in range(40)])
    np.testing.assert_allclose(got, raw * 1.5, rtol=1e-6)


@pytest.mark.mutation
def test_start_noise_of_an_all_zero_draw_stays_zero():
    # Slot 3478577 of (seed 0, epoch 0) draws exactly 0.5 as its one float32 uniform (found by search
    # over the slots): mapped to 2 * 0.5 - 1 = 0, a draw of norm 0, which stays 0 rather than 0/0 = NaN.
    assert np.random.Generator(np.random.Philox(key=_noise_key(0, 0), counter=[0, 0, 0, 3478577])).random(
        1, dtype=np.float32)[0] == 0.5
    got = start_noise_batch((1,), 0.5, 0, 0, np.array([3478577, 1]))
    assert got[0, 0] == 0.0 and abs(float(got[1, 0])) == pytest.approx(0.5, rel=1e-6)


@pytest.mark.mutation
def test_start_noise_zero_radius_is_zero():
    got = start_noise_batch((4,), 0.0, 1, 1, np.array([0, 3]))
    assert got.dtype == np.float32 and not got.any()


@pytest.mark.mutation
def test_start_noise_is_independent_of_batching():
    shape = (3, 4, 4)
    together = start_noise_batch(shape, 0.2, 3, 6, np.array([[7, 2], [0, 11]]))   # any array shape of slots
    assert together.shape == (4, *shape)
    alone = [start_noise(shape, 0.2, 3, 6, s) for s in (7, 2, 0, 11)]
    for i, a in enumerate(alone):
        assert a.shape == shape and a.dtype == np.float32
        np.testing.assert_array_equal(together[i], a)
    pairs = start_noise_batch(shape, 0.2, 3, 6, np.array([11, 7]))
    np.testing.assert_array_equal(pairs[0], together[3])
    np.testing.assert_array_equal(pairs[1], together[0])
    assert not np.array_equal(together[0], together[1])
    # another seed or epoch: another draw
    assert not np.allclose(start_noise(shape, 0.2, 4, 6, 7), together[0])
    assert not np.allclose(start_noise(shape, 0.2, 3, 5, 7), together[0])


@pytest.mark.mutation
def test_start_noise_refuses_a_negative_slot():
    with pytest.raises(ValueError, match="non-negative, got -1"):
        start_noise_batch((2,), 0.1, 0, 0, np.array([3, -1]))
    with pytest.raises(ValueError, match="non-negative"):
        start_noise((2,), 0.1, 0, 0, -2)
    assert start_noise((2,), 0.1, 0, 0, 0).shape == (2,)   # slot 0 is a slot


@pytest.mark.mutation
def test_start_noise_of_no_slots_is_empty():
    got = start_noise_batch((3, 2), 0.1, 0, 0, np.array([], dtype=np.int64))
    assert got.shape == (0, 3, 2) and got.dtype == np.float32


# -- seed inputs --------------------------------------------------------------------------------------

@pytest.mark.mutation
def test_seed_inputs_rebuild_x0_with_its_augmentation():
    data = tiny_images((10, 5, 3))
    idx = np.array([4, 0, 17])
    aug = np.array([[0, 2, 1], [1, 1, 0], [2, 0, 0]], np.int16)
    got = seed_inputs(data, idx, aug)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and tuple(got.shape) == (3, 3, 4, 4)
    for i, (r, (dy, dx, flip)) in enumerate(zip(idx, aug)):
        # pad 1 with zeros, crop 4x4 at (dy, dx), flip the width when asked, scale to [0, 1]
        img = np.pad(data.train.x[r].astype(np.float64), ((0, 0), (1, 1), (1, 1)))[:, dy:dy + 4, dx:dx + 4]
        if flip:
            img = img[:, :, ::-1]
        np.testing.assert_allclose(got[i].numpy(), img / 255.0, rtol=1e-6)


@pytest.mark.mutation
def test_seed_inputs_of_vectors_are_the_rows():
    data = tiny_vectors()
    got = seed_inputs(data, np.array([3, 20]), np.zeros((2, 3), np.int16))
    assert got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), data.train.x[[3, 20]])


# -- the digits data: seeds come from larger classes, dataset-scope frequencies follow eq. (5) --------

def _digits_plan(digits, epoch=2, batch_size=64):
    return make_plan(digits.train.y, digits.class_counts, seed=0, epoch=epoch, order="balanced", attempts=True,
                     augment=digits.augment, batch_size=batch_size)


@pytest.mark.parametrize("scope", ["batch", "dataset"])
def test_seeds_are_always_larger_classes(digits, scope):
    cfg = TranslationConfig(seed_scope=scope, beta=0.99)
    plan = _digits_plan(digits)
    d = draw_slots(digits, plan, cfg, seed=0)
    counts = digits.class_counts
    ok = d.seed_class >= 0
    assert ok.mean() > 0.9
    assert np.all(counts[d.seed_class[ok]] > counts[d.target[ok]])
    assert np.all(digits.train.y[d.seed_index[ok]] == d.seed_class[ok])
    if scope == "batch":  # the release: the seed is an item of the slot's own training batch
        for s, idx in zip(d.slot[ok], d.seed_index[ok]):
            assert idx in plan.order[plan.batch_slots(s // plan.batch_size)]

