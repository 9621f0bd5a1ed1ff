"""Training of g and f: the loop, the methods, the schedule and self-describing checkpoints.

Sub-modules: ``schedule`` (presets, lr), ``methods`` (the method registry), ``options``
(FitOptions), ``losses``, ``checkpoint``, ``loop`` (fit). The jobs that put them together
(pretrain g, warm f, train f, translate, ablate) are in ``m2m_pipeline.jobs``. Names are
re-exported lazily, so importing ``training.methods`` does not load the loop and the models.
"""

from __future__ import annotations

from ..utils import lazy_exports

_EXPORTS = {
    "Preset": "schedule", "lr_at": "schedule",
    "MethodSpec": "methods", "get_method": "methods", "list_ablations": "methods", "list_methods": "methods",
    "FitOptions": "options",
    "load_checkpoint": "checkpoint", "logit_offset_of": "checkpoint", "model_from_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "FitResult": "loop", "fit": "loop", "predict": "loop", "run_status": "loop", "write_history": "loop",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
