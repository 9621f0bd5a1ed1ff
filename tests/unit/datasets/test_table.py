"""The ``table:<file>`` recipe (datasets/table.py) on tiny CSVs written here: split counts, the
standardisation fitted on training rows only, one-hot columns and every refusal."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset, dataset_preset
from m2m_pipeline.datasets.info import describe_dataset
from m2m_pipeline.errors import M2mError

from tests.unit.datasets.fixtures import make_table_csv


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _split_csv(tmp_path: Path) -> Path:
    """Class a: f1 = 2 on its 4 train rows, class b: f1 = 4 on its 4; the 2 test rows have f1 = 100.
    Whatever rows the seed holds out for validation (one per class), the fitted rows have mean 3, std 1."""
    lines = ["f1,f2,label,split"]
    lines += [f"2,{i},a,train" for i in range(4)] + [f"4,{i},b,train" for i in range(4)]
    lines += ["100,0,a,test", "100,0,b,test"]
    return _write(tmp_path / "t.csv", lines)


def test_split_column_and_standardisation_on_training_rows(tmp_path):
    data = create_dataset(f"table:{_split_csv(tmp_path)}", seed=0)
    assert data.name == "table:t.csv" and data.preset == "table" == dataset_preset("table:x.csv")
    assert data.class_names == ["a", "b"]
    assert (len(data.train), len(data.val), len(data.test)) == (6, 2, 2)
    assert np.bincount(data.val.y).tolist() == [1, 1]
    std = data.meta["standardize"]
    assert std["columns"] == ["f1", "f2"]
    assert std["mean"][0] == pytest.approx(3.0) and std["std"][0] == pytest.approx(1.0)
    # test rows are not in the fit: (100 - 3) / 1
    assert data.test.x[:, 0].tolist() == pytest.approx([97.0, 97.0])
    assert sorted(data.train.x[:, 0].tolist()) == pytest.approx([-1, -1, -1, 1, 1, 1])
    # f2's fit: the mean of the six fitted rows' raw values, recovered from their z-scores
    f2_raw = data.train.x[:, 1] * std["std"][1] + std["mean"][1]
    assert std["mean"][1] == pytest.approx(f2_raw.mean(), abs=1e-5)
    assert data.mean == [0.0] and data.std == [1.0] and data.input_range is None
    assert data.train.x.dtype == np.float32


def test_stratified_split_counts_from_the_seed(tmp_path):
    path = make_table_csv(tmp_path / "rows.csv", counts=(30, 12, 6))
    data = create_dataset(f"table:{path}", seed=3)
    # test: round(0.2 * n) = 6, 2, 1; validation: 10% of the rest, at least 1 = 2, 1, 1
    assert np.bincount(data.test.y).tolist() == [6, 2, 1]
    assert np.bincount(data.val.y).tolist() == [2, 1, 1]
    assert np.bincount(data.train.y).tolist() == [22, 9, 4]
    assert data.meta["train_counts_before_holdout"] == [24, 10, 5]
    again = create_dataset(f"table:{path}", seed=3)
    assert again.fingerprint == data.fingerprint
    other = create_dataset(f"table:{path}", seed=4)
    assert other.fingerprint != data.fingerprint
    assert np.bincount(other.test.y).tolist() == [6, 2, 1]


def test_categorical_columns_are_one_hot(tmp_path):
    path = make_table_csv(tmp_path / "rows.csv", counts=(10, 6))
    data = create_dataset(f"table:{path}")
    assert data.meta["feature_names"] == ["f1", "f2", "colour=blue", "colour=red"]
    assert data.meta["categorical"] == {"colour": ["blue", "red"]}
    assert data.input_shape == (4,)
    info = describe_dataset(data)
    assert [c["count"] for c in info["classes"]] == np.bincount(data.train.y).tolist()
    with pytest.raises(M2mError, match=r"column 'colour' is not numeric \('red'\)"):
        create_dataset(f"table:{path}", one_hot=False)


def test_label_column_is_settable(tmp_path):
    path = _write(tmp_path / "t.csv", ["y,x"] + [f"{k},{k + 0.1 * i}" for k in (1, 2) for i in range(5)])
    data = create_dataset(f"table:{path}", label="y")
    assert data.class_names == ["1", "2"] and data.meta["feature_names"] == ["x"]
    with pytest.raises(M2mError, match="no label column 'label'.*prepare.table.label"):
        create_dataset(f"table:{path}")


@pytest.mark.parametrize("lines, message", [
    (["x,label"] + [f"{i},a" for i in range(6)], "single class 'a'"),
    (["x,label"] + [f"{i},a" for i in range(6)] + ["1,b"], r"row; a stratified split needs at least 2"),
    (["x,label,split", "1,a,train", "2,a,train", "3,b,train", "4,a,test", "5,b,test"],
     r"\['b'\] have fewer than 2 training rows"),
    (["x,label", "1,a", ",b", "3,a", "4,b"], "column 'x' has an empty value on line 3"),
    (["x,label,split", "1,a,train", "2,b,dev"], r"value\(s\) \['dev'\]; expected train or test"),
    (["x,label", "1,a", "2"], "line 3 has 1 fields, the header 2"),
    (["label"] + ["a", "b"] * 3, "no feature column"),
])
def test_bad_tables_get_one_line_errors(tmp_path, lines, message):
    path = _write(tmp_path / "bad.csv", lines)
    with pytest.raises(M2mError, match=message) as err:
        create_dataset(f"table:{path}")
    assert "\n" not in str(err.value)


def test_wrong_kind_and_missing_file(tmp_path):
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(M2mError, match="not a .csv or .parquet file"):
        create_dataset(f"table:{picture}")
    with pytest.raises(M2mError, match="does not exist"):
        create_dataset(f"table:{tmp_path / 'nope.csv'}")
    with pytest.raises(M2mError, match="is not a file"):
        create_dataset(f"table:{tmp_path}")


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow is installed")
def test_parquet_without_pyarrow_says_what_to_install(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(M2mError, match="pip install pyarrow"):
        create_dataset(f"table:{path}")
