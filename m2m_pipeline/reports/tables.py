"""The results table of a dataset as markdown and CSV (``report.md``, ``report.csv``): our runs
(mean ± std over seeds) beside the paper's numbers; the flat summary ``dvc metrics show`` reads."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import M2mError
from ..layout import metrics_folder
from .aggregate import load_metrics_dir, method_order, select_metrics_files, strongest_line, summarize
from .paper_tables import TABLE_OF, paper_key

def format_pm(mean: float, std: float | None, n: int | None = None) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if n == 1 or std is None:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {std:.2f}"


CSV_FIELDS = ("method", "n_seeds", "seeds", "bacc_mean", "bacc_std", "gm_mean", "gm_std", "gm_corrected_mean",
              "gm_corrected_std", "major_mean", "major_std",
              "minor_mean", "minor_std", "zero_recall_classes", "paper_bacc", "paper_bacc_std", "paper_gm",
              "paper_gm_std", "paper_major", "paper_minor", "delta_bacc", "delta_gm", "epochs")


def _epochs_cell(epochs: list[Any]) -> str:
    """The chosen (0-based) epoch of each seed's checkpoint: one number when all agree."""
    vals = [e for e in epochs if e is not None]
    if not vals:
        return "-"
    return str(vals[0]) if len(set(vals)) == 1 else "/".join(str(e) for e in vals)


def report_tables(results: Iterable[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]], *,
                 dataset: str | None = None, rho: float | None = None,
                 which: str = "best_val") -> tuple[str, str]:
    """(markdown, csv) of the results table. ``results``: evaluate_run dicts (a list, grouped by
    their ``method`` key) or a {method: [dicts]} mapping, one dict per seed. Columns: method,
    seeds, test bACC and GM (mean ± std), the paper's bACC and GM (mean ± std) and our difference
    to them, Major and Minor (Sec. 3.4), and the mean number of classes with zero test recall
    (where GM is 0); below it, when M2m ran, the line "M2m against the strongest method of the
    same run" (:func:`~.aggregate.strongest_line`)."""
    results = results if isinstance(results, Mapping) else list(results)   # read twice: table and line
    summary = summarize(results, dataset=dataset, rho=rho, which=which)
    key = paper_key(dataset, rho) if dataset else None
    source = f"{TABLE_OF[key]}, column {key}" if key else "none for this dataset"
    n_max = max((row["n_seeds"] for row in summary.values()), default=0)
    lines = [
        f"Test metrics (%) of each method at the {'last epoch with the best validation bACC' if which == 'best_val' else 'last epoch'}, "
        f"mean ± sample std over seeds (up to {n_max}); paper: {source}. GM is strict (0 when a class has "
        f"zero recall); GM corrected counts a zero recall as 1e-3 (imbalanced-learn's correction); chosen "
        f"epoch: the 0-based epoch of the checkpoint each seed reports.",
        "",
        "| method | seeds | bACC | paper bACC | Δ bACC | GM | paper GM | Δ GM | Major | Minor | zero-recall classes "
        "| GM corrected | chosen epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for method, row in summary.items():
        n = row["n_seeds"]
        pb, pg = row.get("paper_bacc"), row.get("paper_gm")
        db = row["bacc_mean"] - pb if pb is not None else None
        dg = row["gm_mean"] - pg if pg is not None else None
        lines.append(
            f"| {method} | {n} | {format_pm(row['bacc_mean'], row['bacc_std'], n)} | "
            f"{format_pm(pb, row.get('paper_bacc_std')) if pb is not None else '-'} | "
            f"{f'{db:+.1f}' if db is not None else '-'} | {format_pm(row['gm_mean'], row['gm_std'], n)} | "
            f"{format_pm(pg, row.get('paper_gm_std')) if pg is not None else '-'} | "
            f"{f'{dg:+.1f}' if dg is not None else '-'} | {format_pm(row['major_mean'], row['major_std'], n)} | "
            f"{format_pm(row['minor_mean'], row['minor_std'], n)} | {row['zero_recall_classes']:.1f} | "
            f"{format_pm(row['gm_corrected_mean'], row['gm_corrected_std'], n)} | {_epochs_cell(row['epochs'])} |")
        writer.writerow({**row, "method": method, "seeds": " ".join(str(s) for s in row["seeds"]),
                         "delta_bacc": db, "delta_gm": dg, "epochs": " ".join(str(e) for e in row["epochs"])})
    line = strongest_line(results, dataset=dataset, which=which)
    if line is not None:
        lines += ["", line]
    return "\n".join(lines) + "\n", buf.getvalue()


def write_report(dataset: str, metrics_dir: str | Path, out_dir: str | Path, *, rho: float | None = None,
                 which: str = "best_val", methods: Iterable[str] | None = None,
                 seeds: Iterable[int] | None = None) -> str:
    """Collect ``metrics_dir/<dataset slug>/*.json`` into ``out_dir/report.md`` and
    ``out_dir/report.csv``; returns the markdown. ``rho`` picks the paper's CIFAR-LT column.

    With ``methods`` and ``seeds`` (params ``evaluate.methods`` and ``seeds``), only the metrics
    of those runs are read (:func:`select_metrics_files`); the report names the files it ignored
    and the runs still missing."""
    folder = metrics_folder(metrics_dir, dataset)
    notes = []
    if methods is not None and seeds is not None:
        kept, ignored, missing = select_metrics_files(folder, methods, seeds)
        if not kept:
            raise M2mError(f"metrics folder {folder} holds none of the runs of evaluate.methods x seeds "
                           f"({', '.join(missing)}); evaluate them first (dvc repro)")
        grouped = load_metrics_dir(folder, dataset, files=kept)
        if ignored:
            notes.append(f"Ignored (not in evaluate.methods x seeds): {', '.join(p.name for p in ignored)}.")
        if missing:
            notes.append(f"Not evaluated yet: {', '.join(missing)}.")
    else:
        grouped = load_metrics_dir(folder, dataset)
    markdown, table_csv = report_tables(grouped, dataset=dataset, rho=rho, which=which)
    markdown = f"# Results: {dataset}\n\n{markdown}" + "".join(f"\n{n}\n" for n in notes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(markdown)
    (out_dir / "report.csv").write_text(table_csv)
    return markdown


SUMMARY_METRICS = {"bacc": "bacc", "gm": "gm", "gm_corrected": "gm_corrected", "major": "major", "minor": "minor"}


def flat_summary(grouped: Mapping[str, list[Mapping[str, Any]]], *, which: str = "best_val") -> dict[str, Any]:
    """One summary for ``dvc metrics show``: {"<method>": {"seed<s>": {"bacc", "gm", "gm_corrected",
    "major", "minor", "epoch"}}}, test metrics of checkpoint ``which``, numbers only (a value a
    metrics file lacks, or NaN, is left out rather than written as a string)."""
    out: dict[str, Any] = {}
    for method in method_order(grouped):
        per_seed: dict[str, Any] = {}
        for r in grouped[method]:
            test = r[which]["test"]
            cell = {name: round(float(test[key]), 4) for name, key in SUMMARY_METRICS.items()
                    if isinstance(test.get(key), (int, float)) and not math.isnan(float(test[key]))}
            if r[which].get("epoch") is not None:
                cell["epoch"] = int(r[which]["epoch"])
            per_seed["seed" + ("?" if r.get("seed") is None else str(r["seed"]))] = cell
        out[method] = per_seed
    return out


def write_summary(dataset: str, metrics_dir: str | Path, out: str | Path, *, which: str = "best_val",
                  methods: Iterable[str] | None = None, seeds: Iterable[int] | None = None) -> Path:
    """Write :func:`flat_summary` of ``metrics_dir/<dataset slug>`` to ``out`` (JSON)."""
    folder = metrics_folder(metrics_dir, dataset)
    if methods is not None and seeds is not None:
        kept, _, _ = select_metrics_files(folder, methods, seeds)
        grouped = load_metrics_dir(folder, dataset, files=kept)
    else:
        grouped = load_metrics_dir(folder, dataset)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(flat_summary(grouped, which=which), indent=1))
    return out


__all__ = ["CSV_FIELDS", "flat_summary", "format_pm", "report_tables", "write_report", "write_summary"]
