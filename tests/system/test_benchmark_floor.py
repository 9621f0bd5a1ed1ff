"""The pool benchmarks' floor (benchmarks/_floor.py, issue 16) round-trips the bytes exactly, the
two pool benchmarks build it from their rows, and translate_speed reports its step bound.
Correctness only: the timings of these tiny runs mean nothing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from m2m_pipeline.pools.codec import decode_x, encode_x, read_x
from m2m_pipeline.store import POOL_ROW_ARRAYS, open_pool

from tests.system import ROOT, load_benchmark
from tests.unit.pools.test_reuse import _data, _rows, _write

sys.path.insert(0, str(ROOT / "benchmarks"))


floor_mod = load_benchmark("_floor")
SMALL = tuple(n for n in POOL_ROW_ARRAYS if n not in ("x_delta", "x_exp"))


def _epoch_rows(n: int = 300, shape=(3, 4, 4), seed: int = 0):
    rng = np.random.default_rng(seed)
    seed_index = rng.integers(-1, 50, n)
    seed_index[7] = 3                       # row 7 has a seed (and a NaN in x*, below)
    cols = {"slot": np.sort(rng.choice(4 * n, n, replace=False)).astype(np.int64),
            "target": rng.integers(0, 4, n).astype(np.int32), "seed_class": rng.integers(-1, 4, n).astype(np.int32),
            "seed_index": seed_index.astype(np.int64), "seed_aug": rng.integers(0, 3, (n, 3)).astype(np.int16),
            "loss_g": rng.random(n).astype(np.float32), "prob_g": rng.random(n).astype(np.float32),
            "u_beta": rng.random(n), "accepted": rng.random(n) < 0.3, "reason": rng.integers(0, 6, n).astype(np.uint8)}
    x0 = rng.random((n, *shape)).astype(np.float32)
    x0[seed_index < 0] = 0.0
    x = np.clip(x0 + rng.normal(0, 0.02, x0.shape).astype(np.float32), 0, 1)
    x[7, 0, 0, 0] = np.nan                  # a non-finite x*: stored as x_exp -128, decodes to NaN
    return cols, x, x0


def test_floor_round_trips_every_byte_exactly():
    cols, x, x0 = _epoch_rows()
    out = floor_mod.floor_round_trip(cols, x=x, x0=x0, input_range=(0.0, 1.0), repeats=2, keep=True)
    rt = out["round_trip"]
    has_seed = cols["seed_index"] >= 0
    want_delta, want_exp = encode_x(x, x0, has_seed)
    assert set(rt["arrays"]) == set(POOL_ROW_ARRAYS) == set(rt["read_back"])
    np.testing.assert_array_equal(rt["arrays"]["x_delta"], want_delta)
    np.testing.assert_array_equal(rt["arrays"]["x_exp"], want_exp)
    for name, written in rt["arrays"].items():
        back = rt["read_back"][name]
        assert back.dtype == written.dtype and back.shape == written.shape
        assert back.tobytes() == written.tobytes(), name
        if name in cols:
            assert back.tobytes() == np.ascontiguousarray(cols[name]).tobytes(), name
    # x* decoded from what was read back is the pool codec's decoding of the same bytes
    np.testing.assert_array_equal(rt["decoded_x"], decode_x(want_delta, want_exp, x0, has_seed, (0.0, 1.0)))
    finite = has_seed & np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    assert np.isnan(rt["decoded_x"][7]).all() and not finite[7]
    assert np.abs(rt["decoded_x"][finite] - x[finite]).max() < 1e-4
    # the bookkeeping: stage medians add up, the read half is part of it, sizes are the arrays'
    assert out["floor_s"] == pytest.approx(sum(out[s] for s in floor_mod.STAGES))
    assert out["floor_read_s"] == pytest.approx(sum(out[s] for s in floor_mod.READ_STAGES))
    assert 0 < out["floor_read_s"] < out["floor_s"] and all(out[s] >= 0 for s in floor_mod.STAGES)
    assert out["raw_bytes"] == sum(a.nbytes for a in rt["arrays"].values())
    assert 0 < out["compressed_bytes"] < out["raw_bytes"] and out["rows"] == len(x) and out["repeats"] == 2
    with pytest.raises(ValueError, match="repeats"):
        floor_mod.floor_round_trip(cols, x=x, x0=x0, input_range=None, repeats=0)


def test_floor_inputs_of_a_written_pool_are_its_rows(tmp_path):
    data = _data()
    _write(tmp_path / "epoch_2", data, epoch=2)
    pool = open_pool(tmp_path / "epoch_2")
    cols, x, x0 = floor_mod.pool_floor_inputs(pool, data)
    stored = pool.rows(SMALL)
    assert set(cols) == set(SMALL)
    for name in SMALL:
        np.testing.assert_array_equal(cols[name], stored[name])
    np.testing.assert_array_equal(x, read_x(pool, data))
    assert (x0[cols["seed_index"] < 0] == 0).all() and x0.shape == x.shape
    out = floor_mod.floor_round_trip(cols, x=x, x0=x0, input_range=data.input_range, repeats=1, keep=True)
    assert out["rows"] == len(pool) == 6


def test_pool_benchmarks_take_the_floor_of_their_rows(tmp_path):
    """pool_overhead's floor of an epoch's exact rows, ablation_reuse's over every epoch's pool."""
    data = _data()
    overhead = load_benchmark("pool_overhead")
    exact = _rows(2)
    one = overhead.epoch_floor(exact, data, repeats=1)
    assert one["rows"] == len(exact["slot"]) and one["floor_s"] > 0
    reuse = load_benchmark("ablation_reuse")
    for epoch in (2, 3):
        _write(tmp_path / f"epoch_{epoch}", data, epoch=epoch)
    both = reuse.pools_floor(tmp_path, data, repeats=1)
    assert sorted(both["epochs"]) == ["epoch_2", "epoch_3"]
    assert both["floor_s"] == pytest.approx(sum(e["floor_s"] for e in both["epochs"].values()))
    assert both["floor_read_s"] == pytest.approx(sum(e["floor_read_s"] for e in both["epochs"].values()))
    with pytest.raises(Exception, match="no pools"):
        reuse.pools_floor(tmp_path / "none", data, repeats=1)


def test_translate_speed_reports_the_step_bound(tmp_path):
    speed = load_benchmark("translate_speed")
    out = speed.main(["--model", "mlp-reuters", "--rows", "16", "--batch-size", "8", "--reference-batch", "8",
                      "--steps", "2", "--repeats", "1", "--matmul-seconds", "0.01", "--json", str(tmp_path / "s.json")])
    assert out["step_pass_s"]["g"] > 0 and out["step_pass_s"]["f"] > 0
    assert out["step_bound_per_s"] == pytest.approx(8 / (2 * (out["step_pass_s"]["g"] + out["step_pass_s"]["f"])))
    assert out["step_bound_fraction"] == pytest.approx(out["ours_per_s"] / out["step_bound_per_s"])
    # today's figures stay beside it
    for key in ("ratio", "ours_per_s", "reference_per_s", "roofline_fraction_ours", "matmul_gflops"):
        assert out[key] > 0


def test_pool_bytes_table_is_derived_from_the_layout_and_the_plan(tmp_path, capsys):
    """benchmarks/pool_bytes.py: attempts as the plan makes them, bytes as the schema lays them out."""
    from m2m_pipeline.datasets.base import long_tail_counts
    from m2m_pipeline.plan import make_plan
    from m2m_pipeline.store import pool_bytes

    calc = load_benchmark("pool_bytes")
    rows = {r["name"]: r for r in calc.main(["--accept-rate", "0.25", "--json", str(tmp_path / "b.json")])}
    assert set(rows) == {"cifar10-lt", "sun397", "imagenet-lt"}
    assert "| CIFAR-LT-10" in capsys.readouterr().out
    inet = rows["imagenet-lt"]
    assert (inet["n_train"], inet["k"], inet["shape"], inet["deferred_epochs"]) == (115_846, 1000, [3, 128, 128], 40)
    assert inet["bytes_per_attempt"] == 2 * 3 * 128 * 128 + 49
    assert inet["run_bytes_all"] == 40 * pool_bytes(inet["attempts_per_epoch"], (3, 128, 128), n_slots=115_846)
    assert inet["epoch_bytes_accepted"] == pool_bytes(inet["attempts_per_epoch"], (3, 128, 128), n_slots=115_846,
                                                      n_accepted=round(0.25 * inet["attempts_per_epoch"]),
                                                      store="accepted")
    # the expected attempts are what make_plan draws (CIFAR-LT-10's class sizes, a few epochs)
    counts = long_tail_counts(5000, 10, 100)
    y = np.repeat(np.arange(10), counts)
    drawn = [int(make_plan(y, np.array(counts), seed=0, epoch=e, order="balanced", attempts=True, augment={},
                           batch_size=128).attempt.sum()) for e in range(3)]
    want = rows["cifar10-lt"]["attempts_per_epoch"]
    assert abs(np.mean(drawn) - want) < 0.02 * want


def test_pool_levers_write_and_read_the_same_rows_each_way(tmp_path):
    """benchmarks/pool_levers.py: every write way makes a pool the store opens with the layout its
    lever names (256-row chunks before w2, one chunk a shard from w2 on), and every read way gives
    back the rows it wrote."""
    import json

    import zarr

    levers = load_benchmark("pool_levers")
    data = _data()
    _write(tmp_path / "src", data)
    src = open_pool(tmp_path / "src")
    rows = src.rows(POOL_ROW_ARRAYS)
    attrs = {k: v for k, v in src.attrs.items() if k not in ("manifest", "complete", "attrs_sha256")}
    for way in levers.WRITES:
        levers.write_pool(tmp_path / way, rows, attrs, "image", 512, way)
        pool = open_pool(tmp_path / way)
        chunk = zarr.open_group(str(tmp_path / way), mode="r")["x_delta"].chunks[0]
        assert chunk == (256 if levers.WRITES.index(way) < 2 else 512), way
        if way == "w0_format3":   # the former seal wrote zarr.json once per key: same attributes
            assert json.loads((tmp_path / way / "zarr.json").read_text())["attributes"]["complete"] is True
        back = pool.rows(POOL_ROW_ARRAYS)
        for name in POOL_ROW_ARRAYS:
            assert np.array_equal(back[name], rows[name], equal_nan=rows[name].dtype.kind == "f"), (way, name)
    for way in levers.READS:
        path = tmp_path / ("w0_format3" if way in ("r0_zarr_256", "r3_store_256") else "w5_zarr_free_seal")
        back = levers.read_pool(path, way)
        for name in POOL_ROW_ARRAYS:
            assert np.array_equal(back[name], rows[name], equal_nan=rows[name].dtype.kind == "f"), (way, name)
