"""``generate``: one epoch's pool on its own, from a g and an f checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import M2mError
from .common import DatasetOpt, ParamsOpt, context, seed_of


def check_generate_inputs(name: str, seed: int, *, prepared: Path, g: Optional[Path], f: Optional[Path],
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
    from ..jobs.dispatch import translation_backend
    from ..jobs.generate import attempts_bar, check_pool_out, checkpoint_epoch, run_generate
    from ..params import check_epoch, m2m_config, preset_for

    params, name, layout = context(params_path, dataset)
    seed = seed_of(params, seed)
    # where translation runs: --workers / --scheduler over params `translate` (a bad value fails here)
    backend = translation_backend(params, workers=workers, scheduler=scheduler)
    if epoch is not None:   # bad arguments first, then missing files
        epoch = check_epoch(epoch, preset_for(params, name), "--epoch")
    check_generate_inputs(name, seed, prepared=layout.prepared, g=g, f=f, g_default=layout.g_checkpoint(seed),
                          f_default=layout.warm_checkpoint("ce", seed))
    f = f or layout.warm_checkpoint("ce", seed)
    if epoch is None:
        epoch = checkpoint_epoch(f)
    out = out or layout.generate_pool(epoch)
    check_pool_out(out)   # before any work: --out must not hold the user's own files
    # the backend first: a --scheduler that is not a dask scheduler is one line before the progress bar
    with backend, attempts_bar(layout.prepared, preset_for(params, name), seed, epoch) as bar:
        s = run_generate(layout.prepared, preset_for(params, name), g_path=g or layout.g_checkpoint(seed),
                         f_path=f, cfg=m2m_config(params, name, batch_size=batch_size), seed=seed, out=out,
                         epoch=epoch, progress=bar.update, backend=backend)
    typer.echo(f"pool {s.path}: {s.n_slots} slots, {s.n_attempts} attempts, {s.n_accepted} accepted "
               f"({100 * s.accept_rate:.1f}%); reasons {s.reasons}")
