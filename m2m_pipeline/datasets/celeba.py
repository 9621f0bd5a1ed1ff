"""CelebA-5 (Sec. 3.3, Appendix A): ``celeba5``, five hair colours of CelebA."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..utils import M2mError, rng_for
from .base import PreparedData
from .image_io import CIFAR_AUGMENT, class_counts, image_data, load_images
from .registry import register_dataset

CELEBA_HAIR = ("Blond_Hair", "Black_Hair", "Bald", "Brown_Hair", "Gray_Hair")


def read_celeba_attributes(path: Path, layout: str) -> tuple[list[str], list[str], np.ndarray]:
    """``list_attr_celeba.txt``: (attribute names, image file names, int8 values in {-1, 1})."""
    if not path.is_file():
        raise M2mError(f"celeba5: missing {path}; expected {layout}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise M2mError(f"celeba5: {path} line 1 must be the image count; expected {layout}")
    expected = int(lines[0].strip())
    names = lines[1].split()
    files, rows = [], []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise M2mError(f"celeba5: {path} line {lineno} has {len(parts) - 1} values for "
                           f"{len(names)} attributes (truncated?); expected {layout}")
        try:
            vals = [int(v) for v in parts[1:]]
        except ValueError:
            raise M2mError(f"celeba5: {path} line {lineno}: values must be -1 or 1; "
                           f"expected {layout}") from None
        if any(v not in (-1, 1) for v in vals):
            raise M2mError(f"celeba5: {path} line {lineno}: values must be -1 or 1; expected {layout}")
        files.append(parts[0])
        rows.append(vals)
    if len(files) != expected:
        raise M2mError(f"celeba5: {path} announces {expected} images but lists {len(files)} "
                       f"(truncated?); expected {layout}")
    return names, files, np.asarray(rows, dtype=np.int8).reshape(len(files), len(names))


def celeba5_train_sizes(attribute_counts: Sequence[int], subsample: int) -> list[int]:
    """Training images a class: floor(A_k / subsample), at least 1, where A_k counts every image
    whose hair attribute k is 1 (CelebA's published attribute count, images with several hair
    labels included). With CelebA's counts (Blond 29,983, Black 48,472, Bald 4,547, Brown 41,572,
    Gray 8,499) and ``subsample`` 20 this is 1499 / 2423 / 227 / 2078 / 424, the training lists of
    the authors' release (ratio 2423 / 227 = 10.7, the paper's rho ~ 10.7, Sec. 3.3)."""
    return [max(1, int(a) // subsample) for a in attribute_counts]


@register_dataset("celeba5")
def build_celeba5(data_root: Path, *, subsample: int = 20, n_val: int = 50, n_test: int = 100,
                  size: int = 32, seed: int = 0, train_counts: Sequence[int] | None = None) -> PreparedData:
    """CelebA-5 (Sec. 3.3, Appendix A): 5 hair colours; floor(A_k/20) training images a class plus 50 val and 100 test.

    Layout of torchvision.datasets.CelebA: ``data_root/celeba/list_attr_celeba.txt`` (line 1: the
    image count, line 2: the 40 attribute names, then ``FILE v1 ... v40`` with -1/1 values) and
    ``data_root/celeba/img_align_celeba/*.jpg``; ``data_root`` may be the ``celeba`` folder itself.
    Classes, in the paper's order: Blond_Hair, Black_Hair, Bald, Brown_Hair, Gray_Hair; only images
    with exactly one of them set are used. Class sizes follow the release: the training set of
    class k has :func:`celeba5_train_sizes` images (``train_counts`` gives them explicitly), and
    the ``n_test`` test and ``n_val`` validation images a class are taken in addition, not out of
    them (Appendix A: "we pick out 50 and 100 samples per each class for validation and
    testing"). Test, then validation, then training images are drawn per class from the seed,
    disjoint. Centre square crop, 32x32.
    """
    layout = ("celeba/list_attr_celeba.txt (count line, attribute-name line, then FILE and 40 "
              "values of -1/1) and celeba/img_align_celeba/*.jpg (torchvision CelebA layout)")
    if subsample < 1:
        raise M2mError(f"celeba5: subsample must be >= 1, got {subsample}")
    if train_counts is not None and (len(train_counts) != len(CELEBA_HAIR) or min(train_counts) < 1):
        raise M2mError(f"celeba5: train_counts must be {len(CELEBA_HAIR)} positive sizes "
                       f"({', '.join(CELEBA_HAIR)}), got {list(train_counts)}")
    base = data_root / "celeba" if (data_root / "celeba").is_dir() else data_root
    names, files, values = read_celeba_attributes(base / "list_attr_celeba.txt", layout)
    missing = [h for h in CELEBA_HAIR if h not in names]
    if missing:
        raise M2mError(f"celeba5: {base / 'list_attr_celeba.txt'} lacks attribute(s) {missing}; "
                       f"expected {layout}")
    img_dir = base / "img_align_celeba"
    if not img_dir.is_dir():
        raise M2mError(f"celeba5: missing folder {img_dir}; expected {data_root} to hold {layout}")
    hair = values[:, [names.index(h) for h in CELEBA_HAIR]] == 1
    attribute_counts = [int(c) for c in hair.sum(axis=0)]
    one = hair.sum(axis=1) == 1
    y_all = np.where(one, hair.argmax(axis=1), -1)
    eligible_counts = class_counts(y_all[one], len(CELEBA_HAIR))
    sizes = ([int(c) for c in train_counts] if train_counts is not None
             else celeba5_train_sizes(attribute_counts, subsample))
    for k, name in enumerate(CELEBA_HAIR):
        need = sizes[k] + n_val + n_test
        if eligible_counts[k] < need:
            raise M2mError(f"celeba5: class {name} has {eligible_counts[k]} images with exactly one hair "
                           f"colour, the recipe needs {sizes[k]} training + {n_test} test + {n_val} "
                           f"validation = {need}; expected the full {layout}")
    rng = rng_for(seed, "split", 0)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for k in range(len(CELEBA_HAIR)):
        # one permutation a class, cut into test | val | train: disjoint by construction
        order = rng.permutation(np.flatnonzero(y_all == k))
        parts["test"].append(order[:n_test])
        parts["val"].append(order[n_test:n_test + n_val])
        parts["train"].append(order[n_test + n_val:n_test + n_val + sizes[k]])
    chosen = {name: np.sort(np.concatenate(idx)) for name, idx in parts.items()}
    keep_idx = np.concatenate([chosen["train"], chosen["val"], chosen["test"]])
    x = load_images([img_dir / files[i] for i in keep_idx], size)
    n_train, n_val_total = len(chosen["train"]), len(chosen["val"])
    splits = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val_total),
              "test": slice(n_train + n_val_total, len(keep_idx))}
    y_kept = y_all[keep_idx]
    meta = {
        "source": {"layout": "torchvision-CelebA", "path": str(base)},
        "seed": seed, "size": size, "subsample": subsample, "class_order": "paper (Appendix A)",
        "attribute_counts": attribute_counts,
        "full_counts": eligible_counts,
        "train_size_rule": ("explicit train_counts" if train_counts is not None
                            else f"floor(attribute count / {subsample}), at least 1"),
        "n_excluded_not_exactly_one": int((~one).sum()),
        "n_train_before_holdout": n_train,
        "train_counts_before_holdout": [int(c) for c in sizes],
        "val_source": f"{n_val} images of each class, in addition to the training images",
        "n_val": n_val_total, "n_test": int(len(chosen["test"])),
    }
    return image_data("celeba5", list(CELEBA_HAIR), *((x[sl], y_kept[sl]) for sl in splits.values()),
                      augment=CIFAR_AUGMENT, preset="celeba5", meta=meta)
