"""The compact x* of pools (pools/codec.py): hand-computed rows, the error bound, and every reader
getting the decoded x*."""

import numpy as np
import torch

from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import draw_slots, generate_pool, make_translator, seed_inputs, translate_rows
from m2m_pipeline.pools.codec import DELTA_BITS, decode_x, encode_x, read_x
from m2m_pipeline.store import open_pool
from m2m_pipeline.training import load_checkpoint, model_from_checkpoint


def test_hand_computed_row():
    # delta = (0.25, -0.001): max 0.25 = 2**-2, so e = -2 - 12 = -14 and the grid is 2**-14;
    # 0.25 / 2**-14 = 4096 and -0.001 * 2**14 = -16.384 -> -16, which decodes to 0.25 - 16 * 2**-14.
    x0 = np.array([[0.5, 0.25]], dtype=np.float32)
    x = np.array([[0.75, 0.249]], dtype=np.float32)
    q, e = encode_x(x, x0, np.array([True]))
    assert e.tolist() == [-14] and q.tolist() == [[4096, -16]]
    out = decode_x(q, e, x0, np.array([True]), (0.0, 1.0))
    np.testing.assert_allclose(out, [[0.75, 0.2490234375]], rtol=0, atol=1e-7)


def test_error_bound_no_seed_and_non_finite_rows():
    rng = np.random.default_rng(0)
    x0 = rng.random((50, 3, 4, 4)).astype(np.float32)
    scale = np.exp(rng.uniform(-8, 0, size=(50, 1, 1, 1)))   # rows of very different reach
    x = np.clip(x0 + scale * rng.standard_normal(x0.shape), 0, 1).astype(np.float32)
    has_seed = np.ones(50, dtype=bool)
    has_seed[3] = False
    x[3] = 0.0
    x[7, 0, 0, 0] = np.nan
    q, e = encode_x(x, x0, has_seed)
    assert q.dtype == np.int16 and np.abs(q).max() <= 2 ** DELTA_BITS
    out = decode_x(q, e, x0, has_seed, (0.0, 1.0))
    ok = has_seed.copy()
    ok[7] = False
    largest = np.abs(x - x0)[ok].reshape(ok.sum(), -1).max(axis=1)
    err = np.abs(out - x)[ok].reshape(ok.sum(), -1).max(axis=1)
    # half a grid step (2**(e-1) <= largest * 2**-DELTA_BITS) plus float32 rounding of the sum
    assert np.all(err <= largest * 2.0 ** -DELTA_BITS + 1e-7)
    assert np.all(out[3] == 0) and np.isnan(out[7]).all()


def test_pool_readers_get_the_decoded_x_and_decisions_use_the_exact_one(tmp_path, trained, digits, tiny_m2m):
    g = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt", data=digits))
    f = model_from_checkpoint(load_checkpoint(trained / "warm" / "last.pt", data=digits))
    plan = make_plan(digits.train.y, digits.class_counts, seed=0, epoch=2, order="balanced", attempts=True,
                     augment=digits.augment, batch_size=64)
    s = generate_pool(g=g, f=f, data=digits, plan=plan, cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    pool = open_pool(s.path)
    draws = draw_slots(digits, plan, tiny_m2m, 0)
    torch.set_num_threads(1)
    exact = translate_rows(g, f, digits, draws, slice(0, None), make_translator(tiny_m2m, digits.input_range), tiny_m2m,
                           0, 2)
    decoded = read_x(pool, digits)
    has = exact["seed_index"] >= 0
    x0 = seed_inputs(digits, exact["seed_index"][has], exact["seed_aug"][has]).numpy()
    reach = np.abs(exact["x"][has] - x0).reshape(has.sum(), -1).max(axis=1)
    err = np.abs(decoded[has] - exact["x"][has]).reshape(has.sum(), -1).max(axis=1)
    assert np.all(err <= reach * 2.0 ** -DELTA_BITS + 1e-6)
    # accept decisions were taken on the exact x*, before encoding
    assert np.array_equal(pool.array("accepted"), exact["accepted"])
    assert np.array_equal(pool.array("reason"), exact["reason"])
    rows = np.flatnonzero(pool.array("accepted"))[:5]
    np.testing.assert_array_equal(read_x(pool, digits, rows), decoded[rows])
    # the compact x takes less than half of float32 before zstd (int16), and zstd packs it further
    stored = sum(p.stat().st_size for name in ("x_delta", "x_exp") for p in (s.path / name).rglob("*")
                 if p.is_file() and p.name != "zarr.json")
    assert stored > 0
    assert stored < 0.5 * s.n_attempts * 4 * int(np.prod(digits.input_shape))
