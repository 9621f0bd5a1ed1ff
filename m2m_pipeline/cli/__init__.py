"""The command line (``m2m-pipeline``): a thin face over ``jobs``, ``reports``, the pool browser and
``params`` (the defaults), and the only part of the package that imports typer.

A module per command group, each command parsing its options, filling the defaults from
params.yaml and the folder layout (``layout``), calling one job or report, and printing its result:

- ``common``: the shared options, the params and seed they resolve to, name checks;
- ``data``: ``prepare``, ``data list``, ``data info``;
- ``train``: ``pretrain-g``, ``warm-f``, ``train-f``, ``methods``;
- ``generate``: ``generate`` (one epoch's pool on its own);
- ``results``: ``evaluate``, ``table``, ``report``;
- ``pools``: ``pools ls / show / stats / report / info / verify``;
- ``app``: the app in ``--help`` order, and ``main`` (one-line errors).

Importing it loads no torch: each command imports what it runs when it runs.
"""

from .app import app, main

__all__ = ["app", "main"]
