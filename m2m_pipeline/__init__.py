"""m2m-pipeline: M2m (Kim, Jeong, Shin, CVPR 2020) as an offline synthetic-data pipeline."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``from m2m_pipeline import M2mOverSampler`` imports torch and imbalanced-learn only when asked."""
    if name == "M2mOverSampler":
        from .sklearn_api import M2mOverSampler

        return M2mOverSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
