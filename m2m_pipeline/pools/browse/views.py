"""How pool rows are shown, chosen by the prepared data through a small registry of views.

A view (:class:`PoolView`) draws chosen rows of a pool: ``pools show`` writes its :meth:`~PoolView.show`
file, and ``pools report`` puts its :meth:`~PoolView.report_grids` HTML in the page, one grid per
target class. The package's views, in the order they are asked (the first that accepts the data
is used):

- ``image`` (image_view.py): x0 | x* | (x* - x0), the paper's Figure 6;
- ``bag_of_words`` (text_views.py): the words translation switched on and off;
- ``table`` (table_view.py): x0, x* and x* - x0 per feature of ``table:<file>`` data, in the file's units;
- ``embedding`` (text_views.py): the vocabulary tokens nearest to x0 and to x*.

A new view: subclass :class:`PoolView` in a module of its own and :func:`register_view` it
(``before=`` puts it ahead of a broader view). The registry names each built-in view by
``"module:Class"`` and imports it on first use, so importing this module loads no view.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from ...datasets import PreparedData
from ...store import Pool, open_pool
from ...utils import M2mError
from .output import IMAGE_SUFFIXES, TEXT_SUFFIXES, check_show_out
from .selection import SHOW_ROW_ARRAYS, select_rows


class PoolView:
    """One way to draw pool rows; see the module docstring."""

    name = ""
    # the extensions of the file ``show`` writes (``pools show --out``; others are refused before any work)
    suffixes: tuple[str, ...] = TEXT_SUFFIXES

    def accepts(self, data: PreparedData) -> bool:
        """Whether this view can draw rows of ``data``."""
        raise NotImplementedError

    def show(self, pool: Pool, data: PreparedData, idx: np.ndarray, rows: dict[str, np.ndarray], out: Path, *,
             title: str) -> None:
        """Write the rows ``idx`` (indices into ``rows``, the pool's SHOW_ROW_ARRAYS) to ``out``."""
        raise NotImplementedError

    def report_grids(self, pool: Pool, data: PreparedData, rows: dict[str, np.ndarray],
                     shown: dict[int, np.ndarray]) -> tuple[list[str], dict[int, str]]:
        """The report's HTML for ``shown`` ({target class: rows of its grid, none empty}):
        (notes before the grids, {target class: its grid}). A class left out gets no grid."""
        raise NotImplementedError


# name -> a view, or "module:Class" of this package's browse/ (imported on first use); asked in order
_VIEWS: dict[str, PoolView | str] = {
    "image": "image_view:ImageView",
    "bag_of_words": "text_views:BagOfWordsView",
    "table": "table_view:TableView",
    "embedding": "text_views:EmbeddingView",
}


def register_view(view: PoolView, *, before: str | None = None) -> None:
    """Add ``view`` under ``view.name`` (asked last, or just before the view ``before``)."""
    if not view.name:
        raise ValueError("a pool view needs a name")
    if before is not None and before not in _VIEWS:
        raise ValueError(f"no pool view {before!r} to register {view.name!r} before")
    items = [(k, v) for k, v in _VIEWS.items() if k != view.name]
    at = next((i for i, (k, _) in enumerate(items) if k == before), len(items))
    items.insert(at, (view.name, view))
    _VIEWS.clear()
    _VIEWS.update(items)


def get_view(name: str) -> PoolView:
    """The registered view ``name``."""
    if name not in _VIEWS:
        raise M2mError(f"unknown pool view {name!r}; known: {', '.join(_VIEWS)}")
    view = _VIEWS[name]
    if isinstance(view, str):
        module, attr = view.split(":")
        view = getattr(importlib.import_module(f"{__package__}.{module}"), attr)()
        _VIEWS[name] = view
    return view


def list_views() -> list[str]:
    return list(_VIEWS)


def view_for(data: PreparedData) -> PoolView:
    """The first registered view that accepts ``data``."""
    for name in list(_VIEWS):
        view = get_view(name)
        if view.accepts(data):
            return view
    raise M2mError(f"no pool view draws rows of {data.name} (input kind {data.input_kind!r})")


def view_kind(data: PreparedData) -> str:
    """The name of the view that draws rows of ``data``: ``image``, ``bag_of_words`` (prepared
    data with a ``vocabulary``), ``table`` (a standardised table) or ``embedding``."""
    return view_for(data).name


def show_pool(pool_path: str | Path, data: PreparedData, out: str | Path, *, target: int | None = None,
              seed_class: int | None = None, accepted: bool | None = None, limit: int = 16) -> tuple[Path, str]:
    """Write the view of ``pools show`` to ``out`` (PNG for images, markdown otherwise); returns
    (path, a one-line description). ``out`` is checked first (output.check_show_out): an extension
    the view writes, not a folder, not a file that pools show did not write."""
    from ..reuse import check_provenance

    check_show_out(out)
    pool = open_pool(pool_path)
    check_provenance(pool, dataset_fingerprint=data.fingerprint)
    view = view_for(data)
    out = check_show_out(out, tuple(getattr(view, "suffixes", IMAGE_SUFFIXES + TEXT_SUFFIXES)), view.name)
    rows = pool.rows(SHOW_ROW_ARRAYS)
    for opt, k in (("--target", target), ("--seed-class", seed_class)):
        if k is not None and not 0 <= k < data.num_classes:
            raise M2mError(f"{opt} {k} is not a class index of {data.name} (0..{data.num_classes - 1})")
    idx = select_rows(rows, target=target, seed_class=seed_class, accepted=accepted, limit=limit)
    if len(idx) == 0:
        raise M2mError("no pool rows match the filters; loosen --target/--seed-class/--accepted/--rejected")
    a = pool.attrs
    view.show(pool, data, idx, rows, out,
              title=f"{a.get('dataset')} epoch {a.get('epoch')}: {len(idx)} rows, stratified over targets")
    return out, f"{view.name} view of {len(idx)} rows -> {out}"


__all__ = ["PoolView", "get_view", "list_views", "register_view", "show_pool", "view_for", "view_kind"]
