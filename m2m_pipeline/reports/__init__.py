"""Results of evaluated runs, as tables and figures (for the report stage, the CLI and benchmarks).

Sub-modules: ``paper_tables`` (the paper's numbers, transcribed as data), ``aggregate`` (reading a
dataset's metrics files and the statistics over seeds), ``tables`` (report.md / report.csv and the
flat summary for ``dvc metrics show``), ``curves`` (validation curves for DVC's plot overlay),
``run_tables`` (one row per run: the ``evaluate`` and ``table`` commands), ``ablations`` (the
Tables 3-5 style ablation table), ``figures`` (the paper's figures from the
evaluate stage's predictions). Names are re-exported lazily, so importing one sub-module does not
load matplotlib.
"""

from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    "PAPER": "paper_tables", "PAPER_ABLATIONS": "paper_tables", "TABLE_OF": "paper_tables",
    "paper_key": "paper_tables", "paper_numbers": "paper_tables",
    "load_metrics_dir": "aggregate", "method_order": "aggregate", "read_metrics_file": "aggregate",
    "seed_and_method_of": "aggregate",
    "select_metrics_files": "aggregate", "summarize": "aggregate", "m2m_against_strongest": "aggregate",
    "strongest_line": "aggregate",
    "flat_summary": "tables", "report_tables": "tables", "write_report": "tables", "write_summary": "tables",
    "run_table": "run_tables", "run_tables": "run_tables",
    "write_curves": "curves",
    "ablation_report": "ablations", "write_ablations": "ablations",
    "paper_figures": "figures", "load_predictions": "figures",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
