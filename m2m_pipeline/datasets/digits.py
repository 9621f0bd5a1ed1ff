"""The embedded default: scikit-learn's bundled handwritten digits, made long-tailed."""

from __future__ import annotations

import numpy as np

from .base import PreparedData, Split, hold_out_per_class, long_tail_counts, take_first_per_class
from .registry import register_dataset


@register_dataset("digits")
def build_digits(*, rho: float = 10.0, n_test: int = 40, n_val: int = 20, seed: int = 0) -> PreparedData:
    """scikit-learn digits (8x8, 10 classes), CIFAR-LT style: exponential class sizes with ratio rho.

    ``n_test`` and ``n_val`` images of each class are held out first (balanced test and validation
    sets, as for CIFAR-LT), then the training set keeps the first N_k = N_1 * rho^(-k/(K-1))
    images of class k, N_1 being the smallest class's remaining size.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 grey levels -> uint8 pixels, one channel, so it travels like any image dataset.
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    rest, test_idx = hold_out_per_class(y, n_test, seed, stream_key=0)
    rest2, val_local = hold_out_per_class(y[rest], n_val, seed, stream_key=1)
    val_idx = rest[val_local]
    train_pool = rest[rest2]
    n_max = int(np.bincount(y[train_pool]).min())
    counts = long_tail_counts(n_max, 10, rho)
    train_idx = train_pool[take_first_per_class(y[train_pool], counts)]
    mean = float(x[train_idx].mean() / 255.0)
    std = float(x[train_idx].std() / 255.0)
    return PreparedData(
        name="digits",
        class_names=[str(d) for d in range(10)],
        train=Split(x[train_idx], y[train_idx]),
        val=Split(x[val_idx], y[val_idx]),
        test=Split(x[test_idx], y[test_idx]),
        input_kind="image",
        input_range=(0.0, 1.0),
        mean=[mean],
        std=[std],
        augment={},
        preset="digits",
        meta={"rho": rho, "n_test": n_test, "n_val": n_val, "seed": seed,
              "source": "sklearn.datasets.load_digits"},
    )
