"""`pools verify` (pools/verify.py, store.verify_pool): a run's pools checked against what their
writer recorded, as after a copy to another machine. Real pools of tiny data (tests/tiny.py); the
damage is done to real chunk files: a flipped byte (same size: the check on open passes it, the
recorded sha256 does not), a deleted chunk (a partial pull), a missing epoch, a stray chunk."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from m2m_pipeline.cli import main as cli_main
from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig, generate_pool
from m2m_pipeline.pools.verify import verify_pools
from m2m_pipeline.store import open_pool, verify_pool
from m2m_pipeline.utils import M2mError

from tests.tiny import tiny_mlp, tiny_vectors

EPOCHS = (1, 2, 3)


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory) -> Path:
    """pools/tiny/M2m-seed0/epoch_{1,2,3}: three complete pools, x_delta in several shard files."""
    d = tiny_vectors(counts=(40, 12, 4))
    cfg = TranslationConfig(steps=1, step_size=0.1, batch_size=8, rows_per_shard=8)
    run = tmp_path_factory.mktemp("verify") / "pools" / "tiny" / "M2m-seed0"
    for e in EPOCHS:
        plan = make_plan(d.train.y, d.class_counts, seed=0, epoch=e, order="balanced", attempts=True,
                         augment=d.augment, batch_size=8)
        generate_pool(g=tiny_mlp(d, seed=1), f=tiny_mlp(d, seed=2), data=d, plan=plan, cfg=cfg, seed=0,
                      out=run / f"epoch_{e}")
    return run


@pytest.fixture
def damaged(pool_run, tmp_path) -> Path:
    """A fresh copy of the run to damage."""
    copy = tmp_path / "M2m-seed0"
    shutil.copytree(pool_run, copy)
    return copy


def _verify_cli(path: Path, monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["m2m-pipeline", "pools", "verify", str(path)])
    try:
        cli_main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _chunk(run: Path, epoch: int, array: str = "x_delta") -> Path:
    files = sorted(p for p in (run / f"epoch_{epoch}" / array / "c").rglob("*") if p.is_file())
    assert len(files) >= 2, files   # several shard files: damaging one leaves the others
    return files[0]


def test_a_pool_records_the_sha256_of_every_file(pool_run):
    pool = open_pool(pool_run / "epoch_2")
    manifest = pool.attrs["manifest"]
    written = {p.relative_to(pool.path).as_posix() for p in pool.path.rglob("*") if p.is_file()} - {"zarr.json"}
    assert set(manifest["sha256"]) == written
    assert set(manifest["files"]) <= written   # the data files (sizes), arrays' zarr.json besides
    seen = verify_pool(pool.path)
    assert seen["digests"] == len(written) and seen["files"] == len(manifest["files"]) > 12


def test_verify_passes_an_intact_run(pool_run, monkeypatch, capsys):
    checks = verify_pools(pool_run)
    assert [c.epoch for c in checks] == list(EPOCHS) and all(c.ok for c in checks)
    code, out, err = _verify_cli(pool_run, monkeypatch, capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 3 and all(line.startswith("ok ") and "sha256 checked" in line for line in lines)
    assert "(epoch 3)" in lines[2]


def test_a_flipped_byte_passes_the_size_check_and_is_refused_by_verify(damaged, monkeypatch, capsys):
    chunk = _chunk(damaged, 2)
    data = bytearray(chunk.read_bytes())
    data[len(data) // 3] ^= 0x10   # one bit, same size: what a bad link or disk does
    chunk.write_bytes(bytes(data))
    open_pool(damaged / "epoch_2")   # the check on every open compares sizes only: it passes
    code, out, err = _verify_cli(damaged, monkeypatch, capsys)
    assert code == 2
    rel = chunk.relative_to(damaged / "epoch_2").as_posix()
    assert err.count("\n") == 1 and err.startswith("error: 1 of 3 pools under")
    assert f"epoch 2: pool {damaged / 'epoch_2'} is damaged: file {rel} differs from its recorded sha256" \
        in err
    assert [line.split()[0] for line in out.splitlines()] == ["ok", "DAMAGED", "ok"]


def test_a_partial_pull_is_refused_on_open_and_by_verify(damaged, monkeypatch, capsys):
    chunk = _chunk(damaged, 3)
    chunk.unlink()   # a pull cut short: one shard file never arrived
    with pytest.raises(M2mError, match=r"epoch_3 is damaged: array 'x_delta' misses its data file x_delta/c/"):
        open_pool(damaged / "epoch_3")
    code, out, err = _verify_cli(damaged, monkeypatch, capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"epoch 3: pool {damaged / 'epoch_3'} is damaged" in err and "misses its data file" in err


def test_a_missing_epoch_and_a_stray_chunk_are_refused(damaged):
    shutil.rmtree(damaged / "epoch_2")
    stray = _chunk(damaged, 1).with_name("99")
    shutil.copy(_chunk(damaged, 1), stray)   # a chunk file the writer did not write (a mixed copy)
    checks = {c.epoch: c for c in verify_pools(damaged)}
    assert sorted(checks) == list(EPOCHS)
    assert "pools of epochs 1..3 but not of epoch 2" in checks[2].problem
    assert "was not written with it" in checks[1].problem and stray.name in checks[1].problem
    assert checks[3].ok


def test_verify_of_a_folder_without_pools_is_one_line(tmp_path, monkeypatch, capsys):
    code, out, err = _verify_cli(tmp_path, monkeypatch, capsys)
    assert code == 2 and err.startswith("error: no pools under") and err.count("\n") == 1
