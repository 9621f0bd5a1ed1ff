"""The ``table`` view of pool rows (``table:<file>`` data): x0, x* and x* - x0 per feature.

Values are shown in the file's own units: the recipe stored each feature standardised with the
training rows' mean and std (``meta["standardize"]``, datasets/table.py), so x = z * std + mean;
the change is also given in training stds (the unit translation's steps are measured in).
Markdown for ``pools show`` (one table a row), one HTML table per target class in the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...datasets import PreparedData
from ...store import Pool
from .markup import md_cell, table
from .output import TEXT_SUFFIXES, text_signature, write_text
from .selection import class_names_of, decision_of, seeds_and_translations
from .views import PoolView


def feature_changes(pool: Pool, data: PreparedData, idx: np.ndarray, rows: dict[str, np.ndarray], *,
                    top: int | None = None) -> list[dict[str, Any]]:
    """One dict per row: the class names, g's probability, the decision, and ``features``: for each
    feature (all of them, or the ``top`` largest changes in std units), (name, x0, x*, x* - x0,
    change in stds), x0 and x* in the file's units."""
    std = data.meta["standardize"]
    names, mean, scale = list(std["columns"]), np.asarray(std["mean"]), np.asarray(std["std"])
    classes = class_names_of(pool, data)
    z0, z_star = seeds_and_translations(pool, data, rows, idx)
    z0, z_star = z0.reshape(len(idx), -1).astype(np.float64), z_star.reshape(len(idx), -1).astype(np.float64)
    out = []
    for j, i in enumerate(idx):
        dz = z_star[j] - z0[j]
        order = np.argsort(-np.abs(dz), kind="stable") if top else np.arange(len(names))
        x0, xs = np.round(z0[j] * scale + mean, 6), np.round(z_star[j] * scale + mean, 6)   # float32 noise off
        feats = [(names[f], float(x0[f]), float(xs[f]), float(xs[f] - x0[f]), float(dz[f]))
                 for f in order[:top or len(names)]]
        out.append({"row": int(i), "seed_class": classes[int(rows["seed_class"][i])],
                    "target": classes[int(rows["target"][i])], "prob_g": float(rows["prob_g"][i]),
                    "decision": decision_of(rows, i), "features": feats})
    return out


def format_table_rows(items: list[dict[str, Any]]) -> str:
    """Markdown: a heading line and a feature table (feature | x0 | x* | x* - x0 | in stds) per row."""
    esc, lines = md_cell, []
    for it in items:
        lines += [f"## row {it['row']}: {esc(it['seed_class'])} → {esc(it['target'])}, p {it['prob_g']:.2f}, "
                  f"{esc(it['decision'])}", "", "| feature | x0 | x* | x* − x0 | (stds) |", "|---|---|---|---|---|"]
        lines += [f"| {esc(n)} | {a:.4g} | {b:.4g} | {d:+.4g} | {dz:+.2f} |" for n, a, b, d, dz in it["features"]]
        lines.append("")
    return "\n".join(lines)


class TableView(PoolView):
    name = "table"
    suffixes = TEXT_SUFFIXES
    header = ["row", "k0 → k", "p", "decision", "largest changes: feature x0 → x* (x* − x0)"]

    def accepts(self, data: PreparedData) -> bool:
        return data.input_kind == "vector" and bool((data.meta.get("standardize") or {}).get("columns"))

    def show(self, pool: Pool, data: PreparedData, idx: np.ndarray, rows: dict[str, np.ndarray], out: Path, *,
             title: str) -> None:
        a = pool.attrs
        head = f"# {md_cell(a.get('dataset'))} epoch {md_cell(a.get('epoch'))}: {len(idx)} rows ({self.name})"
        write_text(out, f"{text_signature()}{head}\n\n" + format_table_rows(feature_changes(pool, data, idx, rows)))

    def report_grids(self, pool: Pool, data: PreparedData, rows: dict[str, np.ndarray],
                     shown: dict[int, np.ndarray]) -> tuple[list[str], dict[int, str]]:
        def cells(it):
            changes = "; ".join(f"{n} {a:.3g} → {b:.3g} ({d:+.3g})" for n, a, b, d, _ in it["features"])
            return [it["row"], f"{it['seed_class']} → {it['target']}", f"{it['prob_g']:.2f}", it["decision"], changes]

        return [], {k: table(self.header, [cells(it) for it in feature_changes(pool, data, idx, rows, top=4)], left=5)
                    for k, idx in shown.items()}


__all__ = ["TableView", "feature_changes", "format_table_rows"]
