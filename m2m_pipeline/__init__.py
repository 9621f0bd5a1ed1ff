"""m2m-pipeline: M2m (Kim, Jeong, Shin, CVPR 2020) as an offline synthetic-data pipeline."""

__version__ = "0.1.0"
