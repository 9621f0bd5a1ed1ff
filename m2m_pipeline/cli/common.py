"""What every command shares: the --params and --dataset options, the params file and seed they
resolve to, the dataset's folder layout, and checks of names given on the command line.

Nothing here imports torch: ``m2m-pipeline --help`` and ``version`` load only typer and the
package's pure-Python modules (errors, layout); each command imports what it runs when it runs.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from ..errors import M2mError
from ..layout import Layout


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


ParamsOpt = typer.Option(Path("params.yaml"), "--params", help="params file with the defaults")
DatasetOpt = typer.Option(None, "--dataset", "-d", help="dataset name (default: params.yaml `dataset`)")


def context(params_path: Path, dataset: Optional[str]) -> tuple[dict[str, Any], str, Layout]:
    """(validated params, dataset name, the dataset's layout under the working folder)."""
    from ..params import load_params

    params = load_params(params_path)
    name = dataset or params.get("dataset")
    if not name:
        raise M2mError("no dataset given: pass --dataset or set `dataset` in params.yaml")
    return params, name, Layout(name)


ForceOpt = typer.Option(False, "--force", help="write into an output folder of a DVC stage recorded in "
                        "./dvc.lock (then `dvc commit` that stage, or `dvc repro` deletes the work)")

DVC_LOCK = Path("dvc.lock")


def dvc_outputs(lock: Path = DVC_LOCK) -> dict[str, str]:
    """{output path: stage} of the DVC lock file ``lock`` (paths relative to its folder); {} when
    there is none or it cannot be read."""
    import yaml

    try:
        stages = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}
    found = {}
    for stage, body in stages.items() if isinstance(stages, dict) else ():
        for out in (body or {}).get("outs") or [] if isinstance(body, dict) else []:
            if isinstance(out, dict) and isinstance(out.get("path"), str):
                found[out["path"]] = str(stage)
    return found


def refuse_dvc_outputs(*paths: Optional[Path], force: bool = False, lock: Path = DVC_LOCK) -> None:
    """The one rule between the CLI and DVC (docs/operations.md, "What DVC deletes"): a run or pool
    folder that ``dvc.lock`` records as a stage's output belongs to DVC, and `dvc repro` deletes it
    whenever that stage runs again; work the CLI wrote there and nobody committed would be lost. So
    the CLI refuses to write there, in one line naming the stage, unless ``--force``."""
    if force or not lock.is_file():
        return
    owners = dvc_outputs(lock)
    root = lock.resolve().parent
    for path in paths:
        if path is None:
            continue
        try:
            rel = Path(path).resolve().relative_to(root)
        except ValueError:
            continue
        for out, stage in owners.items():
            if rel == Path(out) or Path(out) in rel.parents:
                raise M2mError(f"{path} is an output of the DVC stage {stage} ({lock}): `dvc repro` deletes it "
                               f"whenever that stage runs again, so work written there by hand can be lost; write "
                               f"elsewhere (--out/--pools), run the stage (dvc repro {stage}), or pass --force and "
                               f"then `dvc commit {stage}`")


def seed_of(params: dict[str, Any], seed: Optional[int]) -> int:
    """The seed given, else the first of params.yaml's ``seeds``."""
    if seed is not None:
        from ..params import check_seed

        return check_seed(seed, "--seed")
    seeds = params.get("seeds") or [0]
    return int(seeds[0])


def method_name(name: str) -> str:
    """``name`` when it is a registered method, else a one-line error listing them. Checked at call
    time (the registry loads torch; methods may be added)."""
    from ..jobs.catalog import check_method_name

    return check_method_name(name, "--method")


def complete_method(incomplete: str) -> list[str]:
    from ..jobs.catalog import method_catalog

    return [spec.name for spec in method_catalog() if spec.name.startswith(incomplete)]


def class_index(value: Optional[str], names: list[str], opt: str) -> Optional[int]:
    """A class given by name or by index."""
    if value is None:
        return None
    if value in names:
        return names.index(value)
    if value.lstrip("-").isdigit() and 0 <= int(value) < len(names):
        return int(value)
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise M2mError(f"{opt} {value!r} is neither a class name nor an index 0..{len(names) - 1} ({shown})")
