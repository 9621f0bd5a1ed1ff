"""One results table per dataset: our runs (mean ± std over seeds) beside the paper's numbers.

The paper's numbers are transcribed below as data, row by row, from Table 1 (CIFAR-LT-10/100 at
rho = 100 and 10), Table 2 (CelebA-5, SUN397, Twitter, Reuters), Table 6 (ImageNet-LT, Appendix C)
and, for Major/Minor, Table 4 (CIFAR-LT-10, rho = 100). Each value is "mean±std" over the paper's
three trials, in percent. A row is named by our method name (the paper's "Loss | Re-balancing":
ERM|- = ERM, ERM|DRS = DRS, ERM|M2m = M2m, LDAM|DRW = LDAM-DRW, LDAM|M2m = LDAM-M2m, ...); the paper
has no ERM+DRW row, so DRW has no paper number.

Input: the per-run JSON of :func:`m2m_pipeline.evaluation.evaluate_run` (keys ``dataset``,
``method``, ``best_val`` and ``last``, each with ``val``/``test`` metrics), optionally with a
``seed`` key. Seed rule: the ``seed`` key when present, else a ``-seed<N>`` suffix of the file
name (``M2m-seed1.json``), else unknown (``M2m.json``: one run of unknown seed). Two files with
the same method and seed (unknown counts as a value) are an error. Statistics over seeds: mean and
the sample standard deviation (ddof = 1; 0 for a single run), on the test metrics of the checkpoint
``which`` (``best_val``: the last epoch with the best validation bACC, the authors' rule; or ``last``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .training.methods import get_method, list_methods
from .datasets import dataset_slug
from .utils import M2mError

# -- the paper's numbers ---------------------------------------------------------------------------

_TABLE1_COLUMNS = ("cifar10-lt-r100", "cifar10-lt-r10", "cifar100-lt-r100", "cifar100-lt-r10")
_TABLE1 = """
ERM       68.7±1.43 66.4±1.69 86.0±0.69 85.8±0.50 37.2±1.12 21.5±1.66 56.2±0.69 51.8±0.63
RS        70.4±1.15 69.0±1.36 86.6±0.37 86.4±0.37 31.6±1.26 17.7±1.33 54.8±0.47 50.3±0.68
SMOTE     71.5±0.57 70.2±0.93 85.7±0.25 85.5±0.26 34.0±0.33 19.6±0.36 53.8±0.93 49.4±1.15
RW        72.8±0.33 72.0±0.29 86.6±0.18 86.5±0.16 30.1±0.59 17.6±0.85 56.0±0.35 52.0±0.51
CB-RW     71.2±1.14 70.0±1.28 86.8±0.49 86.6±0.53 38.6±0.46 22.5±0.49 55.9±0.24 52.0±0.42
DRS       75.2±0.26 73.9±0.17 87.1±0.26 87.0±0.29 41.5±0.21 31.0±0.21 57.7±0.40 54.8±0.33
M2m       78.3±0.16 77.8±0.16 87.9±0.21 87.5±0.15 42.9±0.16 33.0±0.11 58.2±0.08 55.3±0.05
Focal     68.3±1.19 65.5±1.71 85.3±0.47 85.1±0.47 37.7±1.38 22.1±1.49 55.3±0.42 50.7±0.43
LDAM      72.8±0.37 70.8±0.65 86.2±0.12 86.0±0.15 39.5±0.69 20.8±0.49 54.7±0.16 44.1±0.53
LDAM-DRW  77.1±0.49 76.7±0.59 87.1±0.28 86.9±0.28 42.1±0.09 29.2±0.27 56.9±0.15 50.4±0.29
LDAM-M2m  79.1±0.19 78.6±0.19 87.5±0.15 87.4±0.19 43.5±0.22 34.2±0.62 57.6±0.14 51.8±0.38
"""

_TABLE2_COLUMNS = ("celeba5", "sun397", "twitter", "reuters")
_TABLE2 = """
ERM       72.7±1.24 69.4±0.97 31.5±0.07 20.2±0.74 74.7±0.46 65.2±1.10 59.8±1.17 53.8±1.75
RS        72.5±0.93 70.4±1.37 28.4±0.19 19.8±1.10 75.8±0.30 70.4±1.67 63.3±0.90 57.4±1.03
SMOTE     72.8±1.07 70.7±0.84 23.7±0.09 14.8±0.39 75.8±0.38 69.5±0.30 62.5±1.30 56.8±1.69
RW        74.5±0.50 73.4±0.87 31.3±0.20 25.3±0.12 76.2±0.95 73.5±1.46 65.0±1.08 59.2±1.84
CB-RW     74.2±0.59 72.3±0.50 31.7±0.13 25.1±0.51 77.5±0.40 73.6±0.79 64.8±0.45 57.6±1.62
DRS       73.1±0.68 71.2±0.62 30.7±0.34 24.2±0.40 77.8±0.85 74.3±1.48 62.4±0.39 56.0±1.34
M2m       75.6±0.16 74.6±0.34 32.4±0.17 25.8±0.29 78.2±0.35 74.8±0.78 66.3±0.42 60.5±0.52
Focal     72.7±0.57 69.7±1.42 31.2±0.14 21.3±0.71 74.2±2.35 70.4±4.03 59.4±0.42 53.0±0.74
LDAM      73.0±1.14 68.0±2.19 30.2±0.10 14.4±0.83 74.6±0.40 66.1±2.28 63.0±1.36 57.6±0.50
LDAM-DRW  74.4±0.33 72.3±0.82 31.6±0.10 23.6±0.36 78.0±0.87 74.4±1.28 64.1±0.31 56.9±1.08
LDAM-M2m  75.9±1.09 75.0±0.94 33.3±0.20 24.9±0.76 78.8±0.21 76.0±0.23 70.0±0.68 63.9±0.49
"""

_TABLE6_COLUMNS = ("imagenet-lt",)
_TABLE6 = """
ERM       38.6±0.75 26.9±0.78
DRS       40.8±0.67 31.6±1.05
M2m       42.2±0.51 33.1±0.64
LDAM      41.0±0.07 28.5±0.11
LDAM-DRW  43.0±0.17 34.5±0.17
LDAM-M2m  43.7±0.26 35.1±0.35
"""

# Table 4 (CIFAR-LT-10, rho = 100): Major (2 classes) and Minor (8 classes) for ERM-RS and M2m.
_TABLE4_MAJOR_MINOR = {"cifar10-lt-r100": {"RS": ((92.8, 1.50), (64.8, 1.18)), "M2m": ((93.3, 0.85), (74.6, 0.34))}}

TABLE_OF = {**{c: "Table 1" for c in _TABLE1_COLUMNS}, **{c: "Table 2" for c in _TABLE2_COLUMNS},
            **{c: "Table 6" for c in _TABLE6_COLUMNS}}


def _parse(block: str, columns: tuple[str, ...]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {c: {} for c in columns}
    for line in block.strip().splitlines():
        method, *cells = line.split()
        if len(cells) != 2 * len(columns):
            raise ValueError(f"paper row {method!r}: {len(cells)} cells for {len(columns)} columns")
        for i, col in enumerate(columns):
            (b, bs), (g, gs) = (tuple(float(v) for v in cells[2 * i + j].split("±")) for j in (0, 1))
            out[col][method] = {"bacc": b, "bacc_std": bs, "gm": g, "gm_std": gs}
    return out


PAPER: dict[str, dict[str, dict[str, float]]] = {
    **_parse(_TABLE1, _TABLE1_COLUMNS), **_parse(_TABLE2, _TABLE2_COLUMNS), **_parse(_TABLE6, _TABLE6_COLUMNS)}
for _col, _rows in _TABLE4_MAJOR_MINOR.items():
    for _m, ((_ma, _mas), (_mi, _mis)) in _rows.items():
        PAPER[_col][_m].update(major=_ma, major_std=_mas, minor=_mi, minor_std=_mis)


def paper_key(dataset: str, rho: float | None = None) -> str | None:
    """The paper's column for a dataset name of the registry: ``cifar10-lt`` / ``cifar100-lt`` by
    ``rho`` (100, the recipe's default, or 10), the others by name; None where the paper has no
    column (``digits``, ``text:<dir>``, ``images:<dir>``, or a CIFAR-LT rho other than 10/100)."""
    if dataset in ("cifar10-lt", "cifar100-lt"):
        r = 100.0 if rho is None else float(rho)
        if r not in (10.0, 100.0):
            return None
        return f"{dataset}-r{int(r)}"
    return dataset if dataset in PAPER else None


def paper_numbers(dataset: str, rho: float | None = None) -> dict[str, dict[str, float]]:
    """{method: {"bacc", "bacc_std", "gm", "gm_std"[, "major", "minor", ...]}} of the paper, or {}."""
    key = paper_key(dataset, rho)
    return {m: dict(v) for m, v in PAPER[key].items()} if key else {}


# -- our runs --------------------------------------------------------------------------------------

_SEED_SUFFIX = re.compile(r"^(?P<stem>.+?)-seed(?P<seed>\d+)$")
METRICS = ("bacc", "gm", "major", "minor")


def seed_and_method_of(path: Path, result: Mapping[str, Any]) -> tuple[str, int | None]:
    """(method, seed) of a metrics file, by the module docstring's rule."""
    m = _SEED_SUFFIX.match(path.stem)
    stem, file_seed = (m.group("stem"), int(m.group("seed"))) if m else (path.stem, None)
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
    expected = {f"{m}-seed{int(s)}.json" for m in methods for s in seeds}
    present = sorted(folder.glob("*.json"))
    kept = [p for p in present if p.name in expected]
    ignored = [p for p in present if p.name not in expected]
    missing = sorted(name[: -len(".json")] for name in expected - {p.name for p in present})
    return kept, ignored, missing


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
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise M2mError(f"metrics file {path} cannot be read as JSON ({type(exc).__name__})") from None
        if not isinstance(result, dict) or "best_val" not in result or "last" not in result:
            raise M2mError(f"{path} is not a metrics file of evaluate_run (no best_val/last keys)")
        if dataset is not None and result.get("dataset") not in (None, dataset):
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
        out[method] = row
    return out


def _pm(mean: float, std: float | None, n: int | None = None) -> str:
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


def build_report(results: Iterable[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]], *,
                 dataset: str | None = None, rho: float | None = None,
                 which: str = "best_val") -> tuple[str, str]:
    """(markdown, csv) of the results table. ``results``: evaluate_run dicts (a list, grouped by
    their ``method`` key) or a {method: [dicts]} mapping, one dict per seed. Columns: method,
    seeds, test bACC and GM (mean ± std), the paper's bACC and GM (mean ± std) and our difference
    to them, Major and Minor (Sec. 3.4), and the mean number of classes with zero test recall
    (where GM is 0)."""
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
            f"| {method} | {n} | {_pm(row['bacc_mean'], row['bacc_std'], n)} | "
            f"{_pm(pb, row.get('paper_bacc_std')) if pb is not None else '-'} | "
            f"{f'{db:+.1f}' if db is not None else '-'} | {_pm(row['gm_mean'], row['gm_std'], n)} | "
            f"{_pm(pg, row.get('paper_gm_std')) if pg is not None else '-'} | "
            f"{f'{dg:+.1f}' if dg is not None else '-'} | {_pm(row['major_mean'], row['major_std'], n)} | "
            f"{_pm(row['minor_mean'], row['minor_std'], n)} | {row['zero_recall_classes']:.1f} | "
            f"{_pm(row['gm_corrected_mean'], row['gm_corrected_std'], n)} | {_epochs_cell(row['epochs'])} |")
        writer.writerow({**row, "method": method, "seeds": " ".join(str(s) for s in row["seeds"]),
                         "delta_bacc": db, "delta_gm": dg, "epochs": " ".join(str(e) for e in row["epochs"])})
    return "\n".join(lines) + "\n", buf.getvalue()


def report(dataset: str, metrics_dir: str | Path, out_dir: str | Path, *, rho: float | None = None,
           which: str = "best_val", methods: Iterable[str] | None = None,
           seeds: Iterable[int] | None = None) -> str:
    """Collect ``metrics_dir/<dataset slug>/*.json`` into ``out_dir/report.md`` and
    ``out_dir/report.csv``; returns the markdown. ``rho`` picks the paper's CIFAR-LT column.

    With ``methods`` and ``seeds`` (params ``evaluate.methods`` and ``seeds``), only the metrics
    of those runs are read (:func:`select_metrics_files`); the report names the files it ignored
    and the runs still missing."""
    folder = Path(metrics_dir) / dataset_slug(dataset)
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
    markdown, table_csv = build_report(grouped, dataset=dataset, rho=rho, which=which)
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
    folder = Path(metrics_dir) / dataset_slug(dataset)
    if methods is not None and seeds is not None:
        kept, _, _ = select_metrics_files(folder, methods, seeds)
        grouped = load_metrics_dir(folder, dataset, files=kept)
    else:
        grouped = load_metrics_dir(folder, dataset)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(flat_summary(grouped, which=which), indent=1))
    return out


CURVE_KEYS = ("method", "seed", "epoch", "val_bacc", "val_gm", "train_loss")


def write_curves(history_files: Iterable[str | Path], out: str | Path) -> Path:
    """The validation curves of a dataset's runs as ONE JSON list for DVC's plot overlay: a row per
    (run, epoch) with exactly the keys ``CURVE_KEYS`` (``method`` and ``seed`` from the file name
    ``<method>-seed<s>.json``). Every row has the same keys: DVC drops rows whose keys differ
    from the others', which is how M2m's curve (its rows carry pool counts) went missing."""
    rows = []
    for path in sorted(Path(p) for p in history_files):
        m = _SEED_SUFFIX.match(path.stem)
        method, seed = (m.group("stem"), int(m.group("seed"))) if m else (path.stem, -1)
        for r in json.loads(path.read_text()):
            if not all(k in r for k in CURVE_KEYS[2:]):
                continue
            rows.append({"method": method, "seed": seed, **{k: r[k] for k in CURVE_KEYS[2:]}})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    return out

# -- ablations (Sec. 3.4 and Appendix B: Tables 3-5, CIFAR-LT-10 at rho = 100, ResNet-32) -------------

# The paper's ablation rows, "mean±std" in percent: (Major, Minor, bACC, GM); None where the table
# has no such column. Our names: "M2m (lambda = 0)" = M2m-Lambda0; ERM-RS = RS; ERM-DRS = DRS; Table 5's
# "M2m (gamma = 0)", the threshold switched off under the release's probability rule (the text's
# gamma = infinity under the loss rule), = M2m-No-Gamma; Table 3's "# Seeds" n = M2m-Seeds<n>.
_ABLATIONS_CIFAR10_R100 = """
M2m            93.3±0.85 74.6±0.34 78.3±0.16 77.8±0.16
M2m-Lambda0    92.8±0.97 73.0±0.10 76.9±0.15 76.5±0.11
M2m-Clean      78.4±2.45 72.7±0.60 73.5±0.81 73.0±0.93
RS             92.8±1.50 64.8±1.18 70.4±1.15 69.0±1.36
M2m-RS         92.9±2.99 69.4±0.84 74.1±0.10 73.1±0.14
M2m-RS-Rand    93.6±2.34 66.1±1.04 71.6±0.36 70.3±0.80
DRS            -         -         75.2±0.26 73.9±0.32
M2m-Self       -         -         75.9±0.27 74.9±0.32
M2m-No-Reject  -         -         77.4±0.33 76.8±0.40
M2m-No-Gamma   -         -         76.9±0.19 76.4±0.20
M2m-Ensemble   -         -         78.5±0.20 78.0±0.22
M2m-Seeds10    -         -         74.9±0.29 73.7±0.33
M2m-Seeds50    -         -         76.2±0.30 75.3±0.29
M2m-Seeds100   -         -         76.5±0.34 75.6±0.41
M2m-Seeds200   -         -         76.7±0.51 75.9±0.59
M2m-Seeds500   -         -         77.4±0.38 76.8±0.31
"""


def _parse_ablations(block: str) -> dict[str, dict[str, tuple[float, float]]]:
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for line in block.strip().splitlines():
        method, *cells = line.split()
        row = {}
        for key, cell in zip(("major", "minor", "bacc", "gm"), cells):
            if cell != "-":
                mean, std = (float(v) for v in cell.split("±"))
                row[key] = (mean, std)
        out[method] = row
    return out


PAPER_ABLATIONS = {"cifar10-lt-r100": _parse_ablations(_ABLATIONS_CIFAR10_R100)}


def ablation_report(results: Iterable[Mapping[str, Any]] | Mapping[str, list[Mapping[str, Any]]], *,
                    dataset: str | None = None, rho: float | None = None, which: str = "best_val",
                    reference: str = "M2m") -> str:
    """Rows in the style of Tables 3-5: Major, Minor, bACC and GM (mean ± std over seeds) of M2m's
    ablations and the baselines the paper lists beside them, each with its relative gap to
    ``reference`` (Δ = (ours - M2m) / M2m, in %, as the paper's tables); on CIFAR-LT-10 at rho = 100
    the paper's values and gaps stand beside ours."""
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
        table = spec.paper_table if spec is not None and spec.paper_table else ("Table 4" if m == "RS" else
                                                                                  "Table 5" if m == "DRS" else "-")
        pr = paper.get(m, {})

        def paper_cell(metric: str) -> str:
            if metric not in pr:
                return "-"
            mean, std = pr[metric]
            base = paper_ref.get(metric, (None, None))[0]
            return f"{mean:.1f} ± {std:.2f} ({gap(mean, base)})" if m != reference else f"{mean:.1f} ± {std:.2f}"

        lines.append(
            f"| {m} | {table} | {n} | {_pm(r['major_mean'], r['major_std'], n)} | {_pm(r['minor_mean'], r['minor_std'], n)} | "
            f"{_pm(r['bacc_mean'], r['bacc_std'], n)} | {'-' if m == reference else gap(r['bacc_mean'], ref['bacc_mean'])} | "
            f"{_pm(r['gm_mean'], r['gm_std'], n)} | {'-' if m == reference else gap(r['gm_mean'], ref['gm_mean'])} | "
            f"{paper_cell('bacc')} | {paper_cell('gm')} |")
    return "\n".join(lines) + "\n"


def get_method_or_none(name: str):
    """The registered method spec of ``name``, or None for a name the registry does not know."""
    try:
        return get_method(name)
    except M2mError:
        return None


__all__ = ["PAPER", "PAPER_ABLATIONS", "ablation_report", "build_report", "load_metrics_dir", "paper_key", "paper_numbers", "report",
           "select_metrics_files", "summarize", "flat_summary", "write_summary", "write_curves"]
