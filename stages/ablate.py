"""DVC stage `ablate_reuse`: an ablation that re-decides the M2m run's pools (M2m-Clean, M2m-Rand,
M2m-No-Reject, M2m-No-Gamma, M2m-Gamma) from the seed's warm checkpoint, then its test metrics.
It translates nothing: it depends on the pools and the warm checkpoint, not on g or the translation code."""

from m2m_pipeline.params import fit_options, preset_for
from m2m_pipeline.jobs.ablate import run_ablation
from m2m_pipeline.jobs.evaluate import run_evaluate

from _common import run_stage


def add_args(p):
    p.add_argument("--prepared", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--seed", type=int, required=True, help="f's seed (the warm checkpoint's)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--reused-pools", required=True, help="pools folder of the reused run (M2m of the same seed)")
    p.add_argument("--warm", required=True, help="warm_f run folder")
    p.add_argument("--history", help="per-epoch history JSON (a DVC plot)")
    p.add_argument("--metrics", required=True, help="test metrics JSON")


def work(args, params):
    dataset = params["dataset"]
    run_ablation(args.prepared, preset_for(params, dataset), method=args.method, seed=args.seed, out_dir=args.out,
                 reused_pools=args.reused_pools, warm_dir=args.warm,
                 method_params=(params.get("ablation_params") or {}).get(args.method),
                 options=fit_options(params), history=args.history)
    run_evaluate(args.prepared, args.out, method=args.method, out=args.metrics, seed=args.seed)


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
