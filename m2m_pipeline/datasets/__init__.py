"""Dataset recipes behind one registry: ``create_dataset(name)``, ``list_datasets()``."""

from .base import PreparedData, Split, long_tail_counts, majority_classes
from .registry import (DatasetEntry, create_dataset, dataset_preset, dataset_slug, list_datasets,
                       register_dataset, resolve_dataset)

# Importing a recipe module registers it.
from . import celeba, cifar, digits, image_folder, imagenet_lt, sun397, text, twitter  # noqa: F401,E402

__all__ = [
    "DatasetEntry", "PreparedData", "Split", "create_dataset", "dataset_preset", "dataset_slug", "list_datasets",
    "long_tail_counts", "majority_classes", "register_dataset", "resolve_dataset",
]
