"""What writing an epoch's pool and reading it back costs, against keeping the rows in memory.

One M2m epoch, timed three ways in the same run, alternating, on the same models and plan:

- ``in_memory``: draw the seeds, translate every attempt (``translate_rows``), keep the accepted
  x* in a dict, train f one epoch on the planned batches with them swapped in;
- ``with_pool``: the same translation through ``generate_pool`` (compact x*, zstd shards,
  per-shard commits, completion marker), the accepted rows taken from the writer as training
  takes them (``keep_accepted``: x* decoded from the stored bytes), then the same epoch of training;
- ``with_pool_read_back``: the same, the accepted rows read back from the pool and decoded
  (``load_swaps``) instead: what an epoch costs when they are not handed over (resumed pools,
  dask workers, other rules).

The ratio with_pool / in_memory is the pool's overhead (goal <= 1.05, issues 9 and 16);
``ratio_read_back`` the same with the read back. g and f are an
MLP trained a few epochs on the data (so some attempts are accepted, as in a real epoch).

The floor (issue 16, ``benchmarks/_floor.py``), timed in the same run on the same epoch's rows:
encode, compress, write, read, decompress and decode them with numpy and zstd alone, no zarr.
JSON: ``floor_s`` (that round trip, median of the repeats), ``floor`` (each stage) and
``ours_over_floor`` = (with_pool - in_memory) / floor_s, what the pool adds to the epoch over what
its bytes cost at least; besides ``ratio``, ``in_memory_s``, ``with_pool_s``, ``size``, ...

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/pool_overhead.py --dataset reuters \\
        --data-root ../shared/datasets/reuters-r52 --threads 2 --json benchmarks/results/pool_overhead.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _floor import STAGES, floor_round_trip  # noqa: E402

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig, draw_slots, generate_pool, make_translator, translate_rows
from m2m_pipeline.pools.reuse import Swap, load_swaps
from m2m_pipeline.jobs.train import pretrain_g, warm_f
from m2m_pipeline.training import Preset, load_checkpoint, model_from_checkpoint
from m2m_pipeline.training.loop import batch_inputs


def trained_models(data, work: Path):
    """(g, f, cfg, batch size) of the benchmark: an MLP (vectors) or the small CNN (images) trained
    4 epochs as g (seed 1000) and as the warm f (seed 0), and the translation parameters."""
    model = "mlp" if data.input_kind == "vector" else "small_cnn"
    preset = Preset(model=model, epochs=4, batch_size=64, warmup_epochs=1, milestones=(3,), deferred_epoch=3,
                    weight_decay=5e-5)
    pretrain_g(data, preset, seed=1000, out_dir=work / "g", progress=False)
    warm_f(data, preset, seed=0, out_dir=work / "f", progress=False)
    g = model_from_checkpoint(load_checkpoint(work / "g" / "last.pt"))
    f0 = model_from_checkpoint(load_checkpoint(work / "f" / "last.pt"))
    cfg = TranslationConfig(step_size=1.0 if data.input_kind == "vector" else 0.1, beta=0.99, lam=0.5, gamma=0.9)
    return g, f0, cfg, preset.batch_size


def train_epoch(model: torch.nn.Module, data, plan, swaps, lr: float = 0.01) -> None:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for b in range(plan.n_batches):
        slots = plan.batch_slots(b)
        if len(slots) < 2:
            continue
        x, y = batch_inputs(data, data.train, plan, slots, swaps)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def pool_size(path: Path, data, exact: dict) -> dict:
    """Bytes per row of x as stored against raw float32, float16 deltas + zstd as the alternative
    measured on the same rows, and the largest per-value error of the decoded x*."""
    from numcodecs import Zstd

    from m2m_pipeline.pools.codec import read_x
    from m2m_pipeline.pools.draws import seed_inputs
    from m2m_pipeline.store import open_pool

    pool = open_pool(path)
    n, d = len(pool), int(np.prod(data.input_shape))
    stored = sum(p.stat().st_size for name in ("x_delta", "x_exp") for p in (path / name).rglob("*")
                 if p.is_file() and p.name != "zarr.json")
    has = exact["seed_index"] >= 0
    x0 = np.zeros_like(exact["x"])
    x0[has] = seed_inputs(data, exact["seed_index"][has], exact["seed_aug"][has]).numpy()
    decoded = read_x(pool, data)
    ok = has & np.isfinite(exact["x"].reshape(n, -1)).all(axis=1)
    delta16 = (exact["x"] - x0).astype(np.float16)
    zstd = Zstd(level=3)
    f16_bytes = sum(len(zstd.encode(np.ascontiguousarray(delta16[i:i + 256]).tobytes())) for i in range(0, n, 256))
    f16_err = np.abs(np.clip(x0 + delta16.astype(np.float32), *(data.input_range or (-np.inf, np.inf))) - exact["x"])
    return {"rows": n, "raw_float32_bytes_per_row": 4.0 * d, "stored_bytes_per_row": stored / n,
            "stored_fraction": stored / (4.0 * d * n), "float16_delta_zstd_fraction": f16_bytes / (4.0 * d * n),
            "max_abs_error": float(np.abs(decoded[ok] - exact["x"][ok]).max()),
            "float16_max_abs_error": float(f16_err[ok].max())}


def epoch_floor(exact: dict, data, repeats: int) -> dict:
    """The floor of the epoch's rows (``exact``: translate_rows' output, exact x*): see _floor.py."""
    from m2m_pipeline.pools.draws import seed_inputs

    has = exact["seed_index"] >= 0
    x0 = np.zeros_like(exact["x"])
    if has.any():
        x0[has] = seed_inputs(data, exact["seed_index"][has], exact["seed_aug"][has]).numpy()
    cols = {k: v for k, v in exact.items() if k != "x"}
    return floor_round_trip(cols, x=exact["x"], x0=x0, input_range=data.input_range, repeats=repeats)


def noise_cost(shape: tuple[int, ...], rows: int = 2048, repeats: int = 3) -> dict:
    """us per row of start noise: one seeded generator per slot (SeedSequence + PCG64, the former
    way) against the counter-based generator per batch of 256 (draws.start_noise_batch)."""
    from m2m_pipeline.pools.draws import start_noise_batch
    from m2m_pipeline.utils import rng_for

    def per_slot(slot: int) -> np.ndarray:
        u = rng_for(0, "noise", 3, slot).uniform(-1.0, 1.0, size=shape)
        return (u * (0.1 / np.linalg.norm(u))).astype(np.float32)

    slots = np.arange(rows)
    best = {"per_slot_generators_us": float("inf"), "counter_based_per_batch_us": float("inf")}
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.stack([per_slot(int(s)) for s in slots])
        best["per_slot_generators_us"] = min(best["per_slot_generators_us"], (time.perf_counter() - t0) / rows * 1e6)
        t0 = time.perf_counter()
        for i in range(0, rows, 256):
            start_noise_batch(shape, 0.1, 0, 3, slots[i:i + 256])
        best["counter_based_per_batch_us"] = min(best["counter_based_per_batch_us"],
                                                 (time.perf_counter() - t0) / rows * 1e6)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="reuters")
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = create_dataset(args.dataset, data_root=args.data_root)
    work = Path(tempfile.mkdtemp(prefix="m2m-pool-overhead-"))
    try:
        g, f0, cfg, batch_size = trained_models(data, work)
        ways = ("in_memory", "with_pool", "with_pool_read_back")
        times: dict[str, list[float]] = {way: [] for way in ways}
        accepted = None
        for rep in range(args.repeats + 1):   # the first round warms caches and is not counted
            for way in ways[rep % 3:] + ways[:rep % 3]:   # each way first, second and last in turn
                f = copy.deepcopy(f0)
                t0 = time.perf_counter()
                plan = make_plan(data.train.y, data.class_counts, seed=0, epoch=3, order="balanced", attempts=True,
                                 augment=data.augment, batch_size=batch_size)
                if way == "in_memory":
                    draws = draw_slots(data, plan, cfg, 0)
                    rows = translate_rows(g, f, data, draws, slice(0, None), make_translator(cfg, data.input_range),
                                          cfg, 0, plan.epoch)
                    swaps = {int(s): Swap(x, int(k)) for s, x, k, a in
                             zip(rows["slot"], rows["x"], rows["target"], rows["accepted"]) if a}
                    exact = rows
                elif way == "with_pool":
                    out = work / f"pool-{rep}"
                    summary = generate_pool(g=g, f=f, data=data, plan=plan, cfg=cfg, seed=0, out=out,
                                            keep_accepted=True)
                    swaps = summary.swaps.as_dict()
                else:
                    out = work / f"pool-back-{rep}"
                    generate_pool(g=g, f=f, data=data, plan=plan, cfg=cfg, seed=0, out=out)
                    plan, swaps = load_swaps(out, data)
                train_epoch(f, data, plan, swaps)
                if rep:
                    times[way].append(time.perf_counter() - t0)
                accepted = len(swaps)
        size = pool_size(work / f"pool-{args.repeats}", data, exact)
        floor = epoch_floor(exact, data, args.repeats)
        noise = noise_cost(data.input_shape)
        in_memory, with_pool = statistics.median(times["in_memory"]), statistics.median(times["with_pool"])
        read_back = statistics.median(times["with_pool_read_back"])
        n_attempts = int(plan.attempt.sum())
        result = {"in_memory_s": in_memory, "with_pool_s": with_pool, "ratio": with_pool / in_memory,
                  "with_pool_read_back_s": read_back, "ratio_read_back": read_back / in_memory,
                  "ours_over_floor_read_back": (read_back - in_memory) / floor["floor_s"],
                  "floor_s": floor["floor_s"], "ours_over_floor": (with_pool - in_memory) / floor["floor_s"],
                  "floor": floor,
                  "dataset": data.name, "attempts": n_attempts, "accepted": accepted, "repeats": args.repeats,
                  "times": times, "size": size, "noise_us_per_row": noise, "threads": args.threads,
                  "load_avg": os.getloadavg(),
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
                  "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        print(f"{data.name}: {n_attempts} attempts, {accepted} accepted; epoch in memory {in_memory:.2f} s, "
              f"with pool {with_pool:.2f} s, ratio {result['ratio']:.3f}; read back instead {read_back:.2f} s, "
              f"ratio {result['ratio_read_back']:.3f} (median of {args.repeats}; load {result['load_avg'][0]:.1f})")
        print(f"x per row: float32 {size['raw_float32_bytes_per_row']:.0f} B, stored (x_delta + x_exp, zstd) "
              f"{size['stored_bytes_per_row']:.1f} B = {100 * size['stored_fraction']:.1f}% (float16 delta + zstd "
              f"would be {100 * size['float16_delta_zstd_fraction']:.1f}%); largest per-value error "
              f"{size['max_abs_error']:.2e} (float16 delta: {size['float16_max_abs_error']:.2e})")
        stages = ", ".join(f"{k[:-2]} {1e3 * floor[k]:.1f}" for k in STAGES)
        print(f"floor (numpy + zstd, no zarr): {1e3 * floor['floor_s']:.1f} ms for the epoch's "
              f"{floor['compressed_bytes'] / 1e6:.2f} MB ({stages} ms); the pool adds "
              f"{with_pool - in_memory:.3f} s = {result['ours_over_floor']:.1f}x the floor")
        print(f"start noise: {noise['per_slot_generators_us']:.1f} us/row with a generator per slot, "
              f"{noise['counter_based_per_batch_us']:.1f} us/row counter-based per batch")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
