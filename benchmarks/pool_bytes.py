"""Pool bytes per epoch and per run at scale, derived from the pool format's per-row byte layout
(``store.pool_row_layout`` / ``store.pool_bytes``: the dtypes of store/pool_schema.py), not measured.

    python benchmarks/pool_bytes.py                      # the table of docs/performance.md
    python benchmarks/pool_bytes.py --accept-rate 0.3 --json OUT

For each data set: the training rows, class sizes and input shape of its recipe, the deferred
epochs of its params.yaml preset (M2m writes one pool an epoch from ``deferred_epoch`` on), and
the expected attempts an epoch: the balanced sampler draws a slot's class uniformly, and a slot
of class k is an attempt with probability 1 - N_k/N_1, so an epoch of n slots has
n * (1 - mean(N_k)/N_1) attempts. Bytes are uncompressed (the writer's free-space bound; zstd
makes x_delta smaller: 65-76% of its int16 bytes on Reuters and digits, docs/performance.md).
``pools.store: accepted`` keeps every attempt's small columns but x_delta of the accepted rows
only, at ``--accept-rate`` (default 14%: Reuters' measured rate, docs/results.md; image sets
differ).
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path

from m2m_pipeline.datasets.base import long_tail_counts
from m2m_pipeline.params import load_params, preset_for
from m2m_pipeline.store import POOL_ROW_BYTES, pool_bytes, pool_row_layout

ROOT = Path(__file__).resolve().parents[1]


def expected_attempts(n_slots: int, n_max: int, mean_count: float) -> float:
    """Attempts an epoch of ``n_slots`` slots has on average (balanced sampler, Sec. 2.3)."""
    return n_slots * (1.0 - mean_count / n_max)


def _recipe_default(build, name: str) -> int:
    return int(inspect.signature(build).parameters[name].default)


def datasets(params: dict) -> list[dict]:
    """The three image sets of issue 16: their training rows, class sizes, inputs and deferred epochs."""
    from m2m_pipeline.datasets.imagenet_lt import build_imagenet_lt
    from m2m_pipeline.datasets.sun397 import build_sun397

    rho = float(((params.get("prepare") or {}).get("cifar10-lt") or {}).get("rho", 100))
    cifar = long_tail_counts(5000, 10, rho)          # the cifar10-lt recipe's class sizes
    sun_k, sun_held = 397, _recipe_default(build_sun397, "n_val") + _recipe_default(build_sun397, "n_test")
    sun_side, inet_side = _recipe_default(build_sun397, "size"), _recipe_default(build_imagenet_lt, "size")
    rows = [
        # SUN397 (Appendix A): 108,754 images of 397 classes, 50 held out a class; its largest class
        # has 2,361 images (an outside figure: the data set is not on this machine)
        {"name": "sun397", "label": f"SUN397 ({sun_side}x{sun_side})", "n_train": 108_754 - sun_k * sun_held,
         "k": sun_k, "n_max": 2_361 - sun_held, "shape": (3, sun_side, sun_side)},
        # ImageNet-LT (Appendix C): 115,846 training images, 1,000 classes, 1,280 in the largest
        {"name": "imagenet-lt", "label": f"ImageNet-LT ({inet_side}x{inet_side})", "n_train": 115_846, "k": 1000,
         "n_max": 1280, "shape": (3, inet_side, inet_side)},
    ]
    rows.insert(0, {"name": "cifar10-lt", "label": f"CIFAR-LT-10 (rho {rho:g}, 32x32)", "n_train": sum(cifar),
                    "k": len(cifar), "n_max": max(cifar), "shape": (3, 32, 32)})
    for r in rows:
        preset = preset_for(params, r["name"])
        r["deferred_epochs"] = preset.epochs - preset.deferred_epoch
    return rows


def table(params: dict, accept_rate: float) -> list[dict]:
    out = []
    for d in datasets(params):
        attempts = expected_attempts(d["n_train"], d["n_max"], d["n_train"] / d["k"])
        n_att, n_acc = round(attempts), round(attempts * accept_rate)
        epoch_all = pool_bytes(n_att, d["shape"], n_slots=d["n_train"])
        epoch_acc = pool_bytes(n_att, d["shape"], n_slots=d["n_train"], n_accepted=n_acc, store="accepted")
        out.append({**d, "shape": list(d["shape"]), "attempts_per_epoch": n_att, "accepted_per_epoch": n_acc,
                    "bytes_per_attempt": pool_row_layout(d["shape"])["x_delta"] + POOL_ROW_BYTES,
                    "epoch_bytes_all": epoch_all, "run_bytes_all": epoch_all * d["deferred_epochs"],
                    "epoch_bytes_accepted": epoch_acc, "run_bytes_accepted": epoch_acc * d["deferred_epochs"]})
    return out


def _size(b: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{b:.0f} B"


def markdown(rows: list[dict], accept_rate: float) -> str:
    pct = f"{100 * accept_rate:g}%"
    lines = ["| data set | training rows, classes, N_1 | deferred epochs | attempts / epoch | B / attempt | "
             f"pools.store: all, epoch / run | pools.store: accepted ({pct} accepted), epoch / run |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['label']} | {r['n_train']:,}, {r['k']:,}, {r['n_max']:,} | {r['deferred_epochs']} | "
                     f"{r['attempts_per_epoch']:,} | {r['bytes_per_attempt']:,} | "
                     f"{_size(r['epoch_bytes_all'])} / **{_size(r['run_bytes_all'])}** | "
                     f"{_size(r['epoch_bytes_accepted'])} / **{_size(r['run_bytes_accepted'])}** |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default=str(ROOT / "params.yaml"))
    ap.add_argument("--accept-rate", type=float, default=0.14, help="share of attempts accepted (store: accepted)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not 0.0 <= args.accept_rate <= 1.0:
        print(f"error: --accept-rate must be in [0, 1], got {args.accept_rate}", file=sys.stderr)
        raise SystemExit(2)
    rows = table(load_params(args.params), args.accept_rate)
    print(markdown(rows, args.accept_rate))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1))
    return rows


if __name__ == "__main__":
    main()
