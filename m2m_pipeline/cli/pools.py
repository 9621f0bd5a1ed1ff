"""The ``pools`` group: list, show, count and report translation pools (the pool browser's face)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from ..errors import M2mError
from .common import class_index

pools_app = typer.Typer(help="Browse translation pools: ls, show, stats, report, verify, migrate. A RUN is a folder of "
                        "epoch pools (pools/digits/M2m-seed0) or one pool (pools/digits/M2m-seed0/epoch_40).",
                        no_args_is_help=True)

RunArg = typer.Argument(..., help="a run folder of epoch pools (pools/digits/M2m-seed0) or one pool "
                        "(pools/digits/M2m-seed0/epoch_40)")
EpochOpt = typer.Option(None, "--epoch", "-e", help="the epoch's pool inside RUN (default: the last one)")
PreparedOpt = typer.Option(None, "--prepared", help="prepared dataset the pool was made from (default "
                           "data/prepared/<the pool's dataset>)")


def _pool_and_data(run: Path, epoch: Optional[int], prepared: Optional[Path]):
    """(the pool's folder, the prepared dataset it was made from). The default prepared folder is
    the one beside a pool at its layout place (pools/<slug>/<run>/epoch_<e> -> data/prepared/<slug>,
    the name prepare wrote), else data/prepared/<slug of the pool's dataset attribute>."""
    from ..jobs.data import load_prepared
    from ..layout import Layout, prepared_of_pool
    from ..pools.browse.listing import pool_entry, resolve_pool

    path = resolve_pool(run, epoch)
    entry = pool_entry(path)
    if not entry.complete:
        raise M2mError(f"pool {path} is incomplete (no completion marker); delete it and write it again")
    if entry.problem is not None:
        raise M2mError(f"pool {path} {entry.problem}")
    if prepared is None:
        beside = prepared_of_pool(path)
        prepared = beside if beside is not None and beside.exists() else Layout(entry.dataset or "").prepared
    return path, load_prepared(prepared)


@pools_app.command("ls")
def pools_ls(root: Path = typer.Argument(Path("pools"), help="folder to search (e.g. pools, pools/digits)"),
             as_json: bool = typer.Option(False, "--json", help="print JSON instead of a table")) -> None:
    """One row per pool (run and epoch): attempts, accepted, rejections by reason, size, hashes.

    Example: m2m-pipeline pools ls pools/digits"""
    from ..pools.browse.listing import format_size, list_pools

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
                      format_size(e.size_bytes), str(e.created),
                      "DAMAGED" if e.problem is not None else "yes" if e.complete else "NO", str(e.g_hash),
                      str(e.f_hash))
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    for e in entries:   # listed above from their folder names; why each is flagged
        if e.problem is not None:
            typer.echo(f"DAMAGED {e.path}: {e.problem}")


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
    from ..pools.browse.output import check_show_out
    from ..pools.browse.views import show_pool

    if accepted and rejected:
        raise M2mError("--accepted and --rejected exclude each other; give one or neither")
    check_show_out(out)   # before any work: an extension pools show writes, not a folder, not a foreign file
    path, data = _pool_and_data(run, epoch, prepared)
    names = list(data.class_names)
    _, line = show_pool(path, data, out, target=class_index(target, names, "--target"),
                        seed_class=class_index(seed_class, names, "--seed-class"),
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
    from ..pools.browse.output import check_out_folder, mark_out_folder
    from ..pools.browse.plots import plot_epoch_rates, plot_heatmap
    from ..pools.browse.stats import format_stats, stats_of

    out = check_out_folder(out)   # before any work: new, empty or the browser's folder
    path, data = _pool_and_data(run, epoch, prepared)
    names = list(data.class_names)
    stats = stats_of(path, names, data.train.y)
    mark_out_folder(out, ("heatmap.png", "epochs.png"))
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
    from ..pools.browse.output import check_out_folder
    from ..pools.browse.report import build_pool_report

    check_out_folder(out)   # before any work: new, empty or the browser's folder
    path, data = _pool_and_data(run, epoch, prepared)
    typer.echo(f"wrote {build_pool_report(path, data, out, per_class=per_class)}")


@pools_app.command("info")
def pools_info(path: Path = typer.Argument(..., help="a pool folder, e.g. pools/digits/M2m-seed0/epoch_40")) -> None:
    """Provenance and accept/reject counts of a pool, as JSON."""
    from ..pools.browse.stats import pool_info

    typer.echo(json.dumps(pool_info(path), indent=1))


@pools_app.command("verify")
def pools_verify(run: Path = typer.Argument(..., help="a run folder of epoch pools (pools/digits/M2m-seed0), one "
                                            "pool, or a folder of runs (pools/digits)")) -> None:
    """Check every pool of RUN against what its writer recorded: completion marker, files and sizes,
    the sha256 of every file, every chunk decoded, no epoch missing between the first and the last.
    One line per pool; exits 2 naming the first damaged pool and epoch (e.g. after a `dvc pull`).

    Example: m2m-pipeline pools verify pools/digits/M2m-seed0"""
    from ..pools.verify import verify_pools

    checks = verify_pools(run)
    for check in checks:
        typer.echo(check.line())
    bad = [c for c in checks if not c.ok]
    if bad:
        raise M2mError(f"{len(bad)} of {len(checks)} pools under {run} are damaged; first: {bad[0].describe()}")


@pools_app.command("migrate")
def pools_migrate(path: Path = typer.Argument(..., help="a run folder of epoch pools (pools/digits/M2m-seed0), one "
                                              "pool, a folder of runs (pools/digits), or a prepared dataset "
                                              "(data/prepared/digits)")) -> None:
    """Rewrite pools (or a prepared dataset) written by an older version in the current format:
    a crc32c checksum in every chunk, the attributes' and the metadata's sha256, all checked on
    every read. What the old folder recorded is checked first (a damaged one is refused, not
    sealed); each folder is rebuilt beside the old one and renamed into place. One line a folder;
    exits 2 naming the first that failed.

    Example: m2m-pipeline pools migrate pools/digits/M2m-seed0"""
    from ..pools.migrate import migrate

    done = migrate(path)
    for m in done:
        typer.echo(m.line())
    bad = [m for m in done if m.problem is not None]
    if bad:
        raise M2mError(f"{len(bad)} of {len(done)} folders under {path} were not migrated; first: {bad[0].path}: "
                       f"{bad[0].problem}")
