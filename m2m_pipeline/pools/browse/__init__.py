"""Browse translation pools: the functions behind the ``m2m-pipeline pools`` commands.

- ``listing``: find pools and resolve a run folder and an epoch to one (``pools ls``);
- ``selection``: choose rows to show, stratified over target classes;
- ``views``: how rows are drawn, chosen by the data through a registry (``pools show``); the
  views themselves are in ``image_view`` (x0 | x* | x* - x0, Figure 6) and ``text_views``
  (bag-of-words words switched on and off, embedding nearest tokens) and ``table_view`` (x0, x*,
  x* - x0 per feature of a table);
- ``stats`` and ``plots``: counts per (k0, k) pair and per class, the heatmap and the accept rate
  over the epochs (``pools stats``);
- ``report``: one self-contained HTML page (``pools report``, :func:`build_pool_report`), with
  the HTML pieces in ``markup``;
- ``output``: where they write (``--out``: refused before any work when foreign, a file in place
  of a folder, or an extension the view does not write; every file written atomically).

Names are re-exported lazily: importing the package loads none of them.
"""

from __future__ import annotations

from ...utils import lazy_exports

_EXPORTS = {
    "PoolEntry": "listing", "format_size": "listing", "list_pools": "listing", "pool_entry": "listing",
    "resolve_pool": "listing", "run_epochs": "listing",
    "SHOW_ROW_ARRAYS": "selection", "class_names_of": "selection", "decision_of": "selection",
    "seeds_and_translations": "selection", "select_rows": "selection",
    "PoolView": "views", "get_view": "views", "list_views": "views", "register_view": "views",
    "show_pool": "views", "view_for": "views", "view_kind": "views",
    "image_grid": "image_view", "triple_png": "image_view",
    "format_text_rows": "text_views", "nearest_tokens": "text_views", "token_table": "text_views",
    "word_changes": "text_views",
    "feature_changes": "table_view", "format_table_rows": "table_view",
    "STATS_ROW_ARRAYS": "stats", "acceptance_matrix": "stats", "add_slot_counts": "stats", "epoch_rates": "stats",
    "format_stats": "stats", "pool_stats": "stats", "pool_info": "stats", "stats_of": "stats",
    "plot_epoch_rates": "plots", "plot_heatmap": "plots",
    "build_pool_report": "report", "class_rows": "report",
    "BROWSER_MARKER": "output", "check_out_folder": "output", "check_show_out": "output", "written_by_show": "output",
    "md_cell": "markup",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
