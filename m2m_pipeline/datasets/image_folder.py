"""Bring your own images: ``images:<dir>``, any ImageFolder tree, optionally long-tailed."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils import M2mError
from .base import PreparedData, hold_out_fraction, long_tail_counts, take_first_per_class
from .image_io import class_counts, image_data, load_images, read_image_folder
from .registry import register_dataset

@register_dataset("images")
def build_image_folder(data_root: Path, *, rho: float | None = None, size: int = 32,
                       val_fraction: float = 0.1, augment: bool = True,
                       seed: int = 0) -> PreparedData:
    """Any ImageFolder tree (``images:<dir>`` with train/<class>/*, test/<class>/*), optionally long-tailed.

    Class order: sorted train/ folder names. Every image is centre-cropped to a square and resized
    to ``size``. ``rho`` None keeps the training set as it is; a number keeps the first
    N_k = N_1 * rho^(-(k-1)/(K-1)) files (sorted by name) of class k, N_1 being the smallest
    class's size (Sec. 3.2's recipe). ``val_fraction`` of each test class (drawn from the seed) is
    the validation set. ``augment``: random crop with size/8 padding + flip (the ResNet-32 preset's).
    """
    classes, splits = read_image_folder(data_root)
    files_train, y_all = splits["train"]
    source_counts = class_counts(y_all, len(classes))
    if rho is None:
        train_idx = np.arange(len(y_all))
        counts = source_counts
    else:
        counts = long_tail_counts(min(source_counts), len(classes), rho)
        if min(counts) < 1:
            raise M2mError(f"images: rho={rho} leaves class {classes[int(np.argmin(counts))]} with "
                           f"no image (smallest class {min(source_counts)}); use a smaller rho")
        train_idx = take_first_per_class(y_all, counts)
    files_test, y_test_all = splits["test"]
    rest, held = hold_out_fraction(y_test_all, val_fraction, seed)
    x_train = load_images([files_train[i] for i in train_idx], size)
    x_test_all = load_images(files_test, size)
    aug = {"crop_pad": max(1, size // 8), "flip": True} if augment else {}
    meta = {
        "source": {"layout": "imagefolder", "path": str(data_root)},
        "rho": rho, "size": size, "seed": seed, "class_order": "sorted class folders",
        "source_train_counts": source_counts,
        "n_train_before_holdout": int(len(train_idx)),
        "train_counts_before_holdout": [int(c) for c in counts],
        "val_source": f"{val_fraction:.0%} of each test class",
        "n_test_before_holdout": int(len(y_test_all)),
        "n_val": int(len(held)), "n_test": int(len(rest)),
    }
    return image_data(f"images:{data_root.name}", classes, (x_train, y_all[train_idx]),
                       (x_test_all[held], y_test_all[held]), (x_test_all[rest], y_test_all[rest]),
                       augment=aug, preset="images", meta=meta)
