"""Balanced metrics of Sec. 3.1 and 3.4: bACC, GM, Major/Minor accuracy (numpy in, floats out)."""

from __future__ import annotations

import numpy as np
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import recall_score

from .datasets import majority_classes

# imbalanced-learn's ``correction`` for the corrected GM: the value a zero per-class recall takes.
GM_CORRECTION = 1e-3


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Recall of every class 0..K-1 (NaN for a class absent from y_true)."""
    labels = np.arange(num_classes)
    present = np.isin(labels, y_true)
    rec = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return np.where(present, rec, np.nan)


def balanced_metrics(y_true: np.ndarray, y_pred: np.ndarray, class_counts: np.ndarray) -> dict:
    """bACC (mean per-class recall), GM (geometric mean of per-class recalls; 0 when any class has
    zero recall, imbalanced-learn's ``geometric_mean_score`` without correction; ``gm_corrected`` is
    the same with a zero recall counted as ``GM_CORRECTION``), and Major/Minor:
    the mean recall over the majority classes (the fewest most-frequent classes holding more than
    50% of the training samples) and over the rest. All in percent."""
    k = len(class_counts)
    rec = per_class_recall(y_true, y_pred, k)
    major = majority_classes(class_counts)
    present = ~np.isnan(rec)
    gm = geometric_mean_score(y_true, y_pred, labels=np.flatnonzero(present), average="multiclass",
                              correction=0.0)
    # The corrected GM replaces a zero recall by GM_CORRECTION before the geometric mean, so it still
    # ranks models that miss a class entirely (the strict GM is then 0 for all of them).
    gm_corrected = geometric_mean_score(y_true, y_pred, labels=np.flatnonzero(present), average="multiclass",
                                        correction=GM_CORRECTION)
    return {
        "bacc": float(100 * np.nanmean(rec)),
        "gm": float(100 * gm),
        "gm_corrected": float(100 * gm_corrected),
        "major": float(100 * np.nanmean(rec[major])) if np.any(present & major) else float("nan"),
        "minor": float(100 * np.nanmean(rec[~major])) if np.any(present & ~major) else float("nan"),
        "acc": float(100 * np.mean(np.asarray(y_true) == np.asarray(y_pred))),
        "per_class_recall": [None if np.isnan(r) else float(100 * r) for r in rec],
    }
