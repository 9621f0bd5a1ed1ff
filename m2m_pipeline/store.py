"""The zarr store: prepared datasets and translation pools. The only module that imports zarr.

Both are zarr v3 groups written under a temporary name and renamed into place, with the
attribute ``complete: true`` written last, so a crash never leaves something that reads as done.
Pool arrays carry dimension names, so ``xarray.open_zarr`` and ``dask.array.from_zarr`` read them.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from .datasets import PreparedData, Split
from .utils import M2mError, atomic_dir, atomic_write_bytes, check_free_space, replace_dir

FORMAT_VERSION = 1


def _dims(kind: str, ndim: int) -> list[str]:
    if kind == "image" and ndim == 4:
        return ["sample", "channel", "height", "width"]
    if ndim == 2:
        return ["sample", "feature"]
    return ["sample"] + [f"dim_{i}" for i in range(1, ndim)]


def _create(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: Any, *, rows_per_chunk: int,
            rows_per_shard: int, dims: list[str], attributes: dict[str, Any] | None = None) -> zarr.Array:
    """An array chunked along its first axis: ``rows_per_chunk`` rows a chunk (what a reader reads
    at once), ``rows_per_shard`` rows a shard file (what one writer task writes)."""
    rows_per_chunk = max(1, min(rows_per_chunk, rows_per_shard))
    rows_per_shard = max(rows_per_chunk, rows_per_shard - rows_per_shard % rows_per_chunk)
    rest = tuple(int(s) for s in shape[1:])
    return group.create_array(name, shape=tuple(int(s) for s in shape), dtype=dtype,
                              chunks=(rows_per_chunk, *rest), shards=(rows_per_shard, *rest),
                              dimension_names=dims, fill_value=0, attributes=attributes)


def _store_root(group: zarr.Group) -> Path:
    return Path(str(group.store.root))


def file_manifest(root: str | Path) -> dict[str, Any]:
    """Every data file under a zarr group (shards, chunks) with its size, and every array.

    Written into the group's attributes just before the completion marker; :func:`check_integrity`
    compares the folder against it on open. zarr skips a shard whose chunks all equal the fill
    value, so "every shard of the shape" is not the expectation: the files actually written are.
    """
    root = Path(root)
    files: dict[str, int] = {}
    arrays: list[str] = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if name == "zarr.json":
                if rel != "zarr.json" and json.loads(p.read_text()).get("node_type") == "array":
                    arrays.append(rel[: -len("/zarr.json")])
            elif ".tmp-" not in rel:
                files[rel] = p.stat().st_size
    return {"arrays": sorted(arrays), "files": dict(sorted(files.items()))}


def check_integrity(path: Path, group: zarr.Group, what: str) -> None:
    """Refuse a damaged store, naming the array: a missing array, a deleted shard/chunk file or
    folder, or a file of another size than written (a truncated shard). Stores written before
    manifests existed are not checked here (their reads still fail with a one-line error)."""
    manifest = group.attrs.get("manifest")
    if not isinstance(manifest, dict):
        return
    arrays = sorted(manifest.get("arrays", []), key=len, reverse=True)
    for array in arrays:
        if not (path / array / "zarr.json").is_file():
            raise M2mError(f"{what} {path} is damaged: array {array!r} is missing; delete it and write it again")
    for rel, size in manifest.get("files", {}).items():
        array = next((a for a in arrays if rel.startswith(a + "/")), rel)
        file = path / rel
        try:
            actual = file.stat().st_size
        except FileNotFoundError:
            raise M2mError(f"{what} {path} is damaged: array {array!r} misses its data file {rel}; "
                           f"delete it and write it again") from None
        if actual != size:
            raise M2mError(f"{what} {path} is damaged: array {array!r} file {rel} has {actual} bytes, "
                           f"{size} were written (truncated?); delete it and write it again")


def read_array(path: Path, group: zarr.Group, name: str, sel: Any = ..., what: str = "pool") -> np.ndarray:
    """``group[name][sel]``, with a damaged chunk (bad checksum, undecodable data) as a one-line
    M2mError naming the array instead of a codec traceback."""
    try:
        arr = group[name]
        if isinstance(sel, np.ndarray):  # a list of rows along the first axis
            if len(sel) and int(sel.max()) + 1 - int(sel.min()) <= 4 * len(sel):
                # Dense rows (a rule's pick of an epoch's attempts): one contiguous read, then numpy
                # indexing; zarr's orthogonal selection is many times slower row by row.
                lo = int(sel.min())
                return arr[lo:int(sel.max()) + 1][sel - lo]
            return arr.oindex[(sel,) + (slice(None),) * (arr.ndim - 1)]
        return arr[sel]
    except (M2mError, IndexError, TypeError):
        raise
    except Exception as exc:  # zarr and its codecs raise many types for damaged bytes
        raise M2mError(f"{what} {path} is damaged: array {name!r} cannot be read ({type(exc).__name__}: "
                       f"{str(exc).splitlines()[0] if str(exc) else ''}); delete it and write it again") from None


def read_arrays(path: Path, group: zarr.Group, names: tuple[str, ...], sel: Any = ...,
                what: str = "pool") -> dict[str, np.ndarray]:
    """``{name: group[name][sel]}`` read concurrently (zarr v3's async API); ``sel`` as in
    :func:`read_array`. A damaged array is the same one-line M2mError naming it."""
    import asyncio

    from zarr.core.sync import sync

    picks: dict[str, Any] = {}
    region: Any = sel
    if isinstance(sel, np.ndarray):
        if not len(sel):
            return {n: read_array(path, group, n, sel, what) for n in names}
        lo, hi = int(sel.min()), int(sel.max()) + 1
        if hi - lo > 4 * len(sel):   # sparse rows: zarr's own selection, one array at a time
            return {n: read_array(path, group, n, sel, what) for n in names}
        region, picks = slice(lo, hi), {"rows": sel - lo}
    arrays = {}
    for name in names:
        try:
            arrays[name] = group[name]
        except KeyError:
            raise M2mError(f"{what} {path} has no array {name!r}") from None

    async def read_all() -> list[np.ndarray]:
        return await asyncio.gather(*(arr._async_array.getitem(region if arr.ndim else ...)
                                      for arr in arrays.values()))

    try:
        values = sync(read_all())
    except (M2mError, IndexError, TypeError):
        raise
    except Exception:   # name the damaged array: read them one by one (the error path only)
        return {n: read_array(path, group, n, sel, what) for n in names}
    out = {}
    for name, value in zip(arrays, values):
        value = np.asarray(value)
        out[name] = value[picks["rows"]] if picks else value
    return out


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
    check_integrity(path, group, what)
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
        root.attrs["manifest"] = file_manifest(tmp)   # what check_integrity expects on open
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
    splits = {s: Split(read_array(path, root, f"{s}/x", what="prepared dataset"),
                       read_array(path, root, f"{s}/y", what="prepared dataset")) for s in ("train", "val", "test")}
    data = PreparedData(
        name=a["name"], class_names=list(a["class_names"]), input_kind=a["input_kind"],
        input_range=tuple(a["input_range"]) if a["input_range"] is not None else None,
        mean=list(a["mean"]), std=list(a["std"]), augment=dict(a["augment"]), preset=a["preset"],
        meta=dict(a["meta"]), fingerprint=a["fingerprint"], **splits)
    return data


# -- pools ---------------------------------------------------------------------------------------

POOL_ROW_ARRAYS = ("slot", "target", "seed_class", "seed_index", "seed_aug", "x_delta", "x_exp", "loss_g",
                   "prob_g", "u_beta", "accepted", "reason")
# Pools since format 2 store x* compactly as (x_delta, x_exp) against x0 (m2m_pipeline/pools/codec.py,
# the one place that encodes and decodes it); format 1 stored float32 ``x``.
POOL_FORMAT_VERSION = 2

# What each pool array holds, stored as its ``long_name`` so ``xarray.open_zarr`` prints it.
POOL_ARRAY_DOCS = {
    "slot": "position in the epoch's plan",
    "target": "k: the class index the slot holds and x* is translated to (see coordinate `class`)",
    "seed_class": "k0: class index of the seed x0 (-1: no seed)",
    "seed_index": "row of the prepared training split used as x0 (-1: no seed)",
    "seed_aug": "(dy, dx, flip) applied to that row: x0 is rebuilt exactly",
    "x_delta": "x* - x0 on the row's power-of-two grid: x* = x0 + x_delta * 2**x_exp (pools/codec.py)",
    "x_exp": "the row's grid exponent (-128: x* not finite)",
    "loss_g": "cross-entropy of g at x* for the target class",
    "prob_g": "softmax probability of the target class under g at x*",
    "u_beta": "uniform draw of the beta test, eq. (3): pass if u < 1 - beta^((N_k0 - N_k)^+)",
    "accepted": "all tests passed: x* replaces the slot's real sample",
    "reason": "why the attempt ended as it did (flag_values / flag_meanings)",
}


def _reason_flags() -> dict[str, Any]:
    """CF flag attributes of ``reason`` (CF conventions, section 3.5), from acceptance.REASONS."""
    from .acceptance import REASONS

    codes = sorted(REASONS.items(), key=lambda kv: kv[1])
    return {"flag_values": [int(code) for _, code in codes],
            "flag_meanings": " ".join(name for name, _ in codes)}


# bytes a pool row takes besides x_delta: slot 8, target 4, seed_class 4, seed_index 8, seed_aug 3x2,
# x_exp 1, loss_g 4, prob_g 4, u_beta 8, accepted 1, reason 1 (uncompressed)
POOL_ROW_BYTES = 53


def estimate_pool_bytes(n_rows: int, input_shape: tuple[int, ...]) -> int:
    """Uncompressed bytes of a pool of ``n_rows`` attempts (x_delta: int16 per input value), plus
    1 MiB for the plan and metadata: an upper bound of what :class:`PoolWriter` puts on disk
    (zstd only makes it smaller)."""
    return int(n_rows) * (2 * int(np.prod(input_shape)) + POOL_ROW_BYTES) + (1 << 20)


def _shard_key(index: int, ndim: int) -> str:
    """The file of row shard ``index`` of an array (zarr v3's default chunk key encoding)."""
    return "c/" + "/".join([str(int(index))] + ["0"] * (ndim - 1))


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
def _pool_arrays(work: str, resume_key: str) -> dict[str, zarr.Array]:
    """The row arrays of the pool being built in ``work``, opened once per process and build
    (``resume_key`` tells two builds in the same folder apart): each open reads metadata."""
    root = zarr.open_group(work, mode="r+")
    return {name: root[name] for name in POOL_ROW_ARRAYS}


def _write_together(writes: dict[str, tuple[zarr.Array, slice, np.ndarray]]) -> None:
    """Write several arrays' regions concurrently in one round trip to zarr's event loop, instead
    of one blocking call per array."""
    import asyncio

    from zarr.core.sync import sync

    async def write_all() -> None:
        await asyncio.gather(*(arr._async_array.setitem(sel, value) for arr, sel, value in writes.values()))

    sync(write_all())


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
    for name in POOL_ROW_ARRAYS:
        (work / name / _shard_key(index, arrays[name].ndim)).unlink(missing_ok=True)
    _write_together({name: (arrays[name], slice(start, start + n), rows[name]) for name in POOL_ROW_ARRAYS})
    record = json.dumps({"rows": n, "reasons": reasons or {}}).encode()
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
                 rows_per_shard: int, rows_per_chunk: int = 256, class_names: list[str] | None = None,
                 job: dict[str, Any] | None = None):
        self.path = Path(path)
        self.work = self.path.with_name(f"{self.path.name}.partial")
        self.job = job
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.n_rows = int(n_rows)
        self.input_shape = tuple(input_shape)
        self.input_kind = input_kind
        self.rows_per_shard = max(1, int(rows_per_shard))
        self.rows_per_chunk = max(1, min(int(rows_per_chunk), self.rows_per_shard))
        # Shards hold a whole number of chunks (see _create): the task size is the actual shard.
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
        self.root = zarr.open_group(str(self.work), mode="r+")
        self.arrays = {name: self.root[name] for name in POOL_ROW_ARRAYS}
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
        self.root = zarr.open_group(str(self.work), mode="w")
        n = max(self.n_rows, 0)
        spec = {
            "slot": ((n,), np.int64), "target": ((n,), np.int32), "seed_class": ((n,), np.int32),
            "seed_index": ((n,), np.int64), "seed_aug": ((n, 3), np.int16),
            "x_delta": ((n, *self.input_shape), np.int16), "x_exp": ((n,), np.int8),
            "loss_g": ((n,), np.float32), "prob_g": ((n,), np.float32), "u_beta": ((n,), np.float64),
            "accepted": ((n,), np.bool_), "reason": ((n,), np.uint8),
        }
        self.arrays = {}
        for name, (shape, dtype) in spec.items():
            dims = _dims(self.input_kind, len(shape)) if name == "x_delta" else (
                ["sample", "aug_param"] if name == "seed_aug" else ["sample"])
            # attributes at creation: one metadata write per array (each later update is another)
            attributes = {"long_name": POOL_ARRAY_DOCS[name], **(_reason_flags() if name == "reason" else {})}
            self.arrays[name] = _create(self.root, name, shape, dtype, rows_per_chunk=self.rows_per_chunk,
                                        rows_per_shard=self.rows_per_shard, dims=dims, attributes=attributes)
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
        names = [str(n) for n in names]
        arr = self.root.create_array("class", shape=(len(names),), dtype=str, dimension_names=["class"])
        arr[...] = np.asarray(names, dtype=str)
        arr.attrs["long_name"] = "class name (index = target / seed_class value)"
        if counts is not None and len(counts) == len(names):
            c = self.root.create_array("class_count", shape=(len(names),), dtype=np.int64,
                                       dimension_names=["class"], fill_value=0)
            c[...] = np.asarray(counts, dtype=np.int64)
            c.attrs["long_name"] = "training samples of the class (N_k of eq. 3)"

    def write_plan(self, order: np.ndarray, attempt: np.ndarray, aug: np.ndarray) -> None:
        """Store the epoch's plan beside the rows: the plan is data, and training reads it back.
        A resumed pool already holds it (the resume key covers the plan) and keeps it."""
        if (self.work / "plan" / ".written").is_file():
            return
        grp = self.root.create_group("plan", overwrite=True)
        n = len(order)
        for name, arr, dims in (("order", order.astype(np.int64), ["slot"]),
                                ("attempt", attempt.astype(np.bool_), ["slot"]),
                                ("aug", aug.astype(np.int16), ["slot", "aug_param"])):
            long_name = {"order": "training-set row of each slot", "attempt": "slot is a translation attempt",
                         "aug": "(dy, dx, flip) of each slot"}[name]
            a = _create(grp, name, arr.shape, arr.dtype, rows_per_chunk=max(1, min(n, 65536)),
                        rows_per_shard=max(1, n), dims=dims, attributes={"long_name": long_name})
            a[...] = arr
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
        missing = sorted(set(range(self.n_shards)) - set(self.done_shards()))
        if missing:
            raise RuntimeError(f"pool {self.path}: row shards {missing[:10]} were not written")
        # The bookkeeping of the build goes before the manifest: a complete pool holds only data.
        shutil.rmtree(self.work / SHARD_RECORDS, ignore_errors=True)
        (self.work / RESUME_FILE).unlink(missing_ok=True)
        (self.work / "plan" / ".written").unlink(missing_ok=True)
        self._write_classes(attrs)
        self.root.attrs.update({**json.loads(json.dumps(attrs, default=str)), "kind": "m2m-pool",
                                "format_version": POOL_FORMAT_VERSION, "n_rows": self.n_rows,
                                "manifest": file_manifest(_store_root(self.root))})   # what check_integrity expects
        self.root.attrs["complete"] = True  # last: the marker readers check
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

    def has_array(self, name: str) -> bool:
        return (self.path / name / "zarr.json").is_file()

    def array(self, name: str, sel: Any = ...) -> np.ndarray:
        if name == "x" and not self.has_array("x"):
            raise M2mError(f"pool {self.path} stores x* compactly (x_delta, x_exp); read it decoded with "
                           f"m2m_pipeline.pools.codec.read_x(pool, data, rows)")
        return read_array(self.path, self.group, name, sel)

    def plan_arrays(self) -> dict[str, np.ndarray]:
        return {k: read_array(self.path, self.group, f"plan/{k}") for k in ("order", "attempt", "aug")}

    def rows(self, names: tuple[str, ...] = POOL_ROW_ARRAYS, sel: Any = ...) -> dict[str, np.ndarray]:
        """Several arrays at once (rows ``sel``: all, a slice, or an array of row indices), read
        concurrently in one round trip to zarr's event loop rather than one blocking call each."""
        return read_arrays(self.path, self.group, tuple(names), sel)


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
