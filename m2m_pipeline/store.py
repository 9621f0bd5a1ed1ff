"""The zarr store: prepared datasets and translation pools. The only module that imports zarr.

Both are zarr v3 groups written under a temporary name and renamed into place, with the
attribute ``complete: true`` written last, so a crash never leaves something that reads as done.
Pool arrays carry dimension names, so ``xarray.open_zarr`` and ``dask.array.from_zarr`` read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .datasets import PreparedData, Split
from .utils import M2mError, atomic_dir

FORMAT_VERSION = 1


def _dims(kind: str, ndim: int) -> list[str]:
    if kind == "image" and ndim == 4:
        return ["sample", "channel", "height", "width"]
    if ndim == 2:
        return ["sample", "feature"]
    return ["sample"] + [f"dim_{i}" for i in range(1, ndim)]


def _create(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: Any, *, rows_per_chunk: int,
            rows_per_shard: int, dims: list[str]) -> zarr.Array:
    """An array chunked along its first axis: ``rows_per_chunk`` rows a chunk (what a reader reads
    at once), ``rows_per_shard`` rows a shard file (what one writer task writes)."""
    rows_per_chunk = max(1, min(rows_per_chunk, rows_per_shard))
    rows_per_shard = max(rows_per_chunk, rows_per_shard - rows_per_shard % rows_per_chunk)
    rest = tuple(int(s) for s in shape[1:])
    return group.create_array(name, shape=tuple(int(s) for s in shape), dtype=dtype,
                              chunks=(rows_per_chunk, *rest), shards=(rows_per_shard, *rest),
                              dimension_names=dims, fill_value=0)


def _open_complete(path: Path, what: str) -> zarr.Group:
    if not path.exists():
        raise M2mError(f"{what} {path} does not exist")
    if not (path / "zarr.json").is_file():
        raise M2mError(f"{path} is not a zarr v3 group (no zarr.json); expected a {what} folder")
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
    except Exception as exc:  # zarr raises several types for a damaged store
        raise M2mError(f"{what} {path} is not a readable zarr group ({type(exc).__name__}); "
                       f"delete it and write it again") from None
    if not attrs.get("complete"):
        raise M2mError(f"{what} {path} is incomplete (no completion marker); delete it and write it again")
    return group


# -- prepared datasets ---------------------------------------------------------------------------

def write_prepared(path: str | Path, data: PreparedData, *, rows_per_shard: int = 8192) -> None:
    """Write ``data`` to ``path`` (replacing what is there only once the new one is complete)."""
    with atomic_dir(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        for split_name in ("train", "val", "test"):
            split: Split = getattr(data, split_name)
            grp = root.create_group(split_name)
            dims = _dims(data.input_kind, split.x.ndim)
            x = _create(grp, "x", split.x.shape, split.x.dtype, rows_per_chunk=1024,
                        rows_per_shard=rows_per_shard, dims=dims)
            x[...] = split.x
            y = _create(grp, "y", split.y.shape, np.int64, rows_per_chunk=8192,
                        rows_per_shard=rows_per_shard, dims=["sample"])
            y[...] = split.y
        root.attrs.update({
            "kind": "m2m-prepared-dataset",
            "format_version": FORMAT_VERSION,
            "name": data.name,
            "class_names": list(data.class_names),
            "class_counts": [int(c) for c in data.class_counts],
            "input_kind": data.input_kind,
            "input_range": list(data.input_range) if data.input_range is not None else None,
            "mean": list(data.mean),
            "std": list(data.std),
            "augment": data.augment,
            "preset": data.preset,
            "meta": json.loads(json.dumps(data.meta, default=str)),
            "fingerprint": data.fingerprint,
        })
        root.attrs["complete"] = True


def prepared_fingerprint(path: str | Path) -> str | None:
    """The fingerprint of a complete prepared dataset at ``path``, or None."""
    try:
        return str(_open_complete(Path(path), "prepared dataset").attrs["fingerprint"])
    except M2mError:
        return None


def read_prepared(path: str | Path) -> PreparedData:
    path = Path(path)
    root = _open_complete(path, "prepared dataset")
    a = dict(root.attrs)
    if a.get("kind") != "m2m-prepared-dataset":
        raise M2mError(f"{path} is a zarr group but not a prepared dataset (kind={a.get('kind')!r})")
    splits = {s: Split(root[f"{s}/x"][...], root[f"{s}/y"][...]) for s in ("train", "val", "test")}
    data = PreparedData(
        name=a["name"], class_names=list(a["class_names"]), input_kind=a["input_kind"],
        input_range=tuple(a["input_range"]) if a["input_range"] is not None else None,
        mean=list(a["mean"]), std=list(a["std"]), augment=dict(a["augment"]), preset=a["preset"],
        meta=dict(a["meta"]), fingerprint=a["fingerprint"], **splits)
    return data


# -- pools ---------------------------------------------------------------------------------------

POOL_ROW_ARRAYS = ("slot", "target", "seed_class", "seed_index", "seed_aug", "x", "loss_g", "prob_g",
                   "u_beta", "accepted", "reason")


class PoolWriter:
    """Writes one epoch's pool: every translation attempt, one shard per translation task.

    Use as a context manager; rows are written with :meth:`write_rows`, and :meth:`finish` adds the
    attributes and the completion marker. Leaving the block with an error leaves nothing behind.
    """

    def __init__(self, path: str | Path, *, n_rows: int, input_shape: tuple[int, ...], input_kind: str,
                 rows_per_shard: int, rows_per_chunk: int = 256):
        self.path = Path(path)
        self.n_rows = int(n_rows)
        self.input_shape = tuple(input_shape)
        self.input_kind = input_kind
        self.rows_per_shard = max(1, int(rows_per_shard))
        self.rows_per_chunk = max(1, min(int(rows_per_chunk), self.rows_per_shard))
        self._ctx = None
        self._finished = False

    def __enter__(self) -> "PoolWriter":
        self._ctx = atomic_dir(self.path)
        tmp = self._ctx.__enter__()
        self.root = zarr.open_group(str(tmp), mode="w")
        n = max(self.n_rows, 0)
        spec = {
            "slot": ((n,), np.int64), "target": ((n,), np.int32), "seed_class": ((n,), np.int32),
            "seed_index": ((n,), np.int64), "seed_aug": ((n, 3), np.int16),
            "x": ((n, *self.input_shape), np.float32), "loss_g": ((n,), np.float32),
            "prob_g": ((n,), np.float32), "u_beta": ((n,), np.float64), "accepted": ((n,), np.bool_),
            "reason": ((n,), np.uint8),
        }
        self.arrays = {}
        for name, (shape, dtype) in spec.items():
            dims = _dims(self.input_kind, len(shape)) if name == "x" else (
                ["sample", "aug_param"] if name == "seed_aug" else ["sample"])
            self.arrays[name] = _create(self.root, name, shape, dtype, rows_per_chunk=self.rows_per_chunk,
                                        rows_per_shard=self.rows_per_shard, dims=dims)
        return self

    def write_plan(self, order: np.ndarray, attempt: np.ndarray, aug: np.ndarray) -> None:
        """Store the epoch's plan beside the rows: the plan is data, and training reads it back."""
        grp = self.root.create_group("plan")
        n = len(order)
        for name, arr, dims in (("order", order.astype(np.int64), ["slot"]),
                                ("attempt", attempt.astype(np.bool_), ["slot"]),
                                ("aug", aug.astype(np.int16), ["slot", "aug_param"])):
            a = _create(grp, name, arr.shape, arr.dtype, rows_per_chunk=max(1, min(n, 65536)),
                        rows_per_shard=max(1, n), dims=dims)
            a[...] = arr

    def write_rows(self, start: int, rows: dict[str, np.ndarray]) -> None:
        missing = set(POOL_ROW_ARRAYS) - set(rows)
        if missing:
            raise ValueError(f"pool rows miss arrays {sorted(missing)}")
        stop = start + len(rows["slot"])
        for name in POOL_ROW_ARRAYS:
            self.arrays[name][start:stop] = rows[name]

    def finish(self, attrs: dict[str, Any]) -> None:
        self.root.attrs.update(json.loads(json.dumps(attrs, default=str)))
        self.root.attrs.update({"kind": "m2m-pool", "format_version": FORMAT_VERSION, "n_rows": self.n_rows})
        self.root.attrs["complete"] = True  # last: the marker readers check
        self._finished = True

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None and not self._finished:
            exc_type, exc = RuntimeError, RuntimeError("PoolWriter left without finish()")
            self._ctx.__exit__(exc_type, exc, tb)
            raise exc
        return bool(self._ctx.__exit__(exc_type, exc, tb))


@dataclass
class Pool:
    """A read-only view of a complete pool; arrays load on access."""

    path: Path
    group: zarr.Group

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    def __len__(self) -> int:
        return int(self.group.attrs["n_rows"])

    def array(self, name: str, sel: Any = ...) -> np.ndarray:
        arr = self.group[name]
        if isinstance(sel, np.ndarray):  # a list of rows: orthogonal selection along the first axis
            return arr.oindex[(sel,) + (slice(None),) * (arr.ndim - 1)]
        return arr[sel]

    def plan_arrays(self) -> dict[str, np.ndarray]:
        return {k: self.group[f"plan/{k}"][...] for k in ("order", "attempt", "aug")}

    def rows(self, names: tuple[str, ...] = POOL_ROW_ARRAYS) -> dict[str, np.ndarray]:
        return {n: self.group[n][...] for n in names}


def open_pool(path: str | Path) -> Pool:
    path = Path(path)
    group = _open_complete(path, "pool")
    if group.attrs.get("kind") != "m2m-pool":
        raise M2mError(f"{path} is a zarr group but not an M2m pool (kind={group.attrs.get('kind')!r})")
    return Pool(path, group)


def pool_as_dask(path: str | Path) -> dict[str, Any]:
    """Every row array of a pool as a dask array (one dask chunk per zarr chunk)."""
    import dask.array as da

    open_pool(path)  # checks completeness and kind
    return {name: da.from_zarr(str(path), component=name) for name in POOL_ROW_ARRAYS}
