"""The one approximation of the staged design, measured: M2m (each epoch translated with f as it
was at the start of the epoch, written to a pool, then trained on) against M2m-Online (the paper's
loop: every mini-batch translated with the current f), on the same g, warm checkpoint, plan and
draws, over seeds.

    python benchmarks/online_vs_staged.py --dataset reuters --data-root ../shared/datasets/reuters-r52 \
        --seeds 0 1 2 --json runs/bench/online_reuters.json

Prints, per seed and as mean ± sample std over seeds: test bACC of both (at the epoch of best
validation bACC and at the last epoch), the accept rate (accepted / attempts over all deferred
epochs) of both, and the paired differences Online - staged. The difference is "beyond noise" when
|mean difference| > 2 x its standard error (std / sqrt(seeds)).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import torch

from m2m_pipeline.params import fit_options, m2m_config
from m2m_pipeline.datasets import dataset_slug
from m2m_pipeline.layout import Layout
from m2m_pipeline.studies.seeds import load_experiment, run_method, train_seed_models
from m2m_pipeline.utils import M2mError

METHODS = ("M2m", "M2m-Online")


def accept_rate(history: list[dict]) -> float:
    attempts = sum(int(h.get("n_attempts", 0)) for h in history)
    accepted = sum(int(h.get("n_accepted", 0)) for h in history)
    return 100.0 * accepted / attempts if attempts else float("nan")


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--data-root")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work-dir")
    p.add_argument("--m2m", nargs="*", default=[], metavar="KEY=VALUE", help="m2m overrides (e.g. refresh tests)")
    p.add_argument("--json", required=True)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        params, data, preset = load_experiment(args.dataset, params_path=args.params, data_root=args.data_root)
        overrides = {}
        for item in args.m2m:
            key, _, value = item.partition("=")
            overrides[key] = json.loads(value) if value[:1] in "0123456789-[{tfn\"" else value
        m2m = m2m_config(params, args.dataset, **overrides)
        options = fit_options(params)
        work = Path(args.work_dir or Path("runs/bench/online") / dataset_slug(args.dataset))
        shutil.rmtree(work, ignore_errors=True)
        g_base = int((params.get("pretrain_g") or {}).get("seed", 1000))
        per_seed = []
        for seed in args.seeds:
            models = train_seed_models(data, preset, seed=seed, g_seed=g_base + seed, layout=Layout(args.dataset, root=work),
                                       warm_losses=("ce",))
            row = {"seed": seed}
            for name in METHODS:
                res = run_method(data, preset, models, name, m2m=m2m,
                                 options=options)
                row[name] = {"bacc_best_val": res["metrics"]["best_val"]["test"]["bacc"],
                             "bacc_last": res["metrics"]["last"]["test"]["bacc"],
                             "accept_rate": accept_rate(res["history"]), "seconds": res["seconds"]}
                print(f"seed {seed} {name:10s} bACC {row[name]['bacc_best_val']:5.1f} (last "
                      f"{row[name]['bacc_last']:5.1f}), accept rate {row[name]['accept_rate']:5.1f}%, "
                      f"{res['seconds']:.1f} s", flush=True)
            per_seed.append(row)
        summary = {}
        for key in ("bacc_best_val", "bacc_last", "accept_rate", "seconds"):
            staged = [r["M2m"][key] for r in per_seed]
            online = [r["M2m-Online"][key] for r in per_seed]
            diff = [o - s for o, s in zip(online, staged)]
            d_mean, d_std = mean_std(diff)
            se = d_std / math.sqrt(len(diff)) if len(diff) > 1 else float("nan")
            summary[key] = {"staged": mean_std(staged), "online": mean_std(online), "diff_online_minus_staged":
                            (d_mean, d_std), "beyond_noise": bool(len(diff) > 1 and abs(d_mean) > 2 * se)}
        result = {"dataset": args.dataset, "seeds": args.seeds, "per_seed": per_seed, "summary": summary,
                  "m2m": vars(m2m), "date": str(date.today()), "machine": f"{platform.machine()}, no GPU, "
                  f"{args.threads} torch thread(s)", "wall_seconds": time.perf_counter() - t0,
                  "command": " ".join(["python", *sys.argv])}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
        print(f"\n{'quantity':14s} {'staged':>14s} {'online':>14s} {'online-staged':>16s}  beyond noise")
        for key, s in summary.items():
            fmt = lambda ms: f"{ms[0]:6.2f} ± {ms[1]:5.2f}"  # noqa: E731
            print(f"{key:14s} {fmt(s['staged']):>14s} {fmt(s['online']):>14s} {fmt(s['diff_online_minus_staged']):>16s}"
                  f"  {'yes' if s['beyond_noise'] else 'no'}")
        shutil.rmtree(work, ignore_errors=True)
    except M2mError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
