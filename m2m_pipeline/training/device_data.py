"""Training batches built on the accelerator: CIFAR-sized images held there once, gathered,
cropped, flipped and scaled there.

The CPU path (``loop.batch_inputs``) augments each batch in numpy and copies it over; on a GPU that
per-batch work, not the network, bounds a ResNet-32 epoch. :class:`DeviceImages` keeps the uint8
training images on the device, padded once for the random crop, and :func:`device_batch_inputs`
builds a batch with exactly the crops and flips of the epoch's plan (``plan.aug``: dy, dx, flip per
slot, as ``plan.apply_augment`` applies them), so a run gives the same batches on either path.

The loop's hook (two lines in ``fit``; see docs/gpu.md):

    images = DeviceImages.for_training(data, train, device)          # once, before the epochs
    ...
    x, y = (device_batch_inputs(images, plan, slots, batch_swaps) if images is not None
            else batch_inputs(data, train, plan, slots, batch_swaps))
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..datasets import PreparedData, Split
from ..pools.reuse import swap_rows


class DeviceImages:
    """uint8 images (N, C, H, W) and their labels on ``device``, zero-padded by ``crop_pad`` pixels
    on every side (the random crop of ``augment``)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, augment: dict[str, Any], device: torch.device):
        if x.ndim != 4 or x.dtype != np.uint8:
            raise ValueError(f"DeviceImages holds uint8 (N, C, H, W) images, got {x.dtype} {x.shape}")
        self.pad = int(augment.get("crop_pad", 0)) if augment else 0
        self.augmented = bool(augment)
        self.height, self.width = int(x.shape[2]), int(x.shape[3])
        images = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        if self.pad:
            images = torch.nn.functional.pad(images, (self.pad,) * 4)
        self.images = images
        self.labels = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
        self.device = device
        rows = torch.arange(self.height, device=device)
        cols = torch.arange(self.width, device=device)
        self._rows, self._cols = rows, cols

    @classmethod
    def for_training(cls, data: PreparedData, train: Split, device: torch.device,
                     max_bytes: int = 4 << 30) -> "DeviceImages | None":
        """The training images on ``device`` when it is an accelerator and they are uint8 images that
        fit in ``max_bytes``; None otherwise (the caller keeps the CPU path)."""
        if device.type == "cpu" or data.input_kind != "image" or train.x.dtype != np.uint8:
            return None
        if train.x.nbytes > max_bytes:
            return None
        return cls(train.x, train.y, data.augment, device)

    def gather(self, rows: np.ndarray, aug: np.ndarray) -> torch.Tensor:
        """float32 [0, 1] images of training ``rows`` with per-row (dy, dx, flip) applied:
        ``padded[:, dy:dy + H, dx:dx + W]``, then mirrored left-right where flip is 1."""
        idx = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=self.device)
        if not self.augmented:
            return self.images[idx].float().div_(255.0)
        a = torch.as_tensor(np.asarray(aug, dtype=np.int64), device=self.device)
        dy, dx, flip = a[:, 0:1], a[:, 1:2], a[:, 2:3].bool()
        row_idx = dy + self._rows                                   # (n, H)
        # flipped output column j reads the crop's column W-1-j
        col_idx = dx + torch.where(flip, self.width - 1 - self._cols, self._cols)   # (n, W)
        c = self.images.shape[1]
        out = self.images[idx[:, None, None, None],
                          torch.arange(c, device=self.device)[None, :, None, None],
                          row_idx[:, None, :, None], col_idx[:, None, None, :]]
        return out.float().div_(255.0)


def device_batch_inputs(images: DeviceImages, plan: Any, slots: np.ndarray,
                        swaps: dict[int, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch of ``slots`` on the device, as ``loop.batch_inputs`` builds it on the CPU: the real
    rows with their planned augmentation, and each slot named in ``swaps`` replaced by its pool
    row's input and label."""
    rows = plan.order[slots]
    x = images.gather(rows, plan.aug[slots])
    y = images.labels[torch.as_tensor(np.asarray(rows, dtype=np.int64), device=images.device)]
    positions, xs, labels = swap_rows(slots, swaps)
    if len(positions):
        pos = torch.as_tensor(positions, device=images.device)
        x[pos] = torch.from_numpy(xs).to(images.device)
        y[pos] = torch.from_numpy(labels).to(images.device)
    return x, y


__all__ = ["DeviceImages", "device_batch_inputs"]
