"""The compact storage of x* in a pool: the one place that encodes and decodes it.

A pool row's x* is x0 + delta, where x0 (the seed row with its recorded augmentation) is rebuilt
exactly from ``seed_index`` and ``seed_aug``. Only delta is stored, quantised per row on a
power-of-two grid: ``x_delta`` (int16) holds round(delta / 2**e) and ``x_exp`` (int8) holds e,
chosen so that the row's largest |delta| needs ``DELTA_BITS`` bits. So the largest per-pixel error
of a decoded row is 2**(e - 1) <= max|delta| * 2**-DELTA_BITS (<= 1.2e-4 for images in [0, 1],
where |delta| <= 1): about 1/32 of an 8-bit grey level, and 1/15 of a single L2 step of 0.1
spread over the 3,072 pixels of a CIFAR image. zstd then packs the small integers
(docs/performance.md, "Pool size": measured against float16 deltas and float32 x*).

Accept decisions are taken on the exact x* before encoding (the translator never sees decoded
rows); training and every other reader use :func:`read_x`, the decoded x*.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..datasets import PreparedData
from .draws import seed_inputs

DELTA_BITS = 12        # significant bits per row: |x_delta| <= 2**12, well inside int16
NOT_FINITE_EXP = -128  # x_exp of a row whose x* is not finite: it decodes to NaN
# x_exp of a row whose x* a ``pools.store: accepted`` pool did not keep: it decodes to NaN as well
# (the row's ``reason`` says why it was rejected; read_x never returns a made-up x*).
NOT_STORED_EXP = NOT_FINITE_EXP
MIN_EXP = -127         # deltas below 2**-127 round to zero (far below float32 pixel resolution)


def encode_x(x: np.ndarray, x0: np.ndarray, has_seed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x_delta, x_exp)`` of rows ``x`` (exact x*) against their start points ``x0``.

    Rows without a seed (``has_seed`` false, reason ``no_seed``) store zeros and decode to zeros,
    as their x did before; rows with a non-finite x* decode to NaN (they are never accepted).
    """
    n = len(x)
    x_exp = np.zeros(n, dtype=np.int8)
    if n == 0:
        return np.zeros(x.shape, dtype=np.int16), x_exp
    # float32 throughout (the pool's x* is float32); scaling by a power of two is exact
    delta = np.subtract(x.reshape(n, -1), x0.reshape(n, -1), dtype=np.float32)
    finite = np.isfinite(delta).all(axis=1) & has_seed
    delta[~finite] = 0.0
    largest = np.abs(delta).max(axis=1)
    exp = np.zeros(n, dtype=np.int64)
    pos = largest > 0
    exp[pos] = np.ceil(np.log2(largest[pos].astype(np.float64))).astype(np.int64) - DELTA_BITS
    exp = np.clip(exp, MIN_EXP, 127)
    delta *= np.ldexp(np.ones(n, dtype=np.float64), (-exp).astype(np.int32)).astype(np.float32)[:, None]
    np.rint(delta, out=delta)
    x_exp[:] = exp
    x_exp[has_seed & ~finite] = NOT_FINITE_EXP
    return delta.astype(np.int16).reshape(x.shape), x_exp


def decode_x(x_delta: np.ndarray, x_exp: np.ndarray, x0: np.ndarray, has_seed: np.ndarray,
             input_range: tuple[float, float] | None) -> np.ndarray:
    """x* = x0 + x_delta * 2**x_exp (float32), clamped to the data's range as translation clamps it."""
    n = len(x_delta)
    if n == 0:
        return np.zeros(x_delta.shape, dtype=np.float32)
    exp = x_exp.astype(np.int32)
    x = x_delta.reshape(n, -1).astype(np.float32)
    # q * 2**e is exact in float32 (|q| <= 2**12); the one rounding is the sum with x0.
    x *= np.ldexp(np.ones(n, dtype=np.float64), exp).astype(np.float32)[:, None]
    x += x0.reshape(n, -1)
    if input_range is not None:
        np.clip(x, input_range[0], input_range[1], out=x)
    x[~has_seed] = 0.0
    x[has_seed & (exp == NOT_FINITE_EXP)] = np.nan
    return x.reshape(x_delta.shape)


def read_x(pool: Any, data: PreparedData, rows: np.ndarray | None = None) -> np.ndarray:
    """The decoded x* of ``rows`` (all rows when None) of a pool opened with ``store.open_pool``.

    Pools written before the compact format (format_version 1) hold float32 ``x`` and read as is.
    """
    sel = np.arange(len(pool)) if rows is None else np.asarray(rows, dtype=np.int64)
    if len(sel) == 0:
        return np.zeros((0, *data.input_shape), dtype=np.float32)
    if pool.has_array("x"):
        return pool.array("x", sel)
    cols = pool.rows(("seed_index", "seed_aug", "x_delta", "x_exp"), sel)   # one concurrent read
    seed_index, seed_aug = cols["seed_index"], cols["seed_aug"]
    has_seed = seed_index >= 0
    x0 = np.zeros((len(sel), *data.input_shape), dtype=np.float32)
    if has_seed.any():
        x0[has_seed] = seed_inputs(data, seed_index[has_seed], seed_aug[has_seed]).numpy()
    return decode_x(cols["x_delta"], cols["x_exp"], x0, has_seed, data.input_range)




def encode_rows(rows: dict[str, np.ndarray], data: PreparedData, store: str = "all", *,
                return_x0: bool = False) -> dict[str, np.ndarray] | tuple[dict[str, np.ndarray], np.ndarray]:
    """Pool rows with exact ``x`` (as :func:`~m2m_pipeline.pools.shard.translate_rows` returns
    them) -> the rows a pool stores: ``x`` replaced by ``x_delta`` and ``x_exp``. With
    ``store="accepted"`` (params.yaml ``pools.store``) only the accepted rows keep their x*: the
    others store zeros, which zstd reduces to almost nothing, and decode to NaN (x_exp
    :data:`NOT_STORED_EXP`); their small columns (reason, prob_g, u_beta, ...) are kept.
    ``return_x0``: also return the rows' x0 (float32), for a writer that decodes what it stored."""
    has_seed = rows["seed_index"] >= 0
    x0 = np.zeros(rows["x"].shape, dtype=np.float32)
    if has_seed.any():
        x0[has_seed] = seed_inputs(data, rows["seed_index"][has_seed], rows["seed_aug"][has_seed]).numpy()
    x_delta, x_exp = encode_x(rows["x"], x0, has_seed)
    if store == "accepted":
        dropped = has_seed & ~np.asarray(rows["accepted"], dtype=bool)
        x_delta[dropped] = 0
        x_exp[dropped] = NOT_STORED_EXP
    elif store != "all":
        raise ValueError(f"store must be 'all' or 'accepted', got {store!r}")
    out = {k: v for k, v in rows.items() if k != "x"}
    out.update(x_delta=x_delta, x_exp=x_exp)
    return (out, x0) if return_x0 else out


__all__ = ["DELTA_BITS", "NOT_STORED_EXP", "decode_x", "encode_rows", "encode_x", "read_x"]
