"""DVC stage `prepare`: run the dataset recipe once and store it as zarr."""

from m2m_pipeline.params import prepare_options
from m2m_pipeline.jobs.prepare import prepare

from _common import run_stage


def add_args(p):
    p.add_argument("--out", required=True, help="prepared dataset folder")


def work(args, params):
    dataset = params["dataset"]
    data, written = prepare(dataset, args.out, data_root=params.get("data_root"),
                            options=prepare_options(params, dataset))
    print(f"{dataset}: fingerprint {data.fingerprint} ({'written' if written else 'unchanged'})")


if __name__ == "__main__":
    run_stage(__doc__, add_args, work)
