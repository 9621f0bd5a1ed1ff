"""zarr helpers shared by the prepared datasets and the pools: arrays chunked and sharded along
their first axis, the file manifest and the integrity check it backs, reads that turn a damaged
chunk into a one-line M2mError, concurrent reads and writes through zarr's event loop, and the
opening of a complete group.

The store package is the only part of m2m_pipeline that imports zarr; this module is the only one
of it that talks to zarr's internals (``zarr.core.sync``, ``Array._async_array``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..utils import M2mError


def dims_for(kind: str, ndim: int) -> list[str]:
    if kind == "image" and ndim == 4:
        return ["sample", "channel", "height", "width"]
    if ndim == 2:
        return ["sample", "feature"]
    return ["sample"] + [f"dim_{i}" for i in range(1, ndim)]


def create_array(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: Any, *, rows_per_chunk: int,
                 rows_per_shard: int, dims: list[str], attributes: dict[str, Any] | None = None) -> zarr.Array:
    """An array chunked along its first axis: ``rows_per_chunk`` rows a chunk (what a reader reads
    at once), ``rows_per_shard`` rows a shard file (what one writer task writes)."""
    rows_per_chunk = max(1, min(rows_per_chunk, rows_per_shard))
    rows_per_shard = max(rows_per_chunk, rows_per_shard - rows_per_shard % rows_per_chunk)
    rest = tuple(int(s) for s in shape[1:])
    return group.create_array(name, shape=tuple(int(s) for s in shape), dtype=dtype,
                              chunks=(rows_per_chunk, *rest), shards=(rows_per_shard, *rest),
                              dimension_names=dims, fill_value=0, attributes=attributes)


def store_root(group: zarr.Group) -> Path:
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


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(root: str | Path) -> dict[str, str]:
    """The sha256 of every file under a zarr group but its own ``zarr.json`` (which records them):
    the data files of :func:`file_manifest` and each array's metadata. Stored beside the manifest
    (``manifest["sha256"]``) and recomputed only by :func:`check_digests` (``pools verify``): the
    check on open compares sizes, which a same-size bit flip in transit passes."""
    root = Path(root)
    out: dict[str, str] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel != "zarr.json" and ".tmp-" not in rel:
                out[rel] = _sha256(p)
    return dict(sorted(out.items()))


def check_digests(path: Path, group: zarr.Group, what: str) -> int:
    """Recompute the recorded sha256 of every file (``manifest["sha256"]``) and refuse the first
    that differs, is missing, or was not recorded, naming the file; returns how many were checked
    (0: the store records no digests, as those written before they existed)."""
    manifest = group.attrs.get("manifest")
    digests = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(digests, dict):
        return 0
    for rel, want in digests.items():
        file = path / rel
        if not file.is_file():
            raise M2mError(f"{what} {path} is damaged: file {rel} is missing (a partial copy or pull?); copy it "
                           f"again, or delete it and write it again")
        if _sha256(file) != want:
            raise M2mError(f"{what} {path} is damaged: file {rel} differs from its recorded sha256 (damaged in "
                           f"transit or on disk); copy it again, or delete it and write it again")
    extra: list[str] = []
    for dirpath, _, names in os.walk(path):
        for name in names:
            rel = (Path(dirpath) / name).relative_to(path).as_posix()
            if rel != "zarr.json" and ".tmp-" not in rel and rel not in digests:
                extra.append(rel)
    if extra:
        raise M2mError(f"{what} {path} is damaged: file {extra[0]} was not written with it"
                       f"{f' (and {len(extra) - 1} more)' if len(extra) > 1 else ''}")
    return len(digests)


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


def open_complete(path: Path, what: str) -> zarr.Group:
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


def shard_key(index: int, ndim: int) -> str:
    """The file of row shard ``index`` of an array (zarr v3's default chunk key encoding)."""
    return "c/" + "/".join([str(int(index))] + ["0"] * (ndim - 1))


def write_together(writes: dict[str, tuple[zarr.Array, slice, np.ndarray]]) -> None:
    """Write several arrays' regions concurrently in one round trip to zarr's event loop, instead
    of one blocking call per array."""
    import asyncio

    from zarr.core.sync import sync

    async def write_all() -> None:
        await asyncio.gather(*(arr._async_array.setitem(sel, value) for arr, sel, value in writes.values()))

    sync(write_all())



__all__ = ["check_digests", "check_integrity", "create_array", "dims_for", "file_digests", "file_manifest",
           "open_complete", "read_array", "read_arrays", "shard_key", "store_root", "write_together"]
