"""Issue 20, item 9: the CLI and DVC never write the same folder by accident. A run or pool folder
that ./dvc.lock records as a stage's output belongs to DVC (`dvc repro` deletes it whenever the
stage runs again), so the training commands refuse it in one line naming the stage, writing
nothing, unless --force (docs/operations.md, "What DVC deletes")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from m2m_pipeline.cli.common import dvc_outputs, refuse_dvc_outputs
from m2m_pipeline.errors import M2mError

from tests.conftest import ROOT

LOCK = {"schema": "2.0", "stages": {
    "pretrain_g@0": {"cmd": "python stages/pretrain_g.py", "outs": [{"path": "runs/digits/g-seed0", "md5": "x.dir"}]},
    "train_m2m@M2m-0": {"cmd": "python stages/train_m2m.py",
                        "outs": [{"path": "runs/digits/M2m-seed0", "md5": "y.dir"},
                                 {"path": "pools/digits/M2m-seed0", "md5": "z.dir"}]}}}


def _project(tmp_path: Path) -> Path:
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(LOCK))
    return tmp_path


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "m2m_pipeline.cli", *args, "--params", str(ROOT / "params.yaml")],
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def _error_line(res) -> str:
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert res.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def test_dvc_outputs_reads_the_lock(tmp_path):
    _project(tmp_path)
    assert dvc_outputs(tmp_path / "dvc.lock") == {"runs/digits/g-seed0": "pretrain_g@0",
                                                  "runs/digits/M2m-seed0": "train_m2m@M2m-0",
                                                  "pools/digits/M2m-seed0": "train_m2m@M2m-0"}
    (tmp_path / "bad.lock").write_text("[: not yaml")
    assert dvc_outputs(tmp_path / "bad.lock") == {}


def test_refuse_dvc_outputs_paths_and_subpaths(tmp_path, monkeypatch):
    monkeypatch.chdir(_project(tmp_path))
    with pytest.raises(M2mError, match=r"^runs/digits/g-seed0 is an output of the DVC stage pretrain_g@0 \(dvc\.lock\)"):
        refuse_dvc_outputs(Path("runs/digits/g-seed0"))
    with pytest.raises(M2mError, match=r"stage train_m2m@M2m-0 .*`dvc commit train_m2m@M2m-0`$"):
        refuse_dvc_outputs(tmp_path / "pools" / "digits" / "M2m-seed0" / "epoch_45")   # inside an output
    refuse_dvc_outputs(Path("runs/digits/g-seed0"), force=True)                      # --force: allowed
    refuse_dvc_outputs(Path("runs/mine/M2m-seed0"), Path("runs/digits"), None)      # elsewhere, or a parent
    (tmp_path / "dvc.lock").unlink()
    refuse_dvc_outputs(Path("runs/digits/g-seed0"))                                  # no DVC project here


def test_cli_training_into_a_dvc_output_is_refused_writing_nothing(tmp_path):
    root = _project(tmp_path)
    res = _cli(["pretrain-g", "--dataset", "digits", "--seed", "0"], root)
    assert "runs/digits/g-seed0 is an output of the DVC stage pretrain_g@0 (dvc.lock)" in _error_line(res)
    res = _cli(["train-f", "--dataset", "digits", "--method", "M2m", "--seed", "0", "--out", "runs/mine/M2m",
                "--pools", "pools/digits/M2m-seed0"], root)
    assert "pools/digits/M2m-seed0 is an output of the DVC stage train_m2m@M2m-0" in _error_line(res)
    assert sorted(p.name for p in root.iterdir()) == ["dvc.lock"]                    # nothing written
    # --force passes the check: the command goes on (and stops at the missing prepared data here)
    res = _cli(["pretrain-g", "--dataset", "digits", "--seed", "0", "--force"], root)
    line = _error_line(res)
    assert "DVC stage" not in line and "data/prepared/digits" in line, line
