"""The results table as markdown and CSV: ours (mean ± std over seeds) beside the paper's numbers and
the difference."""

from __future__ import annotations

import csv
import io

import pytest

from m2m_pipeline.reports import report_tables

from . import run


def test_results_tables_markdown_and_csv():
    md, table = report_tables({"M2m": [run("M2m", 66.0, 60.0, 0), run("M2m", 68.0, 62.0, 1)],
                              "DRW": [run("DRW", 64.0, 58.0, 0)]}, dataset="reuters")
    assert "paper: Table 2, column reuters" in md
    assert "| M2m | 2 | 67.0 ± 1.41 | 66.3 ± 0.42 | +0.7 | 61.0 ± 1.41 | 60.5 ± 0.52 | +0.5 | 90.0 ± 0.00 |" in md
    assert "| DRW | 1 | 64.0 | - | - | 58.0 | - | - |" in md
    rows = list(csv.DictReader(io.StringIO(table)))
    assert [r["method"] for r in rows] == ["DRW", "M2m"]
    assert float(rows[1]["bacc_mean"]) == 67.0 and float(rows[1]["paper_bacc"]) == 66.3
    assert float(rows[1]["delta_bacc"]) == pytest.approx(0.7) and rows[0]["paper_bacc"] == ""
