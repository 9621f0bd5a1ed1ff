"""``prepare`` and the ``data`` group (list, info): running and inspecting dataset recipes."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import DatasetOpt, ParamsOpt, context

data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)


def prepare(dataset: Optional[str] = DatasetOpt,
            data_root: Optional[Path] = typer.Option(None, help="folder of the dataset's files (default: params "
                                                     "data_root, else data/raw/<dataset>)"),
            out: Optional[Path] = typer.Option(None, help="output folder (default data/prepared/<dataset>)"),
            params_path: Path = ParamsOpt) -> None:
    """Run the dataset's recipe once and store it as zarr (a no-op when nothing changed)."""
    from ..jobs.prepare import prepare as do_prepare
    from ..params import prepare_options

    params, name, layout = context(params_path, dataset)
    out = out or layout.prepared
    data, written = do_prepare(name, out, data_root=data_root or params.get("data_root"),
                               options=prepare_options(params, name))
    state = "written" if written else "unchanged"
    typer.echo(f"{name}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
               f"{data.num_classes} classes, fingerprint {data.fingerprint} -> {out} ({state})")


@data_app.command("list")
def data_list() -> None:
    """List the registered dataset names."""
    from ..jobs.catalog import dataset_names

    typer.echo("\n".join(dataset_names()))


@data_app.command("info")
def data_info(dataset: Optional[str] = DatasetOpt,
              data_root: Optional[Path] = typer.Option(None, help="folder of the dataset's files"),
              params_path: Path = ParamsOpt) -> None:
    """Class table, imbalance ratio, split sizes and the Sec. 3.4 majority/minority split."""
    from ..jobs.catalog import describe_dataset
    from ..params import prepare_options

    params, name, _ = context(params_path, dataset)
    typer.echo(describe_dataset(name, data_root=data_root or params.get("data_root"),
                                options=prepare_options(params, name)))
