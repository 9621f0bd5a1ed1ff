"""The swap sources: what training swaps into an epoch's attempt slots, one module each.

- ``stored``: :class:`StoredSwaps`, the base (an epoch's swaps already decided, served by batch);
- ``translated``: :class:`TranslatedPools`, each epoch translated into a pool with f as it is at
  the start of the epoch (the staged design), then read back;
- ``online``: :class:`OnlinePools`, each mini-batch (or part of R mini-batches) translated with f
  as it is when training reaches it (M2m-Online, ``m2m.refresh_batches``);
- ``reused``: :class:`ReusedPools`, another run's pools re-decided with an ablation's rule
  (translates nothing).

Names are re-exported lazily, so importing ``sources.reused`` does not load the translation code.
"""

from __future__ import annotations

from ...utils import lazy_exports

_EXPORTS = {"StoredSwaps": "stored", "TranslatedPools": "translated", "OnlinePools": "online",
            "ReusedPools": "reused"}

__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
