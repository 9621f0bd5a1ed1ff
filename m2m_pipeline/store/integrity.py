"""The integrity records of a zarr group: the file manifest (sizes) checked on every open, the
sha256 of every file checked by ``pools verify`` and on metadata reads, and the seal (the
attributes' own hash, written last with ``complete: true``). docs/operations.md, "What is checked
on read", lists where each is checked."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..utils import M2mError


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


def check_integrity(path: Path, group: zarr.Group | dict[str, Any], what: str) -> None:
    """Refuse a damaged store, naming the array: a missing array, a deleted shard/chunk file or
    folder, or a file of another size than written (a truncated shard). ``group``: the zarr group,
    or its attributes already read. Stores written before manifests existed are not checked here
    (their reads still fail with a one-line error)."""
    attrs = group if isinstance(group, dict) else group.attrs
    manifest = attrs.get("manifest")
    if not isinstance(manifest, dict):
        return
    arrays = sorted(manifest.get("arrays", []), key=len, reverse=True)
    for array in arrays:
        if not (path / array / "zarr.json").is_file():
            raise M2mError(f"{what} {path} is damaged: array {array!r} is missing; delete it and write it again")
    base = os.fspath(path)

    def owner(rel: str) -> str:   # the array a file belongs to (error messages only)
        return next((a for a in arrays if rel.startswith(a + "/")), rel)

    for rel, size in manifest.get("files", {}).items():
        try:
            actual = os.stat(os.path.join(base, rel)).st_size   # os.stat on strings: a pool has ~100 files
        except FileNotFoundError:
            raise M2mError(f"{what} {path} is damaged: array {owner(rel)!r} misses its data file {rel}; "
                           f"delete it and write it again") from None
        if actual != size:
            array = owner(rel)
            raise M2mError(f"{what} {path} is damaged: array {array!r} file {rel} has {actual} bytes, "
                           f"{size} were written (truncated?); delete it and write it again")


def _sha256(file: Path) -> str:
    h = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digests(root: str | Path, known: dict[str, tuple[int, str]] | None = None) -> dict[str, str]:
    """The sha256 of every file under a zarr group but its own ``zarr.json`` (which records them):
    the data files of :func:`file_manifest` and each array's metadata. Stored beside the manifest
    (``manifest["sha256"]``) and recomputed only by :func:`check_digests` (``pools verify``): the
    check on open compares sizes, which a same-size bit flip in transit passes. ``known``: {file:
    (size, sha256)} its writer computed from the bytes it wrote (a pool's shard commits), taken
    as is for a file still of that size instead of reading it again."""
    root = Path(root)
    known = known or {}
    out: dict[str, str] = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel != "zarr.json" and ".tmp-" not in rel:
                size_sha = known.get(rel)
                out[rel] = size_sha[1] if size_sha is not None and p.stat().st_size == size_sha[0] else _sha256(p)
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


# -- sealing: the attributes' own hash, the metadata's digests -----------------------------------

ATTRS_HASH = "attrs_sha256"


def attrs_digest(attrs: dict[str, Any]) -> str:
    """The sha256 of a group's attributes but :data:`ATTRS_HASH` itself, as canonical JSON (sorted
    keys): a changed value, a renamed key, one flipped bit in zarr.json all change it."""
    body = {k: v for k, v in attrs.items() if k != ATTRS_HASH}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                                     allow_nan=True).encode()).hexdigest()


def _plain(obj: Any) -> Any:
    """JSON for what json.dumps does not know: numpy scalars and arrays as numbers, else str."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def sealed_attrs(root: str | Path, attrs: dict[str, Any],
                 known: dict[str, tuple[int, str]] | None = None) -> dict[str, Any]:
    """``attrs`` with the file manifest of the group at ``root`` (sizes and sha256 of every file
    but its zarr.json; ``known`` as in :func:`file_digests`), ``complete: true`` and their own hash."""
    attrs = json.loads(json.dumps({**attrs, "manifest": {**file_manifest(root), "sha256": file_digests(root, known)},
                                   "complete": True}, default=_plain))
    attrs[ATTRS_HASH] = attrs_digest(attrs)
    return attrs


def seal(group: zarr.Group, attrs: dict[str, Any]) -> None:
    """The last write of a group: ``attrs`` with the file manifest (sizes and sha256 of every file
    but the root zarr.json), ``complete: true`` and the attributes' own hash, in one update."""
    # one write of zarr.json (``group.attrs.update`` rewrites it once per key: 18 writes for a pool)
    group.update_attributes(sealed_attrs(store_root(group), attrs))


def check_seal(path: Path, attrs: dict[str, Any], what: str) -> None:
    """Refuse attributes whose recorded :data:`ATTRS_HASH` is missing or differs (zarr.json
    edited, or damaged on disk or in transit)."""
    want = attrs.get(ATTRS_HASH)
    if not isinstance(want, str) or attrs_digest(attrs) != want:
        how = "records no hash of its attributes" if not isinstance(want, str) else \
            "has attributes that differ from their recorded sha256"
        raise M2mError(f"{what} {path} is damaged: its zarr.json {how} (edited, or damaged on disk or in "
                       f"transit); copy it again, or delete it and write it again")
