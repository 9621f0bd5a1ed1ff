"""The command line: a thin face over m2m_pipeline.pipeline, with defaults from params.yaml."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from . import __version__


class M2mError:
    """Stands for :class:`m2m_pipeline.utils.M2mError` without importing utils (which imports torch)
    when the CLI starts: ``raise M2mError(msg)`` builds and raises the real one. ``main`` catches
    the real class through ``sys.modules`` (no utils loaded: none can have been raised), so
    ``m2m-pipeline version`` and ``--help`` never load torch."""

    def __new__(cls, *args):
        from .utils import M2mError as RealM2mError

        return RealM2mError(*args)


def _is_user_error(exc: BaseException) -> bool:
    utils = sys.modules.get(f"{__package__}.utils")
    return utils is not None and isinstance(exc, utils.M2mError)


class Which(str, Enum):
    best_val = "best_val"
    last = "last"
    both = "both"


class Checkpoint(str, Enum):
    best_val = "best_val"
    last = "last"


class Loss(str, Enum):
    ce = "ce"
    ldam = "ldam"


def _method(name: str) -> str:
    """``name`` when it is a registered method, else a one-line error listing them. Checked at call
    time against ``training.list_methods()`` (importing it loads torch; methods may be added)."""
    from .training.methods import list_methods

    known = list_methods()
    if name not in known:
        raise M2mError(f"--method {name!r} is not a method; choose one of: {', '.join(known)}")
    return name


def _complete_method(incomplete: str) -> list[str]:
    from .training.methods import list_methods

    return [m for m in list_methods() if m.startswith(incomplete)]

app = typer.Typer(help="M2m (major-to-minor translation, CVPR 2020) as a staged pipeline: prepare data, "
                  "pretrain g, translate majority samples into zarr pools, train f, evaluate.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True)
pool_app = typer.Typer(help="Inspect translation pools (older names of `pools info/show`).", no_args_is_help=True)
pools_app = typer.Typer(help="Browse translation pools: ls, show, stats, report. A RUN is a folder of epoch pools "
                        "(pools/digits/M2m-seed0) or one pool (pools/digits/M2m-seed0/epoch_40).",
                        no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(pools_app, name="pools")
app.add_typer(pool_app, name="pool", hidden=True)

ParamsOpt = typer.Option(Path("params.yaml"), "--params", help="params file with the defaults")
DatasetOpt = typer.Option(None, "--dataset", "-d", help="dataset name (default: params.yaml `dataset`)")


def _translate_cluster(params: dict[str, Any], workers: Optional[int], scheduler: Optional[str]) -> dict[str, Any]:
    """Where translation runs: --workers / --scheduler, else params ``translate.workers`` /
    ``translate.scheduler``, else (also for workers 0) in this process."""
    section = params.get("translate") or {}
    workers = workers if workers is not None else section.get("workers")
    scheduler = scheduler if scheduler is not None else section.get("scheduler")
    if workers is not None and scheduler:
        raise M2mError("pass either --workers (a local cluster) or --scheduler (a running one), not both")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 0):
        raise M2mError(f"--workers / translate.workers must be an integer >= 0 (0: in this process), got {workers!r}")
    workers = workers or None
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise M2mError(f"--scheduler / translate.scheduler must be an address like tcp://HOST:8786, got {scheduler!r}")
    return {"workers": workers, "scheduler": scheduler or None}


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
        from .config import check_seed

        return check_seed(seed, "--seed")
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
               loss: Loss = typer.Option(Loss.ce, help="ce (ERM) or ldam"),
               out: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/warm-<loss>-seed<s>)"),
               params_path: Path = ParamsOpt) -> None:
    """Train f with ERM up to the preset's deferred epoch (the start of every deferred method).

    Example: m2m-pipeline warm-f --dataset digits --seed 0   (writes runs/digits/warm-ce-seed0)"""
    from .config import preset_for
    from .pipeline import run_warm_f

    loss = loss.value

    params, name = _ctx(params_path, dataset)
    s = _seed(params, seed)
    res = run_warm_f(_paths(name)["prepared"], preset_for(params, name), seed=s,
                     out_dir=out or _paths(name)["runs"] / _run(f"warm-{loss}", s), loss=loss)
    typer.echo(f"warm f ({loss}): {res.last_path}")


@app.command("train-f")
def train_f_cmd(dataset: Optional[str] = DatasetOpt,
                method: str = typer.Option("M2m", help="a registered method: ERM, RS, SMOTE, RW, CB-RW, DRS, DRW, "
                                           "Focal, LDAM, LDAM-DRW, M2m, LDAM-M2m, or an ablation (M2m-Clean, "
                                           "M2m-Rand, ...; `m2m-pipeline methods` lists them)",
                                           autocompletion=_complete_method),
                seed: Optional[int] = typer.Option(None, help="f's seed (default: the first of params seeds)"),
                out: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/<method>-seed<s>)"),
                pools: Optional[Path] = typer.Option(None, help="where a translating method writes its pools "
                                                     "(default pools/<dataset>/<method>-seed<s>, or <out>/pools "
                                                     "when --out is given)"),
                reuse_pools: Optional[Path] = typer.Option(None, "--reuse-pools", help="the pools an ablation "
                                                           "re-decides (default pools/<dataset>/M2m-seed<s>)"),
                params_path: Path = ParamsOpt) -> None:
    """Train f with one method to the end of the schedule; an interrupted run resumes.

    Translating methods write their pools to pools/<dataset>/<method>-seed<s>/epoch_<e>; the
    ablations M2m-Clean, M2m-Rand, M2m-No-Reject, M2m-No-Gamma and M2m-Gamma translate nothing and
    re-decide the M2m run's pools of the same seed.

    Example: m2m-pipeline train-f --dataset digits --method M2m --seed 0   (runs/digits/M2m-seed0,
    pools/digits/M2m-seed0/epoch_40 ... epoch_59); then
    m2m-pipeline train-f --dataset digits --method M2m-Clean --seed 0   (reads those pools)"""
    from .config import fit_options, m2m_config, preset_for
    from .pipeline import run_any_train
    from .training import get_method

    params, name = _ctx(params_path, dataset)
    spec = get_method(_method(method))
    p = _paths(name)
    s = _seed(params, seed)
    run_dir = out or p["runs"] / _run(method, s)
    pools_dir = pools or (out / "pools" if out is not None else p["pools"] / _run(method, s))
    reused = reuse_pools or (p["pools"] / _run(spec.reuse, s) if spec.reuse else None)
    res = run_any_train(p["prepared"], preset_for(params, name), method=method, seed=s, out_dir=run_dir,
                        warm_dir=p["runs"] / _run(f"warm-{spec.warm or 'ce'}", s),
                        g_path=p["runs"] / _run("g", s) / "best.pt", g2_path=p["runs"] / _run("ERM", s) / "best.pt",
                        m2m=m2m_config(params, name), pools_dir=pools_dir, reused_pools=reused,
                        method_params=(params.get("ablation_params") or {}).get(method),
                        options=fit_options(params),
                        workers=(params.get("translate") or {}).get("workers") or None,
                        scheduler=(params.get("translate") or {}).get("scheduler") or None)
    typer.echo(f"{method}: best val bACC {res.best_val_bacc:.1f} at epoch {res.best_epoch}; {res.last_path}")


def _check_generate_inputs(name: str, seed: int, *, prepared: Path, g: Optional[Path], f: Optional[Path],
                           g_default: Path, f_default: Path) -> None:
    """Every missing input of ``generate`` in one error, each with the command that makes it."""
    missing = []
    if not prepared.exists():
        missing.append(f"prepared data {prepared} (make it: m2m-pipeline prepare --dataset {name})")
    for given, default, what, cmd in (
            (g, g_default, "g checkpoint", f"m2m-pipeline pretrain-g --dataset {name} --seed {seed}"),
            (f, f_default, "f checkpoint", f"m2m-pipeline warm-f --dataset {name} --seed {seed}")):
        path = given or default
        if not Path(path).is_file():
            how = f"make it: {cmd}" if given is None else f"given with --{what[0]}; the default is made by: {cmd}"
            missing.append(f"{what} {path} ({how})")
    if missing:
        raise M2mError(f"generate needs {len(missing)} missing input{'s' if len(missing) > 1 else ''}: "
                       + "; ".join(missing))


def _attempts_bar(prepared: Path, preset: Any, seed: int, epoch: int):
    """A progress bar over the epoch's translation attempts, its total taken from the epoch's plan
    (the same ``make_plan`` call as the job's), quiet-ish in log files (utils.progress_bar)."""
    from .jobs.data import load_prepared
    from .plan import make_plan
    from .utils import progress_bar

    data = load_prepared(prepared)
    plan = make_plan(data.train.y, data.class_counts, seed=seed, epoch=epoch, order="balanced", attempts=True,
                     augment=data.augment, batch_size=preset.batch_size)
    return progress_bar(total=int(plan.attempt.sum()), desc=f"translate epoch {epoch}", unit="row", leave=True)


@app.command()
def generate(dataset: Optional[str] = DatasetOpt,
             g: Optional[Path] = typer.Option(None, "--g", help="g checkpoint (default runs/<dataset>/g-seed<s>/best.pt: g at its best validation epoch)"),
             f: Optional[Path] = typer.Option(None, "--f", help="f checkpoint (default runs/<dataset>/warm-ce-seed<s>/last.pt)"),
             epoch: Optional[int] = typer.Option(None, help="epoch whose plan to translate (default: f's epoch)"),
             out: Optional[Path] = typer.Option(None, help="pool folder (default pools/<dataset>/generate/epoch_<e>)"),
             seed: Optional[int] = typer.Option(None, help="seed of the plan and draws (default: the first of params seeds)"),
             batch_size: Optional[int] = typer.Option(None, help="translation batch size (default params m2m)"),
             workers: Optional[int] = typer.Option(None, help="translate on a local dask cluster of N worker processes, N <= cores (default params translate.workers; 0 or none: in this process)"),
             scheduler: Optional[str] = typer.Option(None, help="translate on the running dask cluster at tcp://HOST:PORT (default params translate.scheduler); see docs/operations.md"),
             params_path: Path = ParamsOpt) -> None:
    """Translate one epoch's pool on its own, from a g and an f checkpoint.

    Killed at any point, the same command run again keeps the shards already written and ends
    with the same pool (docs/operations.md).

    Example: m2m-pipeline generate --dataset digits --seed 0 --epoch 40   (pools/digits/generate/epoch_40,
    from runs/digits/g-seed0/best.pt and runs/digits/warm-ce-seed0/last.pt)"""
    from .config import check_epoch, m2m_config, preset_for
    from .pipeline import run_generate
    from .utils import check_output_dir
    from .training import load_checkpoint

    params, name = _ctx(params_path, dataset)
    p = _paths(name)
    seed = _seed(params, seed)
    cluster = _translate_cluster(params, workers, scheduler)
    if epoch is not None:   # bad arguments first, then missing files
        epoch = check_epoch(epoch, preset_for(params, name), "--epoch")
    _check_generate_inputs(name, seed, prepared=p["prepared"], g=g, f=f,
                           g_default=p["runs"] / _run("g", seed) / "best.pt",
                           f_default=p["runs"] / _run("warm-ce", seed) / "last.pt")
    f = f or p["runs"] / _run("warm-ce", seed) / "last.pt"
    if epoch is None:
        epoch = int(load_checkpoint(f)["epoch"])
    out = out or p["pools"] / "generate" / f"epoch_{epoch}"
    check_output_dir(out, "m2m-pool")   # before any work: --out must not hold the user's own files
    with _attempts_bar(p["prepared"], preset_for(params, name), seed, epoch) as bar:
        s = run_generate(p["prepared"], preset_for(params, name), g_path=g or p["runs"] / _run("g", seed) / "best.pt",
                         f_path=f, cfg=m2m_config(params, name, batch_size=batch_size), seed=seed, out=out,
                         epoch=epoch, progress=bar.update, **cluster)
    typer.echo(f"pool {s.path}: {s.n_slots} slots, {s.n_attempts} attempts, {s.n_accepted} accepted "
               f"({100 * s.accept_rate:.1f}%); reasons {s.reasons}")


@app.command()
def evaluate(dataset: Optional[str] = DatasetOpt,
             method: str = typer.Option(..., help="a registered method, e.g. M2m (checked when run)",
                                        autocompletion=_complete_method),
             seed: Optional[int] = typer.Option(None, help="the run's seed (default: the first of params seeds)"),
             run: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/<method>-seed<s>)"),
             out: Optional[Path] = typer.Option(None, help="metrics JSON (default metrics/<dataset>/<method>-seed<s>.json)"),
             params_path: Path = ParamsOpt) -> None:
    """Test a run at its best-validation epoch and at its last epoch; write the metrics JSON.

    Example: m2m-pipeline evaluate --dataset digits --method M2m --seed 0   (metrics/digits/M2m-seed0.json)"""
    from .evaluation import results_table
    from .pipeline import run_evaluate

    params, name = _ctx(params_path, dataset)
    method = _method(method)
    p = _paths(name)
    s = _seed(params, seed)
    res = run_evaluate(p["prepared"], run or p["runs"] / _run(method, s), method=method,
                       out=out or p["metrics"] / f"{_run(method, s)}.json", seed=s)
    typer.echo(results_table([res]))


@app.command()
def table(dataset: Optional[str] = DatasetOpt,
          which: Which = typer.Option(Which.both, help="best_val (authors' selection), last, or both"),
          params_path: Path = ParamsOpt) -> None:
    """Print the evaluation table of every run evaluated so far (metrics/<dataset>/*.json)."""
    from .evaluation import load_results, results_table

    which = which.value
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
           which: Checkpoint = typer.Option(Checkpoint.best_val, help="best_val (authors' selection) or last"),
           all_files: bool = typer.Option(False, "--all-files", help="read every metrics file of the folder, not "
                                          "only the runs of params evaluate.methods x seeds"),
           ablations: bool = typer.Option(False, "--ablations", help="the ablation table instead (Tables 3-5 style): "
                                          "Major, Minor, bACC, GM and the relative gap to M2m; the paper's values "
                                          "beside on cifar10-lt"),
           params_path: Path = ParamsOpt) -> None:
    """The runs of params evaluate.methods x seeds in one table: mean ± std over seeds, the paper's
    numbers beside (other metrics files are stale results: named, not read).

    Example: m2m-pipeline report --dataset digits --ablations   (M2m, M2m-Clean, M2m-Rand, ...)"""
    from .config import prepare_options, report_runs
    from .datasets import dataset_slug
    from .report import report as build

    which = which.value
    params, name = _ctx(params_path, dataset)
    default = Path("reports") / (dataset_slug(name) + ("-last" if which == "last" else ""))
    methods, seeds = (None, None) if all_files else report_runs(params)
    if ablations:
        from .report import ablation_report, load_metrics_dir, select_metrics_files

        folder = metrics / dataset_slug(name)
        files = None if methods is None else select_metrics_files(folder, methods, seeds)[0]
        grouped = load_metrics_dir(folder, name, files=files)
        table = ablation_report(grouped, dataset=name, rho=prepare_options(params, name).get("rho"), which=which)
        target = (out or default) / "ablations.md"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"# Ablations: {name}\n\n{table}")
        typer.echo(f"# Ablations: {name}\n\n{table}")
        return
    typer.echo(build(name, metrics, out or default, rho=prepare_options(params, name).get("rho"), which=which,
                     methods=methods, seeds=seeds))


@app.command("methods")
def methods_cmd() -> None:
    """List every registered method: the paper's baselines and M2m, then M2m's ablations (what each
    changes, where the paper reports it, and whether it translates or re-decides M2m's pools)."""
    from .training.methods import get_method, list_methods

    for name in list_methods():
        spec = get_method(name)
        kind = (f"re-decides the pools of {spec.reuse}" if spec.reuse else "translates (own pools)"
                if spec.translate else "no pools")
        where = f" [{spec.paper_table}]" if spec.paper_table else ""
        typer.echo(f"{name:<15} {spec.description}{where}; {kind}")


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
def pool_info(path: Path = typer.Argument(..., help="a pool folder, e.g. pools/digits/M2m-seed0/epoch_40")) -> None:
    """Provenance and accept/reject counts of a pool."""
    from .store import open_pool

    pool = open_pool(path)
    a = pool.attrs
    typer.echo(json.dumps({k: a[k] for k in ("dataset", "epoch", "seed", "g_hash", "f_hash", "summary",
                                             "params", "package_version") if k in a}, indent=1))


@pool_app.command("show")
def pool_show(path: Path = typer.Argument(..., help="a pool folder, e.g. pools/digits/M2m-seed0/epoch_40"),
              out: Path = typer.Option(Path("plots/pool.png"), help="PNG to write"),
              dataset: Optional[str] = DatasetOpt,
              examples: int = typer.Option(8, help="accepted image examples to draw"),
              params_path: Path = ParamsOpt) -> None:
    """Draw a pool: outcome per target class, g's confidence, and accepted x0 / x* pairs."""
    from .figures import plot_pool
    from .pipeline import load_prepared

    params, name = _ctx(params_path, dataset)
    typer.echo(plot_pool(path, load_prepared(_paths(name)["prepared"]), out, n_examples=examples))


RunArg = typer.Argument(..., help="a run folder of epoch pools (pools/digits/M2m-seed0) or one pool "
                        "(pools/digits/M2m-seed0/epoch_40)")
EpochOpt = typer.Option(None, "--epoch", "-e", help="the epoch's pool inside RUN (default: the last one)")
PreparedOpt = typer.Option(None, "--prepared", help="prepared dataset the pool was made from (default "
                           "data/prepared/<the pool's dataset>)")


def _pool_and_data(run: Path, epoch: Optional[int], prepared: Optional[Path]):
    from .datasets import dataset_slug
    from .jobs.data import load_prepared
    from .pools.browser import pool_entry, resolve_pool

    path = resolve_pool(run, epoch)
    entry = pool_entry(path)
    if not entry.complete:
        raise M2mError(f"pool {path} is incomplete (no completion marker); delete it and write it again")
    prepared = prepared or Path("data/prepared") / dataset_slug(entry.dataset or "")
    return path, load_prepared(prepared)


def _class_index(value: Optional[str], names: list[str], opt: str) -> Optional[int]:
    """A class given by name or by index."""
    if value is None:
        return None
    if value in names:
        return names.index(value)
    if value.lstrip("-").isdigit() and 0 <= int(value) < len(names):
        return int(value)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise M2mError(f"{opt} {value!r} is neither a class name nor an index 0..{len(names) - 1} ({shown})")


@pools_app.command("ls")
def pools_ls(root: Path = typer.Argument(Path("pools"), help="folder to search (e.g. pools, pools/digits)"),
             as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")) -> None:
    """One row per pool (run and epoch): attempts, accepted, rejections by reason, size, hashes.

    Example: m2m-pipeline pools ls pools/digits"""
    from .pools.browser import format_size, list_pools

    entries = list_pools(root)
    if as_json:
        typer.echo(json.dumps([e.as_dict() for e in entries], indent=1))
        return
    if not entries:
        typer.echo(f"no pools under {root}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"pools under {root}", show_lines=False)
    for col, justify in (("dataset", "left"), ("method", "left"), ("seed", "right"), ("epoch", "right"),
                         ("attempts", "right"), ("accepted", "right"), ("rate %", "right"),
                         ("rejected by reason", "left"), ("size", "right"),
                         ("created (UTC)", "left"), ("complete", "left"), ("g", "left"), ("f", "left")):
        table.add_column(col, justify=justify)
    for e in entries:
        r = e.reasons
        table.add_row(str(e.dataset), str(e.method), str(e.seed), str(e.epoch), str(e.attempts), str(e.accepted),
                      "-" if e.accept_rate is None else f"{100 * e.accept_rate:.1f}",
                      ", ".join(f"{k} {v}" for k, v in r.items() if k != "accepted" and v) or "-",
                      format_size(e.size_bytes), str(e.created), "yes" if e.complete else "NO", str(e.g_hash),
                      str(e.f_hash))
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@pools_app.command("show")
def pools_show(run: Path = RunArg, epoch: Optional[int] = EpochOpt,
               target: Optional[str] = typer.Option(None, "--target", help="only rows translated to this class "
                                                    "(name or index)"),
               seed_class: Optional[str] = typer.Option(None, "--seed-class", help="only rows whose seed x0 is of "
                                                        "this class (name or index)"),
               accepted: bool = typer.Option(False, "--accepted", help="only accepted rows"),
               rejected: bool = typer.Option(False, "--rejected", help="only rejected rows"),
               limit: int = typer.Option(16, "--limit", min=1, help="rows to show, stratified over target classes"),
               out: Path = typer.Option(..., "--out", help="file to write: a PNG grid for images, markdown for "
                                        "bag-of-words and embeddings"),
               prepared: Optional[Path] = PreparedOpt) -> None:
    """Rows of a pool as x0 | x* | x*-x0 (images, the paper's Figure 6), the words switched on and
    off (bag of words), or the nearest vocabulary tokens of x0 and x* (embeddings).

    Example: m2m-pipeline pools show pools/digits/M2m-seed0 --epoch 40 --accepted --out plots/pool-40.png"""
    from .pools.browser import show_pool

    if accepted and rejected:
        raise M2mError("--accepted and --rejected exclude each other; give one or neither")
    path, data = _pool_and_data(run, epoch, prepared)
    names = list(data.class_names)
    _, line = show_pool(path, data, out, target=_class_index(target, names, "--target"),
                        seed_class=_class_index(seed_class, names, "--seed-class"),
                        accepted=True if accepted else (False if rejected else None), limit=limit)
    typer.echo(line)


@pools_app.command("stats")
def pools_stats(run: Path = RunArg, epoch: Optional[int] = EpochOpt,
                out: Path = typer.Option(Path("plots/pool-stats"), "--out", help="folder for heatmap.png "
                                         "(acceptance by k0, k) and epochs.png (accept rate per class over epochs)"),
                as_json: bool = typer.Option(False, "--json", help="print every number as JSON"),
                prepared: Optional[Path] = PreparedOpt) -> None:
    """Per (k0, k) pair: attempts, accept rate beside eq. (3)'s, g's mean loss; per target class:
    class size and slots replaced; classes with no accepted translation flagged.

    Example: m2m-pipeline pools stats pools/digits/M2m-seed0 --epoch 40 --out plots/pool-stats"""
    from .pools.browser import add_slot_counts, format_stats, plot_epoch_rates, plot_heatmap, pool_stats
    from .store import open_pool

    path, data = _pool_and_data(run, epoch, prepared)
    pool = open_pool(path)
    names = list(data.class_names)
    stats = add_slot_counts(pool_stats(pool, class_names=names), pool, data.train.y)
    heat = plot_heatmap(stats, names, Path(out) / "heatmap.png")
    line = plot_epoch_rates(path.parent, names, Path(out) / "epochs.png")
    if as_json:
        typer.echo(json.dumps(stats, indent=1, default=float))
    else:
        typer.echo(format_stats(stats))
    typer.echo(f"wrote {heat} and {line}")


@pools_app.command("report")
def pools_report(run: Path = RunArg, epoch: Optional[int] = EpochOpt,
                 out: Path = typer.Option(..., "--out", help="folder for index.html (self-contained, opens offline)"),
                 per_class: int = typer.Option(8, "--per-class", min=1, help="examples in each target class's grid"),
                 prepared: Optional[Path] = PreparedOpt) -> None:
    """One self-contained HTML page (images inlined): tables, heatmap, one grid per target class.

    Example: m2m-pipeline pools report pools/digits/M2m-seed0 --epoch 40 --out reports/pool-digits-40"""
    from .pools.html import build_report

    path, data = _pool_and_data(run, epoch, prepared)
    typer.echo(f"wrote {build_report(path, data, out, per_class=per_class)}")


@pools_app.command("info")
def pools_info(path: Path = typer.Argument(..., help="a pool folder, e.g. pools/digits/M2m-seed0/epoch_40")) -> None:
    """Provenance and accept/reject counts of a pool, as JSON."""
    pool_info(path)


@app.command()
def version() -> None:
    """Print the package version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except OSError as exc:
        # a read-only or full output location outside a pipeline job (report, plots): one line too
        from .utils import os_error_message

        message = os_error_message(exc)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        sys.exit(2)
    except Exception as exc:  # M2mError, matched without importing utils (see the M2mError stand-in)
        if not _is_user_error(exc):
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
