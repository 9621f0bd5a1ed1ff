"""The in-memory form of a prepared dataset and the helpers every recipe shares."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..utils import M2mError, rng_for


@dataclass
class Split:
    """One split: inputs ``x`` (uint8 N,C,H,W images or float32 N,D vectors) and int64 labels ``y``."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        self.y = np.asarray(self.y, dtype=np.int64)
        if len(self.x) != len(self.y):
            raise ValueError(f"split has {len(self.x)} inputs but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class PreparedData:
    """A dataset after its recipe: the three splits plus what a model and the translator need.

    ``input_kind`` is ``"image"`` (uint8 pixels, scaled to [0, 1] by :meth:`to_float`) or
    ``"vector"`` (float32 features used as they are). ``input_range`` is the valid range of the
    float input that translation clamps to, or ``None`` for unbounded features (embeddings).
    ``mean``/``std`` normalise the float input inside the model, so translation works in the
    input's own space. ``augment`` names the training augmentation (``crop_pad``, ``flip``).
    """

    name: str
    class_names: list[str]
    train: Split
    val: Split
    test: Split
    input_kind: str
    input_range: tuple[float, float] | None
    mean: list[float]
    std: list[float]
    augment: dict[str, Any] = field(default_factory=dict)
    preset: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if self.input_kind not in ("image", "vector"):
            raise ValueError(f"input_kind must be 'image' or 'vector', got {self.input_kind!r}")
        if self.input_range is not None:
            self.input_range = (float(self.input_range[0]), float(self.input_range[1]))
        if not self.fingerprint:
            self.fingerprint = self.compute_fingerprint()

    # -- shape facts --------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    @property
    def class_counts(self) -> np.ndarray:
        """N_k of the training split (after the validation hold-out)."""
        return np.bincount(self.train.y, minlength=self.num_classes)

    def to_float(self, x: np.ndarray) -> torch.Tensor:
        """Model input in float32: pixels scaled to [0, 1], features unchanged."""
        t = torch.from_numpy(np.ascontiguousarray(x))
        return t.float().div_(255.0) if self.input_kind == "image" else t.float()

    def compute_fingerprint(self) -> str:
        """A content hash of every array and every recipe fact: a changed input changes it."""
        h = hashlib.sha256()
        for split in (self.train, self.val, self.test):
            for arr in (split.x, split.y):
                a = np.ascontiguousarray(arr)
                h.update(str(a.dtype).encode() + str(a.shape).encode())
                h.update(a.tobytes())
        facts = {
            "name": self.name,
            "class_names": list(self.class_names),
            "input_kind": self.input_kind,
            "input_range": self.input_range,
            "mean": list(self.mean),
            "std": list(self.std),
            "augment": self.augment,
        }
        h.update(json.dumps(facts, sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]

    def validate(self) -> None:
        """Checks every recipe's output must pass; raises M2mError naming what is wrong."""
        k = self.num_classes
        for split_name in ("train", "val", "test"):
            split: Split = getattr(self, split_name)
            if len(split) == 0:
                raise M2mError(f"dataset {self.name!r}: the {split_name} split is empty")
            if split.y.min() < 0 or split.y.max() >= k:
                raise M2mError(f"dataset {self.name!r}: {split_name} labels outside 0..{k - 1}")
            if split.x.shape[1:] != self.input_shape:
                raise M2mError(f"dataset {self.name!r}: {split_name} inputs have shape "
                               f"{split.x.shape[1:]}, train has {self.input_shape}")
        if self.input_kind == "image" and self.train.x.dtype != np.uint8:
            raise M2mError(f"dataset {self.name!r}: image inputs must be uint8")
        if self.input_kind == "vector" and self.train.x.dtype != np.float32:
            raise M2mError(f"dataset {self.name!r}: vector inputs must be float32")
        missing = np.flatnonzero(self.class_counts == 0)
        if len(missing):
            raise M2mError(f"dataset {self.name!r}: classes with no training sample: "
                           f"{[self.class_names[i] for i in missing]}")


# -- recipe helpers shared by the loaders --------------------------------------------------------

def read_text_file(path, layout: str, what: str = "") -> str:
    """The UTF-8 text of ``path``; a missing or undecodable file raises M2mError naming the file and
    the expected ``layout`` (``what`` prefixes the message, e.g. the dataset name)."""
    prefix = f"{what}: " if what else ""
    if not path.is_file():
        raise M2mError(f"{prefix}missing file {path}; expected {layout}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise M2mError(f"{prefix}{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                       f"expected {layout}") from None


def long_tail_counts(n_max: int, num_classes: int, rho: float) -> list[int]:
    """CIFAR-LT class sizes: N_k = N_1 * rho^(-(k-1)/(K-1)) for k = 1..K (Cao et al., used in Sec. 3.1)."""
    if rho < 1:
        raise M2mError(f"imbalance ratio rho must be >= 1, got {rho}")
    if num_classes == 1:
        return [n_max]
    return [int(n_max * rho ** (-(k / (num_classes - 1)))) for k in range(num_classes)]


def take_first_per_class(y: np.ndarray, counts: list[int]) -> np.ndarray:
    """Indices of the first ``counts[k]`` samples of each class k, in their original order."""
    keep = []
    for k, n in enumerate(counts):
        idx = np.flatnonzero(y == k)
        if len(idx) < n:
            raise M2mError(f"class {k} has {len(idx)} samples, the recipe needs {n}")
        keep.append(idx[:n])
    return np.sort(np.concatenate(keep))


def hold_out_per_class(y: np.ndarray, n_per_class: int, seed: int, stream_key: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (rest, held_out) with ``n_per_class`` random samples of each class held out."""
    rng = rng_for(seed, "split", stream_key)
    held = []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        if len(idx) <= n_per_class:
            raise M2mError(f"class {k} has {len(idx)} samples; cannot hold out {n_per_class}")
        held.append(rng.choice(idx, size=n_per_class, replace=False))
    held_idx = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(len(y)), held_idx)
    return rest, held_idx


def hold_out_fraction(y: np.ndarray, fraction: float, seed: int, stream_key: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (rest, held_out), holding out ``fraction`` of each class (at least one
    sample where a class has two or more, so no class vanishes from training)."""
    rng = rng_for(seed, "split", stream_key)
    held = []
    for k in np.unique(y):
        idx = np.flatnonzero(y == k)
        n = int(round(fraction * len(idx)))
        n = min(max(n, 1 if len(idx) >= 2 else 0), len(idx) - 1)
        if n > 0:
            held.append(rng.choice(idx, size=n, replace=False))
    held_idx = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    rest = np.setdiff1d(np.arange(len(y)), held_idx)
    return rest, held_idx


def majority_classes(class_counts: np.ndarray) -> np.ndarray:
    """Sec. 3.4's split: the fewest most-frequent classes that together hold more than 50% of the
    training samples are "Major"; the rest are "Minor". Returns a boolean mask over classes.

    Ties in size are broken by class index, so the split is deterministic.
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    order = sorted(range(len(counts)), key=lambda k: (-counts[k], k))
    mask = np.zeros(len(counts), dtype=bool)
    total, acc = counts.sum(), 0
    for k in order:
        mask[k] = True
        acc += counts[k]
        if acc * 2 > total:
            break
    return mask
