"""Translation throughput of the library against the plain Sec. 2.3 restatement, and against the
machine's own matmul throughput, measured in one run.

    python benchmarks/translate_speed.py --model resnet32 --threads 1 --json runs/speed-resnet32.json
    python benchmarks/translate_speed.py --model mlp-reuters --device cpu --threads 2 --json OUT

- The reference (``benchmarks/reference_translate.py``) translates one mini-batch at a time (the
  release's training batch: 128 for ResNet-32, 64 for the Reuters MLP); the library
  (``M2mTranslator.translate``) translates the same rows at ``--batch-size``. Same random
  weights, same rows, same draws; the two alternate over ``--repeats`` rounds and the best round
  of each counts (the machine is shared: the best is the least disturbed).
- Roofline: fp32 matmul throughput (2048 x 2048, same device and threads) measured in the same run.
  A translation costs (4T + 1) forward passes of one model (per step a forward of g and of f and a
  backward of each, a backward to the input costing about one forward; then g once at x*), with
  the forward FLOPs of one row from ``torch.utils.flop_counter``. fraction = translations/s *
  (4T + 1) * FLOPs / matmul FLOP/s.
- Step bound (issue 16), measured in the same run with the same threads: one forward and backward
  to the input of g and of f (the networks the library runs: ``inference_copy``, BN folded,
  parameters frozen, eval mode) at the library's batch, best of the repeats; a translation cannot
  be faster than T of those per batch. ``step_bound_fraction`` = ours_per_s / (batch / (T *
  (t_g + t_f))): 1 would mean the library spends nothing beyond the gradient passes (goal >= 0.9).
- ``--techniques`` also times the gradient steps alone on each speed technique (plain, frozen
  parameters, BN folded, channels-last, torch.compile with ``--compile``) at the library's batch.

JSON keys: reference_per_s, ours_per_s, ratio, roofline_fraction_ours, roofline_fraction_reference,
step_bound_fraction, step_bound_per_s, step_pass_s (g, f), matmul_gflops, forward_flops, and the settings.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_translate import BatchDraws, translate_batch  # noqa: E402

from m2m_pipeline.models import create_model  # noqa: E402
from m2m_pipeline.models.folding import fold_batchnorm, foldable, frozen, inference_copy  # noqa: E402
from m2m_pipeline.translate import M2mTranslator, translation_steps  # noqa: E402

MODELS = {
    # name: (registry model, input shape, classes, model args, reference batch, library batch, rows, step size)
    "resnet32": ("resnet32", (3, 32, 32), 10, {}, 128, 128, 256, 0.1),
    "mlp-reuters": ("mlp", (1000,), 36, {"hidden": 256}, 64, 1024, 8192, 1.0),
}
STEPS = 10


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_flops_per_s(device: torch.device, n: int = 2048, seconds: float = 2.0) -> float:
    """Best-of fp32 n x n matmul throughput (2 n^3 FLOPs a product)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    for _ in range(2):
        torch.mm(a, b, out=out)
    sync(device)
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b, out=out)
        sync(device)
        best = min(best, (time.perf_counter() - t0) / 4)
    return 2 * n ** 3 / best


def forward_flops(model: torch.nn.Module, shape: tuple[int, ...], device: torch.device) -> float:
    """FLOPs of one row's forward pass (counted on a batch of 8, divided by 8)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.rand(8, *shape, device=device))
    return counter.get_total_flops() / 8


def build(name: str, device: torch.device, seed: int = 0):
    model, shape, k, args, *_ = MODELS[name]
    nch = shape[0] if len(shape) == 3 else 1
    kw = dict(input_shape=shape, num_classes=k, mean=[0.5] * nch, std=[0.25] * nch, **args)
    torch.manual_seed(seed)
    g = create_model(model, **kw).to(device).eval()
    f = create_model(model, **kw).to(device).eval()
    return g, f, shape, k


def make_rows(n: int, shape: tuple[int, ...], k: int, seed: int = 0):
    """Rows to translate: seeds of the larger half of the classes towards the smaller half."""
    gen = torch.Generator().manual_seed(seed)
    counts = torch.tensor([int(1000 * 0.7 ** i) + 1 for i in range(k)])
    x = torch.rand(n, *shape, generator=gen)
    seed_class = torch.randint(0, k // 2, (n,), generator=gen)
    target = torch.randint(k // 2, k, (n,), generator=gen)
    noise = torch.rand(n, *shape, generator=gen) * 0.01
    u_beta = torch.rand(n, generator=gen, dtype=torch.float64)
    return counts, x, seed_class, target, noise, u_beta


def run_reference(g, f, rows, batch: int, step_size: float, device) -> None:
    counts, x, seed_class, target, noise, u_beta = rows
    for s in range(0, len(x), batch):
        sl = slice(s, s + batch)
        n = len(x[sl])
        # the batch holds seeds and targets side by side: items [0, n) seed items [n, 2n)
        xb = torch.cat([x[sl], torch.zeros_like(x[sl])]).to(device)
        yb = torch.cat([seed_class[sl], target[sl]])
        draws = BatchDraws(rows=torch.arange(n, 2 * n), seed_rows=torch.arange(n), noise=noise[sl], u_beta=u_beta[sl])
        translate_batch(g, f, xb, yb, counts, draws, steps=STEPS, step_size=step_size, lam=0.5, gamma=0.9,
                        beta=0.999)
    sync(device)


def run_ours(g, f, rows, batch: int, step_size: float, device) -> None:
    counts, x, seed_class, target, noise, u_beta = rows
    translator = M2mTranslator(steps=STEPS, step_size=step_size, lam=0.5, gamma=0.9, beta=0.999)
    for s in range(0, len(x), batch):
        sl = slice(s, s + batch)
        translator.translate(g, f, x[sl], target[sl], seed_class[sl], class_counts=counts.tolist(),
                             noise=noise[sl], u_beta=u_beta[sl])
    sync(device)


def step_pass_seconds(g, f, rows, batch: int, device, repeats: int, passes: int = 1) -> dict[str, float]:
    """Seconds of one forward and backward to the input of g and of f on ``batch`` rows (the
    networks the library runs: BN folded, parameters frozen, eval mode): best round of
    ``repeats``, each round ``passes`` passes of each network, alternating."""
    _, x, seed_class, target, noise, _ = rows
    xb = (x[:batch] + noise[:batch]).clamp(0, 1).to(device)
    tgt, src = target[:batch].to(device), seed_class[:batch].to(device)[:, None]
    g_fast, f_fast = inference_copy(g.eval()), inference_copy(f.eval())

    def one(model, loss_of) -> None:
        for _ in range(passes):
            xin = xb.detach().clone().requires_grad_(True)
            torch.autograd.grad(loss_of(model(xin)), xin)
        sync(device)

    g_loss = lambda logits: torch.nn.functional.cross_entropy(logits, tgt, reduction="sum")  # noqa: E731
    f_loss = lambda logits: logits.gather(1, src).sum()  # noqa: E731
    with frozen(g_fast, f_fast), torch.enable_grad():
        one(g_fast, g_loss)   # warm-up
        one(f_fast, f_loss)
        best = time_best({"g": lambda: one(g_fast, g_loss), "f": lambda: one(f_fast, f_loss)}, repeats)
    return {name: t / passes for name, t in best.items()}


def time_best(fns: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each function, the functions alternating within every round."""
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def technique_variants(g, f, shape, with_compile: bool) -> dict:
    """(g, f, input memory format) for each speed technique of the gradient steps."""
    # hiding .normalize makes translation_steps normalise the input once per network (two passes)
    out = {"normalised_twice": (torch.nn.Sequential(g), torch.nn.Sequential(f), torch.contiguous_format),
           "plain": (g, f, torch.contiguous_format), "frozen": (g, f, "frozen")}
    if foldable(g):
        gf, ff = fold_batchnorm(g), fold_batchnorm(f)
        out["frozen+bn_folded"] = (gf, ff, torch.contiguous_format)
        if len(shape) == 3:
            out["frozen+bn_folded+channels_last"] = (copy.deepcopy(gf).to(memory_format=torch.channels_last),
                                                    copy.deepcopy(ff).to(memory_format=torch.channels_last),
                                                    torch.channels_last)
    if with_compile:
        base = out.get("frozen+bn_folded", (g, f, None))
        out["frozen+bn_folded+compile"] = (torch.compile(base[0]), torch.compile(base[1]), torch.contiguous_format)
    return out


def time_techniques(g, f, rows, batch: int, step_size: float, device, repeats: int, with_compile: bool):
    counts, x, seed_class, target, noise, _ = rows
    xb = (x[:batch] + noise[:batch]).clamp(0, 1).to(device)
    tgt, src = target[:batch].to(device), seed_class[:batch].to(device)
    plain = translation_steps(g, f, xb, tgt, src, steps=STEPS, step_size=step_size, lam=0.5, input_range=(0.0, 1.0))
    fns, diffs = {}, {}
    for name, (gv, fv, fmt) in technique_variants(g, f, x.shape[1:], with_compile).items():
        def call(gv=gv, fv=fv, fmt=fmt):
            xin = xb if fmt in (torch.contiguous_format, "frozen") else xb.contiguous(memory_format=fmt)
            with frozen(gv, fv) if fmt == "frozen" else torch.enable_grad():
                out = translation_steps(gv, fv, xin, tgt, src, steps=STEPS, step_size=step_size, lam=0.5,
                                        input_range=(0.0, 1.0))
            sync(device)
            return out
        t0 = time.perf_counter()
        diffs[name] = float((call() - plain).abs().max())   # also the warm-up (and compile) call
        print(f"  {name}: first call {time.perf_counter() - t0:.1f} s, max |x* - plain x*| {diffs[name]:.2e}",
              flush=True)
        fns[name] = call
    best = time_best(fns, repeats)
    return {name: {"rows_per_s": batch / t, "max_abs_diff_vs_plain": diffs[name]} for name, t in best.items()}


def main(argv: list[str] | None = None) -> dict:
    global STEPS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, choices=list(MODELS))
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (pinned for every measurement)")
    ap.add_argument("--batch-size", type=int, help="the library's translation batch (default per model)")
    ap.add_argument("--reference-batch", type=int, help="the reference's mini-batch (default: the release's)")
    ap.add_argument("--rows", type=int, help="rows translated a round")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=STEPS, help="T (the paper's 10; fewer only for dry runs)")
    ap.add_argument("--matmul-seconds", type=float, default=2.0, help="time spent on each matmul measurement")
    ap.add_argument("--techniques", action="store_true", help="also time each speed technique of the steps")
    ap.add_argument("--compile", action="store_true", help="with --techniques: include torch.compile")
    ap.add_argument("--json", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        raise SystemExit(2)
    if args.threads < 1 or args.repeats < 1:
        print("error: --threads and --repeats must be >= 1", file=sys.stderr)
        raise SystemExit(2)
    torch.set_num_threads(args.threads)
    STEPS = args.steps
    device = torch.device(args.device)
    _, _, _, _, ref_bs, our_bs, n_rows, step_size = MODELS[args.model]
    ref_bs = args.reference_batch or ref_bs
    our_bs = args.batch_size or our_bs
    n_rows = args.rows or n_rows

    g, f, shape, k = build(args.model, device)
    rows = make_rows(n_rows, shape, k)
    flops = forward_flops(g, shape, device)
    matmul = matmul_flops_per_s(device, seconds=args.matmul_seconds)
    print(f"{args.model} on {device}, {args.threads} thread(s), T = {STEPS}: forward {flops / 1e6:.2f} MFLOP a row, "
          f"matmul {matmul / 1e9:.1f} GFLOP/s; {n_rows} rows, reference batch {ref_bs}, library batch {our_bs}",
          flush=True)
    # one untimed round each: caches, allocator, BN folding
    def head(n: int) -> tuple:
        return (rows[0],) + tuple(r[:n] for r in rows[1:])   # rows[0] is the class counts

    run_reference(g, f, head(ref_bs), ref_bs, step_size, device)
    run_ours(g, f, head(our_bs), our_bs, step_size, device)
    best = time_best({"reference": lambda: run_reference(g, f, rows, ref_bs, step_size, device),
                      "ours": lambda: run_ours(g, f, rows, our_bs, step_size, device)}, args.repeats)
    # the step bound, same threads, same batch: as many passes a round as ours runs batches
    passes = max(1, n_rows // our_bs)
    step_pass = step_pass_seconds(g, f, rows, min(our_bs, n_rows), device, args.repeats, passes)
    bound_per_s = min(our_bs, n_rows) / (STEPS * (step_pass["g"] + step_pass["f"])) if STEPS else float("inf")
    matmul_after = matmul_flops_per_s(device, seconds=args.matmul_seconds)
    matmul = max(matmul, matmul_after)   # the least disturbed of the two measurements
    per_s = {name: n_rows / t for name, t in best.items()}
    work = (4 * STEPS + 1) * flops
    result = {
        "model": args.model, "device": str(device), "threads": args.threads, "steps": STEPS,
        "rows": n_rows, "reference_batch": ref_bs, "library_batch": our_bs, "repeats": args.repeats,
        "reference_per_s": per_s["reference"], "ours_per_s": per_s["ours"],
        "ratio": per_s["ours"] / per_s["reference"],
        "forward_flops": flops, "matmul_gflops": matmul / 1e9,
        "roofline_fraction_ours": per_s["ours"] * work / matmul,
        "roofline_fraction_reference": per_s["reference"] * work / matmul,
        "step_pass_s": step_pass, "step_bound_per_s": bound_per_s,
        "step_bound_fraction": per_s["ours"] / bound_per_s,
        "torch": torch.__version__, "machine": platform.machine(), "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    print(f"reference {per_s['reference']:.1f}/s ({result['roofline_fraction_reference']:.2f} of matmul), "
          f"ours {per_s['ours']:.1f}/s ({result['roofline_fraction_ours']:.2f} of matmul), "
          f"ratio {result['ratio']:.2f}; step bound {bound_per_s:.1f}/s (T x forward+backward of g "
          f"{1e3 * step_pass['g']:.1f} ms and f {1e3 * step_pass['f']:.1f} ms at batch {min(our_bs, n_rows)}): "
          f"ours at {result['step_bound_fraction']:.2f} of it", flush=True)
    if args.techniques:
        result["techniques"] = time_techniques(g, f, rows, our_bs, step_size, device, args.repeats, args.compile)
        for name, r in result["techniques"].items():
            print(f"  {name:34s} {r['rows_per_s']:8.1f} rows/s "
                  f"({r['rows_per_s'] * 4 * STEPS * flops / matmul:.2f} of matmul, steps only)", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
