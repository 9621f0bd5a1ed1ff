"""The paper's figures, drawn from the evaluate stage's prediction files: per-class recall against
class size, cumulative false positives (Fig. 5), t-SNE of the penultimate features (Fig. 4) and the
confusion matrices. (Pictures of a pool are the pool browser's: pools/browse.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils import save_figure
from .aggregate import method_order


# -- the paper's figures, from the evaluate stage's prediction files --------------------------------

def load_predictions(paths) -> list[dict]:
    """The ``.npz`` files of :func:`m2m_pipeline.evaluation.write_predictions` as dicts."""
    out = []
    for p in paths:
        with np.load(p, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
        d["method"], d["seed"] = str(d["method"]), int(d["seed"])
        d["class_names"] = [str(c) for c in d["class_names"]]
        out.append(d)
    return out


def _by_method(preds: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for d in preds:
        grouped.setdefault(d["method"], []).append(d)
    return {m: sorted(grouped[m], key=lambda d: d["seed"]) for m in method_order(grouped)}


def per_class_recall_of(d: dict) -> np.ndarray:
    k = len(d["class_counts"])
    y, p = d["y_true"], d["y_pred"]
    return np.array([np.mean(p[y == c] == c) if np.any(y == c) else np.nan for c in range(k)])


def false_positives_of(d: dict) -> np.ndarray:
    """Per class k: test rows of another class predicted as k (Figure 5's false positives)."""
    k = len(d["class_counts"])
    y, p = d["y_true"], d["y_pred"]
    return np.bincount(p[p != y], minlength=k)[:k]


def frequency_order(class_counts: np.ndarray) -> np.ndarray:
    """Class indices from the most to the least frequent training class (stable on ties)."""
    return np.argsort(-np.asarray(class_counts), kind="stable")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_recall_vs_size(preds: list[dict], out: str | Path, *, title: str = "") -> Path:
    """Per-class test recall against the class's training size, one line per method (mean over
    seeds), classes from the largest to the smallest."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, runs in _by_method(preds).items():
        counts = runs[0]["class_counts"]
        order = frequency_order(counts)
        rec = np.nanmean([per_class_recall_of(d) for d in runs], axis=0)
        ax.plot(counts[order], 100 * rec[order], marker="o", ms=3, lw=1.2,
                label=f"{method} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
    ax.set_xscale("log")
    ax.invert_xaxis()
    ax.set_xlabel("training samples of the class (log scale, largest first)")
    ax.set_ylabel("test recall (%)")
    ax.set_title(title or "per-class recall against class size", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_cumulative_false_positives(preds: list[dict], out: str | Path, *, title: str = "") -> Path:
    """Figure 5 of the paper: the cumulative number of false positives over the classes ordered
    from the most to the least frequent, one line per method (mean over seeds). A classifier
    biased toward the majority piles its false positives into the first classes."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, runs in _by_method(preds).items():
        order = frequency_order(runs[0]["class_counts"])
        fp = np.mean([false_positives_of(d) for d in runs], axis=0)
        ax.plot(np.arange(1, len(order) + 1), np.cumsum(fp[order]), marker="o", ms=3, lw=1.2,
                label=f"{method} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
    ax.set_xlabel("classes, most to least frequent (count)")
    ax.set_ylabel("cumulative false positives (test)")
    ax.set_title(title or "cumulative false positives (Figure 5)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_tsne(preds: list[dict], out: str | Path, *, title: str = "", seed: int = 0) -> Path:
    """Figure 4 of the paper: t-SNE (scikit-learn) of the penultimate features of the class-balanced
    test subset, one panel per method (its first seed), points coloured by true class."""
    from sklearn.manifold import TSNE

    plt = _plt()
    groups = _by_method(preds)
    n = len(groups)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.8), squeeze=False)
    for ax, (method, runs) in zip(axes[0], groups.items()):
        d = runs[0]
        feats = d["features"].astype(np.float64)
        labels = d["y_true"][d["feature_index"]]
        perplexity = float(min(30.0, max(2.0, (len(feats) - 1) / 3)))
        emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)
        k = len(d["class_counts"])
        ax.scatter(emb[:, 0], emb[:, 1], c=labels, cmap="tab10" if k <= 10 else "nipy_spectral", s=6,
                   vmin=0, vmax=max(k - 1, 1))
        ax.set_title(f"{method} (seed {d['seed']})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "t-SNE of penultimate features, class-balanced test subset (Figure 4)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_confusion(preds: list[dict], out: str | Path, *, title: str = "") -> Path:
    """Row-normalised test confusion matrix, one panel per method (its first seed); rows and
    columns in the order most to least frequent training class."""
    plt = _plt()
    groups = _by_method(preds)
    n = len(groups)
    fig, axes = plt.subplots(1, n, figsize=(3.8 * n, 3.9), squeeze=False)
    im = None
    for ax, (method, runs) in zip(axes[0], groups.items()):
        d = runs[0]
        k = len(d["class_counts"])
        order = frequency_order(d["class_counts"])
        cm = np.zeros((k, k))
        np.add.at(cm, (d["y_true"], d["y_pred"]), 1)
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        im = ax.imshow(cm[np.ix_(order, order)], cmap="Blues", vmin=0, vmax=1)
        names = [d["class_names"][c] for c in order] if k <= 12 else None
        ax.set_xticks(np.arange(k) if names else [])
        ax.set_yticks(np.arange(k) if names else [])
        if names:
            ax.set_xticklabels(names, fontsize=7, rotation=90)
            ax.set_yticklabels(names, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("true (largest class first)", fontsize=8)
        ax.set_title(f"{method} (seed {d['seed']})", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=list(axes[0]), fraction=0.02, pad=0.02, label="share of the true class")
    fig.suptitle(title or "test confusion matrix, row-normalised", fontsize=10)
    return save_figure(fig, out)


def paper_figures(prediction_files, out_dir: str | Path, *, dataset: str = "") -> dict[str, Path]:
    """All four figures for one dataset's prediction files; returns {name: PNG path}."""
    preds = load_predictions(prediction_files)
    if not preds:
        from ..errors import M2mError

        raise M2mError("no prediction files given; run the evaluate stage with --predictions")
    out_dir = Path(out_dir)
    prefix = f"{dataset}: " if dataset else ""
    return {
        "recall_vs_size": plot_recall_vs_size(preds, out_dir / "recall_vs_size.png",
                                              title=f"{prefix}per-class recall against class size"),
        "cumulative_fp": plot_cumulative_false_positives(preds, out_dir / "cumulative_false_positives.png",
                                                         title=f"{prefix}cumulative false positives (Figure 5)"),
        "tsne": plot_tsne(preds, out_dir / "tsne.png",
                          title=f"{prefix}t-SNE of penultimate features (Figure 4)"),
        "confusion": plot_confusion(preds, out_dir / "confusion.png", title=f"{prefix}confusion matrix"),
    }
