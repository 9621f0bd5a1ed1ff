"""One zarr v3 shard file, encoded and decoded with numpy, zstd and crc32c alone: the pool's
fast path (issue 16), byte for byte the layout zarr writes and reads.

A pool's row arrays are sharded along their first axis with the codecs of
:func:`~.zarr_io.checksummed_compressors`. For such an array a shard file is (zarr v3 spec,
``sharding_indexed`` codec, ``index_location: end``):

- each inner chunk, in C order of the chunk grid: its values as little-endian bytes (the
  ``bytes`` codec), compressed by zstd, then its crc32c (4 bytes, little endian) appended;
- then the shard index: one ``(offset, nbytes)`` pair of little-endian uint64 per inner chunk
  (both ``2**64 - 1`` for a chunk not written: it reads as the fill value), and its crc32c.

zarr's per-call machinery (its event loop, a codec pipeline per chunk, a round trip per array)
costs several times the bytes themselves on a pool epoch (docs/performance.md, "Pools at the
speed of the bytes"); this module does the same work in a few numpy and zstd calls. It handles
only that layout: :func:`shard_layout` returns None for any other array metadata, and the caller
then goes through zarr. Every checksum is verified on decode, as zarr verifies it; a mismatch is
:class:`ShardDamaged`, never values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import google_crc32c
import numpy as np
from numcodecs import Zstd

NO_CHUNK = np.uint64(2 ** 64 - 1)   # index entry of an inner chunk that was not written
_INDEX_ENTRY = 16                    # (offset, nbytes), two uint64
_CRC = 4

# zarr v3 data_type names this module decodes (fixed-size numeric and bool).
_DTYPES = {"bool": "|b1", "int8": "|i1", "uint8": "|u1", "int16": "<i2", "uint16": "<u2", "int32": "<i4",
           "uint32": "<u4", "int64": "<i8", "uint64": "<u8", "float32": "<f4", "float64": "<f8"}


class ShardDamaged(ValueError):
    """A shard file that does not decode: ``checksum`` (a crc32c differs) or ``format`` (its
    index or a chunk is not what the layout says); ``rows`` (lo, hi) of the inner chunk, when known."""

    def __init__(self, problem: str, message: str, rows: tuple[int, int] | None = None):
        super().__init__(message)
        self.problem, self.rows = problem, rows


@dataclass(frozen=True)
class ShardLayout:
    """What encoding and decoding one shard of an array needs, from its zarr.json."""

    shape: tuple[int, ...]
    dtype: np.dtype
    chunk_rows: int        # rows per inner chunk (the chunk spans the other axes whole)
    shard_rows: int        # rows per shard file
    fill_value: Any
    zstd_level: int

    @property
    def chunks_per_shard(self) -> int:
        return self.shard_rows // self.chunk_rows

    @property
    def n_shards(self) -> int:
        return -(-self.shape[0] // self.shard_rows) if self.shape and self.shape[0] else 0

    def shard_range(self, index: int) -> tuple[int, int]:
        """Rows (lo, hi) of the array that shard ``index`` holds."""
        lo = int(index) * self.shard_rows
        return lo, min(self.shape[0], lo + self.shard_rows)


def _codec(c: Any, name: str) -> dict[str, Any] | None:
    if not isinstance(c, dict) or c.get("name") != name:
        return None
    conf = c.get("configuration", {})
    return conf if isinstance(conf, dict) else None


def shard_layout(meta: dict[str, Any]) -> ShardLayout | None:
    """The layout of an array's metadata (its zarr.json as JSON) when it is the one this module
    handles: zarr v3, a regular chunk grid along the first axis, sharded, inner chunks
    ``bytes`` (little endian) -> ``zstd`` (no zstd checksum) -> ``crc32c``, index ``bytes`` ->
    ``crc32c`` at the end of the shard, default chunk key encoding, a fixed-size numeric or bool
    dtype and a numeric fill value. Anything else: None (read and write it through zarr)."""
    try:
        if meta.get("zarr_format") != 3 or meta.get("node_type") != "array":
            return None
        shape = tuple(int(s) for s in meta["shape"])
        dtype = _DTYPES.get(meta.get("data_type"))
        codecs = meta.get("codecs")
        grid = meta.get("chunk_grid", {})
        key = meta.get("chunk_key_encoding", {})
        if (dtype is None or not shape or not isinstance(codecs, list) or len(codecs) != 1
                or grid.get("name") != "regular"
                or key.get("name") != "default" or (key.get("configuration") or {}).get("separator", "/") != "/"):
            return None
        shard = tuple(int(s) for s in grid["configuration"]["chunk_shape"])
        conf = _codec(codecs[0], "sharding_indexed")
        if conf is None or conf.get("index_location", "end") != "end":
            return None
        chunk = tuple(int(s) for s in conf["chunk_shape"])
        inner, index = conf.get("codecs"), conf.get("index_codecs")
        if not (isinstance(inner, list) and len(inner) == 3 and isinstance(index, list) and len(index) == 2):
            return None
        for c in (inner[0], index[0]):
            b = _codec(c, "bytes")
            if b is None or b.get("endian", "little") != "little":
                return None
        zstd = _codec(inner[1], "zstd")
        if zstd is None or zstd.get("checksum", False) or _codec(inner[2], "crc32c") is None \
                or _codec(index[1], "crc32c") is None:
            return None
        # the chunk spans every axis but the first, the shard a whole number of chunks along it
        if len(shard) != len(shape) or len(chunk) != len(shape) or shard[1:] != shape[1:] or chunk[1:] != shape[1:] \
                or chunk[0] < 1 or shard[0] % chunk[0]:
            return None
        fill = meta.get("fill_value", 0)
        if isinstance(fill, bool):
            fill = bool(fill)
        elif not isinstance(fill, (int, float)):
            return None
        return ShardLayout(shape, np.dtype(dtype), chunk[0], shard[0], fill, int(zstd.get("level", 0)))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def sharded_array_metadata(shape: tuple[int, ...], dtype: Any, *, chunk_rows: int, shard_rows: int,
                           dims: list[str], attributes: dict[str, Any] | None = None, fill_value: Any = 0,
                           zstd_level: int = 0) -> dict[str, Any]:
    """The zarr.json (as JSON) of an array of the layout :func:`shard_layout` reads: what
    ``zarr_io.create_array`` has zarr write, built without a zarr call (a pool creates a dozen of
    them; tests/unit/store check that zarr opens it as the same array). ``shard_rows`` must be a
    multiple of ``chunk_rows``."""
    dtype = np.dtype(dtype)
    if dtype.name not in _DTYPES or shard_rows % chunk_rows or chunk_rows < 1:
        raise ValueError(f"no fast-path layout for {dtype} with {chunk_rows} rows a chunk, {shard_rows} a shard")
    rest = [int(s) for s in shape[1:]]
    fill = bool(fill_value) if dtype.kind == "b" else float(fill_value) if dtype.kind == "f" else int(fill_value)
    # zarr writes no endianness for single-byte types
    data_bytes = {"name": "bytes"} if dtype.itemsize == 1 else {"name": "bytes", "configuration": {"endian": "little"}}
    return {
        "shape": [int(s) for s in shape], "data_type": dtype.name,
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [int(shard_rows), *rest]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": fill,
        "codecs": [{"name": "sharding_indexed", "configuration": {
            "chunk_shape": [int(chunk_rows), *rest],
            "codecs": [data_bytes, {"name": "zstd", "configuration": {"level": int(zstd_level), "checksum": False}},
                       {"name": "crc32c"}],
            "index_codecs": [{"name": "bytes", "configuration": {"endian": "little"}}, {"name": "crc32c"}],
            "index_location": "end"}}],
        "attributes": dict(attributes or {}), "dimension_names": list(dims),
        "zarr_format": 3, "node_type": "array", "storage_transformers": []}


def small_array_files(values: np.ndarray, *, dims: list[str], attributes: dict[str, Any] | None = None,
                      zstd_level: int = 0) -> tuple[dict[str, Any], bytes]:
    """(zarr.json as JSON, the bytes of its one chunk file ``c/0``) of a small unsharded 1-D array of
    int64 or strings (a pool's ``class_count`` and ``class`` names), as ``zarr_io.create_small_array``
    has zarr write them: values as little-endian bytes (strings: numcodecs' vlen-utf8, a count and
    each string's length and UTF-8 bytes), zstd, then crc32c."""
    from numcodecs import VLenUTF8

    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"a small array is 1-D, got shape {values.shape}")
    if values.dtype.kind in "UO":
        data = VLenUTF8().encode(np.asarray([str(v) for v in values], dtype=object))
        dtype_name, fill, first = "string", "", {"name": "vlen-utf8", "configuration": {}}
    elif values.dtype == np.int64:
        data = np.ascontiguousarray(values, dtype="<i8").tobytes()
        dtype_name, fill, first = "int64", 0, {"name": "bytes", "configuration": {"endian": "little"}}
    else:
        raise ValueError(f"small arrays hold int64 or strings, got {values.dtype}")
    packed = Zstd(level=zstd_level, checksum=False).encode(data)
    meta = {"shape": [len(values)], "data_type": dtype_name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [len(values)]}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": fill,
            "codecs": [first, {"name": "zstd", "configuration": {"level": int(zstd_level), "checksum": False}},
                       {"name": "crc32c"}],
            "attributes": dict(attributes or {}), "dimension_names": list(dims),
            "zarr_format": 3, "node_type": "array", "storage_transformers": []}
    return meta, bytes(packed) + _crc(packed)


def _crc(buf: Any) -> bytes:
    """The crc32c of ``buf`` (bytes or a uint8 array) as the 4 little-endian bytes zarr appends."""
    return np.uint32(google_crc32c.value(buf)).astype("<u4").tobytes()


def encode_shard(values: np.ndarray, layout: ShardLayout, index: int) -> bytes:
    """The bytes of shard file ``index`` holding ``values`` (its rows: ``layout.shard_range``),
    as zarr writes them; the last shard's rows past the array's end hold the fill value. Every
    inner chunk is written (zarr skips chunks of fill values; both read the same)."""
    lo, hi = layout.shard_range(index)
    values = np.asarray(values)
    if values.shape != (hi - lo, *layout.shape[1:]):
        raise ValueError(f"shard {index} holds {hi - lo} rows of shape {layout.shape[1:]}, got {values.shape}")
    values = np.ascontiguousarray(values, dtype=layout.dtype)
    zstd = Zstd(level=layout.zstd_level, checksum=False)
    parts: list[bytes] = []
    entries = np.full((layout.chunks_per_shard, 2), NO_CHUNK, dtype="<u8")
    offset = 0
    rows = layout.chunk_rows
    for c in range(layout.chunks_per_shard):
        start = c * rows
        if lo + start >= hi:
            break   # beyond the array's end: not written (zarr's index says the same)
        block = values[start:start + rows]
        if len(block) < rows:   # the array's last chunk: padded with the fill value, as zarr pads it
            pad = np.full((rows - len(block), *layout.shape[1:]), layout.fill_value, dtype=layout.dtype)
            block = np.concatenate([block, pad])
        packed = zstd.encode(block)
        parts += [packed, _crc(packed)]
        entries[c] = (offset, len(packed) + _CRC)
        offset += len(packed) + _CRC
    index_bytes = entries.tobytes()
    parts += [index_bytes, _crc(index_bytes)]
    return b"".join(parts)


def decode_shard(raw: bytes | None, layout: ShardLayout, index: int) -> np.ndarray:
    """The rows of shard ``index`` (``layout.shard_range``) from its file's bytes; ``None`` (no
    file: zarr wrote none because every value was the fill value) reads as the fill value.
    Every chunk's and the index's crc32c is checked; damage is :class:`ShardDamaged`."""
    lo, hi = layout.shard_range(index)
    tail = (hi - lo, *layout.shape[1:])
    if raw is None:
        return np.full(tail, layout.fill_value, dtype=layout.dtype)
    buf = np.frombuffer(raw, dtype=np.uint8)   # a view: slices copy nothing (google_crc32c reads numpy arrays)
    index_len = layout.chunks_per_shard * _INDEX_ENTRY + _CRC
    if len(buf) < index_len:
        raise ShardDamaged("format", f"shard {index} has {len(buf)} bytes, less than its index", (lo, hi))
    index_raw = buf[len(buf) - index_len:]
    if _crc(index_raw[:-_CRC]) != index_raw[-_CRC:].tobytes():
        raise ShardDamaged("checksum", f"shard {index}'s index fails its crc32c checksum", (lo, hi))
    entries = np.frombuffer(index_raw[:-_CRC], dtype="<u8").reshape(-1, 2)
    out = np.empty(tail, dtype=layout.dtype)
    rows = layout.chunk_rows
    body = len(buf) - index_len
    chunk_values = rows * int(np.prod(layout.shape[1:], dtype=np.int64))
    for c in range(layout.chunks_per_shard):
        start = c * rows
        if lo + start >= hi:
            break
        stop = min(hi - lo, start + rows)
        off, n = entries[c]
        if off == NO_CHUNK and n == NO_CHUNK:
            out[start:stop] = layout.fill_value
            continue
        off, n = int(off), int(n)
        span = (lo + start, lo + stop)
        if n < _CRC or off + n > body:
            raise ShardDamaged("format", f"shard {index}'s index points outside the file", span)
        chunk = buf[off:off + n]
        if _crc(chunk[:-_CRC]) != chunk[-_CRC:].tobytes():
            raise ShardDamaged("checksum", f"a chunk of shard {index} fails its crc32c checksum", span)
        try:
            plain = Zstd().decode(chunk[:-_CRC])
        except Exception as exc:   # a checksummed chunk that zstd refuses: written by something else
            raise ShardDamaged("format", f"a chunk of shard {index} is not zstd ({type(exc).__name__})", span) from None
        values = np.frombuffer(plain, dtype=layout.dtype)
        if values.size != chunk_values:
            raise ShardDamaged("format", f"a chunk of shard {index} holds {values.size} values, not {chunk_values}",
                               span)
        out[start:stop] = values.reshape(rows, *layout.shape[1:])[:stop - start]
    return out


__all__ = ["NO_CHUNK", "ShardDamaged", "ShardLayout", "decode_shard", "encode_shard", "shard_layout",
           "sharded_array_metadata", "small_array_files"]
