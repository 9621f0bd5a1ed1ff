"""The physical floor of a pool's bytes (issue 16): what encoding, compressing, writing, reading
and decompressing one epoch's rows costs with numpy and the codec library alone, no zarr.

The same columns a pool stores (store/pool_schema.POOL_ROW_ARRAYS: x* encoded by pools/codec.py
into ``x_delta``/``x_exp``, and the small per-row columns), each one zstd frame at the level the
pool uses (numcodecs' Zstd, the library under zarr's ZstdCodec), one file per column in a scratch
folder, read back, decompressed and x* decoded. Left out on purpose, because they are not the
bytes: rebuilding x0 from the prepared data (the pool needs it to encode and to decode), the
crc32c checksums and the manifest (integrity, not bytes), zarr's chunking and sharding. Stages are
timed one by one; with ``repeats`` the median of each stage over the repeats counts.

    from _floor import floor_round_trip   # benchmarks/ on sys.path
    floor = floor_round_trip(cols, x=x, x0=x0, input_range=data.input_range, repeats=5)
    floor["floor_s"], floor["read_s"] + floor["decompress_s"] + floor["decode_s"]
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numcodecs import Zstd

from m2m_pipeline.pools.codec import decode_x, encode_x

ZSTD_LEVEL = 0   # the pool's (store/zarr_io.checksummed_compressors): zstd's default level
STAGES = ("encode_s", "compress_s", "write_s", "read_s", "decompress_s", "decode_s")
READ_STAGES = ("read_s", "decompress_s", "decode_s")   # what a reader of a written pool must do


def _once(cols: dict[str, np.ndarray], x: np.ndarray, x0: np.ndarray, has_seed: np.ndarray,
          input_range: tuple[float, float] | None, folder: Path, codec: Zstd) -> tuple[dict[str, float], dict]:
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    x_delta, x_exp = encode_x(x, x0, has_seed)
    t["encode_s"] = time.perf_counter() - t0
    arrays = {**cols, "x_delta": x_delta, "x_exp": x_exp}
    t0 = time.perf_counter()
    frames = {name: codec.encode(np.ascontiguousarray(a)) for name, a in arrays.items()}
    t["compress_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for name, frame in frames.items():
        with open(folder / name, "wb") as fh:
            fh.write(frame)
    t["write_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = {}
    for name in arrays:
        with open(folder / name, "rb") as fh:
            back[name] = fh.read()
    t["read_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = {name: np.frombuffer(codec.decode(back[name]), dtype=a.dtype).reshape(a.shape) for name, a in arrays.items()}
    t["decompress_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    decoded = decode_x(out["x_delta"], out["x_exp"], x0, has_seed, input_range)
    t["decode_s"] = time.perf_counter() - t0
    raw = sum(a.nbytes for a in arrays.values())
    return t, {"arrays": arrays, "read_back": out, "decoded_x": decoded, "raw_bytes": raw,
               "compressed_bytes": sum(len(f) for f in frames.values())}


def floor_round_trip(cols: dict[str, np.ndarray], *, x: np.ndarray, x0: np.ndarray,
                     input_range: tuple[float, float] | None, repeats: int = 3, folder: str | Path | None = None,
                     keep: bool = False) -> dict[str, Any]:
    """Time the floor of one epoch's rows: ``cols`` the small per-row columns (every pool row
    array but ``x_delta``/``x_exp``, e.g. ``slot``, ``reason``), ``x`` the exact x* and ``x0``
    the rows' start points (float32, same shape; zeros where ``seed_index`` is -1).

    Returns ``{"floor_s": the sum of the stage medians, "floor_read_s": read + decompress +
    decode, <stage>_s: median seconds, "raw_bytes", "compressed_bytes", "rows", "repeats"}``
    and, with ``keep``, ``"round_trip"``: the arrays encoded, read back, and x* decoded (the test
    checks they agree byte for byte)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    has_seed = np.asarray(cols["seed_index"]) >= 0
    x = np.ascontiguousarray(x, dtype=np.float32)
    x0 = np.ascontiguousarray(x0, dtype=np.float32)
    codec = Zstd(level=ZSTD_LEVEL)
    scratch = Path(tempfile.mkdtemp(prefix="m2m-floor-", dir=folder))
    times: dict[str, list[float]] = {s: [] for s in STAGES}
    try:
        for _ in range(repeats):
            t, last = _once(cols, x, x0, has_seed, input_range, scratch, codec)
            for s in STAGES:
                times[s].append(t[s])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = {s: statistics.median(v) for s, v in times.items()}
    out: dict[str, Any] = {"floor_s": sum(med.values()), "floor_read_s": sum(med[s] for s in READ_STAGES), **med,
                           "raw_bytes": int(last["raw_bytes"]), "compressed_bytes": int(last["compressed_bytes"]),
                           "rows": int(len(x)), "repeats": int(repeats), "zstd_level": ZSTD_LEVEL}
    if keep:
        out["round_trip"] = last
    return out


def pool_floor_inputs(pool: Any, data: Any) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(cols, x, x0) of a written pool, for :func:`floor_round_trip` (not timed): its small
    columns, its decoded x* and the start points rebuilt from ``seed_index``/``seed_aug``."""
    from m2m_pipeline.pools.codec import read_x
    from m2m_pipeline.pools.draws import seed_inputs
    from m2m_pipeline.store import POOL_ROW_ARRAYS

    cols = pool.rows(tuple(n for n in POOL_ROW_ARRAYS if n not in ("x_delta", "x_exp")))
    x = read_x(pool, data)   # NaN where x* is not finite or not kept: encode_x stores those as the pool does
    x0 = np.zeros_like(x)
    has = cols["seed_index"] >= 0
    if has.any():
        x0[has] = seed_inputs(data, cols["seed_index"][has], cols["seed_aug"][has]).numpy()
    return cols, x, x0


__all__ = ["READ_STAGES", "STAGES", "ZSTD_LEVEL", "floor_round_trip", "pool_floor_inputs"]
