"""The zarr store: prepared datasets and translation pools. The only package that imports zarr.

- ``zarr_io``: the zarr helpers (chunked and sharded arrays, checksummed codecs, reads that name
  a damaged array, concurrent reads and writes);
- ``integrity``: the file manifest checked on open, the sha256 of every file, the seal;
- ``schema``: the attribute schemas checked at open; ``migration``: rewriting an older format;
- ``prepared``: prepared datasets (``write_prepared``, ``read_prepared``);
- ``pool_format``: the pool schema, ``PoolWriter``, ``Pool``, ``open_pool`` and ``verify_pool``.

Both kinds of group are written under a temporary name and renamed into place, with the attribute
``complete: true`` written last, so a crash never leaves something that reads as done.
"""

from __future__ import annotations

from .pool_format import (POOL_ARRAY_DOCS, POOL_FORMAT_VERSION, POOL_ROW_ARRAYS, POOL_ROW_BYTES, RESUME_FILE,
                          SHARD_RECORDS, Pool, PoolWriter, check_pool_attrs, estimate_pool_bytes, migrate_pool,
                          open_pool, pool_as_dask, verify_pool, write_pool_shard)
from .prepared import FORMAT_VERSION, migrate_prepared, prepared_fingerprint, read_prepared, write_prepared
from .integrity import check_integrity, file_manifest
from .zarr_io import read_array, read_arrays

__all__ = ["FORMAT_VERSION", "POOL_ARRAY_DOCS", "POOL_FORMAT_VERSION", "POOL_ROW_ARRAYS", "POOL_ROW_BYTES",
           "RESUME_FILE", "SHARD_RECORDS", "Pool", "PoolWriter", "check_integrity", "check_pool_attrs",
           "estimate_pool_bytes", "file_manifest", "migrate_pool", "migrate_prepared", "open_pool", "pool_as_dask",
           "prepared_fingerprint", "read_array", "read_arrays",
           "read_prepared", "verify_pool", "write_pool_shard", "write_prepared"]
