"""DVC stage `report`: every evaluated run of the dataset in one table (markdown and CSV), mean ± std
over seeds, with the paper's numbers beside ours (m2m_pipeline.report)."""

from m2m_pipeline.config import prepare_options
from m2m_pipeline.report import report

from _common import run_stage


def add_args(p):
    p.add_argument("--metrics", required=True, help="folder holding <dataset slug>/*.json (e.g. metrics)")
    p.add_argument("--out", required=True, help="folder for report.md and report.csv")
    p.add_argument("--which", choices=("best_val", "last"), default="best_val",
                   help="checkpoint whose test numbers are reported (default: best validation bACC)")


def work(args, params):
    dataset = params["dataset"]
    rho = prepare_options(params, dataset).get("rho")  # picks the paper's CIFAR-LT column
    print(report(dataset, args.metrics, args.out, rho=rho, which=args.which))


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
