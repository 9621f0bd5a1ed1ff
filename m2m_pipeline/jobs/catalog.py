"""The registries as the CLI lists and checks them: dataset names and a dataset's class table,
registered methods and their specs. (No DVC stage imports this module.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..datasets import create_dataset, list_datasets
from ..training import MethodSpec, get_method, list_methods
from ..utils import M2mError


def dataset_names() -> list[str]:
    """Every registered dataset name (``text:<dir>`` for a folder family); imports no recipe."""
    return list_datasets()


def describe_dataset(dataset: str, *, data_root: str | Path | None = None,
                     options: dict[str, Any] | None = None) -> str:
    """Class table, imbalance ratio, split sizes and the Sec. 3.4 majority/minority split of the
    dataset as its recipe builds it (nothing is written)."""
    from ..datasets.info import format_dataset_info

    return format_dataset_info(create_dataset(dataset, data_root=data_root, **(options or {})))


def check_method_name(name: str, option: str = "--method") -> str:
    """``name`` when it is a registered method, else a one-line error listing them."""
    known = list_methods()
    if name not in known:
        raise M2mError(f"{option} {name!r} is not a method; choose one of: {', '.join(known)}")
    return name


def translates(name: str, mode: str | None = None) -> bool:
    """Whether training ``name`` (in ``mode``) writes pools of its own (the CLI checks where they go)."""
    return bool(get_method(name, mode).translate)


def reuses(name: str, mode: str | None = None) -> bool:
    """Whether training ``name`` (in ``mode``) re-decides the stored rows of another run's pools."""
    return bool(get_method(name, mode).reuse)


def method_catalog() -> list[MethodSpec]:
    """Every registered method's spec: the paper's baselines and M2m, then M2m's ablations."""
    return [get_method(name) for name in list_methods()]


__all__ = ["check_method_name", "dataset_names", "describe_dataset", "method_catalog", "reuses", "translates"]
