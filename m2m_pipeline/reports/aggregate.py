"""Our runs' metrics files, read and grouped by method, and their statistics over seeds.

Input: the per-run JSON of :func:`m2m_pipeline.evaluation.evaluate_run` (keys ``dataset``,
``method``, ``best_val`` and ``last``, each with ``val``/``test`` metrics), optionally with a
``seed`` key. Seed rule: the ``seed`` key when present, else a ``-seed<N>`` suffix of the file
name (``M2m-seed1.json``, layout.parse_run_name), else unknown (``M2m.json``: one run of unknown
seed). Two files with the same method and seed (unknown counts as a value) are an error.
Statistics over seeds: mean and the sample standard deviation (ddof = 1; 0 for a single run), on
the test metrics of the checkpoint ``which`` (``best_val``: the last epoch with the best
validation bACC, the authors' rule; or ``last``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from ..errors import M2mError
from ..layout import dataset_matches, metrics_file, parse_run_name
from ..training.methods import get_method, list_methods
from ..utils import read_json
from .paper_tables import paper_numbers

METRICS = ("bacc", "gm", "major", "minor")


def seed_and_method_of(path: Path, result: Mapping[str, Any]) -> tuple[str, int | None]:
    """(method, seed) of a metrics file, by the module docstring's rule."""
    stem, file_seed = parse_run_name(path.stem)
    method = str(result.get("method") or stem)
    seed = result.get("seed", file_seed)
    return method, (int(seed) if seed is not None else None)


def select_metrics_files(folder: str | Path, methods: Iterable[str], seeds: Iterable[int]
                         ) -> tuple[list[Path], list[Path], list[str]]:
    """(kept, ignored, missing) metrics files of ``folder`` for the runs of the current DAG.

    The DAG writes one ``<method>-seed<s>.json`` per method of ``evaluate.methods`` and seed of
    ``seeds``; any other file there (a method dropped from the params, an old seed, a hand-made
    file) is a stale result and is ignored, so the report shows only what the DAG now produces.
    ``missing`` names the expected runs without a file (not evaluated yet).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise M2mError(f"metrics folder {folder} does not exist; evaluate some runs first (dvc repro)")
    expected = {metrics_file(m, s) for m in methods for s in seeds}
    present = sorted(folder.glob("*.json"))
    kept = [p for p in present if p.name in expected]
    ignored = [p for p in present if p.name not in expected]
    missing = sorted(name[: -len(".json")] for name in expected - {p.name for p in present})
    return kept, ignored, missing


# what every reader of a metrics file (report, table, the ablation table) takes from each checkpoint
_TEST_KEYS = ("bacc", "gm", "major", "minor")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _json_type(v: Any) -> str:
    return ("null" if v is None else "a boolean" if isinstance(v, bool) else "a number" if _is_number(v)
            else "a string" if isinstance(v, str) else "a list" if isinstance(v, list) else "an object")


def _metrics_problem(result: Any) -> str | None:
    """What makes ``result`` not a metrics record of evaluate_run, or None."""
    if not isinstance(result, dict):
        return f"it holds {_json_type(result)}, not an object"
    missing = [k for k in ("best_val", "last") if k not in result]
    if missing:
        return f"it has no {'/'.join(missing)} key{'s' if len(missing) > 1 else ''}"
    for which in ("best_val", "last"):
        sel = result[which]
        if not isinstance(sel, dict):
            return f"{which} is {_json_type(sel)}, not an object"
        for split in ("test", "val"):
            if not isinstance(sel.get(split), dict):
                return f"{which}.{split} is missing or not an object"
        for key in _TEST_KEYS + ("gm_corrected",):
            v = sel["test"].get(key)
            if (key in _TEST_KEYS or v is not None) and not _is_number(v):
                return f"{which}.test.{key} should be a number, not {v!r}"[:160]
        if not _is_number(sel["val"].get("bacc")):
            return f"{which}.val.bacc should be a number, not {sel['val'].get('bacc')!r}"[:160]
        recalls = sel["test"].get("per_class_recall", [])
        if not isinstance(recalls, list) or not all(_is_number(v) for v in recalls):
            return f"{which}.test.per_class_recall should be a list of numbers"
    for key, kind, word in (("method", str, "a string"), ("dataset", str, "a string"), ("seed", int, "an integer")):
        v = result.get(key)
        if v is not None and (not isinstance(v, kind) or isinstance(v, bool)):
            return f"{key} should be {word}, not {v!r}"[:160]
    return None


def read_metrics_file(path: str | Path) -> dict[str, Any]:
    """The metrics record of evaluate_run in the file ``path``, checked before any reader uses it
    (``report``, ``table``, the ablation table): valid JSON (nesting bounded), an object with
    ``best_val`` and ``last``, each with ``val``/``test`` objects whose metrics are numbers. A file
    that is not is a one-line M2mError naming it, never a JSONDecodeError, TypeError or KeyError."""
    path = Path(path)
    try:
        result = read_json(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise M2mError(f"metrics file {path} cannot be read as JSON ({type(exc).__name__}); evaluate the run "
                       f"again (m2m-pipeline evaluate) or delete the file") from None
    problem = _metrics_problem(result)
    if problem is not None:
        raise M2mError(f"{path} is not a metrics file of evaluate_run: {problem}; evaluate the run again "
                       f"(m2m-pipeline evaluate) or delete the file")
    return result


def load_metrics_dir(folder: str | Path, dataset: str | None = None, *,
                     files: Iterable[Path] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every ``*.json`` of ``folder`` (or only ``files``) grouped by method (each result gets its
    ``seed``). Files of another dataset, unreadable files and repeated (method, seed) pairs raise
    an M2mError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise M2mError(f"metrics folder {folder} does not exist; evaluate some runs first (dvc repro)")
    grouped: dict[str, list[dict[str, Any]]] = {}
    origin: dict[tuple[str, int | None], Path] = {}
    for path in sorted(folder.glob("*.json")) if files is None else sorted(files):
        result = read_metrics_file(path)
        if dataset is not None and result.get("dataset") is not None and not dataset_matches(result["dataset"], dataset):
            raise M2mError(f"{path} holds metrics of dataset {result.get('dataset')!r}, not {dataset!r}")
        method, seed = seed_and_method_of(path, result)
        if (method, seed) in origin:
            raise M2mError(f"{path} and {origin[(method, seed)]} are both {method} seed {seed}; remove one")
        origin[(method, seed)] = path
        grouped.setdefault(method, []).append({**result, "method": method, "seed": seed})
    if not grouped:
        raise M2mError(f"metrics folder {folder} holds no *.json files")
    for runs in grouped.values():
        runs.sort(key=lambda r: (r["seed"] is None, r["seed"] or 0))
    return grouped


def _group(results: Iterable[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]]) -> dict[str, list]:
    if isinstance(results, Mapping):
        return {m: list(rs) for m, rs in results.items()}
    grouped: dict[str, list] = {}
    for r in results:
        grouped.setdefault(str(r["method"]), []).append(r)
    return grouped


def _mean_std(values: list[float]) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if len(arr) == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def method_order(methods: Iterable[str]) -> list[str]:
    """The registry's order (the paper's table order), then any other name alphabetically."""
    known = list_methods()
    methods = set(methods)
    return [m for m in known if m in methods] + sorted(methods - set(known))


def summarize(results: Iterable[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]], *,
              dataset: str | None = None, rho: float | None = None, which: str = "best_val",
              split: str = "test") -> dict[str, dict[str, Any]]:
    """{method: {"bacc_mean", "bacc_std", "gm_mean", "gm_std", "major_mean", "major_std",
    "minor_mean", "minor_std", "n_seeds", "seeds", "zero_recall_classes" (mean count), and the
    paper's "paper_bacc", "paper_bacc_std", "paper_gm", "paper_gm_std" where it has them}}."""
    if which not in ("best_val", "last"):
        raise M2mError(f"which must be 'best_val' or 'last', got {which!r}")
    grouped = _group(results)
    paper = paper_numbers(dataset, rho) if dataset else {}
    out: dict[str, dict[str, Any]] = {}
    for method in method_order(grouped):
        runs = grouped[method]
        row: dict[str, Any] = {"n_seeds": len(runs), "seeds": [r.get("seed") for r in runs]}
        for key in METRICS:
            row[f"{key}_mean"], row[f"{key}_std"] = _mean_std([r[which][split].get(key) for r in runs])
        zeros = [sum(1 for v in r[which][split].get("per_class_recall", []) if v == 0.0) for r in runs]
        row["zero_recall_classes"] = float(np.mean(zeros)) if zeros else float("nan")
        row["epochs"] = [r[which].get("epoch") for r in runs]
        # imbalanced-learn's corrected GM (a zero recall counts as 1e-3); metrics files written
        # before it existed lack the key and give NaN here
        row["gm_corrected_mean"], row["gm_corrected_std"] = _mean_std(
            [r[which][split].get("gm_corrected") for r in runs])
        for key, value in paper.get(method, {}).items():
            row[f"paper_{key}"] = value
        modes = sorted({str(r["ablation_mode"]) for r in runs if r.get("ablation_mode")})
        if modes:   # a re-deciding ablation: how its rows were made (reuse | fresh)
            row["ablation_mode"] = modes[0] if len(modes) == 1 else "mixed: " + ", ".join(modes)
        out[method] = row
    return out


def m2m_against_strongest(results: Iterable[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]], *,
                          which: str = "best_val", reference: str = "M2m") -> dict[str, Any] | None:
    """M2m against the strongest other method of the same run (the same metrics folder or
    benchmark), by mean test bACC over seeds at checkpoint ``which``.

    Candidates: every method of ``results`` but ``reference`` and its ablations (M2m minus one
    part); a tie goes to the first in the registry's order. ``delta`` = reference - strongest
    (negative: M2m is behind). Seed noise: the difference is within seed noise when
    |delta| <= the larger of the two methods' sample standard deviations over seeds (ddof = 1);
    with a single seed of either there is no estimate (``within_noise`` None). ``paired``: the
    per-seed differences over the seeds both ran. None when ``reference`` or every candidate is missing.
    """
    grouped = _group(results)
    if reference not in grouped:
        return None
    summary = summarize(grouped, which=which)
    candidates = [m for m in summary if m != reference and not _is_ablation(m)
                  and not math.isnan(summary[m]["bacc_mean"])]
    if not candidates or math.isnan(summary[reference]["bacc_mean"]):
        return None
    best = max(candidates, key=lambda m: (summary[m]["bacc_mean"], -candidates.index(m)))
    ref, top = summary[reference], summary[best]
    delta = ref["bacc_mean"] - top["bacc_mean"]
    noise = max(ref["bacc_std"], top["bacc_std"])
    single = ref["n_seeds"] < 2 or top["n_seeds"] < 2
    by_seed = {r.get("seed"): r[which]["test"]["bacc"] for r in grouped[best]}
    paired = {r.get("seed"): r[which]["test"]["bacc"] - by_seed[r.get("seed")] for r in grouped[reference]
              if r.get("seed") is not None and r.get("seed") in by_seed}
    return {"reference": reference, "strongest": best, "reference_bacc": ref["bacc_mean"],
            "reference_std": ref["bacc_std"], "strongest_bacc": top["bacc_mean"], "strongest_std": top["bacc_std"],
            "n_seeds": min(ref["n_seeds"], top["n_seeds"]), "delta": delta, "noise": noise,
            "within_noise": None if single else bool(abs(delta) <= noise), "paired": paired}


def strongest_line(results: Iterable[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]], *,
                   dataset: str | None = None, which: str = "best_val", reference: str = "M2m") -> str | None:
    """The report's one line for a dataset: :func:`m2m_against_strongest` in words, or None."""
    c = m2m_against_strongest(results, which=which, reference=reference)
    if c is None:
        return None
    if c["within_noise"] is None:
        verdict = "no seed-noise estimate (a single seed)"
    else:
        verdict = (f"{'within' if c['within_noise'] else 'outside'} seed noise "
                   f"(|Δ| {'≤' if c['within_noise'] else '>'} {c['noise']:.2f}, the larger of the two seed stds)")
    paired = ", ".join(f"seed {s}: {d:+.1f}" for s, d in sorted(c["paired"].items()))
    return (f"{reference} against the strongest method of the same run"
            f"{f' ({dataset})' if dataset else ''}: {c['strongest']} {c['strongest_bacc']:.1f} ± "
            f"{c['strongest_std']:.2f} vs {reference} {c['reference_bacc']:.1f} ± {c['reference_std']:.2f} test bACC "
            f"over {c['n_seeds']} seed(s): Δ = {c['delta']:+.1f} points, {verdict}"
            f"{f'; per seed {paired}' if paired else ''}.")


def _is_ablation(name: str) -> bool:
    try:
        return get_method(name).is_ablation
    except M2mError:
        return False


__all__ = ["METRICS", "load_metrics_dir", "m2m_against_strongest", "method_order", "read_metrics_file",
           "seed_and_method_of", "select_metrics_files", "strongest_line", "summarize"]
