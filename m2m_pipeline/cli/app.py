"""The typer app: every command in the order ``--help`` lists them, and ``main``, which turns a
user's error (M2mError, a read-only or full output location) into one line on stderr and exit 2."""

from __future__ import annotations

import sys

import typer

from .. import __version__
from ..errors import M2mError, os_error_message
from . import data, generate, pools, results, train

app = typer.Typer(help="M2m (major-to-minor translation, CVPR 2020) as a staged pipeline: prepare data, "
                  "pretrain g, translate majority samples into zarr pools, train f, evaluate.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

app.command()(data.prepare)
app.command("pretrain-g")(train.pretrain_g_cmd)
app.command("warm-f")(train.warm_f_cmd)
app.command("train-f")(train.train_f_cmd)
app.command()(generate.generate)
app.command()(results.evaluate)
app.command()(results.table)
app.command()(results.report)
app.command("methods")(train.methods_cmd)


@app.command()
def version() -> None:
    """Print the package version."""
    typer.echo(__version__)


app.add_typer(data.data_app, name="data")
app.add_typer(pools.pools_app, name="pools")


def main() -> None:
    try:
        app()
    except M2mError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        # a read-only or full output location outside a pipeline job (report, plots): one line too
        message = os_error_message(exc)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
