"""Aggregating the metrics of a dataset's runs: mean and sample std over seeds beside the paper's numbers,
the seed read from the metrics or the file name, and the written report."""

from __future__ import annotations

import json
import math

import pytest

from m2m_pipeline.reports import load_metrics_dir, summarize, write_report
from m2m_pipeline.utils import M2mError

from . import run


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


# -- M2m against the strongest method of the same run (issue 19) ------------------------------------

def test_m2m_against_the_strongest_method_of_the_run():
    from m2m_pipeline.reports import m2m_against_strongest, strongest_line

    runs = {"M2m": [run("M2m", 66.0, seed=0), run("M2m", 68.0, seed=1)],        # 67.0 ± 1.41
            "DRS": [run("DRS", 69.0, seed=0), run("DRS", 69.5, seed=1)],        # 69.25 ± 0.35: the strongest
            "ERM": [run("ERM", 60.0, seed=0), run("ERM", 61.0, seed=1)],
            "M2m-Clean": [run("M2m-Clean", 90.0, seed=0), run("M2m-Clean", 90.0, seed=1)]}   # an ablation: not a rival
    c = m2m_against_strongest(runs)
    assert c["strongest"] == "DRS" and c["delta"] == pytest.approx(-2.25)
    # noise: the larger sample std, M2m's sqrt(2) = 1.41; |-2.25| > 1.41: outside
    assert c["noise"] == pytest.approx(2 ** 0.5) and c["within_noise"] is False
    assert c["paired"] == {0: pytest.approx(-3.0), 1: pytest.approx(-1.5)}
    line = strongest_line(runs, dataset="reuters")
    assert line == ("M2m against the strongest method of the same run (reuters): DRS 69.2 ± 0.35 vs M2m 67.0 ± 1.41 "
                    "test bACC over 2 seed(s): Δ = -2.2 points, outside seed noise (|Δ| > 1.41, the larger of the "
                    "two seed stds); per seed seed 0: -3.0, seed 1: -1.5.")
    # closer than the noise: within; M2m ahead: a positive difference against the runner-up
    runs["DRS"] = [run("DRS", 67.5, seed=0), run("DRS", 68.0, seed=1)]
    assert m2m_against_strongest(runs)["within_noise"] is True
    runs["DRS"] = [run("DRS", 62.0, seed=0), run("DRS", 62.0, seed=1)]
    c = m2m_against_strongest(runs)
    assert c["strongest"] == "DRS" and c["delta"] == pytest.approx(5.0)
    # the last-epoch checkpoint is another comparison (run() puts last at bacc - 2 for each)
    assert m2m_against_strongest(runs, which="last")["delta"] == pytest.approx(5.0)
    # one seed: no noise estimate; no M2m or no rival: no line
    one = {"M2m": [run("M2m", 66.0, seed=0)], "DRS": [run("DRS", 69.0, seed=0)]}
    assert m2m_against_strongest(one)["within_noise"] is None
    assert "no seed-noise estimate (a single seed)" in strongest_line(one)
    assert strongest_line({"DRS": [run("DRS", 69.0, seed=0)]}) is None
    assert strongest_line({"M2m": [run("M2m", 69.0, seed=0)]}) is None


def test_the_report_prints_the_strongest_method_line(tmp_path):
    folder = tmp_path / "metrics" / "reuters"
    folder.mkdir(parents=True)
    for method, values in (("M2m", (66.0, 68.0)), ("LA", (70.0, 71.0)), ("ERM", (60.0, 61.0))):
        for seed, v in enumerate(values):
            (folder / f"{method}-seed{seed}.json").write_text(json.dumps(run(method, v, seed=seed)))
    md = write_report("reuters", tmp_path / "metrics", tmp_path / "out")
    assert ("M2m against the strongest method of the same run (reuters): LA 70.5 ± 0.71 vs M2m 67.0 ± 1.41 "
            "test bACC over 2 seed(s): Δ = -3.5 points, outside seed noise") in md
