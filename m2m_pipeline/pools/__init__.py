"""Translation pools: the parameters, the per-slot draws, generation, and reading rows back.

Sub-modules, in import order: ``config`` (TranslationConfig), ``draws`` (seed choice, start noise),
``codec`` (x* stored compactly), ``rules`` (what training takes from stored rows: M2m's rule and
the ablations'), ``reuse`` (provenance checks, reading an epoch's rows back), ``shard`` (the shard
task: translating one pool shard; with ``generate`` and ``backends`` the only parts that import
the translation math), ``backends`` (where shards are translated: this process or
dask.distributed, ``distributed``), ``generate`` (one epoch's pool), ``sources/`` (the swap
sources training drives: stored, translated, online, reused) and ``browse/`` (listing, showing
and counting pools for the ``pools`` commands). Names are re-exported lazily, so importing
``m2m_pipeline.pools.reuse`` does not load the translation code.
"""

from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    "SEED_SCOPES": "config", "TranslationConfig": "config",
    "SlotDraws": "draws", "draw_slots": "draws", "seed_inputs": "draws", "start_noise": "draws",
    "PoolSummary": "generate", "generate_pool": "generate", "make_translator": "generate",
    "ShardJob": "shard", "translate_rows": "shard",
    "TranslationBackend": "backends", "InProcessBackend": "backends", "DaskBackend": "backends",
    "create_backend": "backends",
    "check_provenance": "reuse", "load_swaps": "reuse", "read_swaps": "reuse",
    "StoredSwaps": "sources.stored", "TranslatedPools": "sources.translated", "OnlinePools": "sources.online",
    "ReusedPools": "sources.reused",
    "read_x": "codec", "apply_rule": "rules",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
