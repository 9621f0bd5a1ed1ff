"""The pool format, one import away: :mod:`.pool_schema` (arrays, dtypes, byte layout, the
attribute schema), :mod:`.pool_writer` (:class:`PoolWriter`, :func:`write_pool_shard`) and
:mod:`.pool_reader` (:class:`Pool`, :func:`open_pool`, :func:`verify_pool`, :func:`migrate_pool`).

Kept so that ``from m2m_pipeline.store.pool_format import X`` works; new code imports
``m2m_pipeline.store`` or the module that holds the name.
"""

from __future__ import annotations

from .pool_reader import Pool, migrate_pool, open_pool, pool_as_dask, verify_pool
from .pool_schema import (MIGRATE_COMMAND, POOL_ARRAY_DOCS, POOL_ARRAY_DTYPES, POOL_FORMAT_VERSION, POOL_ROW_ARRAYS,
                          POOL_ROW_BYTES, POOL_ROW_SHAPES, POOL_SCHEMA, POOL_STORES, SEED_SCOPES, check_pool_attrs,
                          estimate_pool_bytes, plan_slot_bytes, pool_bytes, pool_row_layout)
from .pool_writer import RESUME_FILE, SHARD_RECORDS, PoolWriter, write_pool_shard

__all__ = ["MIGRATE_COMMAND", "POOL_ARRAY_DOCS", "POOL_ARRAY_DTYPES", "POOL_FORMAT_VERSION", "POOL_ROW_ARRAYS",
           "POOL_ROW_BYTES", "POOL_ROW_SHAPES", "POOL_SCHEMA", "POOL_STORES", "RESUME_FILE", "SEED_SCOPES",
           "SHARD_RECORDS", "Pool", "PoolWriter", "check_pool_attrs", "estimate_pool_bytes", "migrate_pool",
           "open_pool", "plan_slot_bytes", "pool_as_dask", "pool_bytes", "pool_row_layout", "verify_pool",
           "write_pool_shard"]
