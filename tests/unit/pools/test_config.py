"""The translation parameters (pools/config.py, TranslationConfig): each bound on its valid and its
invalid side, and reading them from params."""

import pytest

from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.utils import M2mError

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these


# -- TranslationConfig: each bound on both sides -----------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(noise_radius=0.0), dict(refresh_batches=0), dict(refresh_batches=1),
                                    dict(batch_size=1, rows_per_shard=1), dict(seed_scope="dataset")])
def test_translation_config_accepts_the_valid_side(kwargs):
    cfg = TranslationConfig(**kwargs)
    assert all(getattr(cfg, k) == v for k, v in kwargs.items())


@pytest.mark.parametrize("kwargs, match", [
    (dict(noise_radius=-0.01), "noise_radius"), (dict(refresh_batches=-1), "refresh_batches"),
    (dict(refresh_batches=1.0), "refresh_batches"), (dict(batch_size=0), "batch_size"),
    (dict(rows_per_shard=0), "rows_per_shard"), (dict(seed_scope="epoch"), "seed_scope"),
])
def test_translation_config_refuses_the_invalid_side(kwargs, match):
    with pytest.raises(M2mError, match=match):
        TranslationConfig(**kwargs)


def test_translation_config_from_params():
    cfg = TranslationConfig.from_params({"steps": 3, "gamma": 0.5})
    assert (cfg.steps, cfg.gamma, cfg.lam) == (3, 0.5, 0.5)   # the rest keeps Sec. 3.1's defaults
    with pytest.raises(M2mError, match=r"unknown m2m parameter\(s\) \['stepz'\]"):
        TranslationConfig.from_params({"stepz": 3})
