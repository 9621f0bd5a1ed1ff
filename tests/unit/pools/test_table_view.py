"""The ``table`` pool view (pools/browse/table_view.py) on a hand-made pool of a standardised table:
x0 and x* back in the file's units, x* - x0 per feature, in the file's units and in stds."""

from dataclasses import replace

import numpy as np
import pytest

from m2m_pipeline.datasets import PreparedData, Split
from m2m_pipeline.pools import browse
from m2m_pipeline.pools.codec import encode_rows
from m2m_pipeline.store import PoolWriter, open_pool

from tests.tiny import tiny_pool_attrs


def _table_data():
    # two features standardised with mean (10, 0), std (2, 1): row 0 is (12, 0) in the file's units
    train = Split(np.array([[1, 0], [-1, 1], [0, -1]], np.float32), np.array([0, 0, 1]))
    data = PreparedData(name="table:t.csv", class_names=["no", "yes"], train=train, val=train, test=train,
                        input_kind="vector", input_range=None, mean=[0.0], std=[1.0], augment={}, preset="table",
                        meta={"standardize": {"columns": ["age", "dose"], "mean": [10.0, 0.0], "std": [2.0, 1.0],
                                              "fitted_on": "training rows"}})
    return replace(data, fingerprint=data.compute_fingerprint())


def _pool(path, data, x_star):
    enc = encode_rows({"x": x_star, "seed_index": np.array([0]), "seed_aug": np.zeros((1, 3), np.int16)}, data)
    with PoolWriter(path, n_rows=1, input_shape=(2,), input_kind="vector", rows_per_shard=1) as w:
        w.write_rows(0, {"slot": np.array([0]), "target": np.array([1], np.int32),
                         "seed_class": np.array([0], np.int32), "seed_index": np.array([0]),
                         "seed_aug": np.zeros((1, 3), np.int16), "x_delta": enc["x_delta"], "x_exp": enc["x_exp"],
                         "loss_g": np.array([0.1], np.float32), "prob_g": np.array([0.95], np.float32),
                         "u_beta": np.array([0.0]), "accepted": np.array([True]), "reason": np.array([0], np.uint8)})
        w.finish(tiny_pool_attrs({"slot": [0], "reason": [0], "accepted": [True]}, class_counts=[2, 1],
                                 dataset=data.name, dataset_fingerprint=data.fingerprint, params={"beta": 0.5}))
    return open_pool(path)


def test_table_view_shows_each_feature_in_the_files_units(tmp_path):
    data = _table_data()
    assert browse.view_kind(data) == "table"
    pool = _pool(tmp_path / "p", data, np.array([[1.5, -1.0]], np.float32))   # z: +0.5 and -1 stds
    rows = pool.rows(browse.SHOW_ROW_ARRAYS)
    [item] = browse.feature_changes(pool, data, np.array([0]), rows)
    (n0, a0, b0, d0, z0), (n1, a1, b1, d1, z1) = item["features"]
    assert (n0, n1) == ("age", "dose")
    assert (a0, b0, d0, z0) == pytest.approx((12.0, 13.0, 1.0, 0.5), abs=1e-3)   # x = z * 2 + 10
    assert (a1, b1, d1, z1) == pytest.approx((0.0, -1.0, -1.0, -1.0), abs=1e-3)
    [top] = browse.feature_changes(pool, data, np.array([0]), rows, top=1)
    assert [f[0] for f in top["features"]] == ["dose"]   # the largest change in stds first
    out, line = browse.show_pool(tmp_path / "p", data, tmp_path / "rows.md")
    text = out.read_text()
    assert line.startswith("table view of 1 rows")
    assert "## row 0: no → yes, p 0.95, accepted" in text
    assert "| age | 12 | 13 | +1 | +0.50 |" in text and "| dose | 0 | -1 | -1 | -1.00 |" in text


def test_vector_data_without_a_fit_is_not_a_table():
    data = replace(_table_data(), meta={})
    assert browse.view_kind(data) == "embedding"
