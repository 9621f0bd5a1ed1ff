"""Bring-your-own data through the DVC DAG: `dvc exp run -S dataset=<kind> -S data_root=<path>` (the
README's commands) on a tiny image folder and a tiny CSV built here, in a git copy of the DAG
shrunk as tests/system/test_dvc.py shrinks it; and a bad folder stops at prepare, writing nothing."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.unit.datasets.fixtures import make_image_folder, make_table_csv

pytestmark = pytest.mark.slow


def _env():
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _run(args, cwd):
    return subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)


def readme_byo_commands() -> list[str]:
    """The `dvc exp run -S dataset=images|table ...` lines of README.md, as a user types them."""
    text = (ROOT / "README.md").read_text()
    return [line.split("#")[0].strip() for line in text.splitlines()
            if re.match(r"^dvc exp run -S dataset=(images|table|text) ", line)]


@pytest.fixture()
def dag(tmp_path):
    if shutil.which("dvc", path=_env()["PATH"]) is None or shutil.which("git") is None:
        pytest.skip("dvc or git is not installed in this environment")
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "stages", repo / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "m2m_pipeline").symlink_to(ROOT / "m2m_pipeline")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    # a tiny DAG: one seed, 3 epochs (the rest of each kind's preset stays `auto`), 2 translation steps,
    # one baseline, M2m, one reuse ablation; no translating ablation (an empty matrix: no stage)
    for kind in ("images", "table"):
        params["presets"][kind]["epochs"] = 3
    params["presets"]["images"]["model_args"] = {"width": 8}    # small_cnn, the size rule's pick for a tiny set
    params["m2m"]["steps"] = 2
    params["seeds"] = [0]
    params["train_f"]["methods"] = ["ERM"]
    params["evaluate"]["methods"] = ["ERM", "M2m"]
    params["ablations"] = {**params["ablations"], "reuse": ["M2m-Clean"], "fresh": [], "translate": []}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (repo / ".gitignore").write_text("/data\n/runs\n/pools\n/metrics\n/plots\n/predictions\n/reports\n")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "dag"]):
        done = _run(cmd, repo)
        assert done.returncode == 0, done.stderr[-2000:]
    return repo


def _exp_run(repo: Path, command: str, path: Path):
    words = shlex.split(command.replace("/path/to/folder", str(path)).replace("/path/to/file.csv", str(path)))
    return _run(words, repo)


def test_readme_shows_the_byo_commands():
    commands = readme_byo_commands()
    assert any("dataset=images" in c for c in commands) and any("dataset=table" in c for c in commands)


def _byo(kind: str, tmp_path: Path) -> tuple[Path, str]:
    if kind == "images":
        return make_image_folder(tmp_path / "my-images", per_class=(24, 10, 6), n_test=6, size=(12, 12)), "images:my-images"
    return make_table_csv(tmp_path / "rows.csv", counts=(60, 20, 8)), "table:rows.csv"


@pytest.mark.parametrize("kind", ["table", "images"])
def test_byo_dataset_through_the_dag(dag, tmp_path, kind):
    """The README's command runs every stage: params check, prepare, g, warm f (ce, ldam), ERM, M2m (its
    pools), a reuse ablation, evaluate, report (about 5 minutes on the shared, loaded 2-core machine:
    11 stage processes, each importing torch)."""
    path, name = _byo(kind, tmp_path)
    commands = {("images" if "dataset=images" in c else "table"): c for c in readme_byo_commands()}
    done = _exp_run(dag, commands[kind], path)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    for method in ("ERM", "M2m", "M2m-Clean"):
        metrics = json.loads((dag / "metrics" / kind / f"{method}-seed0.json").read_text())
        assert metrics["dataset"] == name and 0 <= metrics["best_val"]["test"]["bacc"] <= 100
    assert (dag / "pools" / kind / "M2m-seed0" / "epoch_2" / "zarr.json").exists()
    report = (dag / "reports" / kind / "report.md").read_text()
    assert all(f"| {m} |" in report for m in ("ERM", "M2m"))
    attrs = json.loads((dag / "data" / "prepared" / kind / "zarr.json").read_text())["attributes"]
    assert attrs["name"] == name
    if kind == "table":
        assert attrs["meta"]["standardize"]["columns"] == ["f1", "f2", "colour=blue", "colour=red"]


def test_a_bad_folder_stops_at_prepare_and_writes_nothing(dag, tmp_path):
    commands = {("images" if "dataset=images" in c else "table"): c for c in readme_byo_commands()}
    one_class = make_image_folder(tmp_path / "one", per_class=(6,), n_test=2)
    for path, message in ((tmp_path / "missing", "does not exist"), (one_class, "class")):
        done = _exp_run(dag, commands["images"], path)
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and message in errors[0], done.stderr[-2000:]
        # nothing written: no prepared data, and no file of a run, pool or metric (DVC may make empty folders)
        assert not (dag / "data" / "prepared" / "images").exists()
        written = [p for top in ("runs", "pools", "metrics", "predictions", "reports") for p in (dag / top).rglob("*")
                   if p.is_file()]
        assert written == []


def test_the_path_form_is_refused_by_the_params_check(monkeypatch):
    """`-S dataset=images:/path` cannot key DVC's paths and params: the first stage says the DAG's form."""
    import importlib.util

    from m2m_pipeline.errors import M2mError
    from m2m_pipeline.params import validate_params

    monkeypatch.syspath_prepend(str(ROOT / "stages"))
    spec = importlib.util.spec_from_file_location("check_params", ROOT / "stages" / "check_params.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    params = validate_params({**yaml.safe_load((ROOT / "params.yaml").read_text()), "dataset": "images:/data/pets"})
    with pytest.raises(M2mError, match="dvc exp run -S dataset=images -S data_root=/data/pets"):
        module.check(params)
    module.check(validate_params({**params, "dataset": "table", "data_root": "rows.csv"}))   # auto: no data needed
