"""Tiny hand-sized datasets and models for the fast value tests of pools and training (the ones
the mutation run uses): a few dozen rows, so a pool or a two-epoch fit takes well under a second."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from m2m_pipeline.datasets import PreparedData, Split
from m2m_pipeline.training.checkpoint import build_model, model_config


def tiny_vectors(counts=(12, 6, 3), dim: int = 4, *, seed: int = 0,
                 input_range: tuple[float, float] | None = (-1.0, 1.0)) -> PreparedData:
    """Vectors of ``dim`` features in ``input_range`` (None: unbounded), training class sizes
    ``counts`` (rows sorted by class), and 2 validation and 2 test rows per class."""
    rng = np.random.default_rng(seed)
    k = len(counts)

    def split(sizes):
        y = np.repeat(np.arange(k), sizes).astype(np.int64)
        x = rng.uniform(-0.9, 0.9, size=(len(y), dim)).astype(np.float32)
        x[np.arange(len(y)), y % dim] += 0.05   # a little class signal
        return Split(x, y)

    return PreparedData(name="tiny-vec", class_names=[f"c{i}" for i in range(k)], train=split(counts),
                        val=split([2] * k), test=split([2] * k), input_kind="vector", input_range=input_range,
                        mean=[0.0] * dim, std=[1.0] * dim)


def tiny_images(counts=(10, 5, 3), *, seed: int = 0, crop_pad: int = 1, flip: bool = True) -> PreparedData:
    """uint8 images 3x4x4 with the crop-and-flip augmentation, class sizes ``counts``."""
    rng = np.random.default_rng(seed)
    k = len(counts)

    def split(sizes):
        y = np.repeat(np.arange(k), sizes).astype(np.int64)
        return Split(rng.integers(0, 256, size=(len(y), 3, 4, 4), dtype=np.uint8), y)

    return PreparedData(name="tiny-img", class_names=[f"c{i}" for i in range(k)], train=split(counts),
                        val=split([2] * k), test=split([2] * k), input_kind="image", input_range=(0.0, 1.0),
                        mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25],
                        augment={"crop_pad": crop_pad, "flip": flip} if crop_pad or flip else {})


def tiny_mlp(data: PreparedData, *, seed: int = 0, hidden: int = 8, norm_last: bool = False) -> nn.Module:
    """The package's MLP for ``data`` with a fixed initialisation, in eval mode."""
    torch.manual_seed(seed)
    return build_model(model_config(data, "mlp", {"hidden": hidden}, norm_last)).eval()


def tiny_pool_attrs(rows: dict[str, np.ndarray], *, class_counts, n_slots: int | None = None,
                    **given) -> dict:
    """Attributes that fit the pool schema (store/pool_schema.POOL_SCHEMA) for a pool written by hand
    with PoolWriter: ``rows`` give the summary (reason counts, attempts, accepted); ``given``
    overrides or adds any attribute (``params`` merged into the defaults)."""
    from m2m_pipeline.acceptance import REASONS

    n = len(rows["slot"])
    reason = np.asarray(rows["reason"])
    reasons = {name: int((reason == code).sum()) for name, code in REASONS.items()}
    params = {"steps": 2, "step_size": 0.5, "lam": 0.5, "gamma": 0.9, "beta": 0.9, "gamma_on": "prob",
              **given.pop("params", {})}
    return {"dataset": "tiny", "dataset_fingerprint": "0" * 16, "class_counts": [int(c) for c in class_counts],
            "g_hash": "0" * 16, "f_hash": "1" * 16, "epoch": 0, "seed": 0, "params": params,
            "train_batch_size": 8, "reason_codes": dict(REASONS),
            "summary": {"n_slots": int(n if n_slots is None else n_slots), "n_attempts": n,
                        "n_accepted": int(np.asarray(rows["accepted"]).sum()), "reasons": reasons},
            "package_version": "test", **given}
