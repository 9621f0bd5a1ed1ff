"""Does training on the decoded x* (pools/codec.py) land where training on the exact x* does?

M2m on a dataset (default: the embedded ``digits``, with params.yaml's preset and m2m section),
for each seed twice from the same g and warm f: once as the pipeline runs (every pool stores the
compact x*, training reads the decoded rows), once with the exact float32 x* kept aside at
encoding and handed to training instead. Prints test bACC (best-validation and last epoch) of
both, their per-seed differences, and the largest per-value error of the decoded rows met.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/codec_accuracy.py --seeds 0 1 2 \\
        --json benchmarks/results/codec_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from m2m_pipeline.params import load_params, m2m_config, preset_for
from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.evaluation import evaluate_run
from m2m_pipeline.jobs.dispatch import train_method
from m2m_pipeline.pools import codec, reuse, shard
from m2m_pipeline.jobs.train import pretrain_g, warm_f

MAX_ERROR = [0.0]   # the largest |decoded - exact| met while training read rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    options = (params.get("prepare") or {}).get(args.dataset) or {}
    data = create_dataset(args.dataset, data_root=args.data_root, **options)
    preset, cfg = preset_for(params, args.dataset), m2m_config(params, args.dataset)
    work = Path(tempfile.mkdtemp(prefix="m2m-codec-accuracy-"))
    results: dict[str, list] = {"decoded": [], "exact": []}
    real_read_x = reuse.read_x
    real_encode = shard.encode_rows   # the shard task encodes x* before it commits a shard
    stash: dict[int, np.ndarray] = {}

    def encode_and_keep(rows, data_, store="all"):
        # the exact x* of every slot, before encoding (slots are unique within an epoch)
        for s, x in zip(rows["slot"], rows["x"]):
            stash[int(s)] = x.copy()
        return real_encode(rows, data_, store)

    def read_exact(pool, data_, rows=None):
        decoded = real_read_x(pool, data_, rows)
        slots = pool.array("slot", np.asarray(rows)) if rows is not None else pool.array("slot")
        exact = np.stack([stash[int(s)] for s in slots]) if len(slots) else decoded
        if len(slots):
            MAX_ERROR[0] = max(MAX_ERROR[0], float(np.abs(decoded - exact).max()))
        return exact

    t0 = time.time()
    try:
        for seed in args.seeds:
            pretrain_g(data, preset, seed=int(params["pretrain_g"]["seed"]) + seed, out_dir=work / f"g{seed}",
                       progress=False)
            warm_f(data, preset, seed=seed, out_dir=work / f"warm{seed}", progress=False)
            for way in ("decoded", "exact"):
                stash.clear()
                if way == "exact":
                    shard.encode_rows = encode_and_keep
                    reuse.read_x = read_exact
                run = work / f"{way}{seed}"
                try:
                    train_method(data, preset, method="M2m", seed=seed, out_dir=run, warm_dir=work / f"warm{seed}",
                                 g_path=work / f"g{seed}" / "best.pt", m2m=cfg, pools_dir=run / "pools",
                                 progress=False)
                finally:
                    shard.encode_rows, reuse.read_x = real_encode, real_read_x
                res = evaluate_run(run, data, method="M2m")
                results[way].append({"seed": seed, "best_val_bacc": res["best_val"]["test"]["bacc"],
                                     "last_bacc": res["last"]["test"]["bacc"]})
                last = results[way][-1]
                print(f"seed {seed} {way:7s}: bACC best-val {last['best_val_bacc']:.2f}, last {last['last_bacc']:.2f}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for key in ("best_val_bacc", "last_bacc"):
        d = [a[key] - b[key] for a, b in zip(results["decoded"], results["exact"])]
        summary[key] = {way: (statistics.mean(r[key] for r in results[way]),
                              statistics.stdev(r[key] for r in results[way]) if len(args.seeds) > 1 else 0.0)
                        for way in results} | {"decoded_minus_exact": d}
    out = {"dataset": data.name, "seeds": args.seeds, "runs": results, "summary": summary,
           "max_abs_error_of_decoded_rows_read": MAX_ERROR[0], "delta_bits": codec.DELTA_BITS,
           "minutes": (time.time() - t0) / 60, "load_avg": os.getloadavg(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    for key, s in summary.items():
        print(f"{key}: decoded {s['decoded'][0]:.2f} ± {s['decoded'][1]:.2f}, exact {s['exact'][0]:.2f} ± "
              f"{s['exact'][1]:.2f}, per-seed decoded - exact {s['decoded_minus_exact']}")
    print(f"largest per-value error of the decoded rows training read: {MAX_ERROR[0]:.2e}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
