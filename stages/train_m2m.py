"""DVC stages `train_m2m`, `ablate_translate` and `ablate_fresh`: train f with a translating method
(M2m, LDAM-M2m, an ablation with pools of its own, or a re-deciding ablation in mode fresh),
writing its pools."""

from m2m_pipeline.params import fit_options, m2m_config, preset_for
from m2m_pipeline.jobs.evaluate import run_evaluate
from m2m_pipeline.jobs.m2m import run_train_m2m
from m2m_pipeline.pools.backends import create_backend
from m2m_pipeline.training import get_method

from _common import run_stage


def add_args(p):
    p.add_argument("--prepared", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--seed", type=int, required=True, help="f's seed (the warm checkpoint's)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--pools", required=True, help="pools folder of this run")
    p.add_argument("--g", help="g checkpoint")
    p.add_argument("--g2", help="second ERM classifier of M2m-Ensemble (the ERM run's checkpoint)")
    p.add_argument("--warm", help="warm_f run folder (deferred methods trained with CE)")
    p.add_argument("--warm-ldam", help="warm_f_ldam run folder (deferred methods trained with LDAM)")
    p.add_argument("--history", help="per-epoch history JSON (a DVC plot)")
    p.add_argument("--metrics", help="also test the finished run and write its metrics JSON here (ablations)")
    p.add_argument("--mode", choices=("fresh",), help="fresh: a re-deciding ablation (M2m-Clean, ...) translated "
                                                     "with its own f, then its rule (stage ablate_fresh)")


def work(args, params):
    dataset = params["dataset"]
    warm = args.warm_ldam if get_method(args.method).warm == "ldam" else args.warm
    run_train_m2m(args.prepared, preset_for(params, dataset), method=args.method, seed=args.seed,
                  out_dir=args.out, pools_dir=args.pools, m2m=m2m_config(params, dataset), g_path=args.g,
                  g2_path=args.g2, warm_dir=warm,
                  method_params=(params.get("ablation_params") or {}).get(args.method),
                  options=fit_options(params), history=args.history, mode=args.mode,
                  # where translation runs (params `translate`): the pools do not depend on it
                  backend=create_backend(params.get("translate")))
    if args.metrics:
        run_evaluate(args.prepared, args.out, method=args.method, out=args.metrics, seed=args.seed)


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
