"""DVC stage `pretrain_g`: train g with plain ERM over the full schedule."""

from m2m_pipeline.params import preset_for
from m2m_pipeline.jobs.train import run_pretrain_g

from _common import run_stage


def add_args(p):
    p.add_argument("--prepared", required=True)
    p.add_argument("--seed", type=int, required=True, help="pipeline seed s (g trains with pretrain_g.seed + s)")
    p.add_argument("--out", required=True, help="run folder of g")
    p.add_argument("--history", help="per-epoch history JSON (a DVC plot)")


def work(args, params):
    run_pretrain_g(args.prepared, preset_for(params, params["dataset"]), seed=params["pretrain_g"]["seed"] + args.seed,
                   out_dir=args.out, history=args.history)


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
