"""Choosing M2m's beta, lambda and gamma on the validation set (Sec. 3.1, "Details on M2m").

The paper: "We choose hyperparameters in our method from a fixed set of candidates, namely
beta in {0.9, 0.99, 0.999}, lambda in {0.01, 0.1, 0.5} and gamma in {0.9, 0.99} based on the
validation set." Here, per seed, g and the warm checkpoints of f are trained once; every translating
method (M2m, LDAM-M2m) then runs the deferred phase once per grid point (18 points), from the same
warm checkpoint, and is scored by its best validation bACC over the deferred epochs (the epochs
where the runs differ; before them they are identical). A grid point's score is the mean of that
score over methods and seeds; ties go to the higher mean validation bACC over the deferred epochs,
then to the earlier grid point. The test split is never read.

One grid point is chosen for the dataset (all translating methods share ``presets.<preset>.m2m``);
the best point of each method alone is recorded as well. :func:`write_preset_m2m` writes the
choice into params.yaml by a targeted text edit that leaves every other line as it was.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable

import yaml

from ..datasets import PreparedData
from ..layout import Layout
from ..pools.config import TranslationConfig
from ..training import FitOptions, Preset, get_method
from ..utils import M2mError, atomic_write_bytes
from .seeds import deferred_val_scores, run_method, train_seed_models, warm_losses_for

PAPER_GRID: dict[str, tuple[float, ...]] = {"beta": (0.9, 0.99, 0.999), "lam": (0.01, 0.1, 0.5), "gamma": (0.9, 0.99)}
SELECTED_KEYS = ("beta", "lam", "gamma")


def grid_points(grid: dict[str, tuple[float, ...]] = PAPER_GRID) -> list[dict[str, float]]:
    """Every combination of the grid, in the order beta, lambda, gamma (gamma fastest)."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _key(point: dict[str, float]) -> str:
    return "_".join(f"{k}{v:g}" for k, v in point.items())


def select_m2m_params(data: PreparedData, preset: Preset, base: TranslationConfig, *, layout: Layout,
                      seeds: tuple[int, ...] = (0,), methods: tuple[str, ...] = ("M2m", "LDAM-M2m"),
                      g_seed: int = 1000, grid: dict[str, tuple[float, ...]] = PAPER_GRID,
                      options: FitOptions | None = None, keep_runs: bool = False,
                      log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the grid on validation and return the record (see the module docstring).

    ``g_seed + seed`` seeds g of seed ``seed``. The record holds ``runs`` (one entry per method,
    seed and grid point with its validation scores, acceptance counts and wall time), ``points``
    (grid points ranked by score), ``chosen`` ({beta, lam, gamma}) and ``chosen_per_method``.
    """
    log = log or (lambda msg: None)
    methods = tuple(methods)
    if not methods:
        raise M2mError("select needs at least one translating method")
    for m in methods:
        if not get_method(m).translate:
            raise M2mError(f"{m} does not translate; selection is for M2m and LDAM-M2m")
    unknown = sorted(set(grid) - set(SELECTED_KEYS))
    if unknown:
        raise M2mError(f"the grid may only hold {SELECTED_KEYS}, got {unknown}")
    points = grid_points(grid)
    t_start = time.perf_counter()
    runs: list[dict[str, Any]] = []
    setup_seconds: dict[int, dict[str, float]] = {}
    for seed in seeds:
        models = train_seed_models(data, preset, seed=seed, g_seed=g_seed + seed, layout=layout,
                                   warm_losses=warm_losses_for(list(methods)))
        setup_seconds[seed] = models.seconds
        log(f"seed {seed}: g and warm checkpoints in {sum(models.seconds.values()):.1f} s")
        for point in points:
            cfg = replace(base, **point)
            for method in methods:
                res = run_method(data, preset, models, method, name=f"{method}-{_key(point)}", m2m=cfg,
                                 options=options)
                scores = deferred_val_scores(res["history"], preset.deferred_epoch)
                trans = [h for h in res["history"] if "n_attempts" in h]
                n_att = sum(h["n_attempts"] for h in trans)
                n_acc = sum(h["n_accepted"] for h in trans)
                runs.append({"method": method, "seed": seed, **point, "val_bacc_best": scores["best"],
                             "val_bacc_last": scores["last"], "val_bacc_mean": scores["mean"],
                             "n_attempts": n_att, "n_accepted": n_acc,
                             "accept_rate": n_acc / n_att if n_att else float("nan"),
                             "seconds": res["seconds"]})
                log(f"seed {seed} {method:9s} {_key(point):28s} val bACC best {scores['best']:.2f} "
                    f"mean {scores['mean']:.2f} accepted {n_acc}/{n_att} ({res['seconds']:.1f} s)")
                if not keep_runs:
                    shutil.rmtree(res["run_dir"], ignore_errors=True)

    def rank(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ranked = []
        for i, point in enumerate(points):
            mine = [r for r in rows if all(r[k] == v for k, v in point.items())]
            score = _mean([r["val_bacc_best"] for r in mine])
            tie = _mean([r["val_bacc_mean"] for r in mine])
            per_method = {m: _mean([r["val_bacc_best"] for r in mine if r["method"] == m]) for m in methods}
            ranked.append({**point, "score": score, "tiebreak": tie, "per_method": per_method, "grid_index": i})
        ranked.sort(key=lambda p: (-_nan_low(p["score"]), -_nan_low(p["tiebreak"]), p["grid_index"]))
        return ranked

    ranked = rank(runs)
    chosen = {k: ranked[0][k] for k in grid}
    per_method = {}
    for m in methods:
        best = rank([r for r in runs if r["method"] == m])[0]
        per_method[m] = {**{k: best[k] for k in grid}, "score": best["score"]}
    return {
        "dataset": data.name, "dataset_fingerprint": data.fingerprint, "seeds": list(seeds),
        "methods": list(methods), "g_seed_base": g_seed, "grid": {k: list(v) for k, v in grid.items()},
        "criterion": "best validation bACC over the deferred epochs, mean over methods and seeds; "
                     "tie: mean validation bACC over the deferred epochs",
        "base_m2m": asdict(base), "preset": preset.to_dict(), "setup_seconds": setup_seconds,
        "runs": runs, "points": ranked, "chosen": chosen, "chosen_per_method": per_method,
        "wall_seconds": time.perf_counter() - t_start,
    }


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def _nan_low(v: float) -> float:
    return -math.inf if v is None or math.isnan(v) else v


# -- writing the choice into params.yaml ----------------------------------------------------------

def _flow(mapping: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                           for k, v in mapping.items()) + "}"


def write_preset_m2m(params_path: str | Path, preset: str, values: dict[str, Any], *,
                     comment: str | None = None) -> str:
    """Set ``presets.<preset>.m2m.<key>`` for each key of ``values`` in the params file, keeping
    the other keys of that mapping and every other line of the file byte for byte. Returns the
    new text (also written, atomically). The result is read back and checked: only
    ``presets.<preset>.m2m`` may differ from before."""
    path = Path(params_path)
    text = path.read_text()
    before = yaml.safe_load(text)
    if preset not in (before.get("presets") or {}):
        raise M2mError(f"{path} has no preset {preset!r} under 'presets'")
    lines = text.splitlines(keepends=True)

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def content(line: str) -> bool:
        s = line.strip()
        return bool(s) and not s.startswith("#")

    try:
        top = next(i for i, l in enumerate(lines) if re.match(r"^presets:\s*(#.*)?$", l))
        child = next(indent(l) for l in lines[top + 1:] if content(l))
        start = next(i for i in range(top + 1, len(lines))
                     if indent(lines[i]) == child and re.match(rf"^\s*{re.escape(preset)}:\s*(#.*)?$", lines[i]))
    except StopIteration:
        raise M2mError(f"{path}: cannot find the block presets.{preset} (expected block style)") from None
    end = start + 1
    while end < len(lines) and (not content(lines[end]) or indent(lines[end]) > child):
        end += 1
    while end > start + 1 and not content(lines[end - 1]):
        end -= 1  # trailing blank or comment lines belong to what follows
    body = [i for i in range(start + 1, end) if content(lines[i])]
    key_indent = indent(lines[body[0]]) if body else child + 2
    m2m_line = next((i for i in body if indent(lines[i]) == key_indent and re.match(r"^\s*m2m:", lines[i])), None)
    current = dict((before["presets"][preset] or {}).get("m2m") or {})
    merged = {**current, **values}
    new_line = " " * key_indent + "m2m: " + _flow(merged) + (f"  # {comment}" if comment else "") + "\n"
    if m2m_line is None:
        lines.insert(end, new_line)
    else:
        stop = m2m_line + 1  # a block-style m2m mapping spans its more-indented lines
        while stop < end and (not content(lines[stop]) or indent(lines[stop]) > key_indent):
            stop += 1
        lines[m2m_line:stop] = [new_line]
    new_text = "".join(lines)
    after = yaml.safe_load(new_text)
    expected = json.loads(json.dumps(before))
    expected["presets"][preset] = {**(expected["presets"][preset] or {}), "m2m": merged}
    if json.loads(json.dumps(after)) != expected:
        raise M2mError(f"{path}: editing presets.{preset}.m2m would change other keys; edit it by hand")
    atomic_write_bytes(path, new_text.encode())
    return new_text


__all__ = ["PAPER_GRID", "grid_points", "select_m2m_params", "write_preset_m2m"]
