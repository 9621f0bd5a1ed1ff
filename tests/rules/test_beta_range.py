"""beta's range is the paper's, eq. (3): "beta in [0, 1)", in every place that checks it (params.yaml's
schema, a pool's attribute schema, the rules that re-decide stored rows, the translator, the
scikit-learn sampler). The boundary values: beta = 0 is allowed (the reject probability
0^((N_k0 - N_k)^+) is 0 for every larger seed class, 1 for a class no larger than the target, so
every translation from a larger class passes eq. (3)); beta = 1 is refused (every x* rejected)."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.acceptance import accept_prob, seed_class_probs
from m2m_pipeline.params import validate_params
from m2m_pipeline.pools.rules import apply_rule
from m2m_pipeline.store.pool_format import POOL_SCHEMA
from m2m_pipeline.store.schema import SchemaError
from m2m_pipeline.sklearn_api import M2mOverSampler
from m2m_pipeline.translate import M2mTranslator
from m2m_pipeline.utils import M2mError

COUNTS = [8, 5, 3, 2]


def _rows():
    n = 4
    # seed class 0 (8 rows) for targets 1, 2, 3, and one row seeded from its own class (gap 0)
    return {"slot": np.arange(n), "target": np.array([1, 2, 3, 0]), "seed_class": np.zeros(n, dtype=np.int64),
            "seed_index": np.zeros(n, dtype=np.int64), "seed_aug": np.zeros((n, 3), dtype=np.int16),
            "u_beta": np.full(n, 0.999), "prob_g": np.full(n, 0.95), "loss_g": np.full(n, 0.1),
            "accepted": np.ones(n, dtype=bool), "reason": np.zeros(n, dtype=np.int8)}


def _pool_params(beta):
    return {"steps": 1, "step_size": 0.1, "lam": 0.5, "gamma": 0.9, "beta": beta}


PARAMS_SPEC = POOL_SCHEMA.required["params"]


def test_beta_zero_is_allowed_everywhere_and_accepts_every_larger_seed():
    assert validate_params({"m2m": {"beta": 0.0}})["m2m"]["beta"] == 0.0
    assert validate_params({"m2m": {"beta": 0}})["m2m"]["beta"] == 0.0
    PARAMS_SPEC.check(_pool_params(0.0), "params")                 # a pool written with beta = 0 opens
    M2mTranslator(beta=0.0).check_params()
    M2mOverSampler(beta=0.0)._validate_params()
    # eq. (3) at beta = 0: accept with probability 1 when N_k0 > N_k, 0 when N_k0 <= N_k
    assert accept_prob(COUNTS, np.array([0, 0, 0, 0]), np.array([1, 2, 3, 0]), 0.0).tolist() == [1.0, 1.0, 1.0, 0.0]
    # eq. (5) at beta = 0: Q(k0 | k) uniform over the classes larger than k
    assert seed_class_probs(COUNTS, 2, 0.0).tolist() == [0.5, 0.5, 0.0, 0.0]
    attrs = {"params": {"beta": 0.0, "gamma_on": "prob"}, "class_counts": COUNTS}
    out = apply_rule("no_gamma", _rows(), attrs, num_classes=4, seed=0, epoch=0)
    assert out.used.tolist() == [True, True, True, False]   # u = 0.999 < 1 for every gap > 0


@pytest.mark.parametrize("beta", [1.0, -1e-9])
def test_beta_one_or_negative_is_refused_everywhere(beta):
    with pytest.raises(M2mError, match=r"m2m\.beta must be a finite number >= 0 and < 1, got"):
        validate_params({"m2m": {"beta": beta}})
    with pytest.raises(SchemaError, match=r"params\.beta"):
        PARAMS_SPEC.check(_pool_params(beta), "params")
    attrs = {"params": {"beta": beta, "gamma_on": "prob"}, "class_counts": COUNTS}
    with pytest.raises(M2mError, match=r"pool attribute params\.beta must be a finite number in \[0, 1\)"):
        apply_rule("no_gamma", _rows(), attrs, num_classes=4, seed=0, epoch=0)
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        M2mTranslator(beta=beta).check_params()
    with pytest.raises(ValueError, match="beta"):
        M2mOverSampler(beta=beta)._validate_params()
