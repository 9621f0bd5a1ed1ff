"""What reusing M2m's pools saves: the training wall time of ablations that re-decide the stored
rows, against DRS (the same deferred schedule and balanced sampling, no pools) and M2m (which
translates), measured in one run on one dataset.

    python benchmarks/ablation_reuse.py --dataset reuters --data-root ../shared/datasets/reuters-r52 \
        --json runs/bench/ablation_reuse.json

Per seed: g and the warm checkpoint are trained once (not timed), then M2m (timed, it writes the
pools), then DRS and the reusing ablations (M2m-Clean, M2m-Rand, M2m-No-Reject by default)
``--repeats`` times each, in rotating order, each into a fresh folder; the figure of a method is
the median of its repeats. Writes ``{"seconds": {name: s}, "ratio_to_DRS": {name: r}, ...}``.
Goal (issue 7): every reusing ablation <= 1.15x DRS, since it translates nothing.

The floor (issue 16, ``benchmarks/_floor.py``), timed in the same run after M2m wrote its pools:
the rows of every deferred epoch's pool encoded, compressed, written, read, decompressed and
decoded with numpy and zstd alone, no zarr (median of ``--repeats``, summed over the epochs).
JSON: ``floor_s`` (that round trip), ``floor_read_s`` (its read half: read, decompress, decode:
what a reusing ablation has to do at least), ``floor`` (per epoch and stage) and
``ours_over_floor`` = {ablation: (its seconds - DRS's) / floor_read_s}, what reusing the pools
adds to a DRS run over what reading their bytes costs at least.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
from datetime import date
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _floor import floor_round_trip, pool_floor_inputs  # noqa: E402

from m2m_pipeline.params import fit_options, m2m_config
from m2m_pipeline.datasets import dataset_slug
from m2m_pipeline.layout import Layout
from m2m_pipeline.studies.seeds import load_experiment, run_method, train_seed_models
from m2m_pipeline.training import get_method
from m2m_pipeline.utils import M2mError

DEFAULT_ABLATIONS = ["M2m-Clean", "M2m-Rand", "M2m-No-Reject"]


def pools_floor(pools_dir: Path, data, repeats: int) -> dict:
    """The floor of every epoch's pool under ``pools_dir`` (epoch_<e>), summed over the epochs."""
    from m2m_pipeline.store import open_pool

    per_epoch = {}
    for path in sorted(pools_dir.glob("epoch_*"), key=lambda p: int(p.name.split("_")[1])):
        cols, x, x0 = pool_floor_inputs(open_pool(path), data)   # not timed
        per_epoch[path.name] = floor_round_trip(cols, x=x, x0=x0, input_range=data.input_range, repeats=repeats)
    if not per_epoch:
        raise M2mError(f"no pools under {pools_dir}: the M2m run wrote none")
    total = {k: sum(e[k] for e in per_epoch.values()) for k in ("floor_s", "floor_read_s", "compressed_bytes")}
    return {**total, "epochs": per_epoch}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", required=True, help="any dataset name the CLI accepts (reuters, text:<dir>, ...)")
    p.add_argument("--data-root", help="folder of the dataset's files")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--ablations", nargs="+", default=DEFAULT_ABLATIONS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3, help="timed runs of DRS and of each ablation (median)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (pinned: one job per core)")
    p.add_argument("--work-dir", help="scratch folder (default runs/bench/ablation_reuse/<dataset>)")
    p.add_argument("--json", required=True, help="output JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        for name in args.ablations:
            if get_method(name).reuse is None:
                raise M2mError(f"{name} does not reuse pools; pass ablations that re-decide M2m's pools")
        if args.repeats < 1:
            raise M2mError(f"--repeats must be >= 1, got {args.repeats}")
        params, data, preset = load_experiment(args.dataset, params_path=args.params, data_root=args.data_root)
        options = fit_options(params)
        m2m = m2m_config(params, args.dataset)
        work = Path(args.work_dir or Path("runs/bench/ablation_reuse") / dataset_slug(args.dataset))
        shutil.rmtree(work, ignore_errors=True)
        g_seed = int((params.get("pretrain_g") or {}).get("seed", 1000)) + args.seed
        models = train_seed_models(data, preset, seed=args.seed, g_seed=g_seed, layout=Layout(args.dataset, root=work),
                                   warm_losses=("ce",))
        m2m_run = run_method(data, preset, models, "M2m", m2m=m2m, options=options,
                             keep_pools=True)
        seconds: dict[str, list[float]] = {"M2m": [m2m_run["seconds"]]}
        floor = pools_floor(models.layout.pools("M2m", args.seed), data, args.repeats)
        names = ["DRS", *args.ablations]
        for r in range(args.repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:   # rotate: no method always first
                res = run_method(data, preset, models, name, name=f"{name}-r{r}", m2m=m2m, options=options,
                                 method_params=(params.get("ablation_params") or {}).get(name))
                seconds.setdefault(name, []).append(res["seconds"])
                shutil.rmtree(res["run_dir"], ignore_errors=True)
                print(f"{name:14s} repeat {r}: {res['seconds']:.2f} s", flush=True)
        median = {k: statistics.median(v) for k, v in seconds.items()}
        ratio = {k: v / median["DRS"] for k, v in median.items()}
        over_floor = {k: (median[k] - median["DRS"]) / floor["floor_read_s"] for k in args.ablations}
        result = {
            "seconds": median, "ratio_to_DRS": ratio, "all_seconds": seconds,
            "floor_s": floor["floor_s"], "floor_read_s": floor["floor_read_s"], "ours_over_floor": over_floor,
            "floor": floor,
            "goal": "each reusing ablation <= 1.15x DRS",
            "met": {k: ratio[k] <= 1.15 for k in args.ablations},
            "dataset": args.dataset, "seed": args.seed, "repeats": args.repeats, "threads": args.threads,
            "deferred_epochs": preset.epochs - preset.deferred_epoch,
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch thread(s), no GPU"
            if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
            "date": str(date.today()), "command": " ".join(["python", *sys.argv]),
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=1))
        print(f"\n{'method':14s} {'seconds':>8s} {'x DRS':>7s} {'x floor':>8s}")
        for k in ["DRS", "M2m", *args.ablations]:
            print(f"{k:14s} {median[k]:8.2f} {ratio[k]:7.2f} {over_floor.get(k, float('nan')):8.1f}")
        print(f"floor of the {len(floor['epochs'])} pools (numpy + zstd, no zarr): {floor['floor_s']:.3f} s round "
              f"trip, {floor['floor_read_s']:.3f} s to read back ({floor['compressed_bytes'] / 1e6:.1f} MB)")
        shutil.rmtree(work, ignore_errors=True)
    except M2mError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
