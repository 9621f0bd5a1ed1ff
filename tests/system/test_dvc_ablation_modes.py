"""DVC deps of the two ablation modes (issue 15): a ``fresh`` ablation (stage ablate_fresh) depends on g
and the translation code, a ``reuse`` one (ablate_reuse) on M2m's pools and neither of those.
In a tmp copy of the DAG with every stage recorded as run (as tests/system/test_dvc.py does)."""

import pytest

from tests.system.test_dvc import _changed_stages, _dag_with_outputs, _stages_yaml

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
    def modes(params):
        params["ablations"].update(reuse=["M2m-Clean", "M2m-No-Reject"], fresh=["M2m-Rand", "M2m-No-Gamma"])
    _dag_with_outputs(tmp_path, copy_package=True, edit_params=modes)
    assert _changed_stages(tmp_path) == set()

    translate = tmp_path / "m2m_pipeline" / "translate.py"
    translate.write_text(translate.read_text() + "\n# an edit of the translation code\n")
    changed = _changed_stages(tmp_path)
    assert {"ablate_fresh@M2m-Rand-0", "ablate_fresh@M2m-No-Gamma-0"} <= changed
    assert not any(s.startswith("ablate_reuse@") for s in changed), sorted(changed)
    assert "train_m2m@M2m-0" in changed   # M2m translates too (its pools are what reuse re-decides)
