"""The results table (paper numbers beside ours) and the validation selection's params.yaml edit."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
import yaml

from m2m_pipeline.report import PAPER, build_report, load_metrics_dir, paper_key, paper_numbers, report, summarize
from m2m_pipeline.selection import PAPER_GRID, grid_points, write_preset_m2m
from m2m_pipeline.utils import M2mError


def run(method, bacc, gm=50.0, seed=None, dataset="reuters", recalls=(100.0, 0.0)):
    test = {"bacc": bacc, "gm": gm, "major": 90.0, "minor": bacc - 1, "per_class_recall": list(recalls)}
    sel = {"epoch": 14, "val": dict(test), "test": test}
    out = {"dataset": dataset, "method": method, "best_val": sel, "last": {**sel, "test": {**test, "bacc": bacc - 2}}}
    if seed is not None:
        out["seed"] = seed
    return out


def test_paper_numbers_transcribed():
    assert PAPER["reuters"]["ERM"] == {"bacc": 59.8, "bacc_std": 1.17, "gm": 53.8, "gm_std": 1.75}
    assert PAPER["reuters"]["DRS"]["bacc"] == 62.4 and PAPER["reuters"]["M2m"]["gm"] == 60.5
    assert PAPER["reuters"]["LDAM-M2m"] == {"bacc": 70.0, "bacc_std": 0.68, "gm": 63.9, "gm_std": 0.49}
    assert PAPER["twitter"]["DRS"]["bacc"] == 77.8 and PAPER["twitter"]["LDAM-M2m"]["gm"] == 76.0
    assert PAPER["twitter"]["Focal"] == {"bacc": 74.2, "bacc_std": 2.35, "gm": 70.4, "gm_std": 4.03}
    assert PAPER["celeba5"]["SMOTE"]["bacc"] == 72.8 and PAPER["sun397"]["LDAM"]["gm"] == 14.4
    c10 = PAPER["cifar10-lt-r100"]["M2m"]
    assert (c10["bacc"], c10["gm"], c10["major"], c10["minor"]) == (78.3, 77.8, 93.3, 74.6)
    assert PAPER["cifar10-lt-r10"]["RW"]["gm"] == 86.5
    assert PAPER["cifar100-lt-r10"]["LDAM"] == {"bacc": 54.7, "bacc_std": 0.16, "gm": 44.1, "gm_std": 0.53}
    assert PAPER["imagenet-lt"]["LDAM-DRW"]["bacc"] == 43.0 and set(PAPER["imagenet-lt"]) == {
        "ERM", "DRS", "M2m", "LDAM", "LDAM-DRW", "LDAM-M2m"}
    for col in ("cifar10-lt-r100", "cifar100-lt-r10", "celeba5", "sun397", "twitter", "reuters"):
        assert len(PAPER[col]) == 11 and "DRW" not in PAPER[col]


def test_paper_key():
    assert paper_key("cifar10-lt") == "cifar10-lt-r100"
    assert paper_key("cifar100-lt", 10) == "cifar100-lt-r10"
    assert paper_key("cifar10-lt", 50) is None
    assert paper_key("reuters") == "reuters" and paper_key("digits") is None and paper_key("text:x") is None
    assert paper_numbers("digits") == {}


def test_summary_mean_and_sample_std():
    rows = summarize([run("M2m", 66.0, 60.0, 0), run("M2m", 68.0, 62.0, 1), run("ERM", 60.0, 0.0, 0)],
                     dataset="reuters")
    assert list(rows) == ["ERM", "M2m"]  # registry order
    m = rows["M2m"]
    assert m["bacc_mean"] == 67.0 and m["bacc_std"] == pytest.approx(math.sqrt(2))
    assert m["gm_mean"] == 61.0 and m["n_seeds"] == 2 and m["seeds"] == [0, 1]
    assert m["paper_bacc"] == 66.3 and m["paper_gm_std"] == 0.52
    assert m["zero_recall_classes"] == 1.0
    assert rows["ERM"]["bacc_std"] == 0.0
    assert summarize([run("M2m", 66.0)], which="last")["M2m"]["bacc_mean"] == 64.0


def test_build_report_markdown_and_csv():
    md, table = build_report({"M2m": [run("M2m", 66.0, 60.0, 0), run("M2m", 68.0, 62.0, 1)],
                              "DRW": [run("DRW", 64.0, 58.0, 0)]}, dataset="reuters")
    assert "paper: Table 2, column reuters" in md
    assert "| M2m | 2 | 67.0 ± 1.41 | 66.3 ± 0.42 | +0.7 | 61.0 ± 1.41 | 60.5 ± 0.52 | +0.5 | 90.0 ± 0.00 |" in md
    assert "| DRW | 1 | 64.0 | - | - | 58.0 | - | - |" in md
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [r["method"] for r in rows] == ["DRW", "M2m"]
    assert float(rows[1]["bacc_mean"]) == 67.0 and float(rows[1]["paper_bacc"]) == 66.3
    assert float(rows[1]["delta_bacc"]) == pytest.approx(0.7) and rows[0]["paper_bacc"] == ""


def test_report_reads_seeds_from_key_or_file_name(tmp_path):
    folder = tmp_path / "metrics" / "reuters"
    folder.mkdir(parents=True)
    (folder / "M2m.json").write_text(json.dumps(run("M2m", 66.0, seed=0)))
    (folder / "M2m-seed1.json").write_text(json.dumps(run("M2m", 68.0)))
    (folder / "ERM-seed2.json").write_text(json.dumps(run("ERM", 60.0)))
    grouped = load_metrics_dir(folder, "reuters")
    assert sorted(r["seed"] for r in grouped["M2m"]) == [0, 1] and grouped["ERM"][0]["seed"] == 2
    md = report("reuters", tmp_path / "metrics", tmp_path / "out")
    assert md.startswith("# Results: reuters") and "| M2m | 2 | 67.0 ± 1.41 |" in md
    assert (tmp_path / "out" / "report.md").read_text() == md
    assert (tmp_path / "out" / "report.csv").read_text().startswith("method,n_seeds,seeds,bacc_mean")
    (folder / "M2m-seed0.json").write_text(json.dumps(run("M2m", 1.0)))
    with pytest.raises(M2mError, match="are both M2m seed 0; remove one"):
        load_metrics_dir(folder)
    (folder / "M2m-seed0.json").write_text(json.dumps(run("M2m", 1.0, dataset="twitter")))
    with pytest.raises(M2mError, match="holds metrics of dataset 'twitter', not 'reuters'"):
        load_metrics_dir(folder, "reuters")
    with pytest.raises(M2mError, match="does not exist"):
        report("twitter", tmp_path / "metrics", tmp_path / "out")


PARAMS = """\
# top comment
dataset: reuters
presets:
  a:
    model: mlp   # a comment
    m2m: {step_size: 1.0}

  b:
    model: cnn
    m2m:
      step_size: 0.5
      beta: 0.9
  c:
    model: x
    epochs: 3
# between
other: {x: 1}
"""


def test_write_preset_m2m_edits_only_that_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    write_preset_m2m(path, "a", {"beta": 0.999, "lam": 0.1, "gamma": 0.9}, comment="chosen")
    write_preset_m2m(path, "b", {"beta": 0.99, "lam": 0.5, "gamma": 0.99})
    write_preset_m2m(path, "c", {"beta": 0.9, "lam": 0.01, "gamma": 0.9})
    text = path.read_text()
    data = yaml.safe_load(text)
    assert data["presets"]["a"] == {"model": "mlp", "m2m": {"step_size": 1.0, "beta": 0.999, "lam": 0.1, "gamma": 0.9}}
    assert data["presets"]["b"]["m2m"] == {"step_size": 0.5, "beta": 0.99, "lam": 0.5, "gamma": 0.99}
    assert data["presets"]["c"] == {"model": "x", "epochs": 3, "m2m": {"beta": 0.9, "lam": 0.01, "gamma": 0.9}}
    assert data["other"] == {"x": 1} and data["dataset"] == "reuters"
    assert "    m2m: {step_size: 1.0, beta: 0.999, lam: 0.1, gamma: 0.9}  # chosen\n\n  b:\n" in text
    assert text.startswith("# top comment\n") and "    model: mlp   # a comment\n" in text
    assert "    epochs: 3\n    m2m: {beta: 0.9, lam: 0.01, gamma: 0.9}\n# between\n" in text
    with pytest.raises(M2mError, match="no preset 'zzz'"):
        write_preset_m2m(path, "zzz", {"beta": 0.9})


def test_paper_grid():
    points = grid_points()
    assert len(points) == 18 and points[0] == {"beta": 0.9, "lam": 0.01, "gamma": 0.9}
    assert points[-1] == {"beta": 0.999, "lam": 0.5, "gamma": 0.99}
    assert PAPER_GRID == {"beta": (0.9, 0.99, 0.999), "lam": (0.01, 0.1, 0.5), "gamma": (0.9, 0.99)}
