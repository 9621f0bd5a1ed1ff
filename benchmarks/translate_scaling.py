"""Translation throughput of one pool on 1 and on 2 dask workers (pools/distributed.py).

The same pool (same plan, draws, models and shard size) is translated by a local dask cluster of
1 worker process (torch on ``cores`` threads) and of 2 worker processes (``cores // 2`` threads
each), and, as the baseline measured in the same run, in this process on ``cores`` threads
without dask. Cluster start-up and the first load of g and f on the workers are outside the
timing (a warm-up pool); writing the shards is inside it. The pools of 1 and 2 workers are
checked to be identical. Cases: ResNet-32 on CIFAR-shaped images (3x32x32, 10 classes, random
pixels and weights: speed does not depend on them) and the MLP on Reuters (prepared from
``--data-root``, skipped when missing).

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/translate_scaling.py \\
        --data-root ../shared/datasets/reuters-r52 --threads 2 --json benchmarks/results/translate_scaling.json

The load average (``os.getloadavg``) is recorded before and after each case: figures measured
on a busy machine understate the speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from m2m_pipeline.datasets import PreparedData, Split, create_dataset
from m2m_pipeline.models import create_model
from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig, generate_pool
from m2m_pipeline.pools.backends import create_backend
from m2m_pipeline.store import POOL_ROW_ARRAYS, open_pool


def cifar_shaped(n_train: int, seed: int = 0) -> PreparedData:
    """Random 3x32x32 pixels with CIFAR-LT-like class sizes (ratio 100) and CIFAR's augmentation."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(1, (n_train * 0.35 * 0.6 ** np.arange(10)).astype(int))
    y = np.repeat(np.arange(10), sizes)
    x = rng.integers(0, 256, size=(len(y), 3, 32, 32), dtype=np.uint8)
    small = Split(x[:20], y[:20])
    return PreparedData(name="cifar-shaped", class_names=[str(k) for k in range(10)], train=Split(x, y), val=small,
                        test=small, input_kind="image", input_range=(0.0, 1.0), mean=[0.5] * 3, std=[0.25] * 3,
                        augment={"crop_pad": 4, "flip": True})


def model_config(data: PreparedData, model: str) -> dict:
    return {"model": model, "model_args": {}, "norm_last": False, "input_shape": list(data.input_shape),
            "num_classes": data.num_classes, "mean": list(data.mean), "std": list(data.std)}


def build(config: dict, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(config["model"], input_shape=tuple(config["input_shape"]), num_classes=config["num_classes"],
                        mean=config["mean"], std=config["std"]).eval()


def run_case(name: str, data: PreparedData, model: str, cfg: TranslationConfig, rows: int, threads: int,
             workdir: Path) -> dict:
    config = model_config(data, model)
    g, f = build(config, 1), build(config, 2)
    plan = make_plan(data.train.y, data.class_counts, seed=0, epoch=0, order="balanced", attempts=True,
                     augment=data.augment, batch_size=128)
    # keep the first ``rows`` attempt slots: the same pool for every setting
    keep = np.flatnonzero(plan.attempt)[rows:]
    plan.attempt[keep] = False
    n_attempts = int(plan.attempt.sum())
    common = dict(g=g, f=f, data=data, plan=plan, cfg=cfg, seed=0, model_configs=(config, config))
    out: dict = {"case": name, "model": model, "rows": n_attempts, "rows_per_shard": cfg.rows_per_shard,
                 "batch_size": cfg.batch_size, "load_before": os.getloadavg()}

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    generate_pool(out=workdir / f"{name}-here", **common)
    out["here_s"] = time.perf_counter() - t0
    for n_workers in (1, 2):
        with create_backend(workers=n_workers) as backend:   # one local cluster for both pools
            # warm-up: every worker loads g and f (cached by weights hash for the timed pool)
            warm = replace(cfg, rows_per_shard=8, batch_size=8)
            generate_pool(out=workdir / f"{name}-warm{n_workers}", backend=backend,
                          **{**common, "plan": _first_rows(plan, 8 * n_workers), "cfg": warm})
            t0 = time.perf_counter()
            generate_pool(out=workdir / f"{name}-w{n_workers}", backend=backend, **common)
            out[f"workers{n_workers}_s"] = time.perf_counter() - t0
            out[f"workers{n_workers}_torch_threads"] = backend.torch_threads
    a, b = open_pool(workdir / f"{name}-w1").rows(), open_pool(workdir / f"{name}-w2").rows()
    out["identical_1_vs_2"] = all(np.array_equal(a[k], b[k], equal_nan=True) for k in POOL_ROW_ARRAYS)
    out["load_after"] = os.getloadavg()
    for key in ("here", "workers1", "workers2"):
        out[f"{key}_rows_per_s"] = n_attempts / out[f"{key}_s"]
    out["speedup_2_vs_1"] = out["workers1_s"] / out["workers2_s"]
    return out


def _first_rows(plan, n):
    """A copy of ``plan`` whose attempts are its first ``n`` attempt slots (the warm-up pool)."""
    attempt = plan.attempt.copy()
    attempt[np.flatnonzero(attempt)[n:]] = False
    return replace(plan, attempt=attempt)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=None, help="Reuters R52 folder (the case is skipped without it)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores to use (1 worker gets all)")
    ap.add_argument("--resnet-rows", type=int, default=128)
    ap.add_argument("--reuters-rows", type=int, default=4096)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU" if not torch.cuda.is_available()
               else torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "threads": args.threads, "cases": []}
    workdir = Path(tempfile.mkdtemp(prefix="m2m-scaling-"))
    try:
        cases = [("resnet32-cifar", cifar_shaped(5000), "resnet32",
                  TranslationConfig(batch_size=32, rows_per_shard=32), args.resnet_rows)]
        if args.data_root is not None and Path(args.data_root).exists():
            reuters = create_dataset("reuters", data_root=args.data_root)
            cases.append(("mlp-reuters", reuters, "mlp", TranslationConfig(step_size=1.0, batch_size=256,
                                                                             rows_per_shard=512), args.reuters_rows))
        for case in cases:
            r = run_case(*case, threads=args.threads, workdir=workdir)
            results["cases"].append(r)
            print(f"{r['case']:16s} {r['rows']} rows: in-process {r['here_rows_per_s']:.1f}/s, 1 worker "
                  f"{r['workers1_rows_per_s']:.1f}/s, 2 workers {r['workers2_rows_per_s']:.1f}/s, speed-up "
                  f"{r['speedup_2_vs_1']:.2f}x, identical {r['identical_1_vs_2']}, load {r['load_before'][0]:.1f}"
                  f"->{r['load_after'][0]:.1f}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
