"""The results commands: ``evaluate`` (test one run), ``table`` (every run so far, a row each) and
``report`` (mean ± std over seeds beside the paper's numbers, or the ablation table)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import M2mError
from .common import Checkpoint, DatasetOpt, ParamsOpt, Which, complete_method, context, method_name, seed_of


def evaluate(dataset: Optional[str] = DatasetOpt,
             method: str = typer.Option(..., help="a registered method, e.g. M2m (checked when run)",
                                        autocompletion=complete_method),
             seed: Optional[int] = typer.Option(None, help="the run's seed (default: the first of params seeds)"),
             run: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/<method>-seed<s>)"),
             out: Optional[Path] = typer.Option(None, help="metrics JSON (default metrics/<dataset>/<method>-seed<s>.json)"),
             params_path: Path = ParamsOpt) -> None:
    """Test a run at its best-validation epoch and at its last epoch; write the metrics JSON.

    Example: m2m-pipeline evaluate --dataset digits --method M2m --seed 0   (metrics/digits/M2m-seed0.json)"""
    from ..jobs.evaluate import run_evaluate
    from ..reports.run_tables import run_table

    params, name, layout = context(params_path, dataset)
    method = method_name(method)
    s = seed_of(params, seed)
    res = run_evaluate(layout.prepared, run or layout.run(method, s), method=method,
                       out=out or layout.metrics(method, s), seed=s)
    typer.echo(run_table([res]))


def table(dataset: Optional[str] = DatasetOpt,
          which: Which = typer.Option(Which.both, help="best_val (authors' selection), last, or both"),
          params_path: Path = ParamsOpt) -> None:
    """Print the evaluation table of every run evaluated so far (metrics/<dataset>/*.json)."""
    from ..reports.run_tables import RUN_TABLE_TITLES, run_tables

    params, name, layout = context(params_path, dataset)
    files = sorted(layout.metrics_dir.glob("*.json"))
    if not files:
        raise M2mError(f"no metrics under {layout.metrics_dir}; run dvc repro or m2m-pipeline evaluate")
    for w, text in run_tables(files, which=which.value).items():
        typer.echo(f"\n{name}: test metrics (%) {RUN_TABLE_TITLES[w]}\n")
        typer.echo(text)


def report(dataset: Optional[str] = DatasetOpt,
           metrics: Path = typer.Option(Path("metrics"), help="folder holding <dataset>/*.json"),
           out: Optional[Path] = typer.Option(None, help="folder for report.md and report.csv (default reports/<dataset>, "
                                              "reports/<dataset>-last with --which last)"),
           which: Checkpoint = typer.Option(Checkpoint.best_val, help="best_val (authors' selection) or last"),
           all_files: bool = typer.Option(False, "--all-files", help="read every metrics file of the folder, not "
                                          "only the runs of params evaluate.methods x seeds"),
           ablations: bool = typer.Option(False, "--ablations", help="the ablation table instead (Tables 3-5 style): "
                                          "Major, Minor, bACC, GM and the relative gap to M2m; the paper's values "
                                          "beside on cifar10-lt"),
           params_path: Path = ParamsOpt) -> None:
    """The runs of params evaluate.methods x seeds in one table: mean ± std over seeds, the paper's
    numbers beside (other metrics files are stale results: named, not read).

    Example: m2m-pipeline report --dataset digits --ablations   (M2m, M2m-Clean, M2m-Rand, ...)"""
    from ..params import prepare_options, report_runs

    which = which.value
    params, name, layout = context(params_path, dataset)
    methods, seeds = (None, None) if all_files else report_runs(params)
    rho = prepare_options(params, name).get("rho")
    if ablations:
        from ..reports.ablations import write_ablations

        typer.echo(write_ablations(name, metrics, out or layout.report_dir(which), rho=rho, which=which,
                                   methods=methods, seeds=seeds))
        return
    from ..reports.tables import write_report

    typer.echo(write_report(name, metrics, out or layout.report_dir(which), rho=rho, which=which, methods=methods,
                            seeds=seeds))
