"""DVC stage `evaluate`: test one run at its best-validation and its last epoch."""

from m2m_pipeline.evaluation import results_table
from m2m_pipeline.jobs.evaluate import run_evaluate

from _common import run_stage


def add_args(p):
    p.add_argument("--prepared", required=True)
    p.add_argument("--run", required=True, help="run folder")
    p.add_argument("--method", required=True)
    p.add_argument("--seed", type=int, required=True, help="the run's seed, recorded in the metrics")
    p.add_argument("--out", required=True, help="metrics JSON")
    p.add_argument("--predictions", default=None,
                   help="also write test predictions and penultimate features of the best-validation "
                        "checkpoint to this .npz (read by the report stage's figures)")


def work(args, params):
    print(results_table([run_evaluate(args.prepared, args.run, method=args.method, out=args.out,
                                      seed=args.seed)]))
    if args.predictions:
        from m2m_pipeline.evaluation import write_predictions
        from m2m_pipeline.jobs.data import load_prepared

        print(write_predictions(args.run, load_prepared(args.prepared), args.predictions, method=args.method,
                                seed=args.seed))


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
