"""The DVC DAG end to end on a tiny schedule: repro runs every stage, a second repro runs none."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

pytestmark = pytest.mark.slow


def _dvc(args, cwd):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    dvc = shutil.which("dvc", path=env["PATH"])
    if dvc is None:
        pytest.skip("dvc is not installed in this environment")
    return subprocess.run([dvc, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_repro_twice_is_a_no_op(tmp_path):
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "stages", tmp_path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    # deps name the library folders: link them so the stage hashes see the real code
    (tmp_path / "m2m_pipeline").symlink_to(ROOT / "m2m_pipeline")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["presets"]["digits"].update(epochs=3, deferred_epoch=1, milestones=[2], warmup_epochs=1,
                                       model_args={"width": 8})
    params["m2m"].update(steps=2)
    params["seeds"] = [0]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _dvc(["init", "--no-scm", "-q"], tmp_path).returncode == 0
    first = _dvc(["repro"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    for method in ("ERM", "DRS", "M2m"):
        metrics = json.loads((tmp_path / "metrics" / "digits" / f"{method}-seed0.json").read_text())
        assert 0 <= metrics["best_val"]["test"]["bacc"] <= 100
    assert (tmp_path / "pools" / "digits" / "M2m-seed0" / "epoch_1" / "zarr.json").exists()
    report = (tmp_path / "reports" / "digits" / "report.md").read_text()
    assert all(f"| {m} |" in report for m in ("ERM", "DRS", "M2m"))
    second = _dvc(["repro"], tmp_path)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout
    assert "up to date" in second.stdout.lower()
    shown = _dvc(["metrics", "show"], tmp_path)
    assert shown.returncode == 0 and "M2m-seed0.json" in shown.stdout
