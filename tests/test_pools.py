"""Pools: determinism per (seed, epoch, slot), round trips through zarr/dask/xarray, provenance."""

import numpy as np
import pytest
import torch

from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import (TranslationConfig, check_provenance, draw_slots, generate_pool, load_swaps,
                                seed_inputs)
from m2m_pipeline.pools.codec import read_x
from m2m_pipeline.store import POOL_ROW_ARRAYS, PoolWriter, open_pool, pool_as_dask
from m2m_pipeline.training import load_checkpoint, model_from_checkpoint
from m2m_pipeline.training.loop import batch_inputs
from m2m_pipeline.utils import M2mError, state_hash


def _models(trained, digits):
    g = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt", data=digits))
    f = model_from_checkpoint(load_checkpoint(trained / "warm" / "last.pt", data=digits))
    return g, f


def _plan(digits, epoch=2, batch_size=64):
    return make_plan(digits.train.y, digits.class_counts, seed=0, epoch=epoch, order="balanced", attempts=True,
                     augment=digits.augment, batch_size=batch_size)


def test_plan_is_a_function_of_seed_and_epoch(digits):
    a, b = _plan(digits), _plan(digits)
    assert np.array_equal(a.order, b.order) and np.array_equal(a.attempt, b.attempt)
    c = _plan(digits, epoch=3)
    assert not np.array_equal(a.order, c.order)


def test_attempt_probability_is_one_minus_ratio(digits):
    counts = digits.class_counts
    rate = []
    for e in range(40):
        p = _plan(digits, epoch=e)
        y = digits.train.y[p.order]
        rate.append([p.attempt[y == k].mean() if np.any(y == k) else np.nan for k in range(10)])
    rate = np.nanmean(rate, axis=0)
    np.testing.assert_allclose(rate, 1 - counts / counts.max(), atol=0.05)
    assert rate[0] == 0.0


@pytest.mark.parametrize("scope", ["batch", "dataset"])
def test_seeds_are_always_larger_classes(digits, scope):
    cfg = TranslationConfig(seed_scope=scope, beta=0.99)
    plan = _plan(digits)
    d = draw_slots(digits, plan, cfg, seed=0)
    counts = digits.class_counts
    ok = d.seed_class >= 0
    assert ok.mean() > 0.9
    assert np.all(counts[d.seed_class[ok]] > counts[d.target[ok]])
    assert np.all(digits.train.y[d.seed_index[ok]] == d.seed_class[ok])
    if scope == "batch":  # the release: the seed is an item of the slot's own training batch
        for s, idx in zip(d.slot[ok], d.seed_index[ok]):
            assert idx in plan.order[plan.batch_slots(s // plan.batch_size)]


def test_dataset_scope_seed_class_frequencies_follow_eq5(digits):
    from m2m_pipeline.translate import seed_class_probs

    cfg = TranslationConfig(seed_scope="dataset", beta=0.99)
    k, hits = 9, []
    for e in range(60):
        d = draw_slots(digits, _plan(digits, epoch=e), cfg, seed=0)
        hits.extend(d.seed_class[d.target == k])
    freq = np.bincount(hits, minlength=10) / len(hits)
    q = seed_class_probs(digits.class_counts, k, 0.99)
    assert len(hits) > 500
    np.testing.assert_allclose(freq, q, atol=4 * np.sqrt(q * (1 - q) / len(hits)).max() + 1e-9)


def test_pool_independent_of_batch_size_and_shards(tmp_path, trained, digits):
    g, f = _models(trained, digits)
    plan = _plan(digits)
    a = generate_pool(g=g, f=f, data=digits, plan=plan, seed=0, out=tmp_path / "a",
                      cfg=TranslationConfig(steps=3, step_size=1.0, beta=0.9, gamma=0.5, batch_size=7, rows_per_shard=32))
    b = generate_pool(g=g, f=f, data=digits, plan=plan, seed=0, out=tmp_path / "b",
                      cfg=TranslationConfig(steps=3, step_size=1.0, beta=0.9, gamma=0.5, batch_size=200, rows_per_shard=256))
    assert a.n_attempts == b.n_attempts > 0
    ra, rb = open_pool(a.path).rows(), open_pool(b.path).rows()
    for name in POOL_ROW_ARRAYS:
        if name in ("x_delta", "x_exp"):  # compared decoded below: the last float bit may move a grid step
            continue
        elif name in ("loss_g", "prob_g"):
            np.testing.assert_allclose(ra[name], rb[name], rtol=1e-4, atol=1e-5)
        else:
            assert np.array_equal(ra[name], rb[name]), name
    # decoded x*: float noise in the last bit may move a value by one grid step (<= 2**-12 of the row's range)
    np.testing.assert_allclose(read_x(open_pool(a.path), digits), read_x(open_pool(b.path), digits), atol=5e-4)


def test_pool_rows_rebuild_x0_and_read_back_with_dask_and_xarray(tmp_path, trained, digits, tiny_m2m):
    import xarray as xr

    g, f = _models(trained, digits)
    s = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    pool = open_pool(s.path)
    rows = pool.rows()
    lazy = pool_as_dask(s.path)
    for name in POOL_ROW_ARRAYS:
        assert np.array_equal(lazy[name].compute(), rows[name], equal_nan=rows[name].dtype.kind == "f")
    ds = xr.open_zarr(str(s.path), consolidated=False)
    assert ds["x_delta"].dims == ("sample", "channel", "height", "width")
    assert ds.sizes["sample"] == s.n_attempts
    # x0 is rebuilt exactly from seed_index + seed_aug; the noise radius bounds the start point
    ok = rows["seed_index"] >= 0
    x0 = seed_inputs(digits, rows["seed_index"][ok], rows["seed_aug"][ok]).numpy()
    moved = np.linalg.norm((read_x(pool, digits)[ok] - x0).reshape(ok.sum(), -1), axis=1)
    assert np.all(moved <= tiny_m2m.steps * tiny_m2m.step_size + tiny_m2m.noise_radius + 1e-4)
    a = pool.attrs
    assert a["complete"] and a["g_hash"] == state_hash(g.state_dict()) and a["f_hash"] == state_hash(f.state_dict())
    assert a["summary"]["n_accepted"] == int(rows["accepted"].sum())
    assert np.array_equal(rows["accepted"], rows["reason"] == 0)


def test_rejected_slots_keep_the_real_sample(tmp_path, trained, digits, tiny_m2m):
    g, f = _models(trained, digits)
    s = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    plan, swaps = load_swaps(s.path, digits)
    rows = open_pool(s.path).rows()
    accepted_slots = set(rows["slot"][rows["accepted"]].tolist())
    assert set(swaps) == accepted_slots and 0 < len(accepted_slots) < len(rows["slot"])
    slots = np.arange(len(plan))
    x, y = batch_inputs(digits, digits.train, plan, slots, swaps)
    real, _ = batch_inputs(digits, digits.train, plan, slots, {})
    for s_ in slots:
        if s_ in accepted_slots:
            assert torch.equal(x[s_], torch.from_numpy(swaps[s_].x))
        else:
            assert torch.equal(x[s_], real[s_])
    assert np.array_equal(y.numpy(), digits.train.y[plan.order])


def test_provenance_mismatch_is_refused(tmp_path, trained, digits, tiny_m2m):
    g, f = _models(trained, digits)
    s = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    with pytest.raises(M2mError, match="g_hash"):
        check_provenance(open_pool(s.path), g_hash="0" * 16)
    with pytest.raises(M2mError, match="epoch"):
        load_swaps(s.path, digits, epoch=99)


def test_incomplete_pool_is_refused_and_nothing_left_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with PoolWriter(tmp_path / "p", n_rows=3, input_shape=(4,), input_kind="vector", rows_per_shard=2):
            raise RuntimeError("crash mid-write")
    assert not (tmp_path / "p").exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(M2mError, match="does not exist"):
        open_pool(tmp_path / "p")
    (tmp_path / "junk").mkdir()
    with pytest.raises(M2mError, match="not a zarr v3 group"):
        open_pool(tmp_path / "junk")
    (tmp_path / "junk" / "zarr.json").write_text("{ truncated")
    with pytest.raises(M2mError, match="not a readable zarr group"):
        open_pool(tmp_path / "junk")


def test_non_finite_translation_is_an_error_and_leaves_no_pool(tmp_path, trained, digits, tiny_m2m):
    from dataclasses import replace

    g, f = _models(trained, digits)
    with torch.no_grad():
        for p in g.parameters():
            p.fill_(float("nan"))
    with pytest.raises(M2mError, match="non-finite values in"):
        generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    assert not (tmp_path / "p").exists() and list(tmp_path.iterdir()) == []
    s = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=replace(tiny_m2m, max_non_finite=1.0),
                      seed=0, out=tmp_path / "q")
    rows = open_pool(s.path).rows(("accepted", "reason"))
    assert not rows["accepted"].any() and s.reasons["non_finite"] > 0
