"""Issue 20, item 9: DVC deletes a stage's outputs just before it runs the stage, so a bad params
value must fail before any stage that owns work runs. The `check_params` stage checks all of
params.yaml and every other stage depends on its output: a bad value fails there, and the
prepared data, the runs and the pools are all still there. A copy of the DAG with stand-in outputs
recorded as run (tests/system/test_dvc.py's ``_dag_with_outputs``)."""

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT
from tests.system.test_dvc import _changed_stages, _dag_with_outputs, _dvc, _stages_yaml

pytestmark = pytest.mark.slow

CHECK_OUT = "data/params-check.json"
KEPT = ["data/prepared/digits", "runs/digits/g-seed0", "runs/digits/warm-ce-seed0", "runs/digits/M2m-seed0",
        "pools/digits/M2m-seed0", "runs/digits/M2m-Clean-seed0", "runs/digits/ERM-seed0"]


def test_every_stage_depends_on_the_params_check():
    stages = _stages_yaml()
    check = stages["check_params"]
    assert check["params"] == [{"params.yaml": None}] and check["outs"] == [CHECK_OUT]
    for name, stage in stages.items():
        if name != "check_params":
            assert CHECK_OUT in (stage.get("do") or stage)["deps"], f"{name} does not wait for check_params"


def _dag(tmp_path):
    params = _dag_with_outputs(tmp_path, copy_package=True)   # a copy: others' edits of the code stay out
    # the check's real output, so that a valid edit re-runs check_params and nothing after it
    real = subprocess.run([sys.executable, "stages/check_params.py", "--out", CHECK_OUT], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert real.returncode == 0, real.stderr
    assert _dvc(["commit", "-f"], tmp_path).returncode == 0
    assert _changed_stages(tmp_path) == set()
    return params


def _write(tmp_path, params):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def test_a_bad_param_fails_at_check_params_and_deletes_no_work(tmp_path):
    params = _dag(tmp_path)
    for path in KEPT:
        assert (tmp_path / path / "stand-in").is_file()
    bad = json.loads(json.dumps(params))
    bad["m2m"]["gamma"] = 2                       # the README's `-S m2m.gamma=...` with a bad value
    bad["prepare"]["digits"]["rho"] = 0.5         # and one that invalidates prepare itself
    _write(tmp_path, bad)
    assert {"check_params", "prepare", "train_m2m@M2m-0"} <= _changed_stages(tmp_path)
    res = _dvc(["repro"], tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode != 0, out[-3000:]
    assert "Running stage 'check_params'" in out
    assert "error: m2m.gamma must be a finite number in [0, 1] when gamma_on is prob, got 2" in out
    assert "Running stage 'prepare'" not in out and "Running stage 'train_m2m" not in out
    for path in KEPT:                             # nothing DVC cannot restore was deleted
        assert (tmp_path / path / "stand-in").read_text() == "x", path


def test_a_valid_edit_reruns_the_check_only(tmp_path):
    params = _dag(tmp_path)
    edited = json.loads(json.dumps(params))
    edited["presets"]["reuters"]["epochs"] = 16   # tracked by the check, by no stage of the digits DAG
    _write(tmp_path, edited)
    assert _changed_stages(tmp_path) == {"check_params"}
    res = _dvc(["repro"], tmp_path)
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    assert "Running stage 'check_params'" in res.stdout
    assert res.stdout.count("Running stage") == 1, res.stdout
    assert _changed_stages(tmp_path) == set()
    for path in KEPT:
        assert (tmp_path / path / "stand-in").is_file()
