"""Rewriting a complete group of an older format in the current one (``m2m-pipeline pools
migrate``), the same procedure for pools and prepared data: the old group's kind, version and
recorded sha256 are checked first, so damage is refused and never sealed with fresh checksums; the
new group is built beside the old one, checked as readers will check it, and renamed into place, so
an interruption leaves the old group as it was."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import zarr

from ..utils import M2mError, replace_dir
from .integrity import check_digests, check_integrity, seal
from .zarr_io import checksummed_compressors, read_array, read_root_attrs


def migrate_group(path: str | Path, what: str, *, kind: str, version: int, reopen: Callable[[Path], Any],
                  oldest: int = 1, too_old: str = "", kind_name: str | None = None,
                  whole_shard_chunks: bool = False) -> bool:
    """Rewrite the ``what`` at ``path`` (attribute ``kind``) from an older ``format_version`` into
    ``version``; False when it is already current (then only ``reopen``, the reader, checks it).
    A version below ``oldest`` is refused with ``too_old`` (what the user should do instead);
    ``kind_name`` names the kind in the refusal of another kind of group (default: a ``what``);
    ``whole_shard_chunks``: sharded arrays are rewritten with one inner chunk per shard (pool format 4)."""
    path = Path(path)
    group = open_unsealed(path, what)
    attrs = dict(group.attrs)
    if attrs.get("kind") != kind:
        raise M2mError(f"{path} is a zarr group but not {kind_name or 'a ' + what} (kind={str(attrs.get('kind'))[:40]!r})")
    found = attrs.get("format_version")
    if found == version:
        reopen(path)
        return False
    if not isinstance(found, int) or isinstance(found, bool) or found > version:
        raise M2mError(f"{what} {path} has format {found!r}, which this version cannot migrate")
    if found < oldest:
        raise M2mError(f"{what} {path} has format {found}{too_old}")
    check_digests(path, group, what)   # the recorded sha256 (where they were recorded): refuse damage
    keep = {k: v for k, v in attrs.items() if k not in ("manifest", "complete", "attrs_sha256")}
    keep.update(format_version=version, migrated_from=int(found))
    work = path.with_name(f"{path.name}.tmp-migrate")
    if work.exists():
        shutil.rmtree(work)
    try:
        rewrite_group(path, group, work, keep, what, whole_shard_chunks=whole_shard_chunks)
        reopen(work)   # what readers will check, before it replaces the old group
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    replace_dir(work, path)
    return True


def open_unsealed(path: Path, what: str) -> zarr.Group:
    """A complete group of an older format (before checksums), for :func:`rewrite_group` alone:
    completion marker and recorded sizes checked, as the old readers did."""
    read_root_attrs(path, what)
    try:
        group = zarr.open_group(str(path), mode="r")
        attrs = dict(group.attrs)
    except Exception as exc:
        raise M2mError(f"{what} {path} is not a readable zarr group ({type(exc).__name__}); "
                       f"delete it and write it again") from None
    if not attrs.get("complete"):
        raise M2mError(f"{what} {path} is incomplete (no completion marker); delete it and write it again")
    check_integrity(path, group, what)
    return group


def rewrite_group(src: Path, group: zarr.Group, dst: Path, attrs: dict[str, Any], what: str, *,
                  block_bytes: int = 64 << 20, whole_shard_chunks: bool = False) -> int:
    """Copy the complete group ``src`` (of an older format, opened by :func:`open_unsealed` as
    ``group``) into a new folder ``dst``: every array
    with its shape, chunks, shards, fill value, dimension names and attributes, its values read in
    full (a chunk that cannot be decoded refuses the copy) and rewritten through
    :func:`checksummed_compressors`; then :func:`seal` with ``attrs``. Returns the bytes of values
    copied. ``dst`` must not exist; the caller renames it into place."""
    manifest = group.attrs.get("manifest") or {}
    names = list(manifest.get("arrays") or [])
    if not names:
        raise M2mError(f"{what} {src} records no manifest of its arrays; delete it and write it again")
    out = zarr.open_group(str(dst), mode="w")
    copied = 0
    for name in sorted(names):
        try:
            arr = group[name]
        except KeyError:
            raise M2mError(f"{what} {src} is damaged: array {name!r} is missing") from None
        parent = out
        for part in name.split("/")[:-1]:
            parent = parent.require_group(part)
        leaf = name.split("/")[-1]
        meta = arr.metadata
        dims = list(meta.dimension_names) if meta.dimension_names is not None else None
        attributes = dict(arr.attrs)
        if arr.dtype.kind in "OUT":   # variable-length strings (a pool's class names): one chunk
            values = read_array(src, group, name, what=what)
            new = parent.create_array(leaf, shape=arr.shape, dtype=str, compressors=checksummed_compressors(),
                                      dimension_names=dims, attributes=attributes)
            new[...] = values
            copied += int(values.size)
            continue
        chunks = tuple(int(c) for c in arr.chunks)
        shards = tuple(int(c) for c in arr.shards) if arr.shards is not None else None
        if whole_shard_chunks and shards is not None:
            chunks = shards   # a reader reads a whole shard file at a time (pool format 4)
        new = parent.create_array(leaf, shape=arr.shape, dtype=arr.dtype, chunks=chunks, shards=shards,
                                  compressors=checksummed_compressors(), dimension_names=dims,
                                  fill_value=arr.fill_value, attributes=attributes)
        if not arr.ndim:
            new[...] = read_array(src, group, name, what=what)
            continue
        n = int(arr.shape[0])
        row_bytes = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)) * int(arr.dtype.itemsize))
        unit = int((shards or chunks)[0])
        step = max(unit, (block_bytes // row_bytes) // unit * unit)
        for start in range(0, n, step):
            block = read_array(src, group, name, slice(start, min(n, start + step)), what=what)
            new[start:start + len(block)] = block   # zarr skips chunks of fill values, as the writer did
            copied += int(block.nbytes)
    seal(out, attrs)
    return copied


__all__ = ["migrate_group", "open_unsealed", "rewrite_group"]
