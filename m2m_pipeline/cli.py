"""The command line: a thin face over m2m_pipeline.pipeline, with defaults from params.yaml."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from . import __version__
from .utils import M2mError

app = typer.Typer(help="M2m (major-to-minor translation, CVPR 2020) as a staged pipeline: prepare data, "
                  "pretrain g, translate majority samples into zarr pools, train f, evaluate.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)
pool_app = typer.Typer(help="Inspect translation pools.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(pool_app, name="pool")

ParamsOpt = typer.Option(Path("params.yaml"), "--params", help="params file with the defaults")
DatasetOpt = typer.Option(None, "--dataset", "-d", help="dataset name (default: params.yaml `dataset`)")


def _ctx(params_path: Path, dataset: Optional[str]) -> tuple[dict[str, Any], str]:
    from .config import load_params

    params = load_params(params_path)
    name = dataset or params.get("dataset")
    if not name:
        raise M2mError("no dataset given: pass --dataset or set `dataset` in params.yaml")
    return params, name


def _seed(params: dict[str, Any], seed: Optional[int]) -> int:
    """The seed given, else the first of params.yaml's ``seeds``."""
    if seed is not None:
        return seed
    seeds = params.get("seeds") or [0]
    return int(seeds[0])


def _run(name: str, seed: int) -> str:
    """Run folder name inside runs/<dataset>/ (the DVC DAG's layout): e.g. ``M2m-seed0``."""
    return f"{name}-seed{seed}"


def _paths(dataset: str) -> dict[str, Path]:
    from .datasets import dataset_slug

    slug = dataset_slug(dataset)
    return {"prepared": Path("data/prepared") / slug, "runs": Path("runs") / slug, "pools": Path("pools") / slug,
            "metrics": Path("metrics") / slug}


@app.command()
def prepare(dataset: Optional[str] = DatasetOpt,
            data_root: Optional[Path] = typer.Option(None, help="folder of the dataset's files (default: params "
                                                     "data_root, else data/raw/<dataset>)"),
            out: Optional[Path] = typer.Option(None, help="output folder (default data/prepared/<dataset>)"),
            params_path: Path = ParamsOpt) -> None:
    """Run the dataset's recipe once and store it as zarr (a no-op when nothing changed)."""
    from .config import prepare_options
    from .pipeline import prepare as do_prepare

    params, name = _ctx(params_path, dataset)
    out = out or _paths(name)["prepared"]
    data, written = do_prepare(name, out, data_root=data_root or params.get("data_root"),
                               options=prepare_options(params, name))
    state = "written" if written else "unchanged"
    typer.echo(f"{name}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test, "
               f"{data.num_classes} classes, fingerprint {data.fingerprint} -> {out} ({state})")


@app.command("pretrain-g")
def pretrain_g_cmd(dataset: Optional[str] = DatasetOpt,
                   seed: Optional[int] = typer.Option(None, help="pipeline seed s; g trains with pretrain_g.seed + s "
                                                      "(default: the first of params seeds)"),
                   out: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/g-seed<s>)"),
                   params_path: Path = ParamsOpt) -> None:
    """Train g with plain ERM on the imbalanced training set (full schedule)."""
    from .config import preset_for
    from .pipeline import run_pretrain_g

    params, name = _ctx(params_path, dataset)
    p = _paths(name)
    s = _seed(params, seed)
    res = run_pretrain_g(p["prepared"], preset_for(params, name), seed=params["pretrain_g"]["seed"] + s,
                         out_dir=out or p["runs"] / _run("g", s))
    typer.echo(f"g: best val bACC {res.best_val_bacc:.1f} at epoch {res.best_epoch}; {res.last_path}")


@app.command("warm-f")
def warm_f_cmd(dataset: Optional[str] = DatasetOpt, seed: Optional[int] = typer.Option(None, help="f's seed"),
               loss: str = typer.Option("ce", help="ce (ERM) or ldam"),
               out: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/warm-<loss>-seed<s>)"),
               params_path: Path = ParamsOpt) -> None:
    """Train f with ERM up to the preset's deferred epoch (the start of every deferred method)."""
    from .config import preset_for
    from .pipeline import run_warm_f

    params, name = _ctx(params_path, dataset)
    s = _seed(params, seed)
    res = run_warm_f(_paths(name)["prepared"], preset_for(params, name), seed=s,
                     out_dir=out or _paths(name)["runs"] / _run(f"warm-{loss}", s), loss=loss)
    typer.echo(f"warm f ({loss}): {res.last_path}")


@app.command("train-f")
def train_f_cmd(dataset: Optional[str] = DatasetOpt,
                method: str = typer.Option("M2m", help="ERM, RS, SMOTE, RW, CB-RW, DRS, DRW, Focal, LDAM, "
                                           "LDAM-DRW, M2m, LDAM-M2m"),
                seed: Optional[int] = typer.Option(None, help="f's seed (default: the first of params seeds)"),
                out: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/<method>-seed<s>)"),
                params_path: Path = ParamsOpt) -> None:
    """Train f with one method to the end of the schedule; translating methods write their pools
    to pools/<dataset>/<method>-seed<s>/epoch_<e>."""
    from .config import fit_options, m2m_config, preset_for
    from .pipeline import run_train_f
    from .training import get_method

    params, name = _ctx(params_path, dataset)
    spec = get_method(method)
    p = _paths(name)
    s = _seed(params, seed)
    res = run_train_f(p["prepared"], preset_for(params, name), method=method, seed=s,
                      out_dir=out or p["runs"] / _run(method, s),
                      warm_dir=p["runs"] / _run(f"warm-{spec.warm or 'ce'}", s),
                      g_path=p["runs"] / _run("g", s) / "last.pt", m2m=m2m_config(params, name),
                      pools_dir=p["pools"] / _run(method, s), options=fit_options(params))
    typer.echo(f"{method}: best val bACC {res.best_val_bacc:.1f} at epoch {res.best_epoch}; {res.last_path}")


@app.command()
def generate(dataset: Optional[str] = DatasetOpt,
             g: Optional[Path] = typer.Option(None, "--g", help="g checkpoint (default runs/<dataset>/g-seed<s>/last.pt)"),
             f: Optional[Path] = typer.Option(None, "--f", help="f checkpoint (default runs/<dataset>/warm-ce-seed<s>/last.pt)"),
             epoch: Optional[int] = typer.Option(None, help="epoch whose plan to translate (default: f's epoch)"),
             out: Optional[Path] = typer.Option(None, help="pool folder (default pools/<dataset>/generate/epoch_<e>)"),
             seed: Optional[int] = typer.Option(None, help="seed of the plan and draws (default: the first of params seeds)"),
             batch_size: Optional[int] = typer.Option(None, help="translation batch size (default params m2m)"),
             params_path: Path = ParamsOpt) -> None:
    """Translate one epoch's pool on its own, from a g and an f checkpoint."""
    from tqdm.auto import tqdm

    from .config import m2m_config, preset_for
    from .pipeline import run_generate
    from .training import load_checkpoint

    params, name = _ctx(params_path, dataset)
    p = _paths(name)
    seed = _seed(params, seed)
    f = f or p["runs"] / _run("warm-ce", seed) / "last.pt"
    if epoch is None:
        epoch = int(load_checkpoint(f)["epoch"])
    out = out or p["pools"] / "generate" / f"epoch_{epoch}"
    with tqdm(desc=f"translate epoch {epoch}", unit="row", dynamic_ncols=True) as bar:
        s = run_generate(p["prepared"], preset_for(params, name), g_path=g or p["runs"] / _run("g", seed) / "last.pt",
                         f_path=f, cfg=m2m_config(params, name, batch_size=batch_size), seed=seed, out=out,
                         epoch=epoch, progress=bar.update)
    typer.echo(f"pool {s.path}: {s.n_slots} slots, {s.n_attempts} attempts, {s.n_accepted} accepted "
               f"({100 * s.accept_rate:.1f}%); reasons {s.reasons}")


@app.command()
def evaluate(dataset: Optional[str] = DatasetOpt, method: str = typer.Option(..., help="method, e.g. M2m"),
             seed: Optional[int] = typer.Option(None, help="the run's seed (default: the first of params seeds)"),
             run: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/<method>-seed<s>)"),
             out: Optional[Path] = typer.Option(None, help="metrics JSON (default metrics/<dataset>/<method>-seed<s>.json)"),
             params_path: Path = ParamsOpt) -> None:
    """Test a run at its best-validation epoch and at its last epoch; write the metrics JSON."""
    from .evaluation import results_table
    from .pipeline import run_evaluate

    params, name = _ctx(params_path, dataset)
    p = _paths(name)
    s = _seed(params, seed)
    res = run_evaluate(p["prepared"], run or p["runs"] / _run(method, s), method=method,
                       out=out or p["metrics"] / f"{_run(method, s)}.json", seed=s)
    typer.echo(results_table([res]))


@app.command()
def table(dataset: Optional[str] = DatasetOpt,
          which: str = typer.Option("both", help="best_val (authors' selection), last, or both"),
          params_path: Path = ParamsOpt) -> None:
    """Print the evaluation table of every run evaluated so far (metrics/<dataset>/*.json)."""
    from .evaluation import load_results, results_table

    params, name = _ctx(params_path, dataset)
    files = sorted(_paths(name)["metrics"].glob("*.json"))
    if not files:
        raise M2mError(f"no metrics under {_paths(name)['metrics']}; run dvc repro or m2m-pipeline evaluate")
    if which not in ("best_val", "last", "both"):
        raise M2mError(f"--which must be best_val, last or both, got {which!r}")
    results = load_results(files)
    titles = {"best_val": "at the epoch of best validation bACC (the authors' selection rule)",
              "last": "at the last epoch"}
    for w in ("best_val", "last") if which == "both" else (which,):
        typer.echo(f"\n{name}: test metrics (%) {titles[w]}\n")
        typer.echo(results_table(results, which=w))


@app.command()
def report(dataset: Optional[str] = DatasetOpt,
           metrics: Path = typer.Option(Path("metrics"), help="folder holding <dataset>/*.json"),
           out: Optional[Path] = typer.Option(None, help="folder for report.md and report.csv (default reports/<dataset>, "
                                              "reports/<dataset>-last with --which last)"),
           which: str = typer.Option("best_val", help="best_val (authors' selection) or last"),
           params_path: Path = ParamsOpt) -> None:
    """Every evaluated run of a dataset in one table: mean ± std over seeds, the paper's numbers beside."""
    from .config import prepare_options
    from .datasets import dataset_slug
    from .report import report as build

    params, name = _ctx(params_path, dataset)
    default = Path("reports") / (dataset_slug(name) + ("-last" if which == "last" else ""))
    typer.echo(build(name, metrics, out or default,
                     rho=prepare_options(params, name).get("rho"), which=which))


@data_app.command("list")
def data_list() -> None:
    """List the registered dataset names."""
    from .datasets import list_datasets

    typer.echo("\n".join(list_datasets()))


@data_app.command("info")
def data_info(dataset: Optional[str] = DatasetOpt,
              data_root: Optional[Path] = typer.Option(None, help="folder of the dataset's files"),
              params_path: Path = ParamsOpt) -> None:
    """Class table, imbalance ratio, split sizes and the Sec. 3.4 majority/minority split."""
    from .config import prepare_options
    from .datasets import create_dataset
    from .datasets.info import format_dataset_info

    params, name = _ctx(params_path, dataset)
    data = create_dataset(name, data_root=data_root or params.get("data_root"), **prepare_options(params, name))
    typer.echo(format_dataset_info(data))


@pool_app.command("info")
def pool_info(path: Path = typer.Argument(..., help="a pool folder, e.g. pools/digits/M2m/epoch_40")) -> None:
    """Provenance and accept/reject counts of a pool."""
    from .store import open_pool

    pool = open_pool(path)
    a = pool.attrs
    typer.echo(json.dumps({k: a[k] for k in ("dataset", "epoch", "seed", "g_hash", "f_hash", "summary",
                                             "params", "package_version") if k in a}, indent=1))


@pool_app.command("show")
def pool_show(path: Path = typer.Argument(..., help="a pool folder, e.g. pools/digits/M2m/epoch_40"),
              out: Path = typer.Option(Path("plots/pool.png"), help="PNG to write"),
              dataset: Optional[str] = DatasetOpt,
              examples: int = typer.Option(8, help="accepted image examples to draw"),
              params_path: Path = ParamsOpt) -> None:
    """Draw a pool: outcome per target class, g's confidence, and accepted x0 / x* pairs."""
    from .figures import plot_pool
    from .pipeline import load_prepared

    params, name = _ctx(params_path, dataset)
    typer.echo(plot_pool(path, load_prepared(_paths(name)["prepared"]), out, n_examples=examples))


@app.command()
def version() -> None:
    """Print the package version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except M2mError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
