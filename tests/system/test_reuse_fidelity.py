"""Smoke test of benchmarks/reuse_fidelity.py (issue 15) on a tiny schedule: the JSON layout, and the
one thing both modes must share exactly: the first deferred epoch, translated with the same f."""

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT
from tests.unit.datasets.fixtures import make_text_dir

pytestmark = pytest.mark.slow


def _tiny_params(tmp_path):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key in ("digits", "text"):
        params["presets"][key].update(epochs=3, deferred_epoch=1, milestones=[2], warmup_epochs=1)
    params["presets"]["digits"]["model_args"] = {"width": 8}
    params["presets"]["text"]["model_args"] = {"hidden": 16}
    params["m2m"].update(steps=2)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def _run(tmp_path, dataset, ablations):
    out = tmp_path / "fidelity.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "reuse_fidelity.py"), "--dataset", dataset, "--seeds", "0", "1",
           "--params", str(_tiny_params(tmp_path)), "--json", str(out), "--work-dir", str(tmp_path / "work"),
           "--ablations", *ablations]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


def test_reuse_fidelity_on_digits(tmp_path):
    ablations = ["M2m-Clean", "M2m-Rand", "M2m-No-Reject", "M2m-No-Gamma"]
    got = _run(tmp_path, "digits", ablations)
    assert set(got["ablations"]) == set(ablations)
    assert got["meta"]["deferred_epochs"] == [1, 2] and got["meta"]["seeds"] == [0, 1]
    m2m = got["m2m"]
    assert 0 <= m2m["bacc_mean"] <= 100 and len(m2m["accepted_by_epoch"]) == 2
    for name, row in got["ablations"].items():
        for mode in ("reuse", "fresh"):
            assert {"bacc_mean", "bacc_std", "accepted_by_epoch"} <= set(row[mode])
            assert len(row[mode]["accepted_by_epoch"]) == 2
        deltas = [row["fresh"]["bacc_by_seed"][s] - row["reuse"]["bacc_by_seed"][s] for s in ("0", "1")]
        assert row["paired_delta_bacc"]["mean"] == pytest.approx(sum(deltas) / 2)
        assert len(row["jaccard_by_epoch"]) == 2 and all(0.0 <= j <= 1.0 for j in row["jaccard_by_epoch"])
        # the first deferred epoch translates with the warm f in both modes: the same rows, exactly
        assert row["jaccard_by_epoch"][0] == 1.0, name
        assert row["reuse"]["accepted_by_epoch"][0] == row["fresh"]["accepted_by_epoch"][0]
    # M2m-Clean and M2m-Rand use M2m's accepted slots in reuse mode
    assert got["ablations"]["M2m-Clean"]["reuse"]["accepted_by_seed"] == m2m["accepted_by_seed"]
    assert not (tmp_path / "work").exists()   # scratch removed


def test_reuse_fidelity_accepts_a_text_folder(tmp_path):
    folder = make_text_dir(tmp_path / "corpus")
    got = _run(tmp_path, f"text:{folder}", ["M2m-Rand"])
    assert got["meta"]["dataset"] == f"text:{folder}"
    assert got["ablations"]["M2m-Rand"]["jaccard_by_epoch"][0] == 1.0
