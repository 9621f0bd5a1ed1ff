"""Reading a pool: the checked read-only view (:class:`Pool`, :func:`open_pool`), the full check
of ``pools verify`` (:func:`verify_pool`), the migration of older formats and the dask view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..utils import M2mError
from .integrity import check_digests
from .migration import migrate_group
from .pool_schema import (MIGRATE_COMMAND, POOL_ARRAY_DTYPES, POOL_FORMAT_VERSION, POOL_READABLE_FROM, POOL_ROW_ARRAYS,
                          POOL_SCHEMA, check_pool_consistency)
from .shard_file import ShardLayout, shard_layout
from .zarr_io import open_checked_group, open_complete, read_array, read_arrays, read_sharded


@dataclass
class Pool:
    """A read-only view of a complete pool, checked when opened (:func:`open_pool`); arrays load
    on access, each chunk verified against its crc32c, and the index arrays (``target``,
    ``seed_class``, ``slot``, ``seed_index``, ``reason``, ``plan/order``) checked to be in range.

    ``metas`` (each array's zarr.json, digest-checked by :func:`open_pool`) lets the sharded arrays
    be read a whole shard file at a time without zarr (store/shard_file.py): the same values and
    the same checksums, a few numpy and zstd calls instead of zarr's per-chunk machinery."""

    path: Path
    _group: zarr.Group | None   # opened when first needed (store/zarr_io.open_checked_group)
    checked_attrs: dict[str, Any] | None = None
    metas: dict[str, dict[str, Any]] | None = None
    _layouts: dict[str, ShardLayout | None] = field(default_factory=dict, repr=False)

    @property
    def group(self) -> zarr.Group:
        """The pool as a zarr group, for what the whole-shard reader does not read (the class names,
        other layouts, ``pools verify``): opened on first use, its attributes compared with those
        checked at open."""
        if self._group is None:
            self._group = open_checked_group(self.path, self.checked_attrs, "pool") \
                if self.checked_attrs is not None else zarr.open_group(str(self.path), mode="r")
        return self._group

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.checked_attrs if self.checked_attrs is not None else self._opened_attrs())

    def _opened_attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    def __len__(self) -> int:
        return int(self.attrs["n_rows"])

    @property
    def store(self) -> str:
        """``all`` (every attempt's x*) or ``accepted`` (x* of the accepted rows only: ``pools.store``)."""
        return str(self.attrs.get("store", "all"))

    def has_array(self, name: str) -> bool:
        return (self.path / name / "zarr.json").is_file()

    def _ranges(self) -> dict[str, tuple[int, int, str]]:
        """{array: (lo, hi, what)}: the values an index array may hold (inclusive)."""
        a = self.attrs
        k, n_train, n_slots = len(a["class_counts"]), sum(a["class_counts"]), a["summary"]["n_slots"]
        codes = sorted(set(a["reason_codes"].values())) or [0]
        return {"target": (0, k - 1, f"the pool's {k} classes"),
                "seed_class": (-1, k - 1, f"-1 or the pool's {k} classes"),
                "slot": (0, n_slots - 1, f"the epoch's {n_slots} slots"),
                "seed_index": (-1, n_train - 1, f"-1 or the {n_train} training rows"),
                "plan/order": (0, n_train - 1, f"the {n_train} training rows"),
                "reason": (min(codes), max(codes), "the pool's reason codes")}

    def _checked(self, name: str, values: np.ndarray) -> np.ndarray:
        bounds = self._ranges().get(name)
        if bounds is not None and values.size:
            lo, hi, what = bounds
            bad = np.flatnonzero((values < lo) | (values > hi))
            if len(bad):
                raise M2mError(f"pool {self.path} is damaged: array {name!r} holds {int(values.reshape(-1)[bad[0]])}, "
                               f"outside {lo}..{hi} ({what}); delete it and write it again")
        return values

    def layout(self, name: str) -> ShardLayout | None:
        """The shard layout of array ``name`` when the fast path reads it (shard_file.shard_layout), else None."""
        if name not in self._layouts:
            meta = (self.metas or {}).get(name)
            self._layouts[name] = None if meta is None else shard_layout(meta)
        return self._layouts[name]

    def _read(self, name: str, sel: Any) -> np.ndarray:
        layout = self.layout(name)
        if layout is None:
            return read_array(self.path, self.group, name, sel)
        files = (self.attrs.get("manifest") or {}).get("files")
        return read_sharded(self.path, name, layout, sel, "pool", files)

    def array(self, name: str, sel: Any = ...) -> np.ndarray:
        if name == "x" and not self.has_array("x"):
            raise M2mError(f"pool {self.path} stores x* compactly (x_delta, x_exp); read it decoded with "
                           f"m2m_pipeline.pools.codec.read_x(pool, data, rows)")
        return self._checked(name, self._read(name, sel))

    def plan_arrays(self) -> dict[str, np.ndarray]:
        return {k: self._checked(f"plan/{k}", self._read(f"plan/{k}", ...)) for k in ("order", "attempt", "aug")}

    def rows(self, names: tuple[str, ...] = POOL_ROW_ARRAYS, sel: Any = ...) -> dict[str, np.ndarray]:
        """Several arrays at once (rows ``sel``: all, a slice, or an array of row indices): the
        sharded ones a whole shard file at a time (the fast path), any other concurrently in one
        round trip to zarr's event loop rather than one blocking call each."""
        names = tuple(names)
        slow = tuple(k for k in names if self.layout(k) is None)
        out = dict(read_arrays(self.path, self.group, slow, sel)) if slow else {}
        out.update({k: self._read(k, sel) for k in names if k not in out})
        return {k: self._checked(k, out[k]) for k in names}


def _check_pool_arrays(path: Path, attrs: dict[str, Any], metas: dict[str, dict[str, Any]]) -> None:
    """Every row array a pool holds is there, and each array (the plan's too, when written) is of
    its dtype with as many rows as the attributes say (rows: ``n_rows``; plan: ``summary.n_slots``;
    class axis: ``len(class_counts)``)."""
    n_rows, n_slots, k = attrs["n_rows"], attrs["summary"]["n_slots"], len(attrs["class_counts"])
    for name, dtype in POOL_ARRAY_DTYPES.items():
        meta = metas.get(name)
        if meta is None and name.startswith("plan/"):
            continue   # a pool written without its plan (rows only): reading the plan says it is missing
        if meta is None:
            raise M2mError(f"pool {path} is damaged: array {name!r} is missing; delete it and write it again")
        shape, got = meta.get("shape"), meta.get("data_type")
        rows = n_slots if name.startswith("plan/") else n_rows
        if not isinstance(shape, list) or not shape or shape[0] != rows or got != dtype:
            raise M2mError(f"pool {path} is damaged: array {name!r} is {got} of shape {shape}, expected {dtype} with "
                           f"{rows} rows; delete it and write it again")
    for name in ("class", "class_count"):
        shape = (metas.get(name) or {}).get("shape")
        if name in metas and shape != [k]:
            raise M2mError(f"pool {path} has bad attributes: class_counts has {k} classes but array {name!r} has "
                           f"shape {shape}; it is damaged or was written by something else: delete it and write it again")


def open_pool(path: str | Path) -> Pool:
    """The pool at ``path``, refused with a one-line M2mError unless it is complete, of this
    format, with attributes at their recorded hash and fitting :data:`POOL_SCHEMA`, every array's
    metadata at its recorded sha256 (crc32c in its codecs, its shape as the attributes say) and
    every recorded file at its size. Chunks are checked against their crc32c when read."""
    path = Path(path)
    group, attrs, metas = open_complete(path, "pool", kind="m2m-pool", version=POOL_FORMAT_VERSION,
                                        migrate=f"{MIGRATE_COMMAND} {path}", schema=POOL_SCHEMA,
                                        readable_from=POOL_READABLE_FROM, open_group=False)
    check_pool_consistency(path, attrs)
    _check_pool_arrays(path, attrs, metas)
    return Pool(path, group, attrs, metas)


def migrate_pool(path: str | Path) -> bool:
    """Rewrite the pool at ``path`` in the current format (``m2m-pipeline pools migrate``): every
    array copied with crc32c on each chunk and, in format 4, one inner chunk per shard; the
    attributes sealed with their hash; False when it is already current. Format 3 pools are read
    as they are; migrating them only gives the faster whole-shard layout. A damaged pool is refused, never sealed, and an interrupted migration leaves
    the old pool as it was (:func:`migration.migrate_group`). Format 1 (float32 x) cannot be migrated."""
    return migrate_group(path, "pool", kind="m2m-pool", version=POOL_FORMAT_VERSION, reopen=open_pool, oldest=2,
                         whole_shard_chunks=True,
                         kind_name="an M2m pool",
                         too_old=" (float32 x, before the compact x_delta/x_exp); it cannot be migrated: "
                                 "delete it and generate it again")


def verify_pool(path: str | Path, *, block_bytes: int = 64 << 20) -> dict[str, int]:
    """Every check a pool can take (``m2m-pipeline pools verify``): complete, with the recorded
    files at their recorded sizes (as on every open), each file's recorded sha256 recomputed, and
    every array read in full, block by block (every chunk decoded through its codecs). Raises the
    one-line M2mError of the first failure, naming the pool folder (``.../epoch_<e>``) and the
    file or array; returns ``{"arrays", "files", "digests", "bytes"}`` of what was checked
    (``digests`` 0: a pool written before digests were recorded; sizes and decoding still checked)."""
    pool = open_pool(path)
    manifest = pool.attrs.get("manifest") or {}
    digests = check_digests(pool.path, pool.group, "pool")
    arrays = list(manifest.get("arrays") or POOL_ROW_ARRAYS)
    for name in arrays:
        try:
            arr = pool.group[name]
        except KeyError:
            raise M2mError(f"pool {pool.path} is damaged: array {name!r} is missing") from None
        if not arr.ndim:
            read_array(pool.path, pool.group, name)
            continue
        n = int(arr.shape[0])
        itemsize = int(getattr(arr.dtype, "itemsize", 0) or 8)   # variable-length strings (`class`): a guess
        row_bytes = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)) * itemsize)
        step = max(int(arr.chunks[0]), block_bytes // row_bytes)
        for start in range(0, n, step):
            read_array(pool.path, pool.group, name, slice(start, min(n, start + step)))
    files = manifest.get("files") or {}
    return {"arrays": len(arrays), "files": len(files), "digests": digests, "bytes": int(sum(files.values()))}


def pool_as_dask(path: str | Path) -> dict[str, Any]:
    """Every row array of a pool as a dask array (one dask chunk per zarr chunk)."""
    import dask.array as da

    open_pool(path)  # checks completeness and kind
    return {name: da.from_zarr(str(path), component=name) for name in POOL_ROW_ARRAYS}


__all__ = ["Pool", "migrate_pool", "open_pool", "pool_as_dask", "verify_pool"]
