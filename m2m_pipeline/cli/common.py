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
