"""The DVC DAG end to end on a tiny schedule: repro runs every stage, a second repro runs none."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

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
    assert shown.returncode == 0 and "summary-digits.json" in shown.stdout   # one flat summary per dataset
    for method in ("M2m-Clean", "M2m-Rand"):   # the default ablations, from M2m's pools
        metrics = json.loads((tmp_path / "metrics" / "digits" / f"{method}-seed0.json").read_text())
        assert 0 <= metrics["best_val"]["test"]["bacc"] <= 100
    assert (tmp_path / "reports" / "digits" / "ablations.md").is_file()


# -- deps and params keyed so that an edit re-runs exactly what it can change ------------------------

def _stages_yaml():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _script_of(stage: dict) -> str:
    cmd = (stage.get("do") or stage)["cmd"]
    return cmd.split()[1]   # "python stages/<script>.py ..."


def _code_deps(stage: dict) -> list[str]:
    deps = (stage.get("do") or stage)["deps"]
    return [d for d in deps if d.startswith(("stages/", "m2m_pipeline"))]


@pytest.mark.parametrize("name", sorted(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]))
def test_stage_code_deps_are_its_import_graph(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location("stage_deps", ROOT / "stages" / "deps.py")
    deps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deps)
    stage = _stages_yaml()[name]
    assert _code_deps(stage) == deps.stage_deps(ROOT / _script_of(stage)), \
        f"dvc.yaml deps of {name} differ from its imports: run `python stages/render_dvc.py`"


def test_reuse_ablation_stage_depends_on_pools_not_on_g_or_translation():
    stage = _stages_yaml()["ablate_reuse"]
    deps = stage["deps"]
    assert "pools/${dataset}/M2m-seed${item.seed}" in deps and "runs/${dataset}/warm-ce-seed${item.seed}" in deps
    assert not any("g-seed" in d for d in deps)
    assert not any(d in ("m2m_pipeline/translate.py", "m2m_pipeline/pools/generate.py", "m2m_pipeline/pools",
                         "m2m_pipeline/pools/shard.py", "m2m_pipeline/pools/backends.py", "m2m_pipeline/pools/sources",
                         "m2m_pipeline/pools/sources/translated.py", "m2m_pipeline/pools/sources/online.py")
                   for d in deps)


def test_rendered_dvc_yaml_is_current():
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_dvc", ROOT / "stages" / "render_dvc.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    text = render.render((ROOT / "stages" / "dvc.yaml.in").read_text())
    assert (ROOT / "dvc.yaml").read_text().endswith(text), "dvc.yaml is stale: run `python stages/render_dvc.py`"
    from dataclasses import fields

    from m2m_pipeline.training.options import FitOptions
    from m2m_pipeline.training.schedule import Preset

    # every preset key but the m2m overrides is a dep of the training stages, and every FitOptions key
    assert set(render.SCHEDULE_KEYS) == {f.name for f in fields(Preset)} - {"m2m"}
    assert set(render.FIT_KEYS) == {f.name for f in fields(FitOptions)} - {"extra"}


def test_every_preset_spells_out_every_tracked_key():
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    from dataclasses import fields

    from m2m_pipeline.training.schedule import Preset

    want = {f.name for f in fields(Preset)}
    for name, preset in params["presets"].items():
        assert set(preset) == want, f"presets.{name} lacks {sorted(want - set(preset))}"
    assert set(params["ablation_params"]) >= set(params["ablations"]["reuse"]) | set(params["ablations"]["translate"])


def _dag_with_outputs(tmp_path, *, copy_package: bool = False, edit_params=None):
    """A copy of the DAG whose every stage is recorded as run (dvc commit on stand-in outputs), so
    that `dvc status` then shows exactly the stages a params edit invalidates. ``copy_package``:
    a copy of m2m_pipeline instead of a link to it, for tests that edit the code; ``edit_params``:
    a function that changes the copied params (a dict) before anything is recorded."""
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "stages", tmp_path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    if copy_package:
        shutil.copytree(ROOT / "m2m_pipeline", tmp_path / "m2m_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        (tmp_path / "m2m_pipeline").symlink_to(ROOT / "m2m_pipeline")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["seeds"] = [0]
    if edit_params is not None:
        edit_params(params)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _dvc(["init", "--no-scm", "-q"], tmp_path).returncode == 0
    # stand-in outputs: every out (metrics and plots included) of every stage, resolved by DVC itself
    code = ("import json; from dvc.repo import Repo; r = Repo('.'); "
            "print(json.dumps([str(o.fs_path) for s in r.index.stages for o in s.outs]))")
    listed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    for path in json.loads(listed.stdout):
        p = Path(path)
        if p.suffix == ".json":
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("{}")
        else:
            p.mkdir(parents=True, exist_ok=True)
            (p / "stand-in").write_text("x")
    committed = _dvc(["commit", "-f"], tmp_path)
    assert committed.returncode == 0, committed.stderr[-2000:]
    return params


def _changed_stages(tmp_path) -> set[str]:
    out = _dvc(["status", "--json"], tmp_path)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout or "{}"))


def test_params_edits_rerun_only_their_stages(tmp_path):
    params = _dag_with_outputs(tmp_path)
    assert _changed_stages(tmp_path) == set()

    def edit(fn):
        p = yaml.safe_load((tmp_path / "params.yaml").read_text())
        fn(p)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
        changed = _changed_stages(tmp_path)
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        # check_params tracks the whole file (tests/system/test_dvc_params_check.py): every edit re-runs it
        assert "check_params" in changed, changed
        return changed - {"check_params"}

    # an ablation's own parameter: only that ablation's stages
    assert edit(lambda p: p["ablation_params"]["M2m-Clean"].update(note=1)) == {"ablate_reuse@M2m-Clean-0"}
    # digits' m2m override: only the translating stages of digits (no baseline, no reuse ablation)
    # (M2m and the default translating ablation M2m-RS-Rand, which translates with the same m2m params)
    assert edit(lambda p: p["presets"]["digits"]["m2m"].update(gamma=0.99)) == {"train_m2m@M2m-0",
                                                                               "ablate_translate@M2m-RS-Rand-0"}
    # another dataset's preset: nothing of the digits DAG
    assert edit(lambda p: p["presets"]["reuters"].update(epochs=16)) == set()


# -- the lazy dataset registry: a recipe is a dep of the prepare stage of its own dataset only ------

def _recipe_files() -> dict[str, str]:
    from m2m_pipeline.datasets.registry import RECIPES

    return {name: f"m2m_pipeline/datasets/{spec['module']}.py" for name, spec in RECIPES.items()}


def test_training_stages_depend_on_no_recipe_and_prepare_only_on_its_own():
    recipes = _recipe_files()
    dataset = yaml.safe_load((ROOT / "params.yaml").read_text())["dataset"]
    own = recipes[dataset.partition(":")[0]]
    for name, stage in _stages_yaml().items():
        deps = set(_code_deps(stage))
        assert "m2m_pipeline/datasets" not in deps, f"{name} depends on every recipe (the whole datasets/ folder)"
        got = deps & set(recipes.values())
        assert got == ({own} if name == "prepare" else set()), f"{name}: recipe deps {sorted(got)}"


def test_editing_another_recipe_reruns_no_stage(tmp_path):
    _dag_with_outputs(tmp_path, copy_package=True)
    assert _changed_stages(tmp_path) == set()
    celeba = tmp_path / "m2m_pipeline" / "datasets" / "celeba.py"
    celeba.write_text(celeba.read_text() + "\n# an edit of the CelebA recipe\n")
    assert _changed_stages(tmp_path) == set()
    digits = tmp_path / "m2m_pipeline" / "datasets" / "digits.py"
    digits.write_text(digits.read_text() + "\n# an edit of the digits recipe\n")
    assert _changed_stages(tmp_path) == {"prepare"}   # downstream stages wait for prepare's output


def test_dvc_yaml_paths_are_the_layouts():
    """dvc.yaml spells the folders with ${dataset} (DVC cannot call Python): they must be layout.py's."""
    from m2m_pipeline.layout import Layout

    def resolved(text: str) -> str:
        for var, value in (("${dataset}", "digits"), ("${item.method}", "M2m"), ("${item.seed}", "0"),
                           ("${item.loss}", "ce"), ("${item}", "0")):
            text = text.replace(var, value)
        return text

    tokens = set()
    for stage in _stages_yaml().values():
        tokens |= set(resolved((stage.get("do") or stage)["cmd"]).split())
    layout = Layout("digits")
    for path in (layout.prepared, layout.run("M2m", 0), layout.g(0), layout.g_checkpoint(0), layout.warm("ce", 0),
                 layout.warm("ldam", 0), layout.pools("M2m", 0), layout.metrics("M2m", 0),
                 layout.history("M2m", 0), layout.predictions("M2m", 0), layout.report_dir(), layout.summary,
                 layout.run("ERM", 0) / "best.pt"):
        assert str(path) in tokens, f"{path} is not a path of dvc.yaml"
