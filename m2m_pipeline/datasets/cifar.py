"""CIFAR-LT-10 and CIFAR-LT-100 (Sec. 3.2, Appendix A): ``cifar10-lt``, ``cifar100-lt``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..utils import M2mError
from .base import PreparedData, hold_out_fraction, long_tail_counts, take_first_per_class
from .image_io import CIFAR_AUGMENT, IMAGEFOLDER_LAYOUT, class_counts, image_data, load_images, read_image_folder
from .registry import register_dataset

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


def _numpy_global(name: str):
    """``numpy._core.multiarray._reconstruct`` and friends, wherever this numpy keeps them (numpy 2
    moved ``numpy.core`` to ``numpy._core``; the CIFAR files, pickled by numpy 1, name the old one)."""
    import importlib

    for module in ("numpy._core.multiarray", "numpy._core.numeric", "numpy.core.multiarray", "numpy.core.numeric"):
        try:
            obj = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if obj is not None:
            return obj
    raise pickle.UnpicklingError(f"numpy has no {name}")


# Every global a CIFAR python release (or a re-pickling of it by numpy 1 or 2, protocols 2-5) can
# name: an ndarray rebuilt from its dtype and bytes, and latin-1 bytes of protocol 2. Nothing here
# runs code of the file's choosing; any other global (os.system, builtins.eval, ...) is refused.
_SAFE_GLOBALS = {
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    **{(m, n): (lambda n=n: _numpy_global(n))
       for m in ("numpy.core.multiarray", "numpy._core.multiarray")
       for n in ("_reconstruct", "scalar")},
    **{(m, "_frombuffer"): (lambda: _numpy_global("_frombuffer"))
       for m in ("numpy.core.numeric", "numpy._core.numeric")},
    ("_codecs", "encode"): lambda: __import__("_codecs").encode,
}


class _RefusedGlobal(Exception):
    """A pickle names a global outside :data:`_SAFE_GLOBALS`."""


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and plain containers only (data must never run
    code): ``find_class`` resolves the few numpy globals the CIFAR files hold and refuses the rest,
    so a ``__reduce__`` payload fails before anything of it is called."""

    def find_class(self, module: str, name: str):
        make = _SAFE_GLOBALS.get((module, name))
        if make is None:
            raise _RefusedGlobal(f"{module}.{name}")
        return make()

    def persistent_load(self, pid):
        raise _RefusedGlobal(f"persistent id {str(pid)[:40]!r}")


def safe_unpickle(path: Path, expected: str) -> object:
    """Unpickle ``path`` with :class:`_SafeUnpickler` (py2 strings as bytes, as the CIFAR release
    needs); a refused global or a damaged file is a one-line M2mError naming the file
    (``expected``: what the file should be, for the message)."""
    try:
        with open(path, "rb") as fh:
            return _SafeUnpickler(fh, encoding="bytes").load()
    except _RefusedGlobal as exc:
        raise M2mError(f"refusing to read {path}: its pickle calls {exc}, not the numpy arrays of a "
                       f"CIFAR file (a data file that runs code is never loaded); replace it with the "
                       f"original release") from None
    except RecursionError:
        raise M2mError(f"cannot read {path} (nested too deeply); expected {expected}") from None
    except Exception as exc:  # a truncated or foreign file: any unpickling error
        raise M2mError(f"cannot read {path} ({type(exc).__name__}); expected {expected}") from None


def _unpickle(path: Path, layout: str) -> dict:
    if not path.is_file():
        raise M2mError(f"missing file {path}; expected {layout}")
    obj = safe_unpickle(path, layout)
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

    source_counts = class_counts(y_all, k)
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
    return image_data(name, classes, (x_train, y_train), (x_val, y_test_all[held]),
                       (x_test_kept, y_test_all[rest]), augment=CIFAR_AUGMENT, preset=name,
                       meta=meta)


@register_dataset("cifar10-lt")
def build_cifar10_lt(data_root: Path, *, rho: float = 100.0, download: bool = False,
                     seed: int = 0) -> PreparedData:
    """CIFAR-LT-10 (Sec. 3.2): N_k = N_1 * rho^(-(k-1)/(K-1)), first N_k images a class; 10% of test = val.

    ``data_root`` holds torchvision's ``cifar-10-batches-py/`` (``download=True`` fetches it where
    the machine has internet) or an ImageFolder tree ``train/<class>/*``, ``test/<class>/*`` whose
    sorted class folders are the canonical label order. N_1 is the smallest source class (5000);
    the test set stays balanced: 10% of each test class, drawn from the seed, is the validation set.
    """
    return build_cifar_lt(data_root, 10, rho=rho, download=download, seed=seed)


@register_dataset("cifar100-lt")
def build_cifar100_lt(data_root: Path, *, rho: float = 100.0, download: bool = False,
                      seed: int = 0) -> PreparedData:
    """CIFAR-LT-100 (Sec. 3.2): the CIFAR-LT-10 recipe on CIFAR-100's 100 fine labels.

    ``data_root`` holds torchvision's ``cifar-100-python/`` or an ImageFolder tree with 100 classes.
    """
    return build_cifar_lt(data_root, 100, rho=rho, download=download, seed=seed)
