"""SUN397 (Sec. 3.3, Appendix A): ``sun397``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..utils import M2mError
from .base import PreparedData, hold_out_per_class
from .image_io import CIFAR_AUGMENT, image_data, load_images
from .registry import register_dataset

@register_dataset("sun397")
def build_sun397(data_root: Path, *, n_val: int = 10, n_test: int = 40, size: int = 32,
                 seed: int = 0) -> PreparedData:
    """SUN397 (Sec. 3.3, Appendix A): centre square crop, 32x32; 40 test and 10 val images a class.

    Layout of torchvision.datasets.SUN397: ``data_root/SUN397/ClassName.txt`` (lines like
    ``/a/abbey``, ``/a/apartment_building/outdoor``; the class name drops the leading ``/a/``) and
    the images ``data_root/SUN397/a/abbey/sun_*.jpg``. ``data_root`` may also be the ``SUN397``
    folder itself. Class order: ClassName.txt's. The dataset has no split: per class, ``n_test``
    then ``n_val`` images are drawn from the seed; the rest is training (naturally imbalanced).
    """
    layout = ("SUN397/ClassName.txt (one /x/class_name a line) and images "
              "SUN397/<letter>/<class_name>/sun_*.jpg (torchvision SUN397 layout)")
    base = data_root / "SUN397" if (data_root / "SUN397").is_dir() else data_root
    names_file = base / "ClassName.txt"
    if not names_file.is_file():
        raise M2mError(f"sun397: missing {names_file}; expected {data_root} to hold {layout}")
    classes = [line[3:].strip() for line in names_file.read_text(encoding="utf-8").splitlines()
               if line.strip()]
    bad = [c for c in classes if not c]
    if bad or not classes:
        raise M2mError(f"sun397: {names_file} has a malformed line; expected {layout}")
    index = {c: i for i, c in enumerate(classes)}
    files, labels = [], []
    for path in sorted(base.rglob("sun_*.jpg")):
        cls = "/".join(path.relative_to(base).parts[1:-1])
        if cls not in index:
            raise M2mError(f"sun397: image {path} lies in folder {cls!r}, which is not a class of "
                           f"{names_file.name}; expected {layout}")
        files.append(path)
        labels.append(index[cls])
    y = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes))
    if not files or counts.min() <= n_val + n_test:
        short = classes[int(np.argmin(counts))]
        raise M2mError(f"sun397: class {short!r} has {int(counts.min())} images under {base}, the "
                       f"recipe holds out {n_test} test + {n_val} validation; expected {layout}")
    rest, test_idx = hold_out_per_class(y, n_test, seed, stream_key=0)
    rest_local, val_local = hold_out_per_class(y[rest], n_val, seed, stream_key=1)
    train_idx, val_idx = rest[rest_local], rest[val_local]
    x = load_images(files, size)
    meta = {
        "source": {"layout": "torchvision-SUN397", "path": str(base)},
        "seed": seed, "size": size, "class_order": "ClassName.txt",
        "n_images": int(len(y)),
        "n_train_before_holdout": int(len(y)),
        "train_counts_before_holdout": [int(c) for c in counts],
        "val_source": f"{n_val} images of each class (after {n_test} test images a class)",
        "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
    }
    return image_data("sun397", classes, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]),
                       (x[test_idx], y[test_idx]), augment=CIFAR_AUGMENT, preset="sun397", meta=meta)
