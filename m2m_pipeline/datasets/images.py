"""Image datasets of the paper: ``cifar10-lt``, ``cifar100-lt`` (Sec. 3.2, Appendix A),
``sun397``, ``celeba5`` (Sec. 3.3, Appendix A), ``imagenet-lt`` (Appendix C), and the
bring-your-own ``images:<dir>``.

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

import multiprocessing
import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..utils import M2mError, rng_for
from .base import (PreparedData, Split, hold_out_fraction, hold_out_per_class, long_tail_counts,
                   take_first_per_class)
from .registry import register_dataset

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

def _is_image(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def scan_class_folders(split_dir: Path, layout: str) -> dict[str, list[Path]]:
    """{class folder name: sorted image files} of one ImageFolder split, classes sorted."""
    if not split_dir.is_dir():
        raise M2mError(f"missing folder {split_dir}; expected {layout}")
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise M2mError(f"{split_dir} holds no class folders; expected {layout}")
    found: dict[str, list[Path]] = {}
    for cls in classes:
        files = sorted(e.name for e in os.scandir(split_dir / cls) if e.is_file() and _is_image(e.name))
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


def _image_data(name: str, classes: list[str], train: tuple[np.ndarray, np.ndarray],
                val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
                augment: dict[str, Any], preset: str, meta: dict[str, Any]) -> PreparedData:
    mean, std = channel_mean_std(train[0])
    return PreparedData(name=name, class_names=list(classes), train=Split(*train), val=Split(*val),
                        test=Split(*test), input_kind="image", input_range=(0.0, 1.0), mean=mean,
                        std=std, augment=dict(augment), preset=preset, meta=meta)


def _counts(y: np.ndarray, k: int) -> list[int]:
    return [int(c) for c in np.bincount(y, minlength=k)]


# -- CIFAR-LT ------------------------------------------------------------------------------------

_CIFAR = {
    10: {"folder": "cifar-10-batches-py", "train": [f"data_batch_{i}" for i in range(1, 6)],
         "test": ["test_batch"], "meta": "batches.meta", "names": b"label_names",
         "labels": b"labels", "tv": "CIFAR10"},
    100: {"folder": "cifar-100-python", "train": ["train"], "test": ["test"], "meta": "meta",
          "names": b"fine_label_names", "labels": b"fine_labels", "tv": "CIFAR100"},
}


def _find_cifar_pickles(data_root: Path, k: int) -> Path | None:
    spec = _CIFAR[k]
    for cand in (data_root / spec["folder"], data_root):
        if (cand / spec["meta"]).is_file():
            return cand
    return None


def _unpickle(path: Path, layout: str) -> dict:
    if not path.is_file():
        raise M2mError(f"missing file {path}; expected {layout}")
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh, encoding="bytes")
    except Exception as exc:  # a truncated or foreign file: any unpickling error
        raise M2mError(f"cannot read {path} ({type(exc).__name__}); expected {layout}") from None
    if not isinstance(obj, dict):
        raise M2mError(f"{path} does not hold a dict; expected {layout}")
    return obj


def read_cifar_pickles(folder: Path, k: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The python-pickle CIFAR release: class names, train x/y, test x/y (x uint8 N,3,32,32)."""
    spec = _CIFAR[k]
    layout = (f"the CIFAR-{k} python release {spec['folder']}/ with "
              f"{', '.join(spec['train'] + spec['test'] + [spec['meta']])}")
    meta = _unpickle(folder / spec["meta"], layout)
    if spec["names"] not in meta:
        raise M2mError(f"{folder / spec['meta']} lacks {spec['names'].decode()}; expected {layout}")
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[spec["names"]]]

    def read(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for f in files:
            d = _unpickle(folder / f, layout)
            if b"data" not in d or spec["labels"] not in d:
                raise M2mError(f"{folder / f} lacks data/{spec['labels'].decode()}; expected {layout}")
            x = np.asarray(d[b"data"], dtype=np.uint8)
            y = np.asarray(d[spec["labels"]], dtype=np.int64)
            if x.ndim != 2 or x.shape[1] != 3072 or len(x) != len(y):
                raise M2mError(f"{folder / f}: data has shape {x.shape} for {len(y)} labels, "
                               f"expected (N, 3072); expected {layout}")
            xs.append(x.reshape(-1, 3, 32, 32))
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    x_train, y_train = read(spec["train"])
    x_test, y_test = read(spec["test"])
    for y, what in ((y_train, "train"), (y_test, "test")):
        if y.min() < 0 or y.max() >= len(names):
            raise M2mError(f"{folder}: {what} labels outside 0..{len(names) - 1}; expected {layout}")
    return names, x_train, y_train, x_test, y_test


def build_cifar_lt(data_root: Path, k: int, *, rho: float, download: bool, seed: int,
                   val_fraction: float = 0.1) -> PreparedData:
    """CIFAR-LT-k (Sec. 3.2, Appendix A) from the pickle release or an ImageFolder tree."""
    name = f"cifar{k}-lt"
    spec = _CIFAR[k]
    layouts = (f"{data_root} to hold the torchvision CIFAR-{k} release ({spec['folder']}/) "
               f"or an ImageFolder tree {IMAGEFOLDER_LAYOUT}")
    folder = _find_cifar_pickles(data_root, k)
    imagefolder = (data_root / "train").is_dir() and (data_root / "test").is_dir()
    if folder is None and not imagefolder and download:
        import torchvision.datasets

        try:
            getattr(torchvision.datasets, spec["tv"])(root=str(data_root), train=True, download=True)
        except Exception as exc:  # no internet, a proxy, a full disk
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise M2mError(f"{name}: downloading CIFAR-{k} into {data_root} failed: {reason}") from None
        folder = _find_cifar_pickles(data_root, k)
    if folder is None and not imagefolder:
        raise M2mError(f"{name}: found no CIFAR data in {data_root}; expected {layouts} "
                       f"(or pass download=True where the machine has internet)")

    if folder is not None:
        classes, x_all, y_all, x_test, y_test = read_cifar_pickles(folder, k)
        source = {"layout": "cifar-python", "path": str(folder)}
    else:
        classes, splits = read_image_folder(data_root)
        source = {"layout": "imagefolder", "path": str(data_root)}
        x_all = None
        y_all = splits["train"][1]
    if len(classes) != k:
        raise M2mError(f"{name}: {source['path']} has {len(classes)} classes, CIFAR-{k} has {k}; "
                       f"expected {layouts}")

    source_counts = _counts(y_all, k)
    n_max = min(source_counts)
    counts = long_tail_counts(n_max, k, rho)
    if min(counts) < 1:
        raise M2mError(f"{name}: rho={rho} leaves class {classes[int(np.argmin(counts))]} with no "
                       f"image (N_1={n_max}); use a smaller rho")
    train_idx = take_first_per_class(y_all, counts)
    y_test_all = y_test if folder is not None else splits["test"][1]
    rest, held = hold_out_fraction(y_test_all, val_fraction, seed)

    if folder is not None:
        x_train, x_test_kept, x_val = x_all[train_idx], x_test[rest], x_test[held]
    else:
        train_files = [splits["train"][0][i] for i in train_idx]
        test_files = splits["test"][0]
        x_train = load_images(train_files, 32)
        x_test_all = load_images(test_files, 32)
        x_test_kept, x_val = x_test_all[rest], x_test_all[held]
    y_train = y_all[train_idx]
    meta = {
        "source": source,
        "rho": rho,
        "seed": seed,
        "class_order": "canonical (batches.meta / sorted class folders)",
        "source_train_counts": source_counts,
        "n_train_before_holdout": int(len(train_idx)),
        "train_counts_before_holdout": [int(c) for c in counts],
        "val_source": f"{val_fraction:.0%} of each test class",
        "n_test_before_holdout": int(len(y_test_all)),
        "n_val": int(len(held)),
        "n_test": int(len(rest)),
    }
    return _image_data(name, classes, (x_train, y_train), (x_val, y_test_all[held]),
                       (x_test_kept, y_test_all[rest]), augment=CIFAR_AUGMENT, preset="cifar",
                       meta=meta)


@register_dataset("cifar10-lt", preset="cifar")
def build_cifar10_lt(data_root: Path, *, rho: float = 100.0, download: bool = False,
                     seed: int = 0) -> PreparedData:
    """CIFAR-LT-10 (Sec. 3.2): N_k = N_1 * rho^(-(k-1)/(K-1)), first N_k images a class; 10% of test = val.

    ``data_root`` holds torchvision's ``cifar-10-batches-py/`` (``download=True`` fetches it where
    the machine has internet) or an ImageFolder tree ``train/<class>/*``, ``test/<class>/*`` whose
    sorted class folders are the canonical label order. N_1 is the smallest source class (5000);
    the test set stays balanced: 10% of each test class, drawn from the seed, is the validation set.
    """
    return build_cifar_lt(data_root, 10, rho=rho, download=download, seed=seed)


@register_dataset("cifar100-lt", preset="cifar")
def build_cifar100_lt(data_root: Path, *, rho: float = 100.0, download: bool = False,
                      seed: int = 0) -> PreparedData:
    """CIFAR-LT-100 (Sec. 3.2): the CIFAR-LT-10 recipe on CIFAR-100's 100 fine labels.

    ``data_root`` holds torchvision's ``cifar-100-python/`` or an ImageFolder tree with 100 classes.
    """
    return build_cifar_lt(data_root, 100, rho=rho, download=download, seed=seed)


# -- SUN397 --------------------------------------------------------------------------------------

@register_dataset("sun397", preset="sun397")
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
    return _image_data("sun397", classes, (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx]),
                       (x[test_idx], y[test_idx]), augment=CIFAR_AUGMENT, preset="sun397", meta=meta)


# -- CelebA-5 ------------------------------------------------------------------------------------

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


@register_dataset("celeba5", preset="celeba5")
def build_celeba5(data_root: Path, *, subsample: int = 20, n_val: int = 50, n_test: int = 100,
                  size: int = 32, seed: int = 0) -> PreparedData:
    """CelebA-5 (Sec. 3.3, Appendix A): 5 hair colours, exactly one set; 1/20 subsample; 50 val, 100 test a class.

    Layout of torchvision.datasets.CelebA: ``data_root/celeba/list_attr_celeba.txt`` (line 1: the
    image count, line 2: the 40 attribute names, then ``FILE v1 ... v40`` with -1/1 values) and
    ``data_root/celeba/img_align_celeba/*.jpg``; ``data_root`` may be the ``celeba`` folder itself.
    Classes, in the paper's order: Blond_Hair, Black_Hair, Bald, Brown_Hair, Gray_Hair; an image
    is kept when exactly one of them is 1. Each class keeps round(N_k / subsample) (at least 1)
    of its images, drawn from the seed, so the class ratios stay; then ``n_test`` and ``n_val``
    images a class are drawn from the seed, the rest is training. Centre square crop, 32x32.
    """
    layout = ("celeba/list_attr_celeba.txt (count line, attribute-name line, then FILE and 40 "
              "values of -1/1) and celeba/img_align_celeba/*.jpg (torchvision CelebA layout)")
    if subsample < 1:
        raise M2mError(f"celeba5: subsample must be >= 1, got {subsample}")
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
    one = hair.sum(axis=1) == 1
    y_all = np.where(one, hair.argmax(axis=1), -1)
    full_counts = _counts(y_all[one], len(CELEBA_HAIR))
    rng = rng_for(seed, "split", 0)
    keep = []
    for k in range(len(CELEBA_HAIR)):
        idx = np.flatnonzero(y_all == k)
        n = max(1, int(round(len(idx) / subsample))) if len(idx) else 0
        keep.append(np.sort(rng.choice(idx, size=n, replace=False)))
    keep_idx = np.sort(np.concatenate(keep))
    y = y_all[keep_idx]
    counts = np.bincount(y, minlength=len(CELEBA_HAIR))
    if counts.min() <= n_val + n_test:
        short = CELEBA_HAIR[int(np.argmin(counts))]
        raise M2mError(f"celeba5: class {short} keeps {int(counts.min())} images after the 1/"
                       f"{subsample} subsample, the recipe holds out {n_test} test + {n_val} "
                       f"validation; expected the full {layout}")
    rest, test_idx = hold_out_per_class(y, n_test, seed, stream_key=1)
    rest_local, val_local = hold_out_per_class(y[rest], n_val, seed, stream_key=2)
    train_idx, val_idx = rest[rest_local], rest[val_local]
    x = load_images([img_dir / files[i] for i in keep_idx], size)
    train_counts = _counts(y[train_idx], len(CELEBA_HAIR))
    meta = {
        "source": {"layout": "torchvision-CelebA", "path": str(base)},
        "seed": seed, "size": size, "subsample": subsample, "class_order": "paper (Appendix A)",
        "full_counts": full_counts,
        "subsampled_counts": [int(c) for c in counts],
        "n_excluded_not_exactly_one": int((~one).sum()),
        "n_train_before_holdout": int(len(train_idx)),
        "train_counts_before_holdout": train_counts,
        "val_source": f"{n_val} images of each class (after {n_test} test images a class)",
        "n_val": int(len(val_idx)), "n_test": int(len(test_idx)),
    }
    return _image_data("celeba5", list(CELEBA_HAIR), (x[train_idx], y[train_idx]),
                       (x[val_idx], y[val_idx]), (x[test_idx], y[test_idx]),
                       augment=CIFAR_AUGMENT, preset="celeba5", meta=meta)


# -- ImageNet-LT ---------------------------------------------------------------------------------

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


@register_dataset("imagenet-lt", preset="imagenet-lt")
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
                          if e.is_file() and _is_image(e.name) and str(rel_dir / e.name) not in in_train)
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
    counts = _counts(y_train, k)
    meta = {
        "source": {"layout": "imagenet-lt-lists", "path": str(data_root)},
        "seed": seed, "size": size, "class_order": "list-file labels",
        "n_train_before_holdout": int(len(y_train)),
        "train_counts_before_holdout": counts,
        "val_source": val_source,
        "n_val": int(len(y_val)), "n_test": int(len(y_test)),
    }
    return _image_data("imagenet-lt", classes, (x_train, y_train), (x_val, y_val), (x_test, y_test),
                       augment={"random_resized_crop": size, "flip": True}, preset="imagenet-lt",
                       meta=meta)


# -- bring your own ------------------------------------------------------------------------------

@register_dataset("images", preset="images", prefix=True)
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
    source_counts = _counts(y_all, len(classes))
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
    return _image_data(f"images:{data_root.name}", classes, (x_train, y_all[train_idx]),
                       (x_test_all[held], y_test_all[held]), (x_test_all[rest], y_test_all[rest]),
                       augment=aug, preset="images", meta=meta)
