"""issue 20 item 13: ``ablation_params`` has one schema for every ablation (params.py, from the
method registry): unknown keys refused, bools are not numbers, and a pool's ``params.beta`` outside
[0, 1) (eq. 3) is refused where the stored rows are re-decided (pools/rules.py)."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.jobs.m2m import method_config
from m2m_pipeline.params import ablation_param_checks, check_ablation_params, validate_params
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.pools.rules import apply_rule, check_rule
from m2m_pipeline.training.methods import list_ablations
from m2m_pipeline.utils import M2mError


@pytest.mark.parametrize("method", list_ablations())
def test_every_ablation_refuses_an_unknown_key(method):
    with pytest.raises(M2mError, match=rf"ablation_params\.{method}: unknown key\(s\) \['foo'\]"):
        check_ablation_params(method, {"foo": 1})
    with pytest.raises(M2mError, match=r"unknown key\(s\) \['foo'\]"):
        validate_params({"ablation_params": {method: {"foo": 1}}})


def test_m2m_clean_takes_no_parameter_at_all():
    assert ablation_param_checks("M2m-Clean") == {}
    assert check_ablation_params("M2m-Clean", None) == {}
    with pytest.raises(M2mError, match=r"ablation_params\.M2m-Clean: unknown key\(s\) \['gamma'\]; allowed: none"):
        check_ablation_params("M2m-Clean", {"gamma": 0.5})


@pytest.mark.parametrize("method", ["M2m-Gamma", "M2m-Ensemble"])
def test_a_bool_gamma_is_not_a_number(method):
    with pytest.raises(M2mError, match=rf"ablation_params\.{method}\.gamma must be a finite number >= 0, got True"):
        check_ablation_params(method, {"gamma": True})
    assert check_ablation_params(method, {"gamma": 0.97}) == {"gamma": 0.97}


def test_the_jobs_apply_the_same_schema():
    with pytest.raises(M2mError, match=r"ablation_params\.M2m-Lambda0: unknown key"):
        method_config("M2m-Lambda0", TranslationConfig(), {"foo": 1})
    with pytest.raises(M2mError, match=r"ablation_params\.M2m-Ensemble\.beta must be"):
        method_config("M2m-Ensemble", TranslationConfig(), {"beta": 2.0})
    assert method_config("M2m-Ensemble", TranslationConfig(), {"gamma": 0.97}).gamma == 0.97
    with pytest.raises(M2mError, match="pool rule 'gamma': gamma must be a finite number"):
        check_rule("gamma", {"gamma": True})


def _rows():
    n = 4
    return {"slot": np.arange(n), "target": np.array([1, 1, 2, 3]), "seed_class": np.zeros(n, dtype=np.int64),
            "seed_index": np.zeros(n, dtype=np.int64), "seed_aug": np.zeros((n, 3), dtype=np.int16),
            "u_beta": np.full(n, 0.5), "prob_g": np.full(n, 0.95), "loss_g": np.full(n, 0.1),
            "accepted": np.ones(n, dtype=bool), "reason": np.zeros(n, dtype=np.int8)}


@pytest.mark.parametrize("beta", [2.0, 1.0, -0.1, True, "x", None, float("nan")])
@pytest.mark.parametrize("rule,rule_params", [("no_gamma", None), ("gamma", {"gamma": 0.9})])
def test_a_pool_beta_outside_0_1_is_refused_where_rows_are_re_decided(beta, rule, rule_params):
    attrs = {"params": {"beta": beta, "gamma_on": "prob"}, "class_counts": [8, 5, 3, 2]}
    with pytest.raises(M2mError, match=r"pool attribute params\.beta must be a finite number in \[0, 1\)"):
        apply_rule(rule, _rows(), attrs, num_classes=4, seed=0, epoch=0, rule_params=rule_params)
    attrs["params"]["beta"] = 0.5
    out = apply_rule(rule, _rows(), attrs, num_classes=4, seed=0, epoch=0, rule_params=rule_params)
    assert out.used.shape == (4,)
