"""The pool format's per-row byte layout (store/pool_schema.py) is what the writer puts in the
arrays, and the byte sums built on it (issue 16's "Pool bytes at scale" table)."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.store import (POOL_ROW_ARRAYS, POOL_ROW_BYTES, PoolWriter, estimate_pool_bytes, pool_bytes,
                                pool_row_layout)
from m2m_pipeline.store import pool_format, pool_reader, pool_schema, pool_writer


class _Stop(Exception):
    pass


def test_row_layout_is_what_the_writer_creates(tmp_path):
    shape = (3, 5, 4)
    with pytest.raises(_Stop):   # an error leaves the writer: it removes the unfinished pool
        with PoolWriter(tmp_path / "p", n_rows=10, input_shape=shape, input_kind="image", rows_per_shard=8) as w:
            arrays = {name: (a.shape, a.dtype) for name, a in w.arrays.items()}
            raise _Stop
    assert not (tmp_path / "p.partial").exists()
    layout = pool_row_layout(shape)
    assert set(layout) == set(POOL_ROW_ARRAYS) == set(arrays)
    for name, (arr_shape, dtype) in arrays.items():
        assert arr_shape[0] == 10
        assert layout[name] == np.dtype(dtype).itemsize * int(np.prod(arr_shape[1:], dtype=np.int64)), name
    assert layout["x_delta"] == 2 * 60 and POOL_ROW_BYTES == 49   # slot 8 ... reason 1, summed by hand
    assert POOL_ROW_BYTES == sum(v for k, v in layout.items() if k != "x_delta")


def test_pool_bytes_all_and_accepted():
    shape = (1000,)
    assert pool_bytes(100, shape) == 100 * (2000 + 49)
    assert pool_bytes(100, shape, n_slots=300) == 100 * (2000 + 49) + 300 * (8 + 1 + 6)
    # accepted: every attempt's small columns, x_delta of the accepted rows only
    assert pool_bytes(100, shape, n_accepted=14, store="accepted") == 100 * 49 + 14 * 2000
    assert estimate_pool_bytes(100, shape) == pool_bytes(100, shape) + (1 << 20)
    with pytest.raises(ValueError, match="store"):
        pool_bytes(1, shape, store="some")


def test_pool_format_still_exports_every_name_from_the_split_modules():
    for name in pool_format.__all__:
        held = [m for m in (pool_schema, pool_writer, pool_reader) if name in m.__all__]
        assert held and getattr(pool_format, name) is getattr(held[0], name), name
