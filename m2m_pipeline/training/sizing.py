"""The preset of a bring-your-own dataset (``images``, ``text``, ``table``), sized from the data.

params.yaml's presets of those kinds write ``auto`` for the keys this rule fills (:data:`AUTO_KEYS`);
a number there overrides it (``presets.images.epochs: 30``). ``params.preset_for`` calls
:func:`sized_schedule` with the prepared data's facts.
"""

from __future__ import annotations

from typing import Any, Sequence

AUTO = "auto"
AUTO_KEYS = ("model", "epochs", "batch_size", "warmup_epochs", "milestones", "deferred_epoch")


def _pow2_floor(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def sized_schedule(input_kind: str, n_train: int, input_shape: Sequence[int],
                   epochs: int | None = None) -> dict[str, Any]:
    """The model, epochs, batch size and lr schedule of a bring-your-own dataset of ``n_train``
    training samples (after the validation hold-out) of kind ``input_kind`` (``image``/``vector``).

    Images (the CIFAR-LT preset, Sec. 3.1, scaled down for small sets):

    ========================  ==========================================  ======  =====
    training images           model                                       epochs  batch
    ========================  ==========================================  ======  =====
    < 1,000                   small_cnn                                   60      32
    1,000 - 9,999             small_cnn if side <= 16 px, else resnet32   120     64
    >= 10,000                 small_cnn if side <= 16 px, else resnet32   200     128
    ========================  ==========================================  ======  =====

    lr milestones at 80% and 90% of the epochs, deferral (DRS/DRW/M2m) at 80% (CIFAR-LT's 160, 180
    of 200). Vectors (text, table: the Reuters/Twitter MLP preset, Appendix A): an ``mlp``; 30
    epochs below 1,000 samples, 20 below 10,000, else 15 (Reuters' 5.8k documents train 15),
    batch 32, 64, 64; one milestone and the deferral at two thirds of the epochs (Reuters' 10 of
    15). A small set gets fewer image epochs (a tiny CNN fits it long before 200) but more vector
    epochs (an epoch of a few hundred rows is a handful of optimiser steps). Warm-up:
    min(5, epochs // 10) epochs. The batch is never more than half the training set (a power of
    two, at least 2), so every epoch has at least two steps. ``epochs`` given (params.yaml sets it,
    the rest ``auto``): the milestones, deferral and warm-up are those fractions of it.
    """
    n = int(n_train)
    if n < 1:
        raise ValueError(f"n_train must be >= 1, got {n_train}")
    if input_kind == "image":
        side = min(int(s) for s in input_shape[1:]) if len(input_shape) >= 3 else 0
        tier = 0 if n < 1000 else 1 if n < 10000 else 2
        epochs = epochs or (60, 120, 200)[tier]
        batch = (32, 64, 128)[tier]
        model = "small_cnn" if tier == 0 or side <= 16 else "resnet32"
        milestones = sorted({max(1, round(0.8 * epochs)), max(1, round(0.9 * epochs))})
        deferred = round(0.8 * epochs)
    elif input_kind == "vector":
        epochs = epochs or (30 if n < 1000 else 20 if n < 10000 else 15)
        batch = 32 if n < 1000 else 64
        model = "mlp"
        milestones = [max(1, round(2 * epochs / 3))]
        deferred = round(2 * epochs / 3)
    else:
        raise ValueError(f"input_kind must be 'image' or 'vector', got {input_kind!r}")
    batch = max(2, min(batch, _pow2_floor(n // 2)))
    return {"model": model, "epochs": epochs, "batch_size": batch, "warmup_epochs": min(5, epochs // 10),
            "milestones": milestones, "deferred_epoch": deferred}


def fill_auto(preset: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """``preset`` with each ``auto`` value replaced by :func:`sized_schedule` of ``facts``
    (``input_kind``, ``n_train``, ``input_shape``); the keys the user set stay as they are."""
    epochs = preset.get("epochs")
    sized = sized_schedule(facts["input_kind"], facts["n_train"], facts["input_shape"],
                           epochs=None if epochs == AUTO else epochs)
    return {k: (sized[k] if v == AUTO and k in sized else v) for k, v in preset.items()}


def has_auto(preset: dict[str, Any]) -> bool:
    return any(preset.get(k) == AUTO for k in AUTO_KEYS)


__all__ = ["AUTO", "AUTO_KEYS", "fill_auto", "has_auto", "sized_schedule"]
