"""Choose M2m's beta, lambda, gamma on the validation set and write them into params.yaml.

    python benchmarks/select_params.py --dataset reuters --data-root ../shared/datasets/reuters-r52 \
        --seeds 0 --methods M2m LDAM-M2m --out runs/select/reuters.json

Trains g and the warm checkpoints once per seed, runs every translating method over the paper's
grid beta {0.9, 0.99, 0.999} x lambda {0.01, 0.1, 0.5} x gamma {0.9, 0.99} (Sec. 3.1), scores each
grid point by validation bACC (never the test set; m2m_pipeline/studies/grid.py), writes the best
point into params.yaml under presets.<preset>.m2m (nothing else in the file changes) and every
run's scores to --out. Work files go to --work-dir (default runs/select/<dataset>, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

import torch

from m2m_pipeline.params import fit_options, m2m_config
from m2m_pipeline.datasets import dataset_preset
from m2m_pipeline.datasets import dataset_slug
from m2m_pipeline.layout import Layout
from m2m_pipeline.studies.seeds import load_experiment
from m2m_pipeline.studies.grid import select_m2m_params, write_preset_m2m
from m2m_pipeline.utils import M2mError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="a registry name (reuters, twitter, text:<dir>, ...)")
    p.add_argument("--data-root", help="folder of the dataset's files (default: params data_root or data/raw/<name>)")
    p.add_argument("--params", default="params.yaml", help="params file to read and update")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds of f (g uses pretrain_g.seed + seed)")
    p.add_argument("--methods", nargs="+", default=["M2m", "LDAM-M2m"], help="translating methods to score")
    p.add_argument("--out", required=True, help="JSON record of every grid point's validation scores")
    p.add_argument("--work-dir", help="scratch folder (default runs/select/<dataset>)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the small MLPs run fastest single-threaded, "
                        "and much slower with more threads when other processes share the cores)")
    p.add_argument("--dry-run", action="store_true", help="do not write params.yaml")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        params, data, preset = load_experiment(args.dataset, params_path=args.params, data_root=args.data_root)
        base = m2m_config(params, args.dataset)
        work = Path(args.work_dir or Path("runs/select") / dataset_slug(args.dataset))
        g_seed = int((params.get("pretrain_g") or {}).get("seed", 1000))
        record = select_m2m_params(data, preset, base, layout=Layout(args.dataset, root=work), seeds=tuple(args.seeds),
                                   methods=tuple(args.methods), g_seed=g_seed, options=fit_options(params),
                                   log=lambda msg: print(msg, flush=True))
        key = dataset_preset(args.dataset)
        record.update(preset_name=key, params_file=str(args.params), date=str(date.today()),
                      command=" ".join([Path(sys.executable).name, *sys.argv]),
                      total_wall_seconds=time.perf_counter() - t0, torch_threads=args.threads)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=1))
        chosen = record["chosen"]
        print("\nrank | beta | lambda | gamma | val bACC (mean of best) | " + " | ".join(record["methods"]))
        for i, pt in enumerate(record["points"], 1):
            per = " | ".join(f"{pt['per_method'][m]:.2f}" for m in record["methods"])
            print(f"{i:4d} | {pt['beta']:g} | {pt['lam']:g} | {pt['gamma']:g} | {pt['score']:.2f} | {per}")
        print(f"\nchosen for {args.dataset} (preset {key}): {chosen}; per method: {record['chosen_per_method']}")
        if not args.dry_run:
            write_preset_m2m(args.params, key, chosen,
                             comment=f"beta/lam/gamma chosen on validation by benchmarks/select_params.py "
                                     f"(seeds {' '.join(map(str, args.seeds))})")
            print(f"wrote presets.{key}.m2m in {args.params}")
        print(f"record: {out}; wall time {time.perf_counter() - t0:.0f} s")
    except M2mError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
