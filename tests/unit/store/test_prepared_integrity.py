"""Issue 20 items 2 and 5 for prepared datasets: crc32c on every chunk, the attributes' hash and the
metadata's sha256 checked on open, one schema of the attributes, labels in range on read, format 2
with format 1 refused naming ``m2m-pipeline pools migrate``, which rewrites it atomically."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from m2m_pipeline.cli import app
from m2m_pipeline.store import FORMAT_VERSION, migrate_prepared, prepared_fingerprint, read_prepared, write_prepared
from m2m_pipeline.store.zarr_io import codec_problem
from m2m_pipeline.utils import M2mError

from tests.tiny import tiny_images, tiny_vectors
from tests.unit.store.pool_fixtures import downgrade, flip_bit, rewrite_attrs, root_doc

runner = CliRunner()


@pytest.fixture
def prepared(tmp_path):
    data = tiny_images()
    write_prepared(tmp_path / "prep", data)
    return tmp_path / "prep", data


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, s).x, getattr(b, s).x) and np.array_equal(getattr(a, s).y, getattr(b, s).y)
               for s in ("train", "val", "test")) and a.fingerprint == b.fingerprint \
        and a.class_names == b.class_names and a.mean == b.mean and a.input_range == b.input_range


def test_prepared_data_checksums_every_chunk_and_reads_back(prepared):
    path, data = prepared
    attrs = root_doc(path)["attributes"]
    assert attrs["format_version"] == FORMAT_VERSION == 2 and len(attrs["attrs_sha256"]) == 64
    for name in attrs["manifest"]["arrays"]:
        assert codec_problem(json.loads((path / name / "zarr.json").read_text())) is None, name
    assert _same(read_prepared(path), data)
    vec = tiny_vectors()
    write_prepared(path.parent / "vec", vec)
    assert _same(read_prepared(path.parent / "vec"), vec)


@pytest.mark.parametrize("rel", ["train/x/c/0/0/0/0", "train/y/c/0", "test/x/c/0/0/0/0"])
def test_a_flipped_bit_in_a_chunk_is_a_one_line_error(prepared, rel):
    path, _ = prepared
    flip_bit(path / rel, bit=4)
    array = rel.rsplit("/c/", 1)[0]
    with pytest.raises(M2mError, match=rf"prepared dataset {path} is damaged: array '{array}' fails its crc32c "
                                       rf"checksum in rows 0\.\.\d+ \(file {rel}\)") as err:
        read_prepared(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("edit, message", [
    (lambda a: a.update(class_names=5), r"attribute class_names should be a list of at least 1, not 5"),
    (lambda a: a.pop("mean"), r"attribute mean is missing"),
    (lambda a: a.update(input_range="ab"), r"attribute input_range should be a list of 2, not 'ab'"),
    (lambda a: a.update(input_range=[1.0, 0.0]), r"input_range \[1.0, 0.0\] is empty"),
    (lambda a: a.update(std=[0.25, 0.0, 0.25]), r"attribute std\[1\] should be a finite number in \(0, inf\)"),
    (lambda a: a.update(class_counts=[10, 5]), r"class_counts has 2 entries for 3 class_names"),
    (lambda a: a.update(mean=[0.5, 0.5]), r"mean has 2 values, std 3"),
    (lambda a: a.update(mean=[0.5, 0.5], std=[1.0, 1.0]), r"mean/std have 2 values for inputs of 3 channels"),
    (lambda a: a.update(input_kind="text"), r"attribute input_kind should be one of \['image', 'vector'\]"),
    (lambda a: a.update(class_counts=[10, 5, 4]), r"its training labels do not count as its class_counts"),
    (lambda a: a.update(class_names=["a", "b"], class_counts=[10, 5]), r"train/y holds label 2 at row 15, outside 0\.\.1"),
])
def test_bad_attributes_are_one_line_errors(prepared, edit, message):
    path, _ = prepared
    rewrite_attrs(path, edit)
    with pytest.raises(M2mError, match=message) as err:
        read_prepared(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    assert prepared_fingerprint(path) is None or "label" in message or "count" in message


def test_format_1_is_refused_naming_migrate_and_migrates(prepared):
    path, data = prepared
    downgrade(path, 1)
    with pytest.raises(M2mError, match=rf"prepared dataset {path} has format 1, without chunk checksums .*"
                                       rf"`m2m-pipeline pools migrate {path}`"):
        read_prepared(path)
    assert prepared_fingerprint(path) is None   # prepare writes it again
    res = runner.invoke(app, ["pools", "migrate", str(path)])
    assert res.exit_code == 0 and f"migrated  {path}" in res.output, res.output
    got = read_prepared(path)
    assert _same(got, data) and root_doc(path)["attributes"]["migrated_from"] == 1
    assert migrate_prepared(path) is False
