"""ImageNet-LT (Appendix C): ``imagenet-lt`` from the published list files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..utils import M2mError, rng_for
from .base import PreparedData
from .image_io import class_counts, image_data, is_image_file, load_images
from .registry import register_dataset

IMAGENET_LT_FILES = {"train": "ImageNet_LT_train.txt", "val": "ImageNet_LT_val.txt",
                     "test": "ImageNet_LT_test.txt"}


def read_list_file(path: Path, layout: str) -> tuple[list[str], np.ndarray]:
    """An ImageNet-LT list file: ``relative/path.JPEG label`` a line -> (paths, int labels)."""
    if not path.is_file():
        raise M2mError(f"imagenet-lt: missing list file {path}; expected {layout}")
    paths, labels = [], []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[1].isdigit():
            raise M2mError(f"imagenet-lt: {path} line {lineno}: {line[:60]!r} is not "
                           f"'PATH LABEL' (truncated or malformed); expected {layout}")
        paths.append(parts[0])
        labels.append(int(parts[1]))
    if not paths:
        raise M2mError(f"imagenet-lt: {path} lists no images; expected {layout}")
    return paths, np.asarray(labels, dtype=np.int64)


@register_dataset("imagenet-lt")
def build_imagenet_lt(data_root: Path, *, size: int = 128, n_val: int = 20,
                      seed: int = 0) -> PreparedData:
    """ImageNet-LT (Appendix C): the published list files; 128x128; 20 val images a class from ImageNet train.

    ``data_root`` is an ImageNet root holding ``ImageNet_LT_train.txt`` and
    ``ImageNet_LT_test.txt`` (``train/n01440764/n01440764_10026.JPEG 0`` a line, paths relative to
    ``data_root``) and the images they name. Class k's name is the folder (WordNet id) of its
    images. Validation (Appendix C: "20 samples per class randomly from the original ImageNet
    training set"): ``ImageNet_LT_val.txt`` when present (the published list is exactly that);
    otherwise ``n_val`` images a class drawn from the seed among the files of the class's ImageNet
    training folder that are not in the LT training list. Stored images: centre square crop
    resized to ``size`` (the same as resizing the shorter side and centre cropping); the
    random-resized crop + flip of Appendix C is training-time augmentation, recorded in ``augment``.
    """
    layout = (f"{data_root} to hold ImageNet_LT_train.txt and ImageNet_LT_test.txt ('PATH LABEL' "
              f"a line, PATH relative to it, e.g. train/n01440764/n01440764_10026.JPEG 0) and the "
              f"ImageNet images they name")
    if not data_root.is_dir():
        raise M2mError(f"imagenet-lt: data root {data_root} is not a folder; expected {layout}")
    train_paths, y_train = read_list_file(data_root / IMAGENET_LT_FILES["train"], layout)
    test_paths, y_test = read_list_file(data_root / IMAGENET_LT_FILES["test"], layout)
    k = int(y_train.max()) + 1
    present = np.bincount(y_train, minlength=k)
    if (present == 0).any():
        raise M2mError(f"imagenet-lt: {IMAGENET_LT_FILES['train']} has no image of label "
                       f"{int(np.argmin(present))}; labels must be 0..K-1; expected {layout}")
    unseen = sorted(set(int(v) for v in y_test) - set(range(k)))
    if unseen:
        raise M2mError(f"imagenet-lt: {IMAGENET_LT_FILES['test']} has label(s) {unseen[:5]} that "
                       f"never occur in {IMAGENET_LT_FILES['train']}")
    classes = [""] * k
    for p, lab in zip(train_paths, y_train):
        wnid = Path(p).parent.name
        if classes[lab] and classes[lab] != wnid:
            raise M2mError(f"imagenet-lt: label {lab} names folders {classes[lab]!r} and {wnid!r} "
                           f"in {IMAGENET_LT_FILES['train']}; expected one folder a class")
        classes[lab] = wnid

    val_list = data_root / IMAGENET_LT_FILES["val"]
    if val_list.is_file():
        val_paths, y_val = read_list_file(val_list, layout)
        if y_val.max() >= k:
            raise M2mError(f"imagenet-lt: {val_list} has labels beyond {k - 1}")
        val_source = IMAGENET_LT_FILES["val"]
    else:
        in_train = set(train_paths)
        rng = rng_for(seed, "split", 0)
        val_paths, val_labels = [], []
        class_dirs: dict[int, Path] = {}
        for p, lab in zip(train_paths, y_train):
            class_dirs.setdefault(int(lab), Path(p).parent)
        for lab in range(k):
            rel_dir = class_dirs[lab]
            folder = data_root / rel_dir
            pool = sorted(str(rel_dir / e.name) for e in os.scandir(folder)
                          if e.is_file() and is_image_file(e.name) and str(rel_dir / e.name) not in in_train)
            if len(pool) < n_val:
                raise M2mError(f"imagenet-lt: {folder} has {len(pool)} images outside the LT training "
                               f"list, {n_val} are needed for validation; add "
                               f"{IMAGENET_LT_FILES['val']} or the full ImageNet training folder")
            chosen = sorted(rng.choice(len(pool), size=n_val, replace=False))
            val_paths += [pool[i] for i in chosen]
            val_labels += [lab] * n_val
        y_val = np.asarray(val_labels, dtype=np.int64)
        val_source = f"{n_val} images a class from the ImageNet training folders, outside the LT list"

    x_train = load_images([data_root / p for p in train_paths], size)
    x_val = load_images([data_root / p for p in val_paths], size)
    x_test = load_images([data_root / p for p in test_paths], size)
    counts = class_counts(y_train, k)
    meta = {
        "source": {"layout": "imagenet-lt-lists", "path": str(data_root)},
        "seed": seed, "size": size, "class_order": "list-file labels",
        "n_train_before_holdout": int(len(y_train)),
        "train_counts_before_holdout": counts,
        "val_source": val_source,
        "n_val": int(len(y_val)), "n_test": int(len(y_test)),
    }
    return image_data("imagenet-lt", classes, (x_train, y_train), (x_val, y_val), (x_test, y_test),
                       augment={"random_resized_crop": size, "flip": True}, preset="imagenet-lt",
                       meta=meta)
