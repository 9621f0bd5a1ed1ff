"""The command line: help texts, one-line errors, and generate -> pool round trip."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from m2m_pipeline.cli import app
from m2m_pipeline.store import open_pool, pool_as_dask

from tests.conftest import ROOT

runner = CliRunner()


@pytest.mark.parametrize("cmd", [[], ["prepare"], ["pretrain-g"], ["train-f"], ["generate"], ["evaluate"],
                                 ["data", "info"], ["pools", "info"], ["pools", "show"], ["table"]])
def test_every_command_has_help(cmd):
    res = runner.invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0 and "Usage" in res.output


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "m2m_pipeline.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_unknown_dataset_is_one_line_error(tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    res = _cli(["prepare", "--dataset", "nosuch"], tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "unknown dataset 'nosuch'" in res.stderr
    assert not (tmp_path / "data").exists()


def test_generate_writes_a_pool_that_reads_back(tmp_path, trained):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["presets"]["digits"].update(epochs=4, deferred_epoch=2, milestones=[3], warmup_epochs=1,
                                       model_args={"width": 8})
    params["m2m"].update(steps=3, step_size=1.0, beta=0.9, gamma=0.5)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    assert _cli(["prepare"], tmp_path).returncode == 0
    again = _cli(["prepare"], tmp_path)
    assert again.returncode == 0 and "unchanged" in again.stdout
    out = tmp_path / "pool"
    res = _cli(["generate", "--g", str(trained / "g" / "last.pt"), "--f", str(trained / "warm" / "last.pt"),
                "--out", str(out), "--seed", "0"], tmp_path)
    assert res.returncode == 0, res.stderr
    pool = open_pool(out)
    eager, lazy = pool.rows(), pool_as_dask(out)
    for name, arr in lazy.items():
        assert np.array_equal(arr.compute(), eager[name], equal_nan=eager[name].dtype.kind == "f")
    assert pool.attrs["epoch"] == 2 and pool.attrs["summary"]["n_attempts"] == len(pool)
    info = _cli(["pools", "info", str(out)], tmp_path)
    assert info.returncode == 0 and '"n_accepted"' in info.stdout
    shown = _cli(["pools", "show", str(out), "--out", str(tmp_path / "pool.png")], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert (tmp_path / "pool.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a missing checkpoint is a one-line error naming the file
    bad = _cli(["generate", "--g", str(tmp_path / "missing.pt"), "--f", str(trained / "warm" / "last.pt"),
                "--out", str(tmp_path / "p2")], tmp_path)
    assert bad.returncode == 2 and "missing.pt" in bad.stderr and not (tmp_path / "p2").exists()


def _tiny_params(tmp_path, **ablations):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["presets"]["digits"].update(epochs=4, deferred_epoch=2, milestones=[3], warmup_epochs=1,
                                       model_args={"width": 8})
    params["m2m"].update(steps=3, step_size=1.0, beta=0.9, gamma=0.5)
    params["ablations"].update(ablations)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))


def test_train_f_mode_fresh_translates_with_its_own_f_and_bad_modes_are_one_line(tmp_path):
    _tiny_params(tmp_path, reuse=["M2m-Rand"], fresh=["M2m-No-Gamma"])
    for cmd in (["prepare"], ["pretrain-g", "--seed", "0"], ["warm-f", "--seed", "0"]):
        res = _cli(cmd, tmp_path)
        assert res.returncode == 0, (cmd, res.stderr)
    runs = sorted(p.name for p in (tmp_path / "runs" / "digits").iterdir())
    for args, needle in ((["--method", "ERM", "--mode", "fresh"], "ERM does not re-decide"),
                         (["--method", "M2m-Clean", "--mode", "bogus"], "unknown ablation mode 'bogus'"),
                         (["--method", "M2m", "--reuse-pools", str(tmp_path)], "--reuse-pools is for an ablation"),
                         # without --mode, params.yaml's ablations section decides: fresh here
                         (["--method", "M2m-No-Gamma", "--reuse-pools", str(tmp_path)], "in mode fresh translates")):
        bad = _cli(["train-f", "--seed", "0", *args], tmp_path)
        assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and needle in bad.stderr, bad.stderr
    assert sorted(p.name for p in (tmp_path / "runs" / "digits").iterdir()) == runs and not (tmp_path / "pools").exists()
    # no M2m run exists: fresh needs none, as it translates its own rows (reuse would be refused)
    res = _cli(["train-f", "--seed", "0", "--method", "M2m-Clean", "--mode", "fresh"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "M2m-Clean (mode fresh)" in res.stdout
    epochs = sorted(p.name for p in (tmp_path / "pools" / "digits" / "M2m-Clean-seed0").iterdir())
    assert epochs == ["epoch_2", "epoch_3"]
    assert open_pool(tmp_path / "pools" / "digits" / "M2m-Clean-seed0" / "epoch_3").attrs["epoch"] == 3
