"""The ablation table (Sec. 3.4 and Appendix B, Tables 3-5 style): Major, Minor, bACC and GM of
M2m's ablations and the baselines beside them, each with its relative gap to M2m."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import M2mError
from ..layout import metrics_folder
from ..training.methods import get_method
from .aggregate import load_metrics_dir, select_metrics_files, summarize
from .paper_tables import PAPER_ABLATIONS, paper_key
from .tables import format_pm


def ablation_report(results: Iterable[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]], *,
                    dataset: str | None = None, rho: float | None = None, which: str = "best_val",
                    reference: str = "M2m") -> str:
    """Rows in the style of Tables 3-5: Major, Minor, bACC and GM (mean ± std over seeds) of M2m's
    ablations and the baselines the paper lists beside them, each with its relative gap to
    ``reference`` (Δ = (ours - M2m) / M2m, in %, as the paper's tables); on CIFAR-LT-10 at rho = 100
    the paper's values and gaps stand beside ours. A re-deciding ablation's "table" cell names the
    mode that produced its rows ("mode reuse": M2m's stored rows re-decided; "mode fresh":
    translated with its own f, the paper's definition)."""
    summary = summarize(results, dataset=dataset, rho=rho, which=which)
    if reference not in summary:
        raise M2mError(f"the ablation table compares with {reference}, but no {reference} run was evaluated; "
                       f"evaluate it first (dvc repro)")
    key = paper_key(dataset, rho) if dataset else None
    paper = PAPER_ABLATIONS.get(key or "", {})
    ref = summary[reference]
    paper_ref = paper.get(reference, {})

    def gap(value: float, base: float) -> str:
        if value is None or base is None or math.isnan(value) or math.isnan(base) or base == 0:
            return "-"
        return f"{100 * (value - base) / base:+.2f}%"

    rows = [m for m in summary if m == reference or get_method_or_none(m) is not None and (
        get_method_or_none(m).is_ablation or m in paper)]
    where = ("paper: Tables 3-5 (CIFAR-LT-10, rho = 100, ResNet-32)" if paper
             else "paper: its ablations are on CIFAR-LT-10 (rho = 100) only, none for this dataset")
    lines = [f"Ablations of {reference}: test metrics (%) at the "
             f"{'last epoch with the best validation bACC' if which == 'best_val' else 'last epoch'}, mean ± "
             f"sample std over seeds; Δ = relative gap to {reference} of the same table (as the paper's); {where}.",
             "",
             "| method | table | seeds | Major | Minor | bACC | Δ bACC | GM | Δ GM | paper bACC (Δ) | paper GM (Δ) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in rows:
        r = summary[m]
        n = r["n_seeds"]
        spec = get_method_or_none(m)
        table = spec.paper_table if spec is not None and spec.paper_table else (
            f"variant of {spec.variant_of}" if spec is not None and spec.variant_of else
            "Table 4" if m == "RS" else "Table 5" if m == "DRS" else "-")
        if r.get("ablation_mode"):   # reuse: M2m's rows re-decided; fresh: translated with its own f
            table += f"; mode {r['ablation_mode']}"
        # a variant (M2m-Rand, M2m-No-Reject-No-Gamma) has no paper value beside it
        pr = {} if spec is not None and spec.variant_of else paper.get(m, {})

        def paper_cell(metric: str) -> str:
            if metric not in pr:
                return "-"
            mean, std = pr[metric]
            base = paper_ref.get(metric, (None, None))[0]
            return f"{mean:.1f} ± {std:.2f} ({gap(mean, base)})" if m != reference else f"{mean:.1f} ± {std:.2f}"

        lines.append(
            f"| {m} | {table} | {n} | {format_pm(r['major_mean'], r['major_std'], n)} | {format_pm(r['minor_mean'], r['minor_std'], n)} | "
            f"{format_pm(r['bacc_mean'], r['bacc_std'], n)} | {'-' if m == reference else gap(r['bacc_mean'], ref['bacc_mean'])} | "
            f"{format_pm(r['gm_mean'], r['gm_std'], n)} | {'-' if m == reference else gap(r['gm_mean'], ref['gm_mean'])} | "
            f"{paper_cell('bacc')} | {paper_cell('gm')} |")
    return "\n".join(lines) + "\n"


def get_method_or_none(name: str):
    """The registered method spec of ``name``, or None for a name the registry does not know."""
    try:
        return get_method(name)
    except M2mError:
        return None


def write_ablations(dataset: str, metrics_dir: str | Path, out_dir: str | Path, *, rho: float | None = None,
                    which: str = "best_val", methods: Iterable[str] | None = None,
                    seeds: Iterable[int] | None = None) -> str:
    """:func:`ablation_report` of ``metrics_dir/<dataset slug>`` (only the runs of ``methods`` x
    ``seeds`` when given) written to ``out_dir/ablations.md``; returns the page's markdown."""
    folder = metrics_folder(metrics_dir, dataset)
    files = None if methods is None or seeds is None else select_metrics_files(folder, methods, seeds)[0]
    table = ablation_report(load_metrics_dir(folder, dataset, files=files), dataset=dataset, rho=rho, which=which)
    page = f"# Ablations: {dataset}\n\n{table}"
    out = Path(out_dir) / "ablations.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page)
    return page


__all__ = ["ablation_report", "get_method_or_none", "write_ablations"]
