"""DVC stage `train_f`: train f with a method that uses no pool (ERM, DRS, ...) to the end of the schedule."""

from m2m_pipeline.params import fit_options, preset_for
from m2m_pipeline.jobs.train import run_train_f
from m2m_pipeline.training import get_method

from _common import run_stage


def add_args(p):
    p.add_argument("--prepared", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--seed", type=int, required=True, help="f's seed (the warm checkpoint's)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--warm", help="warm_f run folder (deferred methods trained with CE)")
    p.add_argument("--warm-ldam", help="warm_f_ldam run folder (deferred methods trained with LDAM)")
    p.add_argument("--history", help="per-epoch history JSON (a DVC plot)")


def work(args, params):
    dataset = params["dataset"]
    warm = args.warm_ldam if get_method(args.method).warm == "ldam" else args.warm
    run_train_f(args.prepared, preset_for(params, dataset), method=args.method, seed=args.seed,
                out_dir=args.out, warm_dir=warm, options=fit_options(params), history=args.history)


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
