"""Dataset recipes behind one lazy registry: ``create_dataset(name)``, ``list_datasets()``.

Importing this package imports no recipe: ``registry.RECIPES`` maps each name to its module, which
is imported when that dataset is built (see registry.py).
"""

from .base import PreparedData, Split, long_tail_counts, majority_classes
from .registry import (RECIPES, DatasetEntry, create_dataset, dataset_preset, dataset_slug, list_datasets,
                       register_dataset, resolve_dataset)

__all__ = [
    "RECIPES", "DatasetEntry", "PreparedData", "Split", "create_dataset", "dataset_preset", "dataset_slug",
    "list_datasets", "long_tail_counts", "majority_classes", "register_dataset", "resolve_dataset",
]
