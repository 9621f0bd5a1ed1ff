"""DVC deps of the two ablation modes (issue 15): a ``fresh`` ablation (stage ablate_fresh) depends on g
and the translation code, a ``reuse`` one (ablate_reuse) on M2m's pools and neither of those.
In a tmp copy of the DAG with every stage recorded as run (as tests/system/test_dvc.py does)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.system.test_dvc import _changed_stages, _dvc, _stages_yaml

pytestmark = pytest.mark.slow


def test_fresh_stage_depends_on_g_and_the_translation_code_not_on_m2m_pools():
    stage = _stages_yaml()["ablate_fresh"]
    deps = stage["deps"]
    assert "runs/${dataset}/g-seed${item.seed}" in deps and "runs/${dataset}/warm-ce-seed${item.seed}" in deps
    assert "m2m_pipeline/translate.py" in deps and "m2m_pipeline/pools/sources/translated.py" in deps
    assert not any("pools/${dataset}/M2m-seed" in d for d in deps)
    assert "--mode fresh" in stage["cmd"] and stage["matrix"]["method"] == "${ablations.fresh}"
    for key in ("m2m", "presets.${dataset}.m2m", "ablation_params.${item.method}"):
        assert key in stage["params"]


def test_editing_the_translation_code_reruns_fresh_ablations_and_no_reuse_one(tmp_path):
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "stages", tmp_path / "stages", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "m2m_pipeline", tmp_path / "m2m_pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["seeds"] = [0]
    params["ablations"].update(reuse=["M2m-Clean", "M2m-No-Reject"], fresh=["M2m-Rand", "M2m-No-Gamma"])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert _dvc(["init", "--no-scm", "-q"], tmp_path).returncode == 0
    code = ("import json; from dvc.repo import Repo; r = Repo('.'); "
            "print(json.dumps([str(o.fs_path) for s in r.index.stages for o in s.outs]))")
    listed = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0, listed.stderr[-2000:]
    for path in json.loads(listed.stdout):   # stand-in outputs, then every stage recorded as run
        p = Path(path)
        if p.suffix == ".json":
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("{}")
        else:
            p.mkdir(parents=True, exist_ok=True)
            (p / "stand-in").write_text("x")
    committed = _dvc(["commit", "-f"], tmp_path)
    assert committed.returncode == 0, committed.stderr[-2000:]
    assert _changed_stages(tmp_path) == set()

    translate = tmp_path / "m2m_pipeline" / "translate.py"
    translate.write_text(translate.read_text() + "\n# an edit of the translation code\n")
    changed = _changed_stages(tmp_path)
    assert {"ablate_fresh@M2m-Rand-0", "ablate_fresh@M2m-No-Gamma-0"} <= changed
    assert not any(s.startswith("ablate_reuse@") for s in changed), sorted(changed)
    assert "train_m2m@M2m-0" in changed   # M2m translates too (its pools are what reuse re-decides)
