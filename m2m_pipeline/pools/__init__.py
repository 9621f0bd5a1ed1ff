"""Translation pools: the parameters, the per-slot draws, generation, and reading rows back.

Sub-modules, in import order: ``config`` (TranslationConfig), ``draws`` (seed choice, start noise),
``generate`` (translation into a zarr pool; the only part that imports the translation math),
``reuse`` (provenance checks, reading an epoch's rows back), ``rules`` (what training takes from
stored rows: M2m's rule and the ablations'). Names are re-exported lazily, so importing
``m2m_pipeline.pools.reuse`` does not load the translation code.
"""

from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    "SEED_SCOPES": "config", "TranslationConfig": "config",
    "SlotDraws": "draws", "draw_slots": "draws", "seed_inputs": "draws", "start_noise": "draws",
    "PoolSummary": "generate", "generate_pool": "generate", "make_translator": "generate",
    "translate_rows": "generate",
    "check_provenance": "reuse", "load_swaps": "reuse", "read_swaps": "reuse",
    "read_x": "codec", "apply_rule": "rules",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
