"""The training commands: ``pretrain-g``, ``warm-f``, ``train-f``, and ``methods`` (the registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import M2mError
from .common import (DatasetOpt, ForceOpt, Loss, ParamsOpt, complete_method, context, method_name,
                     refuse_dvc_outputs, seed_of)


def pretrain_g_cmd(dataset: Optional[str] = DatasetOpt,
                   seed: Optional[int] = typer.Option(None, help="pipeline seed s; g trains with pretrain_g.seed + s "
                                                      "(default: the first of params seeds)"),
                   out: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/g-seed<s>)"),
                   force: bool = ForceOpt, params_path: Path = ParamsOpt) -> None:
    """Train g with plain ERM on the imbalanced training set (full schedule)."""
    from ..jobs.train import run_pretrain_g
    from ..params import preset_for

    params, name, layout = context(params_path, dataset)
    s = seed_of(params, seed)
    refuse_dvc_outputs(out or layout.g(s), force=force)
    res = run_pretrain_g(layout.prepared, preset_for(params, name), seed=params["pretrain_g"]["seed"] + s,
                         out_dir=out or layout.g(s))
    typer.echo(f"g: best val bACC {res.best_val_bacc:.1f} at epoch {res.best_epoch}; {res.last_path}")


def warm_f_cmd(dataset: Optional[str] = DatasetOpt, seed: Optional[int] = typer.Option(None, help="f's seed"),
               loss: Loss = typer.Option(Loss.ce, help="ce (ERM) or ldam"),
               out: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/warm-<loss>-seed<s>)"),
               force: bool = ForceOpt, params_path: Path = ParamsOpt) -> None:
    """Train f with ERM up to the preset's deferred epoch (the start of every deferred method).

    Example: m2m-pipeline warm-f --dataset digits --seed 0   (writes runs/digits/warm-ce-seed0)"""
    from ..jobs.train import run_warm_f
    from ..params import preset_for

    loss = loss.value
    params, name, layout = context(params_path, dataset)
    s = seed_of(params, seed)
    refuse_dvc_outputs(out or layout.warm(loss, s), force=force)
    res = run_warm_f(layout.prepared, preset_for(params, name), seed=s, out_dir=out or layout.warm(loss, s),
                     loss=loss)
    typer.echo(f"warm f ({loss}): {res.last_path}")


def train_f_cmd(dataset: Optional[str] = DatasetOpt,
                method: str = typer.Option("M2m", help="a registered method: ERM, RS, SMOTE, RW, CB-RW, DRS, DRW, "
                                           "Focal, LDAM, LDAM-DRW, M2m, LDAM-M2m, or an ablation (M2m-Clean, "
                                           "M2m-Rand, ...; `m2m-pipeline methods` lists them)",
                                           autocompletion=complete_method),
                seed: Optional[int] = typer.Option(None, help="f's seed (default: the first of params seeds)"),
                out: Optional[Path] = typer.Option(None, help="run folder (default runs/<dataset>/<method>-seed<s>)"),
                pools: Optional[Path] = typer.Option(None, help="where a translating method writes its pools "
                                                     "(default pools/<dataset>/<method>-seed<s>, or <out>/pools "
                                                     "when --out is given)"),
                reuse_pools: Optional[Path] = typer.Option(None, "--reuse-pools", help="the pools an ablation "
                                                           "re-decides (default pools/<dataset>/M2m-seed<s>)"),
                mode: Optional[str] = typer.Option(None, "--mode", help="reuse | fresh, for an ablation that "
                                                   "re-decides rows (M2m-Clean, M2m-Rand, ...): reuse applies its "
                                                   "rule to M2m's stored rows (no translation); fresh translates "
                                                   "each deferred epoch with its own f, then the same rule (the "
                                                   "paper's definition, writes pools of its own). Default: the "
                                                   "mode params.yaml's ablations section gives it, else reuse"),
                force: bool = ForceOpt, params_path: Path = ParamsOpt) -> None:
    """Train f with one method to the end of the schedule; an interrupted run resumes.

    Translating methods write their pools to pools/<dataset>/<method>-seed<s>/epoch_<e>; the
    ablations M2m-Clean, M2m-Rand, M2m-No-Reject, M2m-No-Gamma and M2m-Gamma translate nothing and
    re-decide the M2m run's pools of the same seed.

    Example: m2m-pipeline train-f --dataset digits --method M2m --seed 0   (runs/digits/M2m-seed0,
    pools/digits/M2m-seed0/epoch_40 ... epoch_59); then
    m2m-pipeline train-f --dataset digits --method M2m-Clean --seed 0   (reads those pools), or
    m2m-pipeline train-f --dataset digits --method M2m-Clean --seed 0 --mode fresh   (translates)"""
    from ..jobs.catalog import reuses, translates
    from ..jobs.dispatch import method_inputs, resolve_mode, run_any_train, translation_backend
    from ..params import fit_options, m2m_config, preset_for

    params, name, layout = context(params_path, dataset)
    method = method_name(method)
    s = seed_of(params, seed)
    mode = resolve_mode(params, method, mode)   # an unknown mode, or a mode for a method without one: one line
    if reuse_pools is not None and not reuses(method, mode):
        raise M2mError(f"--reuse-pools is for an ablation that re-decides M2m's stored rows; {method}"
                       f"{' in mode ' + mode if mode else ''} translates its own")
    inputs = method_inputs(layout, method, s, mode)
    if reuse_pools is not None:
        inputs["reused_pools"] = reuse_pools
    out_dir = out or layout.run(method, s)
    pools_dir = pools or (out / "pools" if out is not None else layout.pools(method, s))

    refuse_dvc_outputs(out_dir, pools_dir if translates(method, mode) else None, force=force)
    res = run_any_train(layout.prepared, preset_for(params, name), method=method, seed=s, mode=mode,
                        out_dir=out_dir, pools_dir=pools_dir,
                        m2m=m2m_config(params, name), **inputs,
                        method_params=(params.get("ablation_params") or {}).get(method),
                        options=fit_options(params), backend=translation_backend(params))
    typer.echo(f"{method}{' (mode ' + mode + ')' if mode else ''}: best val bACC {res.best_val_bacc:.1f} at epoch {res.best_epoch}; {res.last_path}")


def _configured_modes() -> dict[str, str]:
    """{ablation: mode} of params.yaml's ``ablations`` in the working folder ({} without a readable one)."""
    from ..params import ablation_modes, load_params

    try:
        return ablation_modes(load_params())
    except M2mError:
        return {}


def methods_cmd() -> None:
    """List every registered method: the paper's baselines and M2m, then M2m's ablations, then the
    baselines published after M2m (what each changes, where the paper or its source reports it, and
    whether it translates or re-decides M2m's pools)."""
    from ..jobs.catalog import method_catalog

    modes = _configured_modes()
    for spec in method_catalog():
        kind = (f"re-decides the pools of {spec.reuse}" if spec.reuse else "translates (own pools)"
                if spec.translate else "no pools")
        if spec.redecides:
            now = f"; params.yaml runs it in mode {modes[spec.name]}" if spec.name in modes else ""
            kind = (f"modes: reuse (re-decides the stored rows of {spec.reuse}'s pools) | fresh (translates "
                    f"with its own f, then the same rule){now}")
        label = (spec.paper_table or spec.source
                 or (f"variant of {spec.variant_of}, no paper value" if spec.variant_of else ""))
        where = f" [{label}]" if label else ""
        typer.echo(f"{spec.name:<15} {spec.description}{where}; {kind}")
