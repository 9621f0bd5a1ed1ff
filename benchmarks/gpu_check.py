"""The GPU path's driver, behind ``benchmarks/gpu_check.sh`` and ``benchmarks/cifar_lt_gpu.sh``.

``check``: prepare CIFAR-10-LT (rho = 100), time g, the warm f and a few deferred epochs each of
ERM, DRS and M2m at full resolution and batch (a short schedule: ``--warm-epochs`` of warm-up,
``--deferred-epochs`` after it), then translation speed of the reference and the library on the
device, and whether bf16 autocast keeps the accept decisions of fp32; one JSON.

``full``: the full 200-epoch runs of one seed (ERM, DRS, M2m, then LDAM-DRW and LDAM-M2m) in
``--runs``; every job resumes from the run folder's last checkpoint, so a run cut by the device's
10-minute limit goes on in the next call (the shell script carries the folder back and forth).

``--dry-run`` (both modes): the same code on the CPU, on a tiny generated ImageFolder in the
CIFAR layout (10 classes, 32x32), a 2-epoch schedule and a few translated rows; CI runs it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tarfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import translate_speed  # noqa: E402

from m2m_pipeline.params import fit_options, load_params, m2m_config, preset_for  # noqa: E402
from m2m_pipeline.jobs.prepare import prepare  # noqa: E402
from m2m_pipeline.jobs.evaluate import run_evaluate  # noqa: E402
from m2m_pipeline.jobs.m2m import train_m2m  # noqa: E402
from m2m_pipeline.jobs.train import pretrain_g, train_f, warm_f  # noqa: E402
from m2m_pipeline.training.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from m2m_pipeline.translate import M2mTranslator  # noqa: E402
from m2m_pipeline.utils import M2mError  # noqa: E402

DATASET = "cifar10-lt"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def timed(results: dict, name: str, fn: Callable[[], Any]) -> Any:
    t0 = time.perf_counter()
    out = fn()
    results[name] = round(time.perf_counter() - t0, 3)
    log(f"{name}: {results[name]:.1f} s")
    return out


def make_tiny_cifar(root: Path, per_class: int = 12, test_per_class: int = 4) -> Path:
    """A CIFAR-layout ImageFolder of random 32x32 PNGs (the dry run's stand-in for the archive)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", per_class), ("test", test_per_class)):
        for k, name in enumerate(CIFAR_CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                # a class-dependent mean colour, so the tiny nets learn something
                pixels = np.clip(rng.normal(20 * k + 30, 40, size=(32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.png")
    return root


def find_cifar_root(raw: Path, archive: Path | None) -> Path:
    """``raw/cifar10`` (the archive's layout), unpacked from ``archive`` when missing."""
    root = raw / "cifar10"
    if (root / "train").is_dir():
        return root
    if archive is None or not archive.is_file():
        raise M2mError(f"no CIFAR-10 ImageFolder at {root} and no archive to unpack "
                       f"(copy ../shared/datasets/cifar10-jpg/cifar10-jpg.tar.gz into the carry folder)")
    raw.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(raw, filter="data")
    if not (root / "train").is_dir():
        raise M2mError(f"{archive} did not unpack to {root}/train; expected cifar10/{{train,test}}/<class>/*.jpg")
    return root


def setting(args) -> dict[str, Any]:
    params = load_params(args.params)
    preset = preset_for(params, DATASET)
    cfg = m2m_config(params, DATASET)
    options = fit_options(params)
    device = torch.device("cpu" if args.dry_run else "cuda")
    if not args.dry_run and not torch.cuda.is_available():
        raise M2mError("no CUDA device: run with --dry-run on a CPU machine")
    return dict(params=params, preset=preset, cfg=cfg, options=options, device=device)


def prepared_data(args, results: dict, work: Path):
    raw = work / "raw"
    if args.dry_run:
        cifar_root = make_tiny_cifar(raw / "cifar10")
        options = {"rho": 6.0}
    else:
        cifar_root = find_cifar_root(raw, args.archive)
        options = {"rho": 100.0}
    out = work / "prepared" / DATASET
    data, _ = timed(results, "prepare_s", lambda: prepare(DATASET, out, data_root=cifar_root, options=options))
    results["train_counts"] = [int(c) for c in data.class_counts]
    return data


def short_schedule(preset, warm_epochs: int, deferred_epochs: int):
    epochs = warm_epochs + deferred_epochs
    return dataclasses.replace(preset, epochs=epochs, deferred_epoch=warm_epochs,
                               warmup_epochs=min(preset.warmup_epochs, 1),
                               milestones=tuple(sorted({m for m in (warm_epochs, epochs - 1) if 0 < m < epochs})))


def translation_checks(args, results: dict, data, g_path: Path, f_path: Path, device: torch.device) -> None:
    """Translations/s of the reference and the library on the device (random weights, as
    translate_speed.py), and the accept decisions of the trained g and f under bf16 autocast."""
    rows = 8 if args.dry_run else 4096
    for bs in ((8,) if args.dry_run else (128, 1024)):
        out = Path(args.out) / f"translate_speed_bs{bs}.json"
        argv = ["--model", "resnet32", "--device", device.type, "--threads", str(args.threads),
                "--rows", str(rows), "--batch-size", str(bs), "--reference-batch", str(min(bs, 128)),
                "--repeats", "1" if args.dry_run else "3", "--json", str(out)]
        if args.dry_run:
            argv += ["--steps", "2", "--matmul-seconds", "0.2"]
        else:
            argv += ["--techniques"] + (["--compile"] if args.compile else [])
        results[f"translate_bs{bs}"] = timed(results, f"translate_speed_bs{bs}_s", lambda: translate_speed.main(argv))

    g = model_from_checkpoint(load_checkpoint(g_path, data=data), device).eval()
    f = model_from_checkpoint(load_checkpoint(f_path, data=data), device).eval()
    n = 8 if args.dry_run else 2048
    rng = np.random.default_rng(0)
    counts = data.class_counts
    k = len(counts)
    order = np.argsort(-counts)
    big, small = order[: k // 2], order[k // 2:]
    target = torch.from_numpy(rng.choice(small, n)).long()
    seed_class = torch.from_numpy(rng.choice(big, n)).long()
    pick = np.array([rng.choice(np.flatnonzero(data.train.y == c)) for c in seed_class.numpy()])
    x0 = data.to_float(data.train.x[pick])
    noise = torch.zeros_like(x0)
    u_beta = torch.from_numpy(rng.random(n))
    translator = M2mTranslator(steps=2 if args.dry_run else 10, step_size=0.1, lam=0.5, gamma=0.9, beta=0.999)
    outcome = {}
    for name, ctx in (("fp32", torch.autocast(device.type, enabled=False)),
                      ("bf16", torch.autocast(device.type, dtype=torch.bfloat16))):
        t0 = time.perf_counter()
        with ctx:
            res = translator.translate(g, f, x0, target, seed_class, class_counts=counts, noise=noise, u_beta=u_beta)
        if device.type == "cuda":
            torch.cuda.synchronize()
        outcome[name] = (res, n / (time.perf_counter() - t0))
    fp32, bf16 = outcome["fp32"][0], outcome["bf16"][0]
    results["bf16"] = {
        "rows": n, "fp32_rows_per_s": outcome["fp32"][1], "bf16_rows_per_s": outcome["bf16"][1],
        "decision_agreement": float((fp32.accepted == bf16.accepted).float().mean()),
        "accept_rate_fp32": float(fp32.accepted.float().mean()), "accept_rate_bf16": float(bf16.accepted.float().mean()),
        "max_abs_x_diff": float((fp32.x - bf16.x).abs().max()),
    }
    log(f"bf16 autocast: decisions agree on {results['bf16']['decision_agreement']:.3f} of {n} rows")


def run_check(args) -> dict[str, Any]:
    s = setting(args)
    work = Path(args.work)
    results: dict[str, Any] = {"mode": "check", "dry_run": args.dry_run, "device": str(s["device"]),
                               "gpu": torch.cuda.get_device_name(0) if s["device"].type == "cuda" else None,
                               "torch": torch.__version__, "python": platform.python_version()}
    data = prepared_data(args, results, work)
    preset = short_schedule(s["preset"], args.warm_epochs, args.deferred_epochs)
    if args.dry_run:
        preset = dataclasses.replace(preset, batch_size=16, eval_batch_size=64)
    results["schedule"] = {"epochs": preset.epochs, "deferred_epoch": preset.deferred_epoch,
                           "batch_size": preset.batch_size, "model": preset.model}
    runs = work / "runs"
    dev, opts = s["device"], s["options"]
    timed(results, "g_s", lambda: pretrain_g(data, preset, seed=1000, out_dir=runs / "g", device=dev, progress=False))
    timed(results, "warm_s", lambda: warm_f(data, preset, seed=0, out_dir=runs / "warm", device=dev, progress=False))
    for method in ("ERM", "DRS"):
        timed(results, f"{method}_s", lambda: train_f(data, preset, method=method, seed=0, out_dir=runs / method,
                                                      warm_dir=runs / "warm", options=opts, device=dev,
                                                      progress=False))
    cfg = s["cfg"]
    if args.dry_run:
        cfg = dataclasses.replace(cfg, steps=2)
    timed(results, "M2m_s", lambda: train_m2m(data, preset, method="M2m", seed=0, out_dir=runs / "M2m",
                                              pools_dir=work / "pools" / "M2m", m2m=cfg, g_path=runs / "g" / "best.pt",
                                              warm_dir=runs / "warm", options=opts, device=dev, progress=False))
    d = args.deferred_epochs
    # ERM, DRS and M2m continue the warm checkpoint (ERM's plan is a pure function of (seed, epoch)),
    # so each trained only the deferred epochs here
    per_epoch = {"g": results["g_s"] / preset.epochs, "warm": results["warm_s"] / preset.deferred_epoch,
                 **{m: results[f"{m}_s"] / d for m in ("ERM", "DRS", "M2m")}}
    results["per_epoch_s"] = per_epoch
    full = s["preset"]
    tail = full.epochs - full.deferred_epoch
    results["projected_full_run_s"] = {
        "g": per_epoch["g"] * full.epochs,
        **{m: per_epoch["warm"] * full.deferred_epoch + per_epoch[m] * tail for m in ("ERM", "DRS")},
        "M2m (g given)": per_epoch["warm"] * full.deferred_epoch + per_epoch["M2m"] * tail,
    }
    translation_checks(args, results, data, runs / "g" / "best.pt", runs / "M2m" / "last.pt", dev)
    return results


FULL_JOBS = ("g", "warm", "ERM", "DRS", "M2m", "warm-ldam", "LDAM-DRW", "LDAM-M2m")


def run_full(args) -> dict[str, Any]:
    """Every job of one seed to the end of the schedule, each resuming its run folder."""
    s = setting(args)
    work, runs = Path(args.work), Path(args.runs) / f"seed{args.seed}"
    results: dict[str, Any] = {"mode": "full", "dry_run": args.dry_run, "seed": args.seed, "jobs": {}}
    data = prepared_data(args, results, work)
    preset = s["preset"]
    if args.dry_run:
        preset = dataclasses.replace(short_schedule(preset, 1, 1), batch_size=16, eval_batch_size=64)
    dev, opts, cfg = s["device"], s["options"], s["cfg"]
    if args.dry_run:
        cfg = dataclasses.replace(cfg, steps=2)
    prepared = work / "prepared" / DATASET
    g_best = runs / "g" / "best.pt"
    jobs = {
        "g": lambda: pretrain_g(data, preset, seed=1000 + args.seed, out_dir=runs / "g", device=dev, progress=False),
        "warm": lambda: warm_f(data, preset, seed=args.seed, out_dir=runs / "warm", device=dev, progress=False),
        "ERM": lambda: train_f(data, preset, method="ERM", seed=args.seed, out_dir=runs / "ERM",
                               warm_dir=runs / "warm", options=opts, device=dev, progress=False),
        "DRS": lambda: train_f(data, preset, method="DRS", seed=args.seed, out_dir=runs / "DRS",
                               warm_dir=runs / "warm", options=opts, device=dev, progress=False),
        "M2m": lambda: train_m2m(data, preset, method="M2m", seed=args.seed, out_dir=runs / "M2m",
                                 pools_dir=work / "pools" / "M2m", m2m=cfg, g_path=g_best,
                                 warm_dir=runs / "warm", options=opts, device=dev, progress=False),
        "warm-ldam": lambda: warm_f(data, preset, seed=args.seed, out_dir=runs / "warm-ldam", loss="ldam",
                                    device=dev, progress=False),
        "LDAM-DRW": lambda: train_f(data, preset, method="LDAM-DRW", seed=args.seed, out_dir=runs / "LDAM-DRW",
                                    warm_dir=runs / "warm-ldam", options=opts, device=dev, progress=False),
        "LDAM-M2m": lambda: train_m2m(data, preset, method="LDAM-M2m", seed=args.seed, out_dir=runs / "LDAM-M2m",
                                      pools_dir=work / "pools" / "LDAM-M2m", m2m=cfg, g_path=g_best,
                                      warm_dir=runs / "warm-ldam", options=opts, device=dev, progress=False),
    }
    for name in args.jobs:
        if (runs / name / "metrics.json").is_file():
            results["jobs"][name] = {"done_before": True}
            continue
        t0 = time.perf_counter()
        log(f"{name}: start (resumes from {runs / name / 'last.pt'} when present)")
        jobs[name]()
        record: dict[str, Any] = {"seconds": round(time.perf_counter() - t0, 1)}
        if name not in ("g", "warm", "warm-ldam"):
            metrics = run_evaluate(prepared, runs / name, method=name, out=runs / name / "metrics.json", seed=args.seed)
            record["metrics"] = {k: v for k, v in metrics.items() if not isinstance(v, (list, dict))} | {
                key: metrics[key] for key in ("best_val", "last") if key in metrics}
        else:
            (runs / name / "metrics.json").write_text(json.dumps({"finished": True}))
        results["jobs"][name] = record
        log(f"{name}: done in {record['seconds']} s")
        shutil.rmtree(work / "pools" / name, ignore_errors=True)   # pools stay on the device
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["check", "full"])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny generated data, 2-epoch schedule")
    ap.add_argument("--out", required=True, help="folder for the JSON results")
    ap.add_argument("--work", required=True, help="scratch folder (unpacked data, prepared data, pools)")
    ap.add_argument("--archive", type=Path, help="cifar10-jpg.tar.gz (the carried copy)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warm-epochs", type=int, default=3)
    ap.add_argument("--deferred-epochs", type=int, default=2)
    ap.add_argument("--runs", default="carry/runs", help="full mode: run folders (carried between calls)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compile", action="store_true", help="check: also time torch.compile'd translation steps")
    ap.add_argument("--jobs", nargs="+", default=list(FULL_JOBS), choices=list(FULL_JOBS))
    args = ap.parse_args(argv)
    if args.warm_epochs < 1 or args.deferred_epochs < 1:
        print("error: --warm-epochs and --deferred-epochs must be >= 1", file=sys.stderr)
        raise SystemExit(2)
    if args.dry_run:
        args.warm_epochs, args.deferred_epochs = 1, 1
    torch.set_num_threads(args.threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        results = run_check(args) if args.mode == "check" else run_full(args)
    except M2mError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2)
    results["total_s"] = round(time.perf_counter() - t0, 1)
    name = "gpu_check.json" if args.mode == "check" else f"cifar_lt_gpu_seed{args.seed}.json"
    (Path(args.out) / name).write_text(json.dumps(results, indent=1, default=float))
    log(f"wrote {Path(args.out) / name} ({results['total_s']} s)")
    return results


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
