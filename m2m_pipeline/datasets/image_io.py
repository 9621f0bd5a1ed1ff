"""What every image recipe shares: decoding files into uint8 pixels, folder scanning, and the
``PreparedData`` of an image dataset.

Every recipe returns uint8 (N, 3, H, W) pixels (``input_range`` (0, 1) after scaling by 1/255),
with per-channel ``mean``/``std`` computed over the final training split (Sec. 3.1: "all the input
images are normalized over the training dataset").

Decoding: PIL, RGB (grey or CMYK files are converted); an image that is not ``size`` x ``size``
is centre-cropped to a square (side = its shorter side) and resized with bilinear filtering
(anti-aliased when shrinking); large JPEGs are decoded at a reduced scale first (PIL's ``draft``,
never below the target size). Many files are decoded by a pool of forked worker processes (one
per core; the environment variable M2M_DECODE_WORKERS sets another number, 1 = no pool). A file
that cannot be decoded raises an M2mError naming it.

Random choices (hold-outs, CelebA subsampling) come from ``rng_for(seed, "split", ...)``.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from ..utils import M2mError
from .base import PreparedData, Split

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif",
                              ".tiff", ".webp"})
CIFAR_AUGMENT = {"crop_pad": 4, "flip": True}
IMAGEFOLDER_LAYOUT = "train/<class>/<image> and test/<class>/<image> (torchvision ImageFolder)"
_PARALLEL_MIN = 2048  # fewer files than this are decoded in the calling process
_CHUNK = 512


# -- decoding ------------------------------------------------------------------------------------

def fit_square(img: Image.Image, size: int) -> Image.Image:
    """Centre square crop (side = the shorter side), then resize to ``size`` x ``size``."""
    w, h = img.size
    if (w, h) == (size, size):
        return img
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    if side != w or side != h:
        img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return img


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """One file -> uint8 (size, size, 3) RGB pixels (module docstring); raises M2mError."""
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (size, size))
            img = fit_square(img.convert("RGB"), size)
            return np.asarray(img, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise M2mError(f"cannot decode image {path}: {reason}") from None


def _decode_chunk(args: tuple[Sequence[str], int]) -> np.ndarray | str:
    """Worker: uint8 (n, 3, size, size), or the error message of the first bad file."""
    paths, size = args
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    for i, p in enumerate(paths):
        try:
            out[i] = decode_image(p, size).transpose(2, 0, 1)
        except M2mError as exc:
            return str(exc)
    return out


def load_images(paths: Sequence[str | Path], size: int, workers: int | None = None) -> np.ndarray:
    """Decode ``paths`` into one uint8 (N, 3, size, size) array, in order.

    Many files go to ``workers`` forked processes (default: one per core); few files, a single
    core, or a platform without ``fork`` decode in this process.
    """
    paths = [str(p) for p in paths]
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)
    chunks = [(paths[i:i + _CHUNK], size) for i in range(0, len(paths), _CHUNK)]
    if workers is None:
        env = os.environ.get("M2M_DECODE_WORKERS", "").strip()
        workers = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    parallel = (workers > 1 and len(paths) >= _PARALLEL_MIN
                and "fork" in multiprocessing.get_all_start_methods())
    if parallel:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(workers, len(chunks)), mp_context=ctx) as pool:
            results = pool.map(_decode_chunk, chunks)
            for i, res in enumerate(results):
                if isinstance(res, str):
                    raise M2mError(res)
                out[i * _CHUNK:i * _CHUNK + len(res)] = res
    else:
        for i, chunk in enumerate(chunks):
            res = _decode_chunk(chunk)
            if isinstance(res, str):
                raise M2mError(res)
            out[i * _CHUNK:i * _CHUNK + len(res)] = res
    return out


def channel_mean_std(x: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 (N, C, H, W) pixels scaled to [0, 1], exact, in chunks."""
    c = x.shape[1]
    s = np.zeros(c, dtype=np.float64)
    ss = np.zeros(c, dtype=np.float64)
    for i in range(0, len(x), chunk):
        part = x[i:i + chunk].astype(np.float64) / 255.0
        s += part.sum(axis=(0, 2, 3))
        ss += (part * part).sum(axis=(0, 2, 3))
    n = float(len(x) * x.shape[2] * x.shape[3])
    mean = s / n
    std = np.sqrt(np.maximum(ss / n - mean * mean, 0.0))
    return [float(v) for v in mean], [float(max(v, 1e-6)) for v in std]


# -- folder scanning ---------------------------------------------------------------------------

def is_image_file(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _resolves(entry: os.DirEntry) -> None:
    """Refuse a symbolic link that does not resolve: a loop (``self.jpg -> self.jpg``) or a dangling
    link. It is an error naming the file, not a skip: a dataset silently missing files would give
    other class counts than the tree shows."""
    if entry.is_symlink():
        try:
            os.stat(entry.path)
        except OSError as exc:
            why = "a loop of symbolic links" if exc.errno == errno.ELOOP else "a dangling symbolic link"
            raise M2mError(f"{entry.path} is {why} (-> {os.readlink(entry.path)}); fix or remove it") from None


def _entries(folder: Path, wanted: Callable[[str], bool]) -> list[os.DirEntry]:
    entries = [e for e in os.scandir(folder) if wanted(e.name)]
    for e in entries:
        _resolves(e)
    return entries


def scan_class_folders(split_dir: Path, layout: str) -> dict[str, list[Path]]:
    """{class folder name: sorted image files} of one ImageFolder split, classes sorted. A link
    among the class folders or image files that does not resolve is a one-line error naming it."""
    if not split_dir.is_dir():
        raise M2mError(f"missing folder {split_dir}; expected {layout}")
    classes = sorted(e.name for e in _entries(split_dir, lambda n: not n.startswith(".")) if e.is_dir())
    if not classes:
        raise M2mError(f"{split_dir} holds no class folders; expected {layout}")
    found: dict[str, list[Path]] = {}
    for cls in classes:
        files = sorted(e.name for e in _entries(split_dir / cls, is_image_file) if e.is_file())
        found[cls] = [split_dir / cls / f for f in files]
    return found


def read_image_folder(root: Path, layout: str = IMAGEFOLDER_LAYOUT) -> tuple[list[str], dict[str, tuple[list[Path], np.ndarray]]]:
    """Class names (sorted train/ folders) and, per split, (files, labels) of an ImageFolder tree."""
    train = scan_class_folders(root / "train", layout)
    test = scan_class_folders(root / "test", layout)
    classes = list(train)
    empty = [c for c, files in train.items() if not files]
    if empty:
        raise M2mError(f"{root / 'train' / empty[0]} holds no image files; expected {layout}")
    extra = sorted(set(test) - set(train))
    if extra:
        raise M2mError(f"{root / 'test'}: class folder(s) {extra[:5]} have no train/ folder; "
                       f"expected {layout} with the same class names")
    index = {c: i for i, c in enumerate(classes)}
    splits = {}
    for name, tree in (("train", train), ("test", test)):
        files = [f for c in tree for f in tree[c]]
        labels = np.asarray([index[c] for c in tree for _ in tree[c]], dtype=np.int64)
        if not files:
            raise M2mError(f"{root / name} holds no image files; expected {layout}")
        splits[name] = (files, labels)
    return classes, splits


def image_data(name: str, classes: list[str], train: tuple[np.ndarray, np.ndarray],
                val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
                augment: dict[str, Any], preset: str, meta: dict[str, Any]) -> PreparedData:
    mean, std = channel_mean_std(train[0])
    return PreparedData(name=name, class_names=list(classes), train=Split(*train), val=Split(*val),
                        test=Split(*test), input_kind="image", input_range=(0.0, 1.0), mean=mean,
                        std=std, augment=dict(augment), preset=preset, meta=meta)


def class_counts(y: np.ndarray, k: int) -> list[int]:
    return [int(c) for c in np.bincount(y, minlength=k)]
