"""Translation throughput (rows/s) of M2mTranslator for several translation batch sizes.

The baseline is batch size 1 (one seed at a time), measured in the same run. Models are randomly
initialised networks of the paper's architectures (speed does not depend on the weights); inputs
are uniform noise of the dataset's shape.

    python benchmarks/translate_speed.py --out benchmarks/results/translate_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from m2m_pipeline.models import create_model
from m2m_pipeline.translate import M2mTranslator
from m2m_pipeline.utils import default_device, set_torch_threads

CASES = {
    # name: (model, input shape, classes, rows to translate)
    "mlp-reuters": ("mlp", (1000,), 36, 1024),
    "small_cnn-digits": ("small_cnn", (1, 8, 8), 10, 512),
    "resnet32-cifar": ("resnet32", (3, 32, 32), 10, 128),
}


def time_case(model_name, shape, k, rows, batch_sizes, device, repeats=2):
    torch.manual_seed(0)
    kw = dict(input_shape=shape, num_classes=k, mean=[0.0] * (shape[0] if len(shape) == 3 else 1),
              std=[1.0] * (shape[0] if len(shape) == 3 else 1))
    g, f = create_model(model_name, **kw).to(device), create_model(model_name, **kw).to(device)
    counts = list(range(1000, 1000 - 10 * k, -10))
    x0 = torch.rand(rows, *shape)
    target = torch.full((rows,), k - 1)
    seed_class = torch.zeros(rows, dtype=torch.long)
    tr = M2mTranslator(steps=10, step_size=0.1, lam=0.5, gamma=0.9, beta=0.999, input_range=(0.0, 1.0))
    out = {}
    for bs in batch_sizes:
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for s in range(0, rows, bs):
                sl = slice(s, s + bs)
                tr.translate(g, f, x0[sl], target[sl], seed_class[sl], class_counts=counts,
                             noise=torch.zeros_like(x0[sl]), u_beta=torch.zeros(len(x0[sl]), dtype=torch.float64))
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        out[bs] = rows / best
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    set_torch_threads()
    device = default_device()
    results = {"device": str(device), "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
               "torch": torch.__version__, "steps": 10, "rows_per_s": {}}
    print(f"device {device}, {torch.get_num_threads()} threads, T = 10 steps; rows/s (speed-up over batch 1)")
    for name in args.cases:
        model, shape, k, rows = CASES[name]
        r = time_case(model, shape, k, rows, args.batch_sizes, device)
        results["rows_per_s"][name] = r
        base = r[args.batch_sizes[0]]
        print(f"{name:18s} " + "  ".join(f"bs {bs}: {v:8.1f} ({v / base:4.1f}x)" for bs, v in r.items()), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
