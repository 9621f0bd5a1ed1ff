"""zarr helpers shared by the prepared datasets and the pools: arrays chunked and sharded along
their first axis, checksummed codecs, reads that turn a damaged
chunk into a one-line M2mError, concurrent reads and writes through zarr's event loop, and the
opening of a complete group.

The store package is the only part of m2m_pipeline that imports zarr; this module is the only one
of it that talks to zarr's internals (``zarr.core.sync``, ``Array._async_array``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..utils import M2mError, atomic_write_bytes, load_json
from .schema import Spec, check_schema
from .integrity import (ATTRS_HASH, attrs_digest, check_digests, check_integrity, check_seal,  # noqa: F401
                        file_digests, file_manifest, seal, store_root)


def dims_for(kind: str, ndim: int) -> list[str]:
    if kind == "image" and ndim == 4:
        return ["sample", "channel", "height", "width"]
    if ndim == 2:
        return ["sample", "feature"]
    return ["sample"] + [f"dim_{i}" for i in range(1, ndim)]


def checksummed_compressors() -> tuple[Any, ...]:
    """The bytes-to-bytes codecs of every array the store writes: zstd (level 0, zarr's default),
    then crc32c, so every chunk carries a checksum that zarr verifies on every read (a flipped bit
    is an error, never other values). In a sharded array they are the inner chunks' codecs; the
    shard index has crc32c too (zarr's default ``index_codecs``; :func:`codec_problem` checks both)."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return (ZstdCodec(level=0, checksum=False), Crc32cCodec())


def codec_problem(meta: dict[str, Any]) -> str | None:
    """Why the array metadata ``meta`` (an array's zarr.json as JSON) lacks a checksum on its data,
    or None: the last bytes-to-bytes codec must be crc32c, and, when sharded, the inner chunks'
    ``codecs`` and the ``index_codecs`` must each end in crc32c."""
    codecs = meta.get("codecs") if isinstance(meta, dict) else None
    if not isinstance(codecs, list) or not codecs or not all(isinstance(c, dict) for c in codecs):
        return "no codec list"
    last = codecs[-1]
    if last.get("name") == "sharding_indexed":
        conf = last.get("configuration") or {}
        for key in ("codecs", "index_codecs"):
            inner = conf.get(key)
            if not isinstance(inner, list) or not inner or not isinstance(inner[-1], dict) \
                    or inner[-1].get("name") != "crc32c":
                return f"its shards' {key} do not end in crc32c"
        return None
    return None if last.get("name") == "crc32c" else "its codecs do not end in crc32c"


def create_array(group: zarr.Group, name: str, shape: tuple[int, ...], dtype: Any, *, rows_per_chunk: int,
                 rows_per_shard: int, dims: list[str], attributes: dict[str, Any] | None = None,
                 fill_value: Any = 0) -> zarr.Array:
    """An array chunked along its first axis: ``rows_per_chunk`` rows a chunk (what a reader reads
    at once), ``rows_per_shard`` rows a shard file (what one writer task writes); every chunk and
    every shard index carries a crc32c checksum (:func:`checksummed_compressors`)."""
    spec = {"shape": shape, "dtype": dtype, "rows_per_chunk": rows_per_chunk, "rows_per_shard": rows_per_shard,
            "dims": dims, "attributes": attributes, "fill_value": fill_value}
    return create_arrays(group, {name: spec})[name]


def create_arrays(group: zarr.Group, specs: dict[str, dict[str, Any]]) -> dict[str, zarr.Array]:
    """Several arrays of :func:`create_array` (``specs``: name -> its keyword arguments, ``shape``
    and ``dtype`` included) created concurrently, in one round trip to zarr's event loop instead of
    one blocking call (and metadata write) after another; names may hold a ``/`` into an existing
    subgroup."""
    import asyncio

    from zarr.core.sync import sync

    async def create_all() -> list[Any]:
        calls = []
        for name, spec in specs.items():
            spec = dict(spec)
            rows_per_shard = int(spec.pop("rows_per_shard"))
            rows_per_chunk = max(1, min(int(spec.pop("rows_per_chunk")), rows_per_shard))
            rows_per_shard = max(rows_per_chunk, rows_per_shard - rows_per_shard % rows_per_chunk)
            shape = tuple(int(s) for s in spec.pop("shape"))
            rest = shape[1:]
            calls.append(group._async_group.create_array(
                name, shape=shape, dtype=spec.pop("dtype"), chunks=(rows_per_chunk, *rest),
                shards=(rows_per_shard, *rest), compressors=checksummed_compressors(),
                dimension_names=spec.pop("dims"), fill_value=spec.pop("fill_value", 0),
                attributes=spec.pop("attributes", None), **spec))
        return await asyncio.gather(*calls)

    made = sync(create_all())
    return {name: zarr.Array(a) for name, a in zip(specs, made)}


def write_group_attrs(root: Path, attrs: dict[str, Any]) -> None:
    """The group's own zarr.json at ``root`` with ``attrs`` (plain JSON), written atomically in one
    write as zarr writes it (``Group.update_attributes``), without opening the group through zarr."""
    doc = {"attributes": attrs, "zarr_format": 3, "node_type": "group"}
    atomic_write_bytes(root / "zarr.json", json.dumps(doc, indent=2).encode())


def write_group_files(root: Path, arrays: dict[str, dict[str, Any]]) -> None:
    """The zarr.json files of a new group at ``root``: the group's own (when missing), each
    subgroup a name passes through, and each array's metadata ``arrays[name]`` (a zarr.json as
    JSON, e.g. from :func:`shard_file.sharded_array_metadata`), written directly rather than
    through zarr's event loop, one small file each."""
    group_doc = json.dumps({"attributes": {}, "zarr_format": 3, "node_type": "group"}, indent=2).encode()
    folders = {Path(".")} | {Path(name).parent for name in arrays}
    for folder in sorted({p for f in folders for p in (f, *f.parents)}, key=lambda p: len(p.parts)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        if not (root / folder / "zarr.json").is_file():
            (root / folder / "zarr.json").write_bytes(group_doc)
    for name, meta in arrays.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "zarr.json").write_bytes(json.dumps(meta, indent=2).encode())


def create_small_array(group: zarr.Group, name: str, values: np.ndarray, *, dims: list[str],
                       attributes: dict[str, Any] | None = None) -> zarr.Array:
    """A small unsharded array (one chunk: a pool's ``class`` names, ``class_count``) holding
    ``values``, its chunk checksummed as every other."""
    arr = group.create_array(name, shape=values.shape, dtype=values.dtype if values.dtype.kind != "U" else str,
                             compressors=checksummed_compressors(), dimension_names=dims,
                             attributes=attributes)
    arr[...] = values
    return arr


def read_array_metadata(path: Path, group_attrs: dict[str, Any], what: str) -> dict[str, dict[str, Any]]:
    """{array: its zarr.json} of every array the manifest lists, each file checked against its
    recorded sha256 and for crc32c on its data (:func:`codec_problem`), without opening zarr.
    Together with :func:`check_seal` and zarr's per-chunk crc32c, every byte of a sealed group
    is checked when it is read: the root attributes by their hash, the array metadata by its
    digests, the chunks and shard indexes by their checksums."""
    manifest = group_attrs.get("manifest") or {}
    digests = manifest.get("sha256") or {}
    metas: dict[str, dict[str, Any]] = {}
    for rel, want in digests.items():
        if not rel.endswith("zarr.json"):
            continue
        file = path / rel
        try:
            raw = file.read_bytes()
        except OSError:
            raise M2mError(f"{what} {path} is damaged: its metadata file {rel} is missing; copy it again, or "
                           f"delete it and write it again") from None
        if hashlib.sha256(raw).hexdigest() != want:
            raise M2mError(f"{what} {path} is damaged: its metadata file {rel} differs from its recorded sha256 "
                           f"(damaged on disk or in transit); copy it again, or delete it and write it again")
        name = rel[: -len("/zarr.json")]
        if name in manifest.get("arrays", []):
            meta = load_json(raw)   # digest-checked: as written, so parseable and shallow
            problem = codec_problem(meta)
            if problem is not None:
                raise M2mError(f"{what} {path}: array {name!r} stores no checksum ({problem}); it was not written "
                               f"by this version: delete it and write it again")
            metas[name] = meta
    missing = [a for a in manifest.get("arrays", []) if a not in metas]
    if missing:
        raise M2mError(f"{what} {path} is damaged: the manifest records no digest of array {missing[0]!r}; "
                       f"delete it and write it again")
    return metas


def read_root_attrs(path: Path, what: str) -> dict[str, Any]:
    """The attributes of the zarr v3 group at ``path``, parsed with bounded depth (no RecursionError
    for a hostile zarr.json); a missing or unparsable file is a one-line M2mError."""
    meta_file = path / "zarr.json"
    if not path.exists():
        raise M2mError(f"{what} {path} does not exist")
    if not meta_file.is_file():
        raise M2mError(f"{path} is not a zarr v3 group (no zarr.json); expected a {what} folder")
    try:
        doc = load_json(meta_file.read_bytes())
    except (OSError, ValueError) as exc:   # JSONDecodeError, JSONTooDeep, UnicodeDecodeError
        reason = str(exc) if "nested" in str(exc) else type(exc).__name__
        raise M2mError(f"{what} {path} is not a readable zarr group: its zarr.json cannot be parsed ({reason}); "
                       f"it is damaged: copy it again, or delete it and write it again") from None
    if not isinstance(doc, dict) or doc.get("zarr_format") != 3 or doc.get("node_type") != "group":
        raise M2mError(f"{path}/zarr.json is not a zarr v3 group's; expected a {what} folder")
    attrs = doc.get("attributes", {})
    if not isinstance(attrs, dict):
        raise M2mError(f"{what} {path} has unreadable attributes (not a mapping); it is damaged: delete it and "
                       f"write it again")
    return attrs


def check_format(path: Path, attrs: dict[str, Any], what: str, *, kind: str, version: int,
                 migrate: str, readable_from: int | None = None) -> None:
    """Refuse a group that is not a ``kind`` of format ``version`` (or of an older format from
    ``readable_from`` on, which this version still reads): another kind, a newer format, or an
    older one (``migrate``: the command that rewrites it), each a one-line M2mError."""
    if attrs.get("kind") != kind:
        raise M2mError(f"{path} is a zarr group but not a {what} (kind={str(attrs.get('kind'))[:40]!r})")
    have = attrs.get("format_version")
    if isinstance(have, bool) or not isinstance(have, int):
        raise M2mError(f"{what} {path} has no usable format_version ({str(have)[:20]!r}); it is damaged: delete "
                       f"it and write it again")
    if have > version:
        raise M2mError(f"{what} {path} has format {have}, newer than this m2m-pipeline reads ({version}); "
                       f"upgrade m2m-pipeline")
    if have < (version if readable_from is None else readable_from):
        reads = f"format {version}" if readable_from in (None, version) else f"formats {readable_from} to {version}"
        raise M2mError(f"{what} {path} has format {have}, without chunk checksums (this version reads "
                       f"{reads}); rewrite it with `{migrate}`")


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
        raise damaged(path, group, name, sel, exc, what) from None


def _failing_rows(group: zarr.Group, name: str, sel: Any) -> tuple[int, int] | None:
    """The first chunk (rows lo, hi) of ``group[name]`` inside ``sel`` that fails to read: the
    error path of :func:`read_array`, reading chunk by chunk to name the damaged one."""
    try:
        arr = group[name]
        if not arr.ndim:
            return None
        n, step = int(arr.shape[0]), int(arr.chunks[0])
        if isinstance(sel, slice):
            lo, hi, _ = sel.indices(n)
        elif isinstance(sel, np.ndarray) and len(sel):
            lo, hi = int(sel.min()), int(sel.max()) + 1
        else:
            lo, hi = 0, n
        for start in range(lo - lo % step, hi, step):
            try:
                arr[start:min(n, start + step)]
            except Exception:
                return start, min(n, start + step)
    except Exception:
        return None
    return None


def damaged(path: Path, group: zarr.Group, name: str, sel: Any, exc: Exception, what: str) -> M2mError:
    """The one-line error of an array that cannot be read: a chunk failing its crc32c checksum is
    named with its rows and shard file; any other decoding failure with zarr's reason."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    rows = _failing_rows(group, name, sel)
    where = ""
    if rows is not None:
        arr = group[name]
        shard_rows = int((arr.shards or arr.chunks)[0])
        where = f" in rows {rows[0]}..{rows[1] - 1} (file {name}/{shard_key(rows[0] // shard_rows, arr.ndim)})"
    if "checksum" in text.lower():
        return M2mError(f"{what} {path} is damaged: array {name!r} fails its crc32c checksum{where} (a bit changed "
                        f"on disk or in transit); copy it again, or delete it and write it again")
    return M2mError(f"{what} {path} is damaged: array {name!r} cannot be read{where} ({type(exc).__name__}: "
                    f"{text[:120]}); delete it and write it again")


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


def check_sealed_attrs(path: Path, attrs: dict[str, Any], what: str, *, kind: str, version: int, migrate: str,
                       schema: Spec, readable_from: int | None = None) -> None:
    """The checks of a group's attributes alone (no array opened; ``pools ls`` runs them on each
    pool): complete, its kind and format, its attributes' hash, its schema."""
    if not attrs.get("complete"):
        raise M2mError(f"{what} {path} is incomplete (no completion marker); delete it and write it again")
    check_format(path, attrs, what, kind=kind, version=version, migrate=migrate, readable_from=readable_from)
    check_seal(path, attrs, what)
    check_schema(path, attrs, schema, what)


def open_complete(path: Path, what: str, *, kind: str, version: int, migrate: str, schema: Spec,
                  readable_from: int | None = None,
                  open_group: bool = True) -> tuple[zarr.Group | None, dict[str, Any], dict[str, dict[str, Any]]]:
    """(group, attributes, {array: metadata}) of the complete, sealed ``what`` at ``path``, or a
    one-line M2mError: zarr.json parsed with bounded depth, the completion marker, ``kind`` and
    format ``version``, the attributes' hash and ``schema``, every recorded file present at its
    recorded size, every array's metadata at its recorded sha256 with crc32c in its codecs."""
    attrs = read_root_attrs(path, what)
    check_sealed_attrs(path, attrs, what, kind=kind, version=version, migrate=migrate, schema=schema,
                       readable_from=readable_from)
    group = open_checked_group(path, attrs, what) if open_group else None
    check_integrity(path, attrs, what)
    metas = read_array_metadata(path, attrs, what)
    return group, attrs, metas


def open_checked_group(path: Path, attrs: dict[str, Any], what: str) -> zarr.Group:
    """The zarr group at ``path`` whose attributes were read and checked as ``attrs``: refused when
    it cannot be opened, or when its attributes are no longer those (changed between the two reads:
    never mix them)."""
    try:
        group = zarr.open_group(str(path), mode="r")
    except Exception as exc:  # zarr raises several types for a damaged store
        raise M2mError(f"{what} {path} is not a readable zarr group ({type(exc).__name__}); "
                       f"delete it and write it again") from None
    if attrs_digest(dict(group.attrs)) != attrs_digest(attrs):
        raise M2mError(f"{what} {path} changed while it was opened; try again")
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


# -- the fast path of sharded arrays (store/shard_file.py): no zarr call per read ----------------

def read_sharded(path: Path, name: str, layout: Any, sel: Any = ..., what: str = "pool",
                 recorded: dict[str, int] | None = None) -> np.ndarray:
    """``group[name][sel]`` of a sharded array of :func:`shard_file.shard_layout`, read and decoded
    one whole shard file at a time with numpy, zstd and crc32c (every checksum checked) instead of
    through zarr; ``sel`` as in :func:`read_array`. A shard file absent from the folder reads as the
    fill value (zarr writes none when every value is), unless ``recorded`` (the manifest's files)
    lists it; damage is the same one-line M2mError as :func:`damaged` gives."""
    from .shard_file import ShardDamaged, decode_shard

    n = layout.shape[0]
    rows_per = layout.shard_rows
    if isinstance(sel, np.ndarray):
        rows = sel.astype(np.int64, copy=False).reshape(-1)
        if len(rows) and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"row index out of range for array {name!r} of {n} rows")
        rows = np.where(rows < 0, rows + n, rows)
        shards = np.unique(rows // rows_per) if len(rows) else np.zeros(0, np.int64)
    elif sel is Ellipsis or isinstance(sel, slice):
        lo, hi, step = (sel if isinstance(sel, slice) else slice(None)).indices(n)
        if step != 1:
            return read_sharded(path, name, layout, np.arange(lo, hi, step), what, recorded)
        rows = None
        shards = np.arange(lo // rows_per, -(-hi // rows_per)) if hi > lo else np.zeros(0, np.int64)
    else:
        raise TypeError(f"read_sharded takes ..., a slice or an array of rows, got {type(sel).__name__}")
    ndim = len(layout.shape)
    decoded: dict[int, np.ndarray] = {}
    for index in shards.tolist():
        rel = f"{name}/{shard_key(index, ndim)}"
        try:
            raw = (path / rel).read_bytes()
        except FileNotFoundError:
            if recorded is not None and rel in recorded:
                raise M2mError(f"{what} {path} is damaged: array {name!r} misses its data file {rel}; "
                               f"delete it and write it again") from None
            raw = None
        try:
            decoded[index] = decode_shard(raw, layout, index)
        except ShardDamaged as exc:
            where = f" in rows {exc.rows[0]}..{exc.rows[1] - 1} (file {rel})" if exc.rows else f" (file {rel})"
            if exc.problem == "checksum":
                raise M2mError(f"{what} {path} is damaged: array {name!r} fails its crc32c checksum{where} (a bit "
                               f"changed on disk or in transit); copy it again, or delete it and write it again") \
                    from None
            raise M2mError(f"{what} {path} is damaged: array {name!r} cannot be read{where} ({exc}); delete it and "
                           f"write it again") from None
    if rows is None:
        if not decoded:
            return np.zeros((0, *layout.shape[1:]), dtype=layout.dtype)
        whole = decoded[int(shards[0])] if len(decoded) == 1 else np.concatenate([decoded[i] for i in shards.tolist()])
        first = int(shards[0]) * rows_per
        return whole[lo - first:hi - first]
    out = np.empty((len(rows), *layout.shape[1:]), dtype=layout.dtype)
    which = rows // rows_per
    for index, values in decoded.items():
        mask = which == index
        out[mask] = values[rows[mask] - index * rows_per]
    return out


__all__ = ["ATTRS_HASH", "attrs_digest", "check_digests", "check_format", "check_integrity", "check_seal",
           "check_sealed_attrs", "checksummed_compressors", "codec_problem", "create_array", "create_arrays",
           "create_small_array", "damaged", "dims_for", "file_digests", "file_manifest", "open_checked_group", "open_complete",
           "read_array", "read_array_metadata", "read_arrays", "read_sharded", "read_root_attrs", "seal", "shard_key",
           "store_root", "write_group_attrs", "write_group_files", "write_together"]
