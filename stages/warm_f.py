"""DVC stage `warm_f`: train f with ERM up to the deferred epoch, shared by every deferred method."""

from m2m_pipeline.params import preset_for
from m2m_pipeline.jobs.train import run_warm_f

from _common import run_stage


def add_args(p):
    p.add_argument("--prepared", required=True)
    p.add_argument("--seed", type=int, required=True, help="f's seed")
    p.add_argument("--out", required=True, help="run folder of the warm checkpoint")
    p.add_argument("--loss", default="ce", choices=["ce", "ldam"])


def work(args, params):
    run_warm_f(args.prepared, preset_for(params, params["dataset"]), seed=args.seed, out_dir=args.out,
               loss=args.loss)


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
