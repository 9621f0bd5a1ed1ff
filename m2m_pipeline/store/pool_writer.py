"""Writing a pool: the resumable sharded writer (:class:`PoolWriter`) and the shard commit any
process can make (:func:`write_pool_shard`).

A pool is a zarr v3 group built in ``<name>.partial`` and renamed into place, with the attribute
``complete: true`` written last, so a crash never leaves something that reads as done. Pool arrays
carry dimension names, so ``xarray.open_zarr`` and ``dask.array.from_zarr`` read them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..utils import atomic_write_bytes, check_free_space, load_json, replace_dir
from .integrity import sealed_attrs
from .pool_reader import open_pool
from .pool_schema import (POOL_ARRAY_DOCS, POOL_ARRAY_DTYPES, POOL_FORMAT_VERSION, POOL_ROW_ARRAYS, POOL_ROW_SHAPES,
                          estimate_pool_bytes, reason_flags)
from .shard_file import ShardLayout, encode_shard, shard_layout, sharded_array_metadata, small_array_files
from .zarr_io import dims_for, shard_key, write_group_attrs, write_group_files, write_together


def _clean_stale_tmp(folder: Path, prefix: str = "") -> None:
    """Remove ``<prefix>.tmp-*`` leftovers of killed writers in ``folder`` (atomic_dir's and ours)."""
    if not folder.is_dir():
        return
    for p in folder.glob(f"{prefix}.tmp-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@functools.lru_cache(maxsize=4)
def _pool_arrays(work: str, resume_key: str) -> dict[str, zarr.Array | ShardLayout]:
    """The row arrays of the pool being built in ``work``, read once per process and build
    (``resume_key`` tells two builds in the same folder apart): each array's shard layout when
    the fast path writes it (store/shard_file.py; every array this writer creates), else the
    zarr array."""
    out: dict[str, zarr.Array | ShardLayout] = {}
    root = None
    for name in POOL_ROW_ARRAYS:
        layout = shard_layout(load_json((Path(work) / name / "zarr.json").read_bytes()))
        if layout is None:
            root = root if root is not None else zarr.open_group(work, mode="r+")
            out[name] = root[name]
        else:
            out[name] = layout
    return out


RESUME_FILE = ".resume.json"   # in a pool being built: what it is being built from
SHARD_RECORDS = ".shards"      # in a pool being built: one commit record per finished row shard


def write_pool_shard(work: str | Path, index: int, rows: dict[str, np.ndarray],
                     reasons: dict[str, int] | None = None) -> None:
    """Write row shard ``index`` of the pool being built in ``work`` and commit it.

    Callable from any process that sees ``work`` (a dask worker): a shard's files belong to it
    alone, so tasks never write the same file. Its old files (a killed attempt's) are removed
    first, so nothing is read-modify-written; the commit record ``.shards/<index>.json`` is
    written last and atomically, so a shard counts as done only once all its arrays are.
    """
    work = Path(work)
    key = (work / RESUME_FILE).read_text()
    job = json.loads(key)
    shard_rows, n_rows = int(job["shard_rows"]), int(job["n_rows"])
    start = int(index) * shard_rows
    n = len(rows["slot"])
    if start + n != min(start + shard_rows, n_rows):
        raise ValueError(f"shard {index} holds rows {start}..{min(start + shard_rows, n_rows)}, got {n} rows")
    missing = set(POOL_ROW_ARRAYS) - set(rows)
    if missing:
        raise ValueError(f"pool rows miss arrays {sorted(missing)}")
    arrays = _pool_arrays(str(work), key)
    slow = {}
    files: dict[str, tuple[int, str]] = {}
    for name in POOL_ROW_ARRAYS:
        target = arrays[name]
        ndim = len(target.shape)
        rel = f"{name}/{shard_key(index, ndim)}"
        file = work / rel
        file.unlink(missing_ok=True)
        if isinstance(target, ShardLayout):
            # the shard file as zarr would write it, in one numpy + zstd call (shard_file.encode_shard)
            raw = encode_shard(rows[name], target, int(index))
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(raw)
            files[rel] = (len(raw), hashlib.sha256(raw).hexdigest())   # the seal takes it from the record
        else:
            slow[name] = (target, slice(start, start + n), rows[name])
    if slow:
        write_together(slow)
    record = json.dumps({"rows": n, "reasons": reasons or {}, "files": files}).encode()
    atomic_write_bytes(work / SHARD_RECORDS / f"{int(index)}.json", record)


class PoolWriter:
    """Writes one epoch's pool: every translation attempt, one shard per translation task.

    Use as a context manager; each row shard is written and committed on its own
    (:meth:`write_shard`, or :func:`write_pool_shard` from another process), and :meth:`finish`
    adds the attributes and the completion marker, then moves the pool into place.

    The pool is built in ``<name>.partial`` beside ``path``. With a ``job`` key (what the rows are
    computed from), a writer killed at any point (SIGKILL included) and started again with the
    same key finds that folder and keeps its committed shards (:meth:`done_shards`); with another
    key it starts over. Leftover ``.tmp-`` files and folders of killed writers are removed.
    Leaving the block with an error removes the partial pool; an interruption (Ctrl-C, or
    SystemExit) keeps it for the next run.
    """

    def __init__(self, path: str | Path, *, n_rows: int, input_shape: tuple[int, ...], input_kind: str,
                 rows_per_shard: int, rows_per_chunk: int | None = None, class_names: list[str] | None = None,
                 job: dict[str, Any] | None = None):
        self.path = Path(path)
        self.work = self.path.with_name(f"{self.path.name}.partial")
        self.job = job
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.n_rows = int(n_rows)
        self.input_shape = tuple(input_shape)
        self.input_kind = input_kind
        self.rows_per_shard = max(1, int(rows_per_shard))
        # Format 4: one inner chunk per shard (a reader reads whole shards; issue 16), unless asked otherwise.
        chunk = self.rows_per_shard if rows_per_chunk is None else int(rows_per_chunk)
        self.rows_per_chunk = max(1, min(chunk, self.rows_per_shard))
        # Shards hold a whole number of chunks (see zarr_io.create_array): the task size is the actual shard.
        self.shard_rows = max(self.rows_per_chunk, self.rows_per_shard - self.rows_per_shard % self.rows_per_chunk)
        self._finished = False

    @property
    def n_shards(self) -> int:
        return -(-max(self.n_rows, 0) // self.shard_rows)

    def done_shards(self) -> dict[int, dict[str, Any]]:
        """{shard index: its commit record} of the shards already written."""
        records = {}
        for p in (self.work / SHARD_RECORDS).glob("*.json"):
            if p.stem.isdigit():
                records[int(p.stem)] = json.loads(p.read_text())
        return records

    def _resume_key(self) -> dict[str, Any]:
        return json.loads(json.dumps({
            "job": self.job, "n_rows": self.n_rows, "input_shape": list(self.input_shape),
            "input_kind": self.input_kind, "shard_rows": self.shard_rows, "rows_per_chunk": self.rows_per_chunk,
            "format_version": POOL_FORMAT_VERSION}, default=str))

    def _resume(self, key: dict[str, Any]) -> bool:
        """Reopen the partial pool of an earlier run with the same key, if there is one."""
        if self.job is None or not (self.work / RESUME_FILE).is_file() or not (self.work / "zarr.json").is_file():
            return False
        try:
            if json.loads((self.work / RESUME_FILE).read_text()) != key:
                return False
        except ValueError:  # unreadable: start over
            return False
        _clean_stale_tmp(self.work)
        _clean_stale_tmp(self.work / SHARD_RECORDS)
        self.arrays = {name: shard_layout(load_json((self.work / name / "zarr.json").read_bytes()))
                       for name in POOL_ROW_ARRAYS}
        return True

    def __enter__(self) -> "PoolWriter":
        # refuse up front rather than fill the disk half-way (the estimate is uncompressed: an upper bound)
        check_free_space(self.path.parent, estimate_pool_bytes(self.n_rows, self.input_shape), f"pool {self.path}")
        _clean_stale_tmp(self.path.parent, self.path.name)
        key = self._resume_key()
        if self._resume(key):
            return self
        if self.work.exists():
            shutil.rmtree(self.work)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        n = max(self.n_rows, 0)
        metas = {}
        for name in POOL_ROW_ARRAYS:
            shape = (n, *(self.input_shape if name == "x_delta" else POOL_ROW_SHAPES.get(name, ())))
            dims = dims_for(self.input_kind, len(shape)) if name == "x_delta" else (
                ["sample", "aug_param"] if name == "seed_aug" else ["sample"])
            attributes = {"long_name": POOL_ARRAY_DOCS[name], **(reason_flags() if name == "reason" else {})}
            metas[name] = sharded_array_metadata(shape, POOL_ARRAY_DTYPES[name], chunk_rows=self.rows_per_chunk,
                                                 shard_rows=self.shard_rows, dims=dims, attributes=attributes)
        # the group's and the twelve arrays' zarr.json written directly, attributes included: no zarr
        # call (through zarr the creation took longer than the epoch's bytes: docs/performance.md)
        write_group_files(self.work, metas)
        self.arrays = {name: shard_layout(meta) for name, meta in metas.items()}
        (self.work / SHARD_RECORDS).mkdir()
        # Written last: only a fully created pool can be resumed.
        atomic_write_bytes(self.work / RESUME_FILE, json.dumps(key).encode())
        return self

    def _write_classes(self, attrs: dict[str, Any]) -> None:
        """The class axis as xarray coordinates: ``class`` (names, a dimension coordinate, so
        ``ds["class"][ds.target]`` names every row's target) and ``class_count`` (training size)."""
        counts = attrs.get("class_counts")
        names = self.class_names or attrs.get("class_names")
        if names is None and counts is not None:
            names = [str(i) for i in range(len(counts))]
        if names is None:
            return
        arrays = {"class": small_array_files(np.asarray([str(n) for n in names], dtype=object), dims=["class"],
                                             attributes={"long_name": "class name (index = target / seed_class value)"})}
        if counts is not None and len(counts) == len(names):
            arrays["class_count"] = small_array_files(
                np.asarray(counts, dtype=np.int64), dims=["class"],
                attributes={"long_name": "training samples of the class (N_k of eq. 3)"})
        # written directly, as zarr writes them (store/shard_file.small_array_files): no zarr call at finish
        write_group_files(self.work, {name: meta for name, (meta, _) in arrays.items()})
        for name, (_, chunk) in arrays.items():
            (self.work / name / "c").mkdir(exist_ok=True)
            (self.work / name / "c" / "0").write_bytes(chunk)

    def write_plan(self, order: np.ndarray, attempt: np.ndarray, aug: np.ndarray) -> None:
        """Store the epoch's plan beside the rows: the plan is data, and training reads it back.
        A resumed pool already holds it (the resume key covers the plan) and keeps it."""
        if (self.work / "plan" / ".written").is_file():
            return
        n = len(order)
        values = {"order": order.astype(np.int64), "attempt": attempt.astype(np.bool_), "aug": aug.astype(np.int16)}
        long_names = {"order": "training-set row of each slot", "attempt": "slot is a translation attempt",
                      "aug": "(dy, dx, flip) of each slot"}
        chunk = max(1, min(n, 65536))
        shard = max(chunk, n - n % chunk)
        metas = {f"plan/{name}": sharded_array_metadata(
            arr.shape, arr.dtype, chunk_rows=chunk, shard_rows=shard, dims=["slot", "aug_param"] if arr.ndim == 2
            else ["slot"], attributes={"long_name": long_names[name]}) for name, arr in values.items()}
        shutil.rmtree(self.work / "plan", ignore_errors=True)
        write_group_files(self.work, metas)
        for name, arr in values.items():
            layout = shard_layout(metas[f"plan/{name}"])
            for index in range(layout.n_shards):
                lo, hi = layout.shard_range(index)
                file = self.work / "plan" / name / shard_key(index, arr.ndim)
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_bytes(encode_shard(arr[lo:hi], layout, index))
        atomic_write_bytes(self.work / "plan" / ".written", b"")

    def write_shard(self, index: int, rows: dict[str, np.ndarray], reasons: dict[str, int] | None = None) -> None:
        """Write and commit row shard ``index`` (rows ``index * shard_rows`` on); see :func:`write_pool_shard`."""
        write_pool_shard(self.work, index, rows, reasons)

    def write_rows(self, start: int, rows: dict[str, np.ndarray]) -> None:
        """Write rows from ``start`` on, shard by shard (``start`` must begin a shard)."""
        if start % self.shard_rows:
            raise ValueError(f"rows must start at a shard boundary (multiple of {self.shard_rows}), got {start}")
        n = len(rows["slot"])
        for s in range(0, n, self.shard_rows):
            self.write_shard((start + s) // self.shard_rows, {k: v[s:s + self.shard_rows] for k, v in rows.items()})

    def finish(self, attrs: dict[str, Any]) -> None:
        records = self.done_shards()
        missing = sorted(set(range(self.n_shards)) - set(records))
        if missing:
            raise RuntimeError(f"pool {self.path}: row shards {missing[:10]} were not written")
        # (size, sha256) of every shard file, from the bytes each commit wrote: not read again to seal
        known = {rel: (int(size), str(sha)) for r in records.values() for rel, (size, sha) in r.get("files", {}).items()}
        # The bookkeeping of the build goes before the manifest: a complete pool holds only data.
        shutil.rmtree(self.work / SHARD_RECORDS, ignore_errors=True)
        (self.work / RESUME_FILE).unlink(missing_ok=True)
        (self.work / "plan" / ".written").unlink(missing_ok=True)
        self._write_classes(attrs)
        # One last write: the attributes with the manifest (sizes checked on open, sha256 of every file:
        # the metadata's checked on open, all by `pools verify`), the completion marker and their own hash.
        sealed = sealed_attrs(self.work, {**attrs, "kind": "m2m-pool", "format_version": POOL_FORMAT_VERSION,
                                          "n_rows": self.n_rows}, known)
        write_group_attrs(self.work, sealed)   # one write of zarr.json, no zarr call
        open_pool(self.work)   # a writer never leaves a pool its readers refuse (the error discards it)
        self._finished = True

    def discard(self) -> None:
        """Remove the pool being built (its rows can never make a valid pool, e.g. non-finite)."""
        shutil.rmtree(self.work, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None and not self._finished:
            self.discard()
            raise RuntimeError("PoolWriter left without finish()")
        if exc_type is None:
            replace_dir(self.work, self.path)
        elif issubclass(exc_type, Exception):
            self.discard()
        return False


__all__ = ["RESUME_FILE", "SHARD_RECORDS", "PoolWriter", "write_pool_shard"]
