"""Reproduction benchmark: every method of the paper's comparison on one dataset, over seeds.

    python benchmarks/reproduce.py --dataset reuters --data-root ../shared/datasets/reuters-r52 \
        --seeds 0 1 2 --out runs/bench/reuters.json --markdown runs/bench/reuters.md

Per seed: g is trained once (seed pretrain_g.seed + seed), f's warm phase once with CE and once with
LDAM (the deferred methods of the seed continue these shared checkpoints), then every method
(default: all twelve, the paper's Table 1/2 rows plus DRW) on the dataset's preset and
params.yaml's m2m section (with the preset's overrides, e.g. the values chosen by
benchmarks/select_params.py). Every run is evaluated on the test set at the last epoch with the
best validation bACC (the authors' rule; --which last for the last epoch).

Writes --out: {method: {"bacc_mean", "bacc_std", "gm_mean", "gm_std", "n_seeds", "major_mean",
"minor_mean", "paper_bacc", ..., "last_bacc_mean", ..., "train_seconds_mean"}}; --markdown: the
table with the paper's column beside ours; <out stem>.runs.json: every run (metrics, per-epoch
history, timings, parameters); per-run metrics JSON under <work-dir>/metrics/<dataset>/ in the
layout `m2m-pipeline report` reads. Work files go to --work-dir (default runs/bench/<dataset>).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict
from datetime import date
from pathlib import Path

import torch
import yaml

from m2m_pipeline.params import fit_options, load_params, m2m_config, prepare_options, preset_for, validate_params
from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.layout import Layout
from m2m_pipeline.studies.seeds import run_method, train_seed_models, warm_losses_for
from m2m_pipeline.pools.generate import make_translator
from m2m_pipeline.datasets import dataset_slug
from m2m_pipeline.reports import ablation_report, paper_key, report_tables, summarize
from m2m_pipeline.training import get_method, list_methods
from m2m_pipeline.training.methods import check_method
from m2m_pipeline.utils import M2mError


PAPER_METHODS = [m for m in list_methods() if not (get_method(m).is_ablation or get_method(m).after_paper)]


def run_order(methods: list[str]) -> list[str]:
    """``methods`` with what they need run first: the M2m run whose pools a reusing ablation
    re-decides, the ERM run that M2m-Ensemble uses as its second classifier."""
    needed = []
    for m in methods:
        spec = get_method(m)
        if spec.reuse:
            needed.append(spec.reuse)
        if spec.generator == "ensemble":
            needed.append("ERM")
    first = [m for m in dict.fromkeys(needed) if m not in methods] + [m for m in methods if m in needed]
    return list(dict.fromkeys(first + methods))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()}-core CPU ({cpu}), {gpu}, torch {torch.__version__}"


def parse_overrides(flag: str, items: list[str]) -> dict:
    out = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise M2mError(f"{flag} takes KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="a registry name (reuters, twitter, text:<dir>, ...)")
    p.add_argument("--data-root", help="folder of the dataset's files (default: params data_root or data/raw/<name>)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--methods", nargs="+", default=PAPER_METHODS,
                   help="default: the paper's twelve; add ablations (M2m-Clean, ...) or later baselines "
                        "(LA, LA-posthoc, BalancedSoftmax, CMO, LA-M2m) by name (`m2m-pipeline methods`)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", required=True, help="summary JSON {method: {bacc_mean, ...}}")
    p.add_argument("--markdown", help="markdown table with the paper's column")
    p.add_argument("--which", choices=("best_val", "last"), default="best_val")
    p.add_argument("--work-dir", help="scratch folder (default runs/bench/<dataset>)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: fastest for the small MLPs, and robust when other "
                        "processes share the cores)")
    p.add_argument("--keep-pools", action="store_true", help="keep M2m's pools (about 20 MB an epoch on Reuters)")
    p.add_argument("--m2m", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override m2m parameters for this run only (e.g. gamma_on=loss seed_scope=dataset); "
                        "for diagnostics: the chosen values live in params.yaml")
    p.add_argument("--fit", nargs="+", default=[], metavar="KEY=VALUE",
                   help="override train_f options for this run only (e.g. weight_reduction=normalized)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        params = load_params(args.params)
        for m in args.methods:
            get_method(m)  # unknown names fail before the data is even read
        methods = run_order(list(dict.fromkeys(args.methods)))
        data = create_dataset(args.dataset, data_root=args.data_root or params.get("data_root"),
                              **prepare_options(params, args.dataset))
        preset = preset_for(params, args.dataset)
        overrides = parse_overrides("--m2m", args.m2m)
        fit_overrides = parse_overrides("--fit", args.fit)
        if fit_overrides:
            params = validate_params({**params, "train_f": {**(params.get("train_f") or {}), **fit_overrides}}, "--fit")
        options = fit_options(params)
        m2m = m2m_config(params, args.dataset, **overrides)
        make_translator(m2m, data.input_range)  # bad m2m parameters fail here
        for m in methods:  # every bad-input error before any training
            check_method(m, preset, class_counts=data.class_counts, input_shape=data.input_shape, options=options,
                         input_kind=data.input_kind)
        slug = dataset_slug(args.dataset)
        work = Path(args.work_dir or Path("runs/bench") / slug)
        layout = Layout(args.dataset, root=work)   # the DAG's folders under the work folder
        metrics_dir = layout.metrics_dir
        if metrics_dir.exists():
            shutil.rmtree(metrics_dir)  # a stale run of another configuration must not mix in
        metrics_dir.mkdir(parents=True)
        g_base = int((params.get("pretrain_g") or {}).get("seed", 1000))
        need_g = any(get_method(m).translate and get_method(m).generator != "self" for m in methods)
        print(f"{args.dataset}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
              f"{data.num_classes} classes, N_1/N_K = {data.class_counts.max()}/{data.class_counts.min()}; "
              f"m2m {asdict(m2m)}", flush=True)
        runs, setup = [], {}
        for seed in args.seeds:
            models = train_seed_models(data, preset, seed=seed, g_seed=g_base + seed, layout=layout,
                                       warm_losses=warm_losses_for(methods), need_g=need_g, options=options)
            setup[seed] = models.seconds
            print(f"seed {seed}: " + ", ".join(f"{k} {v:.1f} s" for k, v in models.seconds.items()), flush=True)
            reused = {get_method(m).reuse for m in methods} - {None}
            for m in methods:
                res = run_method(data, preset, models, m, m2m=m2m, options=options,
                                 keep_pools=args.keep_pools or m in reused,
                                 method_params=(params.get("ablation_params") or {}).get(m))
                layout.metrics(m, seed).write_text(json.dumps(res["metrics"], indent=1))
                t = res["metrics"][args.which]["test"]
                print(f"seed {seed} {m:9s} test bACC {t['bacc']:5.1f} GM {t['gm']:5.1f} "
                      f"(epoch {res['metrics'][args.which]['epoch']}, {res['seconds']:.1f} s)", flush=True)
                runs.append({"method": m, "seed": seed, "seconds": res["seconds"], "metrics": res["metrics"],
                             "history": res["history"]})
        grouped: dict[str, list] = {}
        for r in runs:
            grouped.setdefault(r["method"], []).append(r["metrics"])
        rho = prepare_options(params, args.dataset).get("rho")
        summary = summarize(grouped, dataset=args.dataset, rho=rho, which=args.which)
        last = summarize(grouped, dataset=args.dataset, rho=rho, which="last")
        val = summarize(grouped, dataset=args.dataset, rho=rho, which=args.which, split="val")
        for m, row in summary.items():
            for k in ("bacc", "gm", "major", "minor"):
                row[f"last_{k}_mean"], row[f"last_{k}_std"] = last[m][f"{k}_mean"], last[m][f"{k}_std"]
            row["val_bacc_mean"], row["val_bacc_std"] = val[m]["bacc_mean"], val[m]["bacc_std"]
            secs = [r["seconds"] for r in runs if r["method"] == m]
            row["train_seconds_mean"] = sum(secs) / len(secs)
        wall = time.perf_counter() - t0
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=1))
        command = " ".join(["python", *[a if " " not in a else repr(a) for a in sys.argv]])
        meta = {"dataset": args.dataset, "dataset_fingerprint": data.fingerprint, "paper_column": paper_key(args.dataset, rho),
                "seeds": args.seeds, "methods": methods, "which": args.which, "preset": preset.to_dict(),
                "m2m": asdict(m2m), "fit_options": asdict(options), "g_seed_base": g_base, "setup_seconds": setup,
                "m2m_overrides": overrides, "fit_overrides": fit_overrides, "wall_seconds": wall, "date": str(date.today()), "machine": machine(), "torch_threads": args.threads,
                "command": command}
        out.with_name(out.stem + ".runs.json").write_text(json.dumps({"meta": meta, "runs": runs}, indent=1))
        table, _ = report_tables(grouped, dataset=args.dataset, rho=rho, which=args.which)
        table_last, _ = report_tables(grouped, dataset=args.dataset, rho=rho, which="last")
        md = "\n".join([
            f"# Reproduction: {args.dataset}", "",
            f"- command: `{command}`",
            f"- machine: {meta['machine']}; torch threads: {args.threads}",
            f"- date: {meta['date']}; wall time: {wall:.0f} s for {len(args.seeds)} seed(s) x {len(methods)} method(s)",
            f"- preset: {json.dumps(preset.to_dict())}",
            f"- m2m: {json.dumps(asdict(m2m))}" + (f" (overrides: {json.dumps(overrides)})" if overrides else ""),
            f"- train_f options: {json.dumps(asdict(options))}",
            "", table, "", "At the last epoch instead:", "", table_last])
        if any(get_method(m).is_ablation for m in methods) and "M2m" in methods:
            md += "\n\n" + ablation_report(grouped, dataset=args.dataset, rho=rho, which=args.which)
            md += "\nAt the last epoch instead:\n\n" + ablation_report(grouped, dataset=args.dataset, rho=rho,
                                                                         which="last")
        if args.markdown:
            Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
            Path(args.markdown).write_text(md)
        print("\n" + md)
        print(f"\nwall time: {wall:.1f} s; summary {out}")
    except M2mError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
