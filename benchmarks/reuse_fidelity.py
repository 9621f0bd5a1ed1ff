"""How far reusing M2m's rows is from the paper's ablations: both modes of each re-deciding ablation,
side by side, with the same seeds (issue 15).

    python benchmarks/reuse_fidelity.py --dataset digits --seeds 0 1 2 --json docs/results/reuse-fidelity-digits.json
    python benchmarks/reuse_fidelity.py --dataset reuters --data-root ../shared/datasets/reuters-r52 --seeds 0 1 2 \
        --json docs/results/reuse-fidelity-reuters.json
    python benchmarks/reuse_fidelity.py --dataset text:<dir> --seeds 0 --json ...   # images:<dir> too

Per seed (in process, the DAG's jobs through m2m_pipeline/studies/seeds.py): g and f's CE warm phase
once, M2m (its pools kept), then each ablation twice from the same warm checkpoint:
- ``reuse``: the ablation's rule over the stored rows of M2m's pools (x* translated with M2m's f);
- ``fresh``: translated each deferred epoch with the ablation's own f, then the same rule (the
  paper's definition): MethodSpec.in_mode("fresh"), the translating run with the ablation's rule.
Both share the warm start, g, the plan and the draws of every epoch; they differ only in the f the
translations of the second deferred epoch on see.

Writes --json:
``{"ablations": {NAME: {"reuse": MODE, "fresh": MODE, "paired_delta_bacc": {"mean", "std", "by_seed"},
"jaccard_by_epoch": [...], "jaccard_by_seed": {...}, "exceeds_2x_m2m_std": bool}}, "m2m": MODE, "meta": {...}}``
where MODE = ``{"bacc_mean", "bacc_std", "bacc_by_seed", "accepted_by_epoch", "accepted_by_seed"}``:
test bACC at the epoch of best validation bACC (``--which last``: the last epoch); accepted_by_epoch
is, per deferred epoch, the number of rows the rule uses (mean over seeds); paired_delta_bacc is
fresh - reuse per seed; jaccard_by_epoch is |A ∩ B| / |A ∪ B| of the two modes' used slots (mean over
seeds; 1.0 when both are empty). ``exceeds_2x_m2m_std``: |paired delta mean| > 2 x M2m's seed std,
the issue's criterion for making ``fresh`` the default of the paper's tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import torch

from m2m_pipeline.datasets import dataset_slug
from m2m_pipeline.layout import Layout
from m2m_pipeline.params import fit_options, m2m_config
from m2m_pipeline.pools.generate import make_translator
from m2m_pipeline.pools.reuse import read_swaps
from m2m_pipeline.studies.seeds import load_experiment, run_method, train_seed_models
from m2m_pipeline.training import get_method
from m2m_pipeline.utils import M2mError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reproduce import machine  # noqa: E402

DEFAULT_ABLATIONS = ["M2m-Clean", "M2m-Rand", "M2m-No-Reject", "M2m-No-Gamma"]
MODES = ("reuse", "fresh")


def used_slots(pool: Path, data, *, rule: str, rule_params: dict[str, Any] | None, seed: int) -> set[int]:
    """The slots whose rows ``rule`` uses in one epoch's pool (the rows training swaps in)."""
    _, swaps, _ = read_swaps(pool, data, rule=rule, rule_params=rule_params, seed=seed)
    return {int(s) for s in swaps.slot}


def jaccard(a: set[int], b: set[int]) -> float:
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def mean_std(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample std (None for fewer than two values)."""
    return float(statistics.fmean(values)), (float(statistics.stdev(values)) if len(values) > 1 else None)


def mode_summary(bacc: dict[int, float], accepted: dict[int, list[int]]) -> dict[str, Any]:
    mean, std = mean_std(list(bacc.values()))
    per_epoch = [float(statistics.fmean(col)) for col in zip(*accepted.values())] if accepted else []
    return {"bacc_mean": mean, "bacc_std": std, "bacc_by_seed": {str(s): v for s, v in bacc.items()},
            "accepted_by_epoch": per_epoch, "accepted_by_seed": {str(s): v for s, v in accepted.items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="a registry name (digits, reuters, twitter, text:<dir>, images:<dir>)")
    p.add_argument("--data-root", help="folder of the dataset's files (default: params data_root or data/raw/<name>)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ablations", nargs="+", default=DEFAULT_ABLATIONS,
                   help="re-deciding ablations (default: M2m-Clean M2m-Rand M2m-No-Reject M2m-No-Gamma)")
    p.add_argument("--json", required=True, help="output JSON")
    p.add_argument("--which", choices=("best_val", "last"), default="best_val")
    p.add_argument("--work-dir", help="scratch folder (default runs/bench/reuse_fidelity/<dataset>)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        for name in args.ablations:
            if not get_method(name).redecides:
                raise M2mError(f"{name} does not re-decide M2m's rows, so it has no reuse/fresh modes; "
                               f"pass some of M2m-Clean, M2m-Rand, M2m-No-Reject, M2m-No-Reject-No-Gamma, "
                               f"M2m-No-Gamma, M2m-Gamma")
        params, data, preset = load_experiment(args.dataset, params_path=args.params, data_root=args.data_root)
        options = fit_options(params)
        m2m = m2m_config(params, args.dataset)
        make_translator(m2m, data.input_range)   # bad m2m parameters fail before any training
        work = Path(args.work_dir or Path("runs/bench/reuse_fidelity") / dataset_slug(args.dataset))
        shutil.rmtree(work, ignore_errors=True)
        layout = Layout(args.dataset, root=work)
        g_base = int((params.get("pretrain_g") or {}).get("seed", 1000))
        epochs = list(range(preset.deferred_epoch, preset.epochs))
        rule_params = {a: (params.get("ablation_params") or {}).get(a) for a in args.ablations}
        bacc: dict[str, dict[str, dict[int, float]]] = {a: {m: {} for m in MODES} for a in args.ablations}
        accepted: dict[str, dict[str, dict[int, list[int]]]] = {a: {m: {} for m in MODES} for a in args.ablations}
        jac: dict[str, dict[int, list[float]]] = {a: {} for a in args.ablations}
        m2m_bacc: dict[int, float] = {}
        m2m_accepted: dict[int, list[int]] = {}
        seconds: dict[str, list[float]] = {}
        print(f"{args.dataset}: {len(data.train)} train, {data.num_classes} classes; deferred epochs "
              f"{epochs[0]}..{epochs[-1]}; ablations {', '.join(args.ablations)}", flush=True)
        for seed in args.seeds:
            models = train_seed_models(data, preset, seed=seed, g_seed=g_base + seed, layout=layout,
                                       warm_losses=("ce",), options=options)
            res = run_method(data, preset, models, "M2m", m2m=m2m, options=options, keep_pools=True)
            m2m_pools = layout.pools("M2m", seed)
            m2m_bacc[seed] = float(res["metrics"][args.which]["test"]["bacc"])
            m2m_accepted[seed] = [len(used_slots(m2m_pools / f"epoch_{e}", data, rule="accepted", rule_params=None,
                                                 seed=seed)) for e in epochs]
            seconds.setdefault("M2m", []).append(res["seconds"])
            print(f"seed {seed} M2m test bACC {m2m_bacc[seed]:.2f} ({res['seconds']:.0f} s)", flush=True)
            for name in args.ablations:
                rule, rp = get_method(name).pool_rule, rule_params[name]
                slots: dict[str, list[set[int]]] = {}
                for mode in MODES:
                    run_name = f"{name}-{mode}"
                    res = run_method(data, preset, models, name, name=run_name, mode=mode, m2m=m2m, options=options,
                                     keep_pools=True, method_params=rp)
                    bacc[name][mode][seed] = float(res["metrics"][args.which]["test"]["bacc"])
                    seconds.setdefault(run_name, []).append(res["seconds"])
                    pools = m2m_pools if mode == "reuse" else layout.pools(run_name, seed)
                    slots[mode] = [used_slots(pools / f"epoch_{e}", data, rule=rule, rule_params=rp, seed=seed)
                                   for e in epochs]
                    accepted[name][mode][seed] = [len(s) for s in slots[mode]]
                    if mode == "fresh":
                        shutil.rmtree(layout.pools(run_name, seed), ignore_errors=True)
                    shutil.rmtree(res["run_dir"], ignore_errors=True)
                    print(f"seed {seed} {name} {mode:5s} test bACC {bacc[name][mode][seed]:.2f} rows used "
                          f"{sum(accepted[name][mode][seed])} ({res['seconds']:.0f} s)", flush=True)
                jac[name][seed] = [jaccard(a, b) for a, b in zip(slots["reuse"], slots["fresh"])]
            shutil.rmtree(m2m_pools, ignore_errors=True)
        m2m_row = mode_summary(m2m_bacc, m2m_accepted)
        out: dict[str, Any] = {"ablations": {}, "m2m": m2m_row}
        for name in args.ablations:
            deltas = [bacc[name]["fresh"][s] - bacc[name]["reuse"][s] for s in args.seeds]
            d_mean, d_std = mean_std(deltas)
            m2m_std = m2m_row["bacc_std"]
            out["ablations"][name] = {
                "reuse": mode_summary(bacc[name]["reuse"], accepted[name]["reuse"]),
                "fresh": mode_summary(bacc[name]["fresh"], accepted[name]["fresh"]),
                "paired_delta_bacc": {"mean": d_mean, "std": d_std, "by_seed": dict(zip(map(str, args.seeds), deltas))},
                "jaccard_by_epoch": [float(statistics.fmean(col)) for col in zip(*jac[name].values())],
                "jaccard_by_seed": {str(s): v for s, v in jac[name].items()},
                "exceeds_2x_m2m_std": None if m2m_std is None else bool(abs(d_mean) > 2 * m2m_std),
            }
        out["meta"] = {
            "dataset": args.dataset, "dataset_fingerprint": data.fingerprint, "seeds": args.seeds,
            "deferred_epochs": epochs, "which": args.which, "preset": preset.to_dict(),
            "m2m": {k: getattr(m2m, k) for k in m2m.__dataclass_fields__},
            "rule_params": rule_params, "train_seconds_mean": {k: statistics.fmean(v) for k, v in seconds.items()},
            "wall_seconds": time.perf_counter() - t0, "date": str(date.today()),
            "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "torch_threads": args.threads,
            "command": " ".join(["python", *[a if " " not in a else repr(a) for a in sys.argv]]),
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1))
        shutil.rmtree(work, ignore_errors=True)
        print(f"\n{'ablation':24s} {'reuse':>14s} {'fresh':>14s} {'fresh-reuse':>14s} {'Jaccard min/last':>17s}")
        for name, row in out["ablations"].items():
            def pm(m, s):
                return f"{m:.2f} ± {s:.2f}" if s is not None else f"{m:.2f}"
            j = row["jaccard_by_epoch"]
            print(f"{name:24s} {pm(row['reuse']['bacc_mean'], row['reuse']['bacc_std']):>14s} "
                  f"{pm(row['fresh']['bacc_mean'], row['fresh']['bacc_std']):>14s} "
                  f"{pm(row['paired_delta_bacc']['mean'], row['paired_delta_bacc']['std']):>14s} "
                  f"{min(j):.3f}/{j[-1]:.3f}")
        print(f"M2m {m2m_row['bacc_mean']:.2f} ± {m2m_row['bacc_std'] or 0:.2f}; wrote {path}")
    except M2mError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
