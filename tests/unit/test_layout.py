"""layout.py: the one spelling of the pipeline's folders, and the prepared dataset a pool is read with."""

import numpy as np

from m2m_pipeline.layout import (Layout, dataset_slug, epoch_name, parse_epoch_name, parse_run_name,
                                 prepared_of_pool, run_name)

from tests.tiny import tiny_pool_attrs, tiny_vectors


def test_the_dags_folders():
    layout = Layout("digits")
    assert str(layout.prepared) == "data/prepared/digits"
    assert str(layout.run("M2m", 0)) == "runs/digits/M2m-seed0"
    assert str(layout.g_checkpoint(1)) == "runs/digits/g-seed1/best.pt"
    assert str(layout.warm_checkpoint("ldam", 2)) == "runs/digits/warm-ldam-seed2/last.pt"
    assert str(layout.pool("M2m", 0, 40)) == "pools/digits/M2m-seed0/epoch_40"
    assert str(layout.generate_pool(7)) == "pools/digits/generate/epoch_7"
    assert str(layout.metrics("DRS", 1)) == "metrics/digits/DRS-seed1.json"
    assert str(layout.history("DRS", 1)) == "plots/digits/DRS-seed1.json"
    assert str(layout.predictions("DRS", 1)) == "predictions/digits/DRS-seed1.npz"
    assert str(layout.report_dir()) == "reports/digits" and str(layout.report_dir("last")) == "reports/digits-last"
    assert str(layout.summary) == "metrics/summary-digits.json"
    assert str(Layout("digits", root="work").run("g", 3)) == "work/runs/digits/g-seed3"


def test_names_read_back():
    assert parse_run_name(run_name("M2m-Clean", 12)) == ("M2m-Clean", 12)
    assert parse_run_name("warm-ce-seed0") == ("warm-ce", 0)
    assert parse_run_name("M2m") == ("M2m", None)
    assert parse_epoch_name(epoch_name(45)) == 45 and parse_epoch_name("epoch_x") is None
    assert dataset_slug("text:/tmp/probe_tx") == "text_tmp_probe_tx"


def test_a_folder_datasets_pool_is_read_with_the_prepared_data_prepare_wrote(tmp_path, monkeypatch):
    """`text:<dir>` datasets: prepare writes data/prepared/<slug of the name given> while the pool only
    records the recipe's short name (``text:probe_tx``); the browser reads the folder beside the pool."""
    from m2m_pipeline.cli.pools import _pool_and_data
    from m2m_pipeline.store import PoolWriter, write_prepared

    name = "text:/tmp/probe_tx"
    layout = Layout(name)
    monkeypatch.chdir(tmp_path)
    data = tiny_vectors()
    write_prepared(layout.prepared, data)
    pool = layout.pool("M2m", 0, 0)
    assert prepared_of_pool(pool) == layout.prepared
    n = 4
    rows = {"slot": np.arange(n), "target": np.zeros(n, np.int32), "seed_class": np.ones(n, np.int32),
            "seed_index": np.arange(n), "seed_aug": np.zeros((n, 3), np.int16),
            "x_delta": np.zeros((n, 4), np.int16), "x_exp": np.full(n, -10, np.int8),
            "loss_g": np.ones(n, np.float32), "prob_g": np.ones(n, np.float32), "u_beta": np.zeros(n),
            "accepted": np.ones(n, bool), "reason": np.zeros(n, np.uint8)}
    with PoolWriter(pool, n_rows=n, input_shape=(4,), input_kind="vector", rows_per_shard=4, rows_per_chunk=4) as w:
        w.write_plan(np.arange(n), np.ones(n, bool), np.zeros((n, 3)))
        w.write_rows(0, rows)
        w.finish(tiny_pool_attrs(rows, class_counts=[12, 6, 3], dataset="text:probe_tx"))
    assert not (tmp_path / "data/prepared" / dataset_slug("text:probe_tx")).exists()   # what was looked up before
    path, read = _pool_and_data(pool.parent, None, None)
    assert path == pool and read.fingerprint == data.fingerprint


def test_dataset_matches_names_a_byo_dataset_by_kind_or_path():
    from m2m_pipeline.layout import dataset_matches

    assert dataset_matches("digits", "digits") and not dataset_matches("digits", "reuters")
    assert dataset_matches("table:rows.csv", "table")                 # the DVC form: kind + data_root
    assert dataset_matches("table:rows.csv", "table:/data/x/rows.csv")  # the CLI form: the path in the name
    assert dataset_matches("images:pets", "images:/data/pets/")
    assert not dataset_matches("images:pets", "images:/data/cars")
    assert not dataset_matches("table:rows.csv", "images") and not dataset_matches("digits", "images")
