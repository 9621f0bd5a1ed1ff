"""A registry of dataset recipes, shaped like timm's model registry, and lazy.

A recipe is a function ``build(data_root, **options) -> PreparedData`` in a module of this
package, registered there with ``@register_dataset(name)``. Names are exact (``digits``,
``reuters``) or a prefix taking a folder or file (``text:<dir>``, ``images:<dir>``, ``table:<file>``).

:data:`RECIPES` maps every name to its module, so listing the names, resolving one and reading
its preset import no recipe: a recipe's module is imported only when its dataset is built
(:func:`create_dataset`). That keeps each DVC stage's import-derived deps to the code it runs:
editing ``celeba.py`` re-runs no stage of another dataset (``stages/deps.py`` reads this table).
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import M2mError
from ..layout import dataset_slug  # noqa: F401  (re-exported: the slug of a dataset name)
from .base import PreparedData

# name -> where its recipe lives (a module of m2m_pipeline.datasets) and how it is called:
# ``preset`` (the params.yaml preset key; default: the name), ``prefix`` (a ``name:<dir>`` family),
# ``needs_root`` (reads files from a data root; default True). A literal: stages/deps.py reads it.
RECIPES: dict[str, dict[str, Any]] = {
    "digits": {"module": "digits", "needs_root": False},
    "cifar10-lt": {"module": "cifar"},
    "cifar100-lt": {"module": "cifar"},
    "celeba5": {"module": "celeba"},
    "imagenet-lt": {"module": "imagenet_lt"},
    "sun397": {"module": "sun397"},
    "reuters": {"module": "text"},
    "text": {"module": "text", "prefix": True},
    "twitter": {"module": "twitter"},
    "images": {"module": "image_folder", "prefix": True},
    "table": {"module": "table", "prefix": True},
}


@dataclass(frozen=True)
class DatasetEntry:
    """One registered name; ``build`` imports the recipe's module on first use."""

    name: str
    module: str
    preset: str
    prefix: bool
    needs_root: bool

    @property
    def build(self) -> Callable[..., PreparedData]:
        if self.name not in _BUILDERS:
            importlib.import_module(self.module)   # its @register_dataset fills _BUILDERS
        if self.name not in _BUILDERS:
            raise M2mError(f"dataset {self.name!r}: module {self.module} registers no recipe of that name")
        return _BUILDERS[self.name]

    @property
    def description(self) -> str:
        doc = (inspect.getdoc(self.build) or "").splitlines()
        return doc[0] if doc else ""


def _entry(name: str, spec: dict[str, Any]) -> DatasetEntry:
    module = spec["module"] if "." in spec["module"] else f"{__package__}.{spec['module']}"
    return DatasetEntry(name, module, spec.get("preset") or name, bool(spec.get("prefix", False)),
                        bool(spec.get("needs_root", True)))


_REGISTRY: dict[str, DatasetEntry] = {name: _entry(name, spec) for name, spec in RECIPES.items()}
_BUILDERS: dict[str, Callable[..., PreparedData]] = {}


def register_dataset(name: str, *, preset: str | None = None, prefix: bool = False,
                     needs_root: bool = True) -> Callable:
    """Decorator: register ``build`` under ``name``. A name of :data:`RECIPES` is registered by its
    own module (the table holds its preset and flags); any other name (a recipe outside the
    package) is added with the given ``preset``, ``prefix`` and ``needs_root``. A duplicate name
    raises: two recipes must never answer to one name."""

    def wrap(build: Callable[..., PreparedData]) -> Callable[..., PreparedData]:
        if name in _BUILDERS:
            raise ValueError(f"dataset {name!r} is already registered")
        entry = _REGISTRY.get(name)
        if entry is None:
            _REGISTRY[name] = DatasetEntry(name, build.__module__, preset or name, prefix, needs_root)
        elif entry.module != build.__module__:
            raise ValueError(f"dataset {name!r} is already registered (its recipe is in {entry.module})")
        _BUILDERS[name] = build
        return build

    return wrap


def list_datasets() -> list[str]:
    """Every registered name; prefix recipes are listed as ``text:<dir>``."""
    return sorted(f"{e.name}:<dir>" if e.prefix else e.name for e in _REGISTRY.values())


def resolve_dataset(name: str, data_root: str | Path | None = None) -> tuple[DatasetEntry, Path | None]:
    """The registry entry for ``name`` and the folder its files are read from.

    ``text:<dir>`` style names carry their folder; other names read ``data_root`` or, when it is
    not given, ``data/raw/<name>``. A prefix family's kind alone (``images``, ``text``, ``table``)
    reads its folder or file from ``data_root``: ``dataset: images`` + ``data_root: DIR`` in
    params.yaml is how the DVC DAG, whose paths and params are keyed by the name, takes one.
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
    if entry is None:
        raise M2mError(f"unknown dataset {name!r}; known: {', '.join(list_datasets())}")
    if entry.prefix:   # the kind alone (``images``): its folder or file is ``data_root`` (the DVC form)
        return entry, Path(data_root) if data_root else Path("data/raw") / name
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
