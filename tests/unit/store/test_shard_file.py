"""The pool's fast path (store/shard_file.py, issue 16): shard files and array metadata written
without zarr are the ones zarr writes and reads, zarr-written shards (several chunks, a chunk zarr
skipped) decode to zarr's values, damage is an error, never values, and any other layout is left
to zarr. A format-3 pool (zarr-written, 256-row chunks) is read as it is, and `pools migrate`
rewrites it in format 4."""

import json
import shutil

import numpy as np
import pytest
import zarr
from typer.testing import CliRunner

from m2m_pipeline.cli import app
from m2m_pipeline.store import open_pool, verify_pool
from m2m_pipeline.store.integrity import ATTRS_HASH, attrs_digest, file_digests, file_manifest
from m2m_pipeline.store.shard_file import (ShardDamaged, decode_shard, encode_shard, shard_layout,
                                           sharded_array_metadata)
from m2m_pipeline.store.zarr_io import checksummed_compressors
from m2m_pipeline.utils import M2mError

from tests.unit.store.pool_fixtures import all_values, copy_arrays, flip_bit, make_pool

CASES = [("int16", (10, 3, 2, 2), 4, 8), ("bool", (10,), 4, 8), ("int8", (7,), 7, 7), ("float64", (9,), 2, 4),
         ("int64", (5, 3), 5, 5), ("uint8", (17,), 4, 16), ("float32", (3,), 8, 8)]


def _zarr_array(tmp_path, dtype, shape, chunk, shard, values):
    g = zarr.open_group(str(tmp_path / "g"), mode="a")
    rest = shape[1:]
    a = g.create_array("a", shape=shape, dtype=dtype, chunks=(chunk, *rest), shards=(shard, *rest),
                       compressors=checksummed_compressors(), dimension_names=["sample"] + [f"d{i}" for i in rest],
                       fill_value=0)
    a[...] = values
    return a, tmp_path / "g" / "a"


def _values(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    return (rng.standard_normal(shape) * 50).astype(dtype)


@pytest.mark.parametrize("dtype, shape, chunk, shard", CASES)
def test_shards_and_metadata_are_the_ones_zarr_writes(tmp_path, dtype, shape, chunk, shard):
    values = _values(dtype, shape)
    values[0] = 1   # no chunk of fill values only: zarr would skip it, the encoder writes every chunk
    arr, folder = _zarr_array(tmp_path, dtype, shape, chunk, shard, values)
    meta = json.loads((folder / "zarr.json").read_text())
    dims = meta["dimension_names"]
    ours = sharded_array_metadata(shape, dtype, chunk_rows=chunk, shard_rows=shard, dims=dims, attributes={})
    assert ours == meta
    layout = shard_layout(meta)
    assert layout is not None and (layout.chunk_rows, layout.shard_rows, layout.n_shards) == (chunk, shard,
                                                                                              -(-shape[0] // shard))
    key = "c/" + "/".join(["{}"] + ["0"] * (len(shape) - 1))
    for index in range(layout.n_shards):
        lo, hi = layout.shard_range(index)
        file = folder / key.format(index)
        raw = file.read_bytes() if file.exists() else None   # None: every chunk all zeros, zarr wrote no file
        if raw is not None and all(np.any(values[c:c + chunk]) for c in range(lo, hi, chunk)):
            assert encode_shard(values[lo:hi], layout, index) == raw   # byte for byte, when zarr skipped nothing
        got = decode_shard(raw, layout, index)
        assert got.dtype == np.dtype(dtype) and np.array_equal(got, values[lo:hi])
        # what the encoder writes, zarr reads back
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(encode_shard(values[lo:hi], layout, index))
    assert np.array_equal(zarr.open_array(str(folder), mode="r")[...], values)


def test_a_chunk_zarr_skipped_and_a_missing_shard_read_as_the_fill_value(tmp_path):
    values = np.zeros((12, 2), np.int16)
    values[0] = 7            # shard 0: chunk 0 written, chunk 1 all zeros (zarr skips it); shard 1: no file
    _, folder = _zarr_array(tmp_path, "int16", (12, 2), 4, 8, values)
    layout = shard_layout(json.loads((folder / "zarr.json").read_text()))
    raw = (folder / "c" / "0" / "0").read_bytes()
    assert np.frombuffer(raw[-36:-4], "<u8")[2:].tolist() == [2 ** 64 - 1] * 2   # the index says "not written"
    assert np.array_equal(decode_shard(raw, layout, 0), values[:8])
    assert not (folder / "c" / "1").exists()
    assert np.array_equal(decode_shard(None, layout, 1), values[8:])


def test_damage_is_an_error_never_values(tmp_path):
    values = _values("int16", (8, 5))
    _, folder = _zarr_array(tmp_path, "int16", (8, 5), 4, 8, values)
    layout = shard_layout(json.loads((folder / "zarr.json").read_text()))
    raw = (folder / "c" / "0" / "0").read_bytes()
    for at, problem in ((3, "checksum"), (len(raw) - 10, "checksum"), (len(raw) - 2, "checksum")):
        bad = bytearray(raw)
        bad[at] ^= 0x10
        with pytest.raises(ShardDamaged) as err:
            decode_shard(bytes(bad), layout, 0)
        assert err.value.problem == problem
    with pytest.raises(ShardDamaged, match="less than its index"):
        decode_shard(raw[:20], layout, 0)
    with pytest.raises(ShardDamaged):
        decode_shard(raw[:-40] + raw[-36:], layout, 0)   # a chunk cut short: the index points past it


@pytest.mark.parametrize("edit", [
    lambda m: m["codecs"][0]["configuration"]["codecs"].pop(),                      # no crc32c on chunks
    lambda m: m["codecs"][0]["configuration"].update(index_location="start"),
    lambda m: m["codecs"][0]["configuration"]["codecs"][0].update(configuration={"endian": "big"}),
    lambda m: m["codecs"][0]["configuration"]["codecs"].__setitem__(1, {"name": "gzip", "configuration": {}}),
    lambda m: m.update(data_type="complex64"),
    lambda m: m["codecs"][0]["configuration"].update(chunk_shape=[3, 5]),           # 8 rows not a whole number of 3
    lambda m: m.update(codecs="not a list"),
    lambda m: m["chunk_key_encoding"].update(name="v2"),
])
def test_any_other_layout_is_left_to_zarr(tmp_path, edit):
    _, folder = _zarr_array(tmp_path, "int16", (8, 5), 4, 8, _values("int16", (8, 5)))
    meta = json.loads((folder / "zarr.json").read_text())
    assert shard_layout(meta) is not None
    edit(meta)
    assert shard_layout(meta) is None


def _as_format_3(path):
    """Rewrite a pool as the format-3 writer left it: every array through zarr itself, the row arrays
    in 4-row chunks inside their shards, ``format_version`` 3, sealed again."""
    src = zarr.open_group(str(path), mode="r")
    attrs = dict(src.attrs)
    tmp = path.with_name(path.name + ".v3")
    out = zarr.open_group(str(tmp), mode="w")

    def as_zarr_wrote_it(arr):   # checksummed; 4-row chunks where they fit the shard (not the plan's)
        chunks = {"chunks": (4, *arr.shape[1:])} if arr.shards is not None and arr.shards[0] % 4 == 0 else {}
        return {"compressors": checksummed_compressors(), **chunks}

    copy_arrays(src, out, attrs["manifest"]["arrays"], as_zarr_wrote_it)
    keep = {k: v for k, v in attrs.items() if k not in ("manifest", ATTRS_HASH)}
    keep.update(format_version=3)
    keep["manifest"] = {**file_manifest(tmp), "sha256": file_digests(tmp)}
    keep[ATTRS_HASH] = attrs_digest(keep)
    out.update_attributes(keep)
    shutil.rmtree(path)
    tmp.rename(path)


def test_a_format_3_pool_is_read_as_it_is_and_migrate_makes_it_format_4(tmp_path):
    path = tmp_path / "M2m-seed0" / "epoch_1"
    make_pool(path)
    values = all_values(open_pool(path))
    _as_format_3(path)
    old = open_pool(path)
    assert old.attrs["format_version"] == 3 and old.layout("x_delta").chunks_per_shard == 2
    assert all_values(old) == values                                     # whole-shard reads of zarr's chunks
    dtype, shape, raw = values["x_delta"]
    x_delta = np.frombuffer(raw, dtype).reshape(shape)
    assert np.array_equal(old.rows(("slot", "x_delta"), np.array([8, 1, 3]))["x_delta"], x_delta[[8, 1, 3]])
    flip_bit(path / "x_delta" / "c" / "1" / "0" / "0" / "0", byte=5)
    with pytest.raises(M2mError, match=r"array 'x_delta' fails its crc32c checksum in rows 8..8 "
                                       r"\(file x_delta/c/1/0/0/0\)"):
        open_pool(path).array("x_delta")
    flip_bit(path / "x_delta" / "c" / "1" / "0" / "0" / "0", byte=5)
    res = CliRunner().invoke(app, ["pools", "migrate", str(path)])
    assert res.exit_code == 0 and f"migrated  {path}" in res.output, res.output
    new = open_pool(path)
    assert new.attrs["format_version"] == 4 and new.attrs["migrated_from"] == 3
    assert new.layout("x_delta").chunks_per_shard == 1 and all_values(new) == values
    assert verify_pool(path)["digests"] == len(new.attrs["manifest"]["sha256"])


@pytest.mark.parametrize("values", [np.asarray(["acq", "crude", "ünïcode", ""], dtype=object),
                                    np.asarray([5000, 12, 0, 3], dtype=np.int64)])
def test_small_arrays_are_the_ones_zarr_writes(tmp_path, values):
    """The pool's class axis (``class`` names, ``class_count``) written without zarr: the same
    zarr.json as zarr writes and a chunk zarr (and so xarray) reads back as the same values."""
    from m2m_pipeline.store.shard_file import small_array_files
    from m2m_pipeline.store.zarr_io import create_small_array, write_group_attrs, write_group_files

    g = zarr.open_group(str(tmp_path / "z"), mode="w")
    create_small_array(g, "a", values if values.dtype != object else np.asarray(values, dtype=str), dims=["class"],
                       attributes={"long_name": "x"})
    theirs = json.loads((tmp_path / "z" / "a" / "zarr.json").read_text())
    meta, chunk = small_array_files(values, dims=["class"], attributes={"long_name": "x"})
    assert meta == theirs
    assert chunk == (tmp_path / "z" / "a" / "c" / "0").read_bytes()
    write_group_files(tmp_path / "ours", {"a": meta})
    (tmp_path / "ours" / "a" / "c").mkdir()
    (tmp_path / "ours" / "a" / "c" / "0").write_bytes(chunk)
    write_group_attrs(tmp_path / "ours", {"k": [1, 2.5, None], "s": "t"})
    back = zarr.open_group(str(tmp_path / "ours"), mode="r")
    assert dict(back.attrs) == {"k": [1, 2.5, None], "s": "t"}
    assert back["a"][...].tolist() == [v if isinstance(v, str) else int(v) for v in values.tolist()]
