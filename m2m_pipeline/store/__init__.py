"""The zarr store: prepared datasets and translation pools. The only package that imports zarr.

- ``zarr_io``: the zarr helpers (chunked and sharded arrays, checksummed codecs, reads that name
  a damaged array, concurrent reads and writes);
- ``integrity``: the file manifest checked on open, the sha256 of every file, the seal;
- ``schema``: the attribute schemas checked at open; ``migration``: rewriting an older format;
- ``prepared``: prepared datasets (``write_prepared``, ``read_prepared``);
- ``pool_schema``: the pool's arrays, byte layout and attribute schema; ``pool_writer``:
  ``PoolWriter``; ``pool_reader``: ``Pool``, ``open_pool``, ``verify_pool`` (``pool_format``
  re-exports the three).

Both kinds of group are written under a temporary name and renamed into place, with the attribute
``complete: true`` written last, so a crash never leaves something that reads as done.
"""

from __future__ import annotations

from .pool_reader import Pool, migrate_pool, open_pool, pool_as_dask, verify_pool
from .pool_schema import (POOL_ARRAY_DOCS, POOL_FORMAT_VERSION, POOL_ROW_ARRAYS, POOL_ROW_BYTES, POOL_STORES,
                          check_pool_attrs, estimate_pool_bytes, pool_bytes, pool_row_layout)
from .pool_writer import RESUME_FILE, SHARD_RECORDS, PoolWriter, write_pool_shard
from .prepared import (FORMAT_VERSION, migrate_prepared, prepared_fingerprint, prepared_summary, read_prepared,
                       write_prepared)
from .integrity import check_integrity, file_manifest
from .zarr_io import read_array, read_arrays

__all__ = ["FORMAT_VERSION", "POOL_ARRAY_DOCS", "POOL_FORMAT_VERSION", "POOL_ROW_ARRAYS", "POOL_ROW_BYTES",
           "POOL_STORES", "RESUME_FILE", "SHARD_RECORDS", "Pool", "PoolWriter", "check_integrity", "check_pool_attrs",
           "estimate_pool_bytes", "file_manifest", "migrate_pool", "migrate_prepared", "open_pool", "pool_as_dask",
           "pool_bytes", "pool_row_layout", "prepared_fingerprint", "prepared_summary", "read_array", "read_arrays",
           "read_prepared", "verify_pool", "write_pool_shard", "write_prepared"]
