"""Pictures of a pool: what was translated into what, and why attempts were rejected."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .datasets import PreparedData
from .pools import check_provenance, seed_inputs
from .store import open_pool
from .acceptance import REASONS

REASON_COLORS = {"accepted": "tab:green", "beta": "tab:orange", "gamma": "tab:gray", "non_finite": "tab:red",
                 "no_seed": "tab:purple"}


def plot_pool(pool_path: str | Path, data: PreparedData, out: str | Path, *, n_examples: int = 8) -> Path:
    """A PNG summary of one pool: outcome of the attempts per target class, g's confidence in
    the target class, and (for images) accepted examples as x0 / x* / |x* - x0| columns."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pool = open_pool(pool_path)
    check_provenance(pool, dataset_fingerprint=data.fingerprint)
    rows = pool.rows(("target", "seed_class", "seed_index", "seed_aug", "prob_g", "accepted", "reason"))
    k = data.num_classes
    is_image = data.input_kind == "image" and len(data.input_shape) == 3
    n_show = min(n_examples, int(rows["accepted"].sum())) if is_image else 0
    fig = plt.figure(figsize=(12, 4 + (4.5 if n_show else 0)), constrained_layout=True)
    grid = fig.add_gridspec(2 if n_show else 1, max(2, n_show), height_ratios=[2, 2.2] if n_show else [1])

    ax = fig.add_subplot(grid[0, : max(1, grid.ncols // 2)])
    bottom = np.zeros(k)
    for name, code in REASONS.items():
        counts = np.bincount(rows["target"][rows["reason"] == code], minlength=k)
        if counts.any():
            ax.bar(np.arange(k), counts, bottom=bottom, label=name, color=REASON_COLORS[name])
            bottom += counts
    ax.set_xticks(np.arange(k))
    ax.set_xticklabels(data.class_names if k <= 20 else [str(i) for i in range(k)], rotation=90 if k > 10 else 0,
                       fontsize=7 if k > 20 else 9)
    ax.set_xlabel("target class k")
    ax.set_ylabel("translation attempts")
    ax.legend(fontsize=8)
    a = pool.attrs
    ax.set_title(f"{a.get('dataset')} epoch {a.get('epoch')}: {int(rows['accepted'].sum())} of "
                 f"{len(rows['target'])} attempts accepted")

    ax2 = fig.add_subplot(grid[0, max(1, grid.ncols // 2):])
    bins = np.linspace(0, 1, 21)
    ax2.hist(rows["prob_g"], bins=bins, color="0.75", label="all attempts")
    ax2.hist(rows["prob_g"][rows["accepted"]], bins=bins, color=REASON_COLORS["accepted"], label="accepted")
    gamma = a.get("params", {}).get("gamma")
    if a.get("params", {}).get("gamma_on") == "prob" and gamma is not None:
        ax2.axvline(gamma, color="k", ls="--", lw=1, label=f"gamma = {gamma}")
    ax2.set_xlabel("g's probability of the target class at x*")
    ax2.set_ylabel("rows")
    ax2.legend(fontsize=8)

    if n_show:
        idx = np.flatnonzero(rows["accepted"])[:n_show]
        x_star = pool.array("x", idx)
        x0 = seed_inputs(data, rows["seed_index"][idx], rows["seed_aug"][idx]).numpy()
        # one column per example: x0 over x* over |x* - x0| (rescaled to its own maximum)
        sub = grid[1, :].subgridspec(3, n_show, hspace=0.05, wspace=0.05)
        for j, i in enumerate(idx):
            diff = np.abs(x_star[j] - x0[j])
            for r, (img, label) in enumerate(((x0[j], "x0"), (x_star[j], "x*"), (diff / max(diff.max(), 1e-8), "|x*-x0|"))):
                axi = fig.add_subplot(sub[r, j])
                axi.imshow(np.transpose(img, (1, 2, 0)).squeeze(), cmap="gray" if img.shape[0] == 1 else None,
                           vmin=0, vmax=1)
                axi.set_xticks([])
                axi.set_yticks([])
                if r == 0:
                    axi.set_title(f"{data.class_names[rows['seed_class'][i]]} -> {data.class_names[rows['target'][i]]}"
                                  f"\np = {rows['prob_g'][i]:.2f}", fontsize=8)
                if j == 0:
                    axi.set_ylabel(label, fontsize=8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
