"""Issue 20 items 2 and 5 for pools: a crc32c checksum in every chunk and shard index, verified on
every read; the attributes' own sha256 and the metadata's sha256 checked on open; one schema of the
attributes checked on open; index arrays checked to be in range on read; the format versioned, older
pools refused naming ``m2m-pipeline pools migrate``, which rewrites them atomically."""

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from m2m_pipeline.cli import app
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.pools.browse.stats import pool_stats
from m2m_pipeline.pools.config import SEED_SCOPES
from m2m_pipeline.pools.reuse import read_swaps
from m2m_pipeline.store import POOL_FORMAT_VERSION, PoolWriter, migrate_pool, open_pool, verify_pool
from m2m_pipeline.store import migration, pool_format
from m2m_pipeline.store.zarr_io import codec_problem
from m2m_pipeline.utils import M2mError

from tests.tiny import tiny_pool_attrs
from tests.unit.store.pool_fixtures import all_values, downgrade, flip_bit, make_pool, rewrite_attrs, root_doc

runner = CliRunner()


@pytest.fixture(scope="module")
def pool_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("pools") / "pools" / "tiny-img" / "M2m-seed0"
    data = make_pool(root / "epoch_1")
    make_pool(root / "epoch_2", epoch=2)
    return root, data


@pytest.fixture
def pool(pool_dir, tmp_path):
    """A fresh copy of epoch 1's pool, at .../M2m-seed0/epoch_1 like the real layout."""
    dst = tmp_path / "M2m-seed0" / "epoch_1"
    shutil.copytree(pool_dir[0] / "epoch_1", dst)
    return dst


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg


def test_every_array_checksums_its_chunks_and_shard_index(pool):
    manifest = root_doc(pool)["attributes"]["manifest"]
    assert root_doc(pool)["attributes"]["format_version"] == POOL_FORMAT_VERSION == 4
    assert set(manifest["arrays"]) >= set(pool_format.POOL_ARRAY_DTYPES) | {"class", "class_count"}
    for name in manifest["arrays"]:
        meta = json.loads((pool / name / "zarr.json").read_text())
        assert codec_problem(meta) is None, name
        last = meta["codecs"][-1]
        if last["name"] == "sharding_indexed":
            conf = last["configuration"]
            assert [c["name"] for c in conf["codecs"]][-2:] == ["zstd", "crc32c"], name
            assert conf["index_codecs"][-1]["name"] == "crc32c", name
        else:
            assert [c["name"] for c in meta["codecs"]][-2:] == ["zstd", "crc32c"], name
    # codec_problem itself: a chain without crc32c, inside or on the index of a shard
    assert codec_problem({"codecs": [{"name": "bytes"}, {"name": "zstd"}]}) == "its codecs do not end in crc32c"
    shard = {"name": "sharding_indexed", "configuration": {"codecs": [{"name": "bytes"}, {"name": "zstd"}],
                                                           "index_codecs": [{"name": "crc32c"}]}}
    assert "codecs do not end in crc32c" in codec_problem({"codecs": [shard]})


@pytest.mark.parametrize("rel, array", [("x_delta/c/0/0/0/0", "x_delta"), ("slot/c/0", "slot"),
                                        ("target/c/1", "target"), ("seed_class/c/0", "seed_class"),
                                        ("plan/order/c/0", "plan/order"), ("class/c/0", "class")])
def test_a_flipped_bit_in_a_real_chunk_is_a_one_line_error(pool, rel, array):
    """The issue's reproduction: one bit of a chunk, same size, so the size check passes; the read
    fails its crc32c and names the pool (its epoch folder), the array, the rows and the file."""
    good = open_pool(pool).array(array)
    size = (pool / rel).stat().st_size
    flip_bit(pool / rel, byte=size // 3, bit=5)
    assert (pool / rel).stat().st_size == size
    p = open_pool(pool)   # sizes and metadata are as recorded: the damage shows on read
    with pytest.raises(M2mError, match=rf"pool .*M2m-seed0/epoch_1 is damaged: array '{array}' fails its crc32c "
                                       rf"checksum in rows \d+\.\.\d+ \(file {rel}\)") as err:
        p.array(array)
    _one_line(err)
    if not array.startswith("plan") and array != "class":
        with pytest.raises(M2mError, match=f"array '{array}' fails its crc32c"):
            p.rows()
    assert len(good)


def test_flipped_pool_is_refused_by_the_reuse_path(pool, pool_dir):
    """`train-f --method M2m-Rand --reuse-pools COPY` reads through read_swaps: refused, not trained on."""
    data = pool_dir[1]
    plan, swaps, counts = read_swaps(pool, data, rule="rand", seed=0)
    assert counts["n_attempts"] == 9
    for rel in ("x_delta/c/0/0/0/0", "target/c/0", "slot/c/0"):
        copy = pool.parent / f"copy_{rel.split('/')[0]}" / "epoch_1"
        shutil.copytree(pool, copy)
        flip_bit(copy / rel, bit=1)
        with pytest.raises(M2mError, match=rf"epoch_1 is damaged: array '{rel.split('/')[0]}' fails its crc32c"):
            read_swaps(copy, data, rule="rand", seed=0)


def test_flipped_bits_in_metadata_are_refused_on_open(pool):
    attrs_text = (pool / "zarr.json").read_text()
    at = attrs_text.index('"beta": 0.9') + len('"beta": 0.')
    flip_bit(pool / "zarr.json", byte=at, bit=3)                 # 0.9 -> 0.1, still valid JSON and schema
    assert json.loads((pool / "zarr.json").read_text())["attributes"]["params"]["beta"] == 0.1
    with pytest.raises(M2mError, match=r"epoch_1 is damaged: its zarr.json has attributes that differ from their "
                                       r"recorded sha256") as err:
        open_pool(pool)
    _one_line(err)
    flip_bit(pool / "zarr.json", byte=at, bit=3)
    meta = (pool / "accepted" / "zarr.json").read_text()
    at = meta.index('"fill_value": false') + len('"fill_value": ')
    doc = meta[:at] + "true " + meta[at + len("false"):]        # same size: all accepted rows read as True
    (pool / "accepted" / "zarr.json").write_text(doc)
    with pytest.raises(M2mError, match=r"its metadata file accepted/zarr.json differs from its recorded sha256"):
        open_pool(pool)


def test_older_formats_are_refused_naming_migrate_and_migrate_rewrites_them(pool, tmp_path):
    before = open_pool(pool)
    values, attrs = all_values(before), before.attrs
    downgrade(pool, 2)
    assert codec_problem(json.loads((pool / "slot" / "zarr.json").read_text())) is not None
    with pytest.raises(M2mError, match=rf"pool {pool} has format 2, without chunk checksums \(this version reads "
                                       rf"formats 3 to 4\); rewrite it with `m2m-pipeline pools migrate {pool}`") as err:
        open_pool(pool)
    _one_line(err)
    res = runner.invoke(app, ["pools", "migrate", str(pool.parent)])
    assert res.exit_code == 0 and f"migrated  {pool}" in res.output, res.output
    after = open_pool(pool)
    assert all_values(after) == values
    new = after.attrs
    assert new["format_version"] == 4 and new["migrated_from"] == 2
    same = {k for k in attrs if k not in ("manifest", "attrs_sha256")}
    assert {k: new[k] for k in same} == {k: attrs[k] for k in same}
    assert verify_pool(pool)["digests"] == len(new["manifest"]["sha256"])
    assert not list(pool.parent.glob("*tmp*"))
    res = runner.invoke(app, ["pools", "migrate", str(pool)])
    assert res.exit_code == 0 and f"current   {pool}" in res.output


def test_migrate_refuses_a_damaged_old_pool_and_leaves_it_as_it_was(pool, monkeypatch):
    downgrade(pool, 2)
    flip_bit(pool / "target" / "c" / "0", bit=2)
    snapshot = {p.relative_to(pool): p.read_bytes() for p in pool.rglob("*") if p.is_file()}
    res = runner.invoke(app, ["pools", "migrate", str(pool)])
    assert res.exit_code != 0 and "FAILED" in res.output
    assert isinstance(res.exception, M2mError) and "file target/c/0 differs from its recorded sha256" in str(res.exception)
    assert {p.relative_to(pool): p.read_bytes() for p in pool.rglob("*") if p.is_file()} == snapshot
    # an interruption half-way (here: an error after the new pool is written) leaves the old one too
    flip_bit(pool / "target" / "c" / "0", bit=2)
    snapshot = {p.relative_to(pool): p.read_bytes() for p in pool.rglob("*") if p.is_file()}
    real = migration.rewrite_group

    def crash(*a, **k):
        real(*a, **k)
        raise KeyboardInterrupt
    monkeypatch.setattr(migration, "rewrite_group", crash)
    with pytest.raises(KeyboardInterrupt):
        migrate_pool(pool)
    assert {p.relative_to(pool): p.read_bytes() for p in pool.rglob("*") if p.is_file()} == snapshot
    assert not list(pool.parent.glob("*tmp*"))
    monkeypatch.setattr(migration, "rewrite_group", real)
    assert migrate_pool(pool) is True and migrate_pool(pool) is False


def test_format_1_and_newer_formats_are_refused(pool):
    rewrite_attrs(pool, lambda a: a.update(format_version=5))
    with pytest.raises(M2mError, match="has format 5, newer than this m2m-pipeline reads"):
        open_pool(pool)
    rewrite_attrs(pool, lambda a: a.update(format_version=1), reseal=False)
    with pytest.raises(M2mError, match="cannot be migrated: delete it and generate it again"):
        migrate_pool(pool)


# -- item 5: one schema, checked on open -------------------------------------------------------

@pytest.mark.parametrize("edit, message", [
    (lambda a: a["params"].update(beta="x"), r"attribute params\.beta should be a finite number in \[0, 1\), not 'x'"),
    (lambda a: a["params"].update(beta=2.0), r"attribute params\.beta should be a finite number in \[0, 1\), not 2\.0"),
    (lambda a: a.update(class_counts=[1]), r"class_counts has 1 classes but array 'class' has shape \[3\]"),
    (lambda a: a.pop("params"), r"attribute params is missing"),
    (lambda a: a["params"].pop("beta"), r"attribute params\.beta is missing"),
    (lambda a: a.update(train_batch_size=0), r"attribute train_batch_size should be an integer >= 1, not 0"),
    (lambda a: a.update(summary="x"), r"attribute summary should be a mapping, not 'x'"),
    (lambda a: a["summary"].update(n_attempts=3), r"summary\.n_attempts 3 is not n_rows 9"),
    (lambda a: a.update(epoch=True), r"attribute epoch should be an integer >= 0, not true"),
    (lambda a: a["params"].update(gamma_on="logit"), r"attribute params\.gamma_on should be one of \['prob', 'loss'\]"),
    (lambda a: a["params"].update(foo=1), r"attribute params\.foo should be no such key \(unknown\)"),
    (lambda a: a["reason_codes"].update(accepted=300), r"attribute reason_codes\.accepted should be an integer in 0\.\.255"),
    (lambda a: a.update(n_rows=10), r"summary\.n_attempts 9 is not n_rows 10"),
])
def test_bad_attributes_are_one_line_errors_naming_the_attribute(pool, edit, message):
    rewrite_attrs(pool, edit)   # re-sealed: consistent with itself, so the schema must refuse it
    with pytest.raises(M2mError, match=rf"pool {pool} has bad attributes: {message}") as err:
        open_pool(pool)
    _one_line(err)


def test_an_edit_that_is_not_resealed_is_refused_by_the_hash(pool):
    rewrite_attrs(pool, lambda a: a["params"].update(beta=0.5), reseal=False)
    with pytest.raises(M2mError, match="attributes that differ from their recorded sha256"):
        open_pool(pool)
    rewrite_attrs(pool, lambda a: a.pop("attrs_sha256"), reseal=False)
    with pytest.raises(M2mError, match="records no hash of its attributes"):
        open_pool(pool)


def test_deep_nesting_is_refused_without_recursion_error(pool):
    text = (pool / "zarr.json").read_text()
    deep = '"deep": ' + "[" * 200_000 + "]" * 200_000 + ", "
    (pool / "zarr.json").write_text(text.replace('"attributes": {', '"attributes": {' + deep, 1))
    with pytest.raises(M2mError, match=r"not a readable zarr group: its zarr.json cannot be parsed \(nested 20000\d "
                                       r"levels deep \(at most 64\)\)") as err:
        open_pool(pool)
    _one_line(err)
    for cmd in (["pools", "info", str(pool)], ["pools", "verify", str(pool)]):
        res = runner.invoke(app, cmd)
        assert isinstance(res.exception, M2mError) and "levels deep" in str(res.exception), (cmd, res.exception)


def test_pools_ls_lists_the_good_pools_and_flags_the_bad(pool_dir, tmp_path):
    root = tmp_path / "pools"
    shutil.copytree(pool_dir[0].parent.parent, root)
    run = root / "tiny-img" / "M2m-seed0"
    for name, edit in (("M2m-seed1", lambda a: a["params"].update(beta="x")),
                       ("M2m-seed2", lambda a: a.update(train_batch_size=0))):
        shutil.copytree(run / "epoch_1", root / "tiny-img" / name / "epoch_1")
        rewrite_attrs(root / "tiny-img" / name / "epoch_1", edit)
    deep = root / "tiny-img" / "M2m-seed3" / "epoch_1"
    shutil.copytree(run / "epoch_1", deep)
    text = (deep / "zarr.json").read_text()
    (deep / "zarr.json").write_text(text.replace('"attributes": {', '"attributes": {"d": ' + "[" * 200_000
                                                 + "]" * 200_000 + ", ", 1))
    res = runner.invoke(app, ["pools", "ls", str(root), "--json"])
    assert res.exit_code == 0, res.output
    rows = {(r["method"], r["seed"], r["epoch"]): r for r in json.loads(res.output)}
    assert {k for k, r in rows.items() if r["problem"] is None} == {("M2m", 0, 1), ("M2m", 0, 2)}
    assert rows[("M2m", 0, 1)]["attempts"] == 9
    assert "params.beta should be a finite number" in rows[("M2m", 1, 1)]["problem"]
    assert "train_batch_size should be an integer >= 1" in rows[("M2m", 2, 1)]["problem"]
    assert "levels deep (at most 64)" in rows[("M2m", 3, 1)]["problem"]
    res = runner.invoke(app, ["pools", "ls", str(root)])
    assert res.exit_code == 0 and res.output.count("DAMAGED") == 6   # the table's column and one line each
    assert f"DAMAGED {root / 'tiny-img' / 'M2m-seed2' / 'epoch_1'}: has bad attributes" in res.output


def test_targets_out_of_range_are_refused_on_read(tmp_path, pool_dir):
    """A pool another writer made, checksums and attributes consistent, with a target of class 7
    in a pool of 3 classes: every reader refuses it (the browser, M2m-Clean and M2m-Rand alike)."""
    data = pool_dir[1]
    n = 4
    rows = {"slot": np.arange(n), "target": np.array([1, 7, 2, 1], np.int32), "seed_class": np.zeros(n, np.int32),
            "seed_index": np.arange(n), "seed_aug": np.zeros((n, 3), np.int16),
            "x_delta": np.zeros((n, *data.input_shape), np.int16), "x_exp": np.zeros(n, np.int8),
            "loss_g": np.ones(n, np.float32), "prob_g": np.ones(n, np.float32), "u_beta": np.zeros(n),
            "accepted": np.ones(n, bool), "reason": np.zeros(n, np.uint8)}
    out = tmp_path / "M2m-seed0" / "epoch_0"
    with PoolWriter(out, n_rows=n, input_shape=data.input_shape, input_kind="image", rows_per_shard=4,
                    class_names=data.class_names) as w:
        w.write_plan(np.arange(n), np.ones(n, bool), np.zeros((n, 3), np.int16))
        w.write_rows(0, rows)
        w.finish(tiny_pool_attrs(rows, class_counts=data.class_counts, dataset_fingerprint=data.fingerprint))
    pool = open_pool(out)
    with pytest.raises(M2mError, match=r"epoch_0 is damaged: array 'target' holds 7, outside 0\.\.2 \(the pool's 3 "
                                       r"classes\)") as err:
        pool.rows(("target", "accepted"))
    _one_line(err)
    for rule in ("rand", "clean", "accepted"):
        with pytest.raises(M2mError, match="array 'target' holds 7"):
            read_swaps(out, data, rule=rule, seed=0)
    with pytest.raises(M2mError, match="array 'target' holds 7"):
        pool_stats(pool)


def test_the_writer_refuses_attributes_its_readers_would_refuse(tmp_path):
    rows = {"slot": np.arange(2), "reason": np.zeros(2, np.uint8), "accepted": np.ones(2, bool)}
    with pytest.raises(M2mError, match="attribute params.beta should be"):
        with PoolWriter(tmp_path / "p", n_rows=2, input_shape=(4,), input_kind="vector", rows_per_shard=2) as w:
            w.write_rows(0, {"target": np.zeros(2, np.int32), "seed_class": np.zeros(2, np.int32),
                             "seed_index": np.arange(2), "seed_aug": np.zeros((2, 3), np.int16),
                             "x_delta": np.zeros((2, 4), np.int16), "x_exp": np.zeros(2, np.int8),
                             "loss_g": np.ones(2, np.float32), "prob_g": np.ones(2, np.float32),
                             "u_beta": np.zeros(2), **rows})
            w.finish(tiny_pool_attrs(rows, class_counts=[1, 1], params={"beta": 1.5}))
    assert not (tmp_path / "p").exists() and not list(tmp_path.iterdir())


def test_the_schema_knows_every_translation_parameter():
    """The pool schema's params are TranslationConfig's fields, and its seed scopes pools/config's
    (the store sits below pools, so it keeps its own copy; this keeps the two equal)."""
    spec = pool_format.POOL_SCHEMA.required["params"]
    assert set(spec.required) | set(spec.optional) == set(TranslationConfig.__dataclass_fields__)
    assert pool_format.SEED_SCOPES == SEED_SCOPES
