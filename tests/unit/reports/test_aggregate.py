"""Aggregating the metrics of a dataset's runs: mean and sample std over seeds beside the paper's numbers,
the seed read from the metrics or the file name, and the written report."""

from __future__ import annotations

import json
import math

import pytest

from m2m_pipeline.reports import load_metrics_dir, summarize, write_report
from m2m_pipeline.utils import M2mError


def run(method, bacc, gm=50.0, seed=None, dataset="reuters", recalls=(100.0, 0.0)):
    test = {"bacc": bacc, "gm": gm, "major": 90.0, "minor": bacc - 1, "per_class_recall": list(recalls)}
    sel = {"epoch": 14, "val": dict(test), "test": test}
    out = {"dataset": dataset, "method": method, "best_val": sel, "last": {**sel, "test": {**test, "bacc": bacc - 2}}}
    if seed is not None:
        out["seed"] = seed
    return out


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


def test_report_reads_seeds_from_key_or_file_name(tmp_path):
    folder = tmp_path / "metrics" / "reuters"
    folder.mkdir(parents=True)
    (folder / "M2m.json").write_text(json.dumps(run("M2m", 66.0, seed=0)))
    (folder / "M2m-seed1.json").write_text(json.dumps(run("M2m", 68.0)))
    (folder / "ERM-seed2.json").write_text(json.dumps(run("ERM", 60.0)))
    grouped = load_metrics_dir(folder, "reuters")
    assert sorted(r["seed"] for r in grouped["M2m"]) == [0, 1] and grouped["ERM"][0]["seed"] == 2
    md = write_report("reuters", tmp_path / "metrics", tmp_path / "out")
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
        write_report("twitter", tmp_path / "metrics", tmp_path / "out")
