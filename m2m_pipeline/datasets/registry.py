"""A registry of dataset recipes, shaped like timm's model registry.

A recipe is a function ``build(data_root, **options) -> PreparedData``. Names are exact
(``digits``, ``reuters``) or a prefix taking a folder (``text:<dir>``, ``images:<dir>``).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..utils import M2mError
from .base import PreparedData


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    build: Callable[..., PreparedData]
    preset: str
    prefix: bool
    needs_root: bool
    description: str


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, *, preset: str | None = None, prefix: bool = False,
                     needs_root: bool = True) -> Callable:
    """Decorator: register ``build`` under ``name``. A duplicate name raises: two recipes
    must never answer to one name."""

    def wrap(build: Callable[..., PreparedData]) -> Callable[..., PreparedData]:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is already registered")
        doc = (inspect.getdoc(build) or "").splitlines()
        _REGISTRY[name] = DatasetEntry(name, build, preset or name, prefix, needs_root,
                                       doc[0] if doc else "")
        return build

    return wrap


def list_datasets() -> list[str]:
    """Every registered name; prefix recipes are listed as ``text:<dir>``."""
    return sorted(f"{e.name}:<dir>" if e.prefix else e.name for e in _REGISTRY.values())


def resolve_dataset(name: str, data_root: str | Path | None = None) -> tuple[DatasetEntry, Path | None]:
    """The registry entry for ``name`` and the folder its files are read from.

    ``text:<dir>`` style names carry their folder; other names read ``data_root`` or, when it is
    not given, ``data/raw/<name>``.
    """
    if ":" in name:
        head, _, folder = name.partition(":")
        entry = _REGISTRY.get(head)
        if entry is None or not entry.prefix:
            raise M2mError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
        if not folder:
            raise M2mError(f"dataset {name!r} needs a folder after the colon, e.g. {head}:path/to/dir")
        return entry, Path(folder)
    entry = _REGISTRY.get(name)
    if entry is None or entry.prefix:
        raise M2mError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    if not entry.needs_root:
        return entry, None
    return entry, Path(data_root) if data_root else Path("data/raw") / name


def dataset_preset(name: str) -> str:
    """The key of the dataset's model/schedule preset in params.yaml."""
    return resolve_dataset(name)[0].preset


def create_dataset(name: str, *, data_root: str | Path | None = None, **options: Any) -> PreparedData:
    """Run the recipe of ``name`` on its source files and return the validated result."""
    entry, root = resolve_dataset(name, data_root)
    if entry.needs_root and not root.exists() and not options.get("download"):
        raise M2mError(f"dataset {name!r}: data root {root} does not exist; "
                       f"pass --data-root DIR (params: data_root) pointing at its files")
    params = inspect.signature(entry.build).parameters
    unknown = sorted(set(options) - set(params))
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        raise M2mError(f"dataset {name!r} takes no option(s) {unknown}; it takes "
                       f"{sorted(p for p in params if p != 'data_root')}")
    data = entry.build(root, **options) if entry.needs_root else entry.build(**options)
    data.validate()
    return data


def dataset_slug(name: str) -> str:
    """A folder name for a dataset name (``text:/a/b`` -> ``text_a_b``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
