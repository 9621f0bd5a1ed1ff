"""The pictures of ``pools stats`` and the report: the acceptance heatmap by (k0, k), and the accept
rate per target class over the epochs of a run (PNG files, matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...utils import M2mError, save_figure
from .stats import acceptance_matrix, epoch_rates


def plot_heatmap(stats: dict[str, Any], names: list[str], out: str | Path) -> Path:
    """Accept rate by (seed class k0, target k), both axes from the largest to the smallest class
    (so eq. (5)'s "seeds come from larger classes" shows as the upper triangle); blank where no
    attempt; rate and attempts written in the cells when there are at most 12 classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(names)
    att, rate = acceptance_matrix(stats, k)
    sizes = np.array([c["class_size"] for c in stats["classes"]])
    order = np.argsort(-sizes, kind="stable")
    att, rate = att[np.ix_(order, order)], rate[np.ix_(order, order)]
    size = min(14, 3 + 0.3 * k)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(np.ma.masked_invalid(rate), cmap="viridis", vmin=0, vmax=1, origin="upper")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="accept rate")
    ticks = np.arange(k)
    labels = [f"{names[c]} ({sizes[c]})" for c in order]
    fs = 8 if k <= 12 else (6 if k <= 40 else 4)
    ax.set_xticks(ticks)
    ax.set_xticklabels(labels, rotation=90, fontsize=fs)
    ax.set_yticks(ticks)
    ax.set_yticklabels(labels, fontsize=fs)
    ax.set_xlabel("target class k (training size), largest first")
    ax.set_ylabel("seed class k0 (training size)")
    if k <= 12:
        for i in range(k):
            for j in range(k):
                if att[i, j]:
                    ax.text(j, i, f"{100 * rate[i, j]:.0f}%\n{att[i, j]}", ha="center", va="center",
                            fontsize=6, color="w" if rate[i, j] < 0.6 else "k")
    ax.set_title(f"{stats['dataset']} epoch {stats['epoch']}: accept rate by (k0, k), "
                 f"{stats['accepted']}/{stats['attempts']} accepted\n"
                 f"({'cells: rate, attempts; ' if k <= 12 else ''}blank: no attempt)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out)


def plot_epoch_rates(run_dir: str | Path, names: list[str], out: str | Path) -> Path:
    """Accept rate per target class over the epochs of a run, one line per class (coloured from
    the largest class, dark, to the smallest, light)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = epoch_rates(run_dir)
    if not r["epochs"]:
        raise M2mError(f"{run_dir} holds no complete pool")
    counts = np.asarray(r["class_counts"])
    order = np.argsort(-counts, kind="stable")
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    k = len(counts)
    for rank, c in enumerate(order):
        if np.all(np.isnan(r["rates"][c])):
            continue
        ax.plot(r["epochs"], 100 * r["rates"][c], marker="o" if len(r["epochs"]) < 3 else None, lw=1.2,
                color=cmap(rank / max(k - 1, 1)), label=f"{names[c]} (N={counts[c]})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("accept rate of attempts (%)")
    ax.set_ylim(-2, 102)
    ax.set_title(f"accept rate per target class over the epochs of {Path(run_dir).name}", fontsize=9)
    if k <= 12:
        ax.legend(fontsize=7, ncol=2, loc="best")
    else:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, k - 1))
        fig.colorbar(sm, ax=ax, label="class rank by size (0 = largest)")
    fig.tight_layout()
    return save_figure(fig, out)


__all__ = ["plot_epoch_rates", "plot_heatmap"]
