"""DVC stage `report`: every evaluated run of the dataset in one table (markdown and CSV), mean ± std
over seeds, with the paper's numbers beside ours (m2m_pipeline.reports), the ablation table, the flat
summary for `dvc metrics show`, the paper's figures and the validation curves."""

from pathlib import Path

from m2m_pipeline.layout import history_file, predictions_file
from m2m_pipeline.params import prepare_options, report_runs
from m2m_pipeline.reports.tables import write_report

from _common import run_stage


def add_args(p):
    p.add_argument("--metrics", required=True, help="folder holding <dataset slug>/*.json (e.g. metrics)")
    p.add_argument("--out", required=True, help="folder for report.md and report.csv")
    p.add_argument("--which", choices=("best_val", "last"), default="best_val",
                   help="checkpoint whose test numbers are reported (default: best validation bACC)")
    p.add_argument("--summary", default=None, help="write the flat per-dataset summary (method x seed, numbers "
                   "only) for `dvc metrics show` to this JSON")
    p.add_argument("--predictions", default=None, help="folder of the evaluate stage's <method>-seed<s>.npz; "
                   "with --figures, draws the paper's figures from them")
    p.add_argument("--figures", default=None, help="folder for recall_vs_size.png, cumulative_false_positives.png, "
                   "tsne.png, confusion.png")
    p.add_argument("--histories", default=None, help="folder of the training histories (plots/<dataset>); with "
                   "--curves, writes them as one overlay file")
    p.add_argument("--curves", default=None, help="JSON of every run's validation curve, one row per (run, epoch) "
                   "with a `method` field (a DVC plot overlaying the methods)")


def work(args, params):
    dataset = params["dataset"]
    rho = prepare_options(params, dataset).get("rho")  # picks the paper's CIFAR-LT column
    methods, seeds = report_runs(params)   # only the runs of the current DAG, not stale metrics files
    print(write_report(dataset, args.metrics, args.out, rho=rho, which=args.which, methods=methods, seeds=seeds))
    ablations = params.get("ablations") or {}
    if (ablations.get("reuse") or ablations.get("translate")) and "M2m" in methods:
        from m2m_pipeline.reports.ablations import write_ablations

        print("\n" + write_ablations(dataset, args.metrics, args.out, rho=rho, which=args.which, methods=methods,
                                     seeds=seeds))
    if args.summary:
        from m2m_pipeline.reports.tables import write_summary

        path = write_summary(dataset, args.metrics, args.summary, which=args.which, methods=methods, seeds=seeds)
        print(f"summary: {path}")
    if args.predictions and args.figures:
        from m2m_pipeline.reports.figures import paper_figures

        wanted = {predictions_file(m, s) for m in methods for s in seeds}   # the current DAG's runs only
        files = sorted(p for p in Path(args.predictions).glob("*.npz") if p.name in wanted)
        for name, path in paper_figures(files, args.figures, dataset=dataset).items():
            print(f"{name}: {path}")
    if args.histories and args.curves:
        from m2m_pipeline.reports.curves import write_curves

        wanted = {history_file(m, s) for m in methods for s in seeds}
        runs = [p for p in sorted(Path(args.histories).glob("*.json")) if p.name in wanted]
        print(f"curves: {write_curves(runs, args.curves)}")


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
