"""Value tests of m2m_pipeline/pools/reuse.py (fast; used by the mutation run).

Pools are written with hand-made rows (``generate.write_pool``, no model is trained) for the tiny
4-class image set of tests/tiny.py, N = (8, 5, 3, 2), so every row that reading a pool back must
give, its slot, label and input are known here in advance.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from m2m_pipeline.plan import EpochPlan
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.pools.generate import write_pool
from m2m_pipeline.pools.reuse import (NO_SWAPS, EpochSwaps, Swap, check_provenance, load_swaps, pool_plan, read_pool_x,
                                      read_swaps)
from m2m_pipeline.pools.sources.reused import ReusedPools
from m2m_pipeline.pools.sources.stored import StoredSwaps
from m2m_pipeline.store import open_pool
from m2m_pipeline.utils import M2mError, rng_for

from tests.tiny import tiny_images

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these

COUNTS = (8, 5, 3, 2)   # training rows 0-7 class 0, 8-12 class 1, 13-15 class 2, 16-17 class 3
N_SLOTS = 18
BATCH = 4
# beta 0.5 in the pool's params (the no_gamma rule re-draws eq. 3 with it)
CFG = TranslationConfig(beta=0.5, gamma=0.9, rows_per_shard=4)


def _data():
    return tiny_images(COUNTS)


def _plan(epoch: int) -> EpochPlan:
    order = np.array([17, 3, 0, 12, 9, 1, 16, 14, 2, 13, 15, 4, 5, 6, 7, 8, 10, 11], dtype=np.int64)
    attempt = np.zeros(N_SLOTS, dtype=bool)
    attempt[[1, 3, 4, 7, 9, 10]] = True
    aug = np.zeros((N_SLOTS, 3), dtype=np.int16)
    aug[:, 0] = np.arange(N_SLOTS) % 3
    aug[:, 2] = np.arange(N_SLOTS) % 2
    return EpochPlan(epoch=epoch, order=order, attempt=attempt, aug=aug, batch_size=BATCH)


# The six stored attempts (in slot order). x* of each row is a constant image (value C + epoch/16),
# so a row read back is recognised by its value.
SLOT = [1, 3, 4, 7, 9, 10]
TARGET = [3, 3, 2, 3, 2, 1]
SEED_CLASS = [0, 1, 1, -1, 0, 0]
SEED_INDEX = [2, 9, 10, -1, 5, 0]
SEED_AUG = [(1, 0, 1), (0, 2, 0), (2, 2, 1), (0, 0, 0), (1, 1, 0), (0, 0, 1)]
C = [0.25, 0.5, 0.75, 0.0, 0.125, np.nan]
# eq. (3) with beta 0.5: row 0 gap 8-2=6, P = 1-2^-6 = 0.984 > u 0.1 (passes); row 1 gap 5-2=3,
# P = 0.875 < u 0.9 (fails); row 2 gap 5-3=2, P = 0.75 > u 0.05; row 4 gap 8-3=5, P = 0.969 > u 0.5.
U_BETA = [0.1, 0.9, 0.05, 0.3, 0.5, 0.2]
PROB_G = [0.95, 0.2, 0.92, 0.0, 0.6, 0.0]
ACCEPTED = [True, False, True, False, False, False]
REASON = [0, 1, 0, 4, 2, 3]   # accepted, beta, accepted, no_seed, gamma, non_finite


def _rows(epoch: int) -> dict[str, np.ndarray]:
    x = np.stack([np.full((3, 4, 4), c + epoch / 16 if c else c, np.float32) for c in C])
    return {
        "slot": np.array(SLOT, np.int64), "target": np.array(TARGET, np.int32),
        "seed_class": np.array(SEED_CLASS, np.int32), "seed_index": np.array(SEED_INDEX, np.int64),
        "seed_aug": np.array(SEED_AUG, np.int16), "x": x, "loss_g": -np.log(np.maximum(PROB_G, 1e-6)).astype(np.float32),
        "prob_g": np.array(PROB_G, np.float32), "u_beta": np.array(U_BETA), "accepted": np.array(ACCEPTED),
        "reason": np.array(REASON, np.uint8),
    }


def _write(path, data, epoch: int = 2, seed: int = 0, provenance=None):
    write_pool(path, data=data, plan=_plan(epoch), cfg=CFG, seed=seed, rows=_rows(epoch), g_hash="g", f_hash="f",
               provenance=provenance)
    return path


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """Pools of epochs 0..3 under one folder (a reused run), seed 0, warm_hash 'w'."""
    root = tmp_path_factory.mktemp("reused")
    data = _data()
    for e in range(4):
        _write(root / f"epoch_{e}", data, epoch=e, provenance={"warm_hash": "w"})
    return root, data


@pytest.fixture(scope="module")
def seed3(tmp_path_factory):
    """Pools of seed 3, epochs 1 and 2 (the M2m-Rand relabelling is keyed by both)."""
    root = tmp_path_factory.mktemp("seed3")
    data = _data()
    return {e: _write(root / f"epoch_{e}", data, epoch=e, seed=3) for e in (1, 2)}, data


@pytest.fixture(scope="module")
def pool2(pools):
    """The epoch-2 pool of ``pools`` (seed 0, g_hash 'g', f_hash 'f', warm_hash 'w')."""
    root, data = pools
    return root / "epoch_2", data


def _x0_by_hand(data, index: int, aug) -> np.ndarray:
    """The seed row with its augmentation, written out: pad 1 with zeros, crop at (dy, dx), flip, /255."""
    img = np.pad(data.train.x[index].astype(np.float32), ((0, 0), (1, 1), (1, 1)))
    dy, dx, flip = aug
    img = img[:, dy:dy + 4, dx:dx + 4]
    if flip:
        img = img[:, :, ::-1]
    return img / 255.0


def _const(values) -> np.ndarray:
    return np.stack([np.full((3, 4, 4), v, np.float32) for v in values])


# -- EpochSwaps and StoredSwaps ---------------------------------------------------------------------

def _swaps() -> EpochSwaps:
    return EpochSwaps(np.array([1, 4, 7], np.int64), np.array([[10.0], [40.0], [70.0]], np.float32),
                      np.array([2, 0, 1], np.int64))


def test_epoch_swaps_len_and_dict():
    s = _swaps()
    assert len(s) == 3 and len(NO_SWAPS) == 0
    d = s.as_dict()
    assert sorted(d) == [1, 4, 7]
    assert [d[k].label for k in (1, 4, 7)] == [2, 0, 1]
    assert [float(d[k].x[0]) for k in (1, 4, 7)] == [10.0, 40.0, 70.0]
    assert all(type(k) is int and type(v.label) is int for k, v in d.items())


@pytest.mark.parametrize("first, last, slots", [
    (1, 4, [1, 4]),       # both ends inclusive
    (4, 7, [4, 7]),
    (0, 1, [1]),
    (7, 9, [7]),
    (2, 3, []),           # a batch between two swaps
    (5, 6, []),
    (0, 0, []),
    (8, 20, []),
    (0, 20, [1, 4, 7]),
])
def test_epoch_swaps_between_takes_both_edges(first, last, slots):
    got = _swaps().between(first, last)
    assert sorted(got) == slots
    for s in slots:
        assert float(got[s].x[0]) == 10.0 * s and got[s].label == {1: 2, 4: 0, 7: 1}[s]
        assert type(got[s].label) is int


def test_stored_swaps_serves_batches_by_slot_after_sorting():
    src = StoredSwaps()
    assert src.batch_swaps(np.arange(4), None) == {}   # nothing set yet: no swaps
    # two swaps given out of slot order: sorted before the binary search
    src._set_swaps(EpochSwaps(np.array([6, 2], np.int64), np.array([[6.0], [2.0]], np.float32),
                              np.array([1, 0], np.int64)))
    got = src.batch_swaps(np.array([0, 1, 2, 3]), None)
    assert list(got) == [2] and float(got[2].x[0]) == 2.0 and got[2].label == 0
    got = src.batch_swaps(np.array([4, 5, 6, 7]), None)
    assert list(got) == [6] and float(got[6].x[0]) == 6.0 and got[6].label == 1
    assert sorted(src.batch_swaps(np.arange(8), None)) == [2, 6]
    assert src.batch_swaps(np.array([], np.int64), None) == {}   # an empty batch
    assert src.end_epoch(None) == {}
    with pytest.raises(NotImplementedError):
        src.begin_epoch(0, None)


def test_stored_swaps_sorts_many_rows_with_their_inputs_and_labels():
    src = StoredSwaps()
    slot = np.array([9, 3, 5, 0, 7], np.int64)
    src._set_swaps(EpochSwaps(slot, slot[:, None].astype(np.float32) * 10, slot % 3))
    got = src.batch_swaps(np.arange(10), None)
    assert list(got) == [0, 3, 5, 7, 9]
    assert [float(v.x[0]) for v in got.values()] == [0.0, 30.0, 50.0, 70.0, 90.0]
    assert [v.label for v in got.values()] == [0, 0, 2, 1, 0]


def test_stored_swaps_keeps_sorted_swaps_as_given():
    src = StoredSwaps()
    one = EpochSwaps(np.array([3], np.int64), np.array([[3.0]], np.float32), np.array([1], np.int64))
    src._set_swaps(one)
    got = src.batch_swaps(np.array([3]), None)
    assert list(got) == [3] and got[3].label == 1


# -- check_provenance and pool_plan -----------------------------------------------------------------

@pytest.mark.parametrize("key, have, want", [
    ("g_hash", "g", "other"), ("f_hash", "f", "g"), ("warm_hash", "w", "v"), ("epoch", 2, 3), ("seed", 0, 1),
    ("run", None, "M2m"),   # an attribute the pool lacks reads as None
])
def test_check_provenance_names_the_differing_key(pool2, key, have, want):
    path, data = pool2
    pool = open_pool(path)
    with pytest.raises(M2mError, match=f"{key}={have!r} but is used with {want!r}"):
        check_provenance(pool, **{key: want})
    with pytest.raises(M2mError, match="regenerate it"):
        check_provenance(pool, **{key: want})
    # the matching values pass, all at once
    check_provenance(pool, dataset_fingerprint=data.fingerprint, g_hash="g", f_hash="f", warm_hash="w", epoch=2,
                     seed=0)
    check_provenance(pool)


def test_pool_plan_is_the_stored_plan(pool2):
    path, data = pool2
    plan = pool_plan(open_pool(path))
    want = _plan(2)
    assert plan.epoch == 2 and type(plan.epoch) is int
    assert plan.batch_size == BATCH and type(plan.batch_size) is int
    np.testing.assert_array_equal(plan.order, want.order)
    np.testing.assert_array_equal(plan.attempt, want.attempt)
    np.testing.assert_array_equal(plan.aug, want.aug)


def test_read_pool_x_of_no_rows_is_an_empty_float_batch(pool2):
    path, data = pool2
    pool = open_pool(path)
    x = read_pool_x(pool, np.zeros(0, np.int64), data)
    assert x.shape == (0, 3, 4, 4) and x.dtype == np.float32
    # rows 2 and 0: x* = 0.75 and 0.25 (epoch 2 adds 2/16)
    np.testing.assert_allclose(read_pool_x(pool, np.array([2, 0]), data), _const([0.875, 0.375]), atol=1e-3)


# -- read_swaps: the rules over stored rows ----------------------------------------------------------

def test_read_swaps_accepted_gives_x_star_with_target_and_counts(pool2):
    path, data = pool2
    plan, swaps, counts = read_swaps(path, data)
    # accepted rows 0 and 2: slots 1 and 4, targets 3 and 2, x* = C + 2/16
    assert swaps.slot.tolist() == [1, 4] and swaps.slot.dtype == np.int64
    assert swaps.label.tolist() == [3, 2] and swaps.label.dtype == np.int64
    assert swaps.x.dtype == np.float32 and swaps.x.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(swaps.x, _const([0.375, 0.875]), atol=1e-3)
    assert counts == {"n_attempts": 6, "n_used": 2, "n_accepted": 2}
    assert plan.epoch == 2 and plan.batch_size == BATCH
    np.testing.assert_array_equal(plan.order, _plan(2).order)


def test_read_swaps_clean_rebuilds_x0_from_the_seed_row_and_its_augmentation(pool2):
    path, data = pool2
    _, swaps, counts = read_swaps(path, data, rule="clean")
    assert swaps.slot.tolist() == [1, 4] and swaps.label.tolist() == [3, 2]
    # row 0: seed row 2 with (dy, dx, flip) = (1, 0, 1); row 2: seed row 10 with (2, 2, 1)
    want = np.stack([_x0_by_hand(data, 2, (1, 0, 1)), _x0_by_hand(data, 10, (2, 2, 1))])
    assert swaps.x.dtype == np.float32
    np.testing.assert_allclose(swaps.x, want, atol=1e-6)
    assert counts == {"n_attempts": 6, "n_used": 2, "n_accepted": 2}


def _rand_label_by_hand(seed: int, epoch: int, slot: int, k: int, k0: int) -> int:
    """M2m-RS-Rand: the class at position floor(u * 2) of the two classes other than k and k0."""
    u = rng_for(seed, "rand_label", epoch).random(slot + 1)[slot]
    others = [c for c in range(4) if c not in (k, k0)]
    return others[int(u * 2)]


@pytest.mark.parametrize("seed", [0, 3])
def test_read_swaps_rand_relabels_with_the_pools_seed_and_epoch(pools, seed3, seed):
    path, data = (pools[0] / "epoch_2", pools[1]) if seed == 0 else (seed3[0][2], seed3[1])
    want = [_rand_label_by_hand(seed, 2, 1, 3, 0), _rand_label_by_hand(seed, 2, 4, 2, 1)]
    assert want[0] in (1, 2) and want[1] in (0, 3)
    for given in (None, seed):   # the pool's own seed, read from it or passed (and checked)
        _, swaps, counts = read_swaps(path, data, rule="rand", seed=given)
        assert swaps.slot.tolist() == [1, 4] and swaps.label.tolist() == want
        np.testing.assert_allclose(swaps.x, _const([0.375, 0.875]), atol=1e-3)   # x*, not x0
        assert counts == {"n_attempts": 6, "n_used": 2, "n_accepted": 2}


def test_rand_labels_differ_between_seeds_and_epochs():
    # the hand restatement above is keyed: (seed, epoch) pairs give different label pairs
    pairs = {(s, e): (_rand_label_by_hand(s, e, 1, 3, 0), _rand_label_by_hand(s, e, 4, 2, 1))
             for s in (0, 3) for e in (1, 2)}
    assert len(set(pairs.values())) > 1


def test_read_swaps_rand_uses_the_epoch_of_the_plan(seed3):
    paths, data = seed3
    for epoch in (1, 2):
        _, swaps, _ = read_swaps(paths[epoch], data, rule="rand")
        assert swaps.label.tolist() == [_rand_label_by_hand(3, epoch, 1, 3, 0), _rand_label_by_hand(3, epoch, 4, 2, 1)]


@pytest.mark.parametrize("rule, params, slots, labels, values, n_used", [
    # every attempt with a seed and a finite x*: rows 0, 1, 2, 4 (row 3 no_seed, row 5 non-finite)
    ("no_reject_no_gamma", None, [1, 3, 4, 9], [3, 3, 2, 2], [0.25, 0.5, 0.75, 0.125], 4),
    # eq. (3) re-drawn from u_beta (see U_BETA): rows 0, 2, 4 pass, row 1 fails
    ("no_gamma", None, [1, 4, 9], [3, 2, 2], [0.25, 0.75, 0.125], 3),
    # beta test kept, gamma 0.5 on prob_g: row 4 (prob 0.6) joins rows 0 and 2
    ("gamma", {"gamma": 0.5}, [1, 4, 9], [3, 2, 2], [0.25, 0.75, 0.125], 3),
    ("gamma", {"gamma": 0.93}, [1], [3], [0.25], 1),   # only row 0 (prob 0.95) clears 0.93
])
def test_read_swaps_ablation_rules_pick_their_rows(pools, rule, params, slots, labels, values, n_used):
    root, data = pools
    path = root / "epoch_0"
    _, swaps, counts = read_swaps(path, data, rule=rule, rule_params=params)
    assert swaps.slot.tolist() == slots and swaps.label.tolist() == labels
    np.testing.assert_allclose(swaps.x, _const(values), atol=1e-3)
    assert counts == {"n_attempts": 6, "n_used": n_used, "n_accepted": 2}


def test_read_swaps_checks_the_rule_first(tmp_path):
    data = _data()
    with pytest.raises(M2mError, match="unknown pool rule 'best'"):
        read_swaps(tmp_path / "absent", data, rule="best")
    with pytest.raises(M2mError, match="needs a gamma value"):
        read_swaps(tmp_path / "absent", data, rule="gamma")


def test_read_swaps_checks_dataset_then_seed_then_expected(pool2):
    path, data = pool2
    other = tiny_images(COUNTS, seed=1)   # other pixels: another fingerprint
    with pytest.raises(M2mError, match="dataset_fingerprint="):
        read_swaps(path, other, seed=1, warm_hash="v")
    # seed and warm start both differ: the seed is named (it is the cause)
    with pytest.raises(M2mError, match="seed=0 but is used with 1"):
        read_swaps(path, data, seed=1, warm_hash="v")
    with pytest.raises(M2mError, match="warm_hash='w' but is used with 'v'"):
        read_swaps(path, data, seed=0, warm_hash="v")
    with pytest.raises(M2mError, match="epoch=2 but is used with 5"):
        read_swaps(path, data, epoch=5)
    _, swaps, _ = read_swaps(path, data, seed=0, warm_hash="w", epoch=2, g_hash="g")
    assert swaps.slot.tolist() == [1, 4]


def test_load_swaps_gives_accepted_rows_by_slot(pools):
    root, data = pools
    path = root / "epoch_1"
    plan, swaps = load_swaps(path, data, epoch=1, seed=0)
    assert plan.epoch == 1
    assert sorted(swaps) == [1, 4]
    assert swaps[1].label == 3 and swaps[4].label == 2
    np.testing.assert_allclose(np.stack([swaps[1].x, swaps[4].x]), _const([0.3125, 0.8125]), atol=1e-3)
    with pytest.raises(M2mError, match="g_hash='g' but is used with 'h'"):
        load_swaps(path, data, g_hash="h")


# -- ReusedPools ------------------------------------------------------------------------------------

def _all_swaps(src) -> dict[int, Swap]:
    return src.batch_swaps(np.arange(N_SLOTS), None)


def _recording(src):
    """Record (epoch, read off the main thread) for every pool read of ``src``."""
    reads = []
    real = src._read

    def read(epoch):
        reads.append((epoch, threading.current_thread() is not threading.main_thread()))
        return real(epoch)

    src._read = read
    return reads


def test_reused_pools_prefetch_the_next_epoch_with_the_same_swaps(pools):
    root, data = pools
    src = ReusedPools(root, data, rule="accepted", seed=0, expected={"warm_hash": "w"})
    reads = _recording(src)
    for epoch in range(4):
        plan, counts = src.begin_epoch(epoch, None)
        assert plan.epoch == epoch
        assert counts == {"n_attempts": 6, "n_used": 2, "n_accepted": 2}
        got = _all_swaps(src)
        direct = read_swaps(root / f"epoch_{epoch}", data, seed=0)[1].as_dict()
        assert sorted(got) == sorted(direct) == [1, 4]
        for s in got:
            assert got[s].label == direct[s].label
            np.testing.assert_array_equal(got[s].x, direct[s].x)
        # x* of epoch e is C + e/16: the swaps are this epoch's
        np.testing.assert_allclose(got[1].x, np.full((3, 4, 4), 0.25 + epoch / 16), atol=1e-3)
        assert src.end_epoch(None) == {}
    # epoch 0 read when asked; epochs 1..3 read ahead by the prefetch thread, once each
    assert reads == [(0, False), (1, True), (2, True), (3, True)]
    assert src._prefetch == {}   # no epoch 4 to read ahead


def test_reused_pools_drop_a_stale_prefetch(pools):
    root, data = pools
    src = ReusedPools(root, data, rule="accepted", seed=0, expected={"warm_hash": "w"})
    reads = _recording(src)
    src.begin_epoch(0, None)
    assert list(src._prefetch) == [1]
    plan, _ = src.begin_epoch(2, None)   # epoch 1 skipped: its read ahead is dropped, epoch 3's starts
    assert plan.epoch == 2 and list(src._prefetch) == [3]
    assert reads[0] == (0, False) and (2, False) in reads
    np.testing.assert_allclose(_all_swaps(src)[4].x, np.full((3, 4, 4), 0.75 + 2 / 16), atol=1e-3)
    src.begin_epoch(3, None)
    assert src._prefetch == {} and reads[-1] == (3, True)


def test_reused_pools_read_ahead_one_pool_at_a_time(pools):
    # A read ahead still running when training skips past it is not cut short; the next one waits
    # for it, so at most one pool is being read (and held in memory) in the background.
    root, data = pools
    src = ReusedPools(root, data, rule="accepted", seed=0)
    real, lock = src._read, threading.Lock()
    active, most = [0], [0]

    def slow_read(epoch):
        if threading.current_thread() is threading.main_thread():
            return real(epoch)
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        try:
            time.sleep(0.3)
            return real(epoch)
        finally:
            with lock:
                active[0] -= 1

    src._read = slow_read
    src.begin_epoch(0, None)    # epoch 1 read ahead (slow)
    src.begin_epoch(2, None)    # read here; epoch 1's read is still running; epoch 3's is queued
    plan, _ = src.begin_epoch(3, None)
    assert plan.epoch == 3 and most[0] == 1


def test_reused_pools_apply_their_rule_and_params(pools):
    root, data = pools
    src = ReusedPools(root, data, rule="gamma", seed=0, rule_params={"gamma": 0.5})
    _, counts = src.begin_epoch(1, None)
    assert counts == {"n_attempts": 6, "n_used": 3, "n_accepted": 2}
    got = _all_swaps(src)
    assert sorted(got) == [1, 4, 9] and [got[s].label for s in (1, 4, 9)] == [3, 2, 2]
    src = ReusedPools(root, data, rule="clean", seed=0)
    src.begin_epoch(0, None)
    np.testing.assert_allclose(_all_swaps(src)[4].x, _x0_by_hand(data, 10, (2, 2, 1)), atol=1e-6)


def test_reused_pools_refuse_a_bad_rule_up_front(tmp_path):
    data = _data()
    with pytest.raises(M2mError, match="unknown pool rule"):
        ReusedPools(tmp_path, data, rule="nope", seed=0)
    with pytest.raises(M2mError, match="needs a gamma value"):
        ReusedPools(tmp_path, data, rule="gamma", seed=0)


def test_reused_pools_name_a_missing_pool(pools, tmp_path):
    root, data = pools
    with pytest.raises(M2mError, match="epoch_5 does not exist.*no pool for epoch 5.*--method M2m\\)"):
        ReusedPools(root, data, rule="accepted", seed=0).begin_epoch(5, None)
    with pytest.raises(M2mError, match="--method M2m-RS\\)"):
        ReusedPools(tmp_path, data, rule="accepted", seed=0, expected={"run": "M2m-RS"}).begin_epoch(0, None)


def test_reused_pools_check_seed_epoch_and_expected_provenance(pools, tmp_path):
    root, data = pools
    with pytest.raises(M2mError, match="seed=0 but is used with 1"):
        ReusedPools(root, data, rule="accepted", seed=1).begin_epoch(0, None)
    with pytest.raises(M2mError, match="warm_hash='w' but is used with 'x'"):
        ReusedPools(root, data, rule="accepted", seed=0, expected={"warm_hash": "x"}).begin_epoch(0, None)
    # a pool of epoch 0 found under epoch_1
    _write(tmp_path / "epoch_1", data, epoch=0)
    with pytest.raises(M2mError, match="epoch=0 but is used with 1"):
        ReusedPools(tmp_path, data, rule="accepted", seed=0).begin_epoch(1, None)


@pytest.mark.parametrize("slots", [np.arange(2, 9), np.array([8, 2, 5, 3, 7, 4, 6]), np.array([5])])
def test_swap_rows_gives_the_batch_positions_of_every_swap_in_it(slots):
    """A source's BatchSwaps (numpy, a contiguous batch by subtraction, any other by search) and a
    plain {slot: Swap} mapping put the same rows in the same batch positions."""
    from m2m_pipeline.pools.reuse import BatchSwaps, swap_rows

    epoch = EpochSwaps(np.array([1, 3, 5, 8, 9], np.int64), np.arange(10, dtype=np.float32).reshape(5, 2),
                       np.array([4, 3, 2, 1, 0], np.int64))
    lo, hi = int(slots.min()), int(slots.max())
    batch = epoch.between(lo, hi) if np.array_equal(np.sort(slots), np.arange(lo, hi + 1)) else \
        BatchSwaps(epoch.slot, epoch.x, epoch.label)
    plain = {int(s): Swap(epoch.x[i], int(epoch.label[i])) for i, s in enumerate(epoch.slot)}
    want = {i: int(s) for i, s in enumerate(slots) if int(s) in plain}   # batch position -> slot
    for got in (swap_rows(slots, batch), swap_rows(slots, plain)):
        positions, x, label = got
        assert sorted(positions.tolist()) == sorted(want)
        for p, xi, li in zip(positions.tolist(), x, label.tolist()):
            assert xi.tolist() == plain[want[p]].x.tolist() and li == plain[want[p]].label
        assert x.dtype == np.float32 and label.dtype == np.int64
    assert [len(a) for a in swap_rows(slots, {})] == [0, 0, 0]
