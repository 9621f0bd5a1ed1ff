"""The two modes of an ablation that re-decides M2m's rows (issue 15): ``reuse`` (the rule over the
stored rows of M2m's pools) and ``fresh`` (translated with the ablation's own f, then the same rule).

At learning rate 0 neither f moves, so the ablation's f is M2m's at every epoch and the paper's
definition (fresh) must give M2m's pools row for row, hence the very rows reuse takes from them,
and the same training. The model is the MLP (no batch norm: running statistics would move even at
lr 0 and part the two runs' f). Any other difference between the modes (draws, plan, rule
parameters, augmentation) fails these tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from m2m_pipeline.errors import M2mError
from m2m_pipeline.jobs.dispatch import train_method
from m2m_pipeline.jobs.train import pretrain_g, warm_f
from m2m_pipeline.params import ablation_modes, validate_params
from m2m_pipeline.pools.reuse import read_swaps
from m2m_pipeline.store import open_pool
from m2m_pipeline.training import Preset, get_method, list_ablations, load_checkpoint
from m2m_pipeline.utils import state_hash

from tests.conftest import ROOT

REDECIDING = [m for m in list_ablations() if get_method(m).redecides]
COLUMNS = ("slot", "target", "seed_class", "seed_index", "seed_aug", "u_beta", "prob_g", "loss_g", "accepted",
           "reason")


def test_the_redeciding_ablations_and_their_fresh_specs():
    assert REDECIDING == ["M2m-Clean", "M2m-Rand", "M2m-No-Reject", "M2m-No-Reject-No-Gamma", "M2m-No-Gamma",
                          "M2m-Gamma"]
    for name in REDECIDING:
        reuse, fresh = get_method(name), get_method(name, "fresh")
        assert reuse.mode == "reuse" and reuse.reuse == "M2m" and not reuse.translate
        # fresh: M2m's translating run (same warm start, order, generator g) with the same rule
        assert fresh.mode == "fresh" and fresh.translate and fresh.reuse is None
        assert (fresh.pool_rule, fresh.warm, fresh.deferred_order, fresh.generator) == (
            reuse.pool_rule, "ce", "balanced", "g")
        assert get_method(name, "reuse") is reuse and fresh.in_mode("reuse") is reuse
    with pytest.raises(M2mError, match="no 'fresh' mode"):
        get_method("M2m-Lambda0", "fresh")
    with pytest.raises(M2mError, match="unknown ablation mode 'fersh'"):
        get_method("M2m-Clean", "fersh")


# -- params.yaml: the mode per ablation ------------------------------------------------------------

def _params(**ablations):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ablations"] = ablations
    return params


def test_params_choose_the_mode_per_ablation():
    params = validate_params(_params(reuse=["M2m-Clean"], fresh=["M2m-Rand", "M2m-No-Reject"],
                                     translate=["M2m-RS-Rand"]))
    assert ablation_modes(params) == {"M2m-Clean": "reuse", "M2m-Rand": "fresh", "M2m-No-Reject": "fresh"}
    # the shipped defaults keep today's behaviour: every re-deciding ablation reuses M2m's rows
    shipped = validate_params(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert set(ablation_modes(shipped).values()) == {"reuse"}


@pytest.mark.parametrize("ablations, message", [
    ({"reuse": ["M2m-Clean"], "fersh": ["M2m-Rand"]}, r"^ablations: unknown mode\(s\) \['fersh'\]; known: reuse"),
    ({"reuse": ["M2m-Clean"], "fresh": ["M2m-Clean"]}, r"^ablations: \['M2m-Clean'\] listed under both reuse and fresh"),
    ({"fresh": ["M2m-Lambda0"]}, r"^ablations.fresh\[0\] is 'M2m-Lambda0', not a known name"),
])
def test_params_refuse_an_unknown_or_double_mode_in_one_line(ablations, message):
    with pytest.raises(M2mError, match=message) as err:
        validate_params(_params(**ablations))
    assert "\n" not in str(err.value)


# -- at learning rate 0, fresh == reuse ------------------------------------------------------------

@pytest.fixture(scope="module")
def lr0(tmp_path_factory, digits):
    """g trained for real (so it accepts rows), then f's warm phase and M2m at lr = 0 (MLP, no BN)."""
    root = tmp_path_factory.mktemp("lr0")
    common = dict(model="mlp", epochs=4, batch_size=64, warmup_epochs=1, milestones=(3,), deferred_epoch=2,
                  model_args={"hidden": 32})
    pretrain_g(digits, Preset(lr=0.1, **common), seed=1000, out_dir=root / "g", progress=False)
    preset = Preset(lr=0.0, **common)
    warm_f(digits, preset, seed=0, out_dir=root / "warm", progress=False)
    from m2m_pipeline.pools import TranslationConfig

    m2m = TranslationConfig(steps=3, step_size=1.0, beta=0.9, gamma=0.5, batch_size=32, rows_per_shard=64)
    kw = dict(seed=0, warm_dir=root / "warm", g_path=root / "g" / "best.pt", m2m=m2m, progress=False)
    train_method(digits, preset, method="M2m", out_dir=root / "M2m", pools_dir=root / "pools-M2m", **kw)
    return root, preset, kw


def _history(result):
    """Per-epoch records without timings and without the translation's own outcome counts
    (``reasons``: only a translating run has them)."""
    return [{k: v for k, v in r.items() if "second" not in k and "time" not in k and k != "reasons"}
            for r in result.history]


@pytest.mark.parametrize("name", REDECIDING)
def test_fresh_and_reuse_agree_at_learning_rate_0(name, lr0, digits):
    root, preset, kw = lr0
    params = {"gamma": 0.7} if name == "M2m-Gamma" else None
    reuse = train_method(digits, preset, method=name, out_dir=root / f"{name}-reuse", reused_pools=root / "pools-M2m",
                         method_params=params, **kw)
    fresh = train_method(digits, preset, method=name, mode="fresh", out_dir=root / f"{name}-fresh",
                         pools_dir=root / f"pools-{name}", method_params=params, **kw)
    spec = get_method(name)
    used_any = 0
    for epoch in range(preset.deferred_epoch, preset.epochs):
        ours, m2m = root / f"pools-{name}" / f"epoch_{epoch}", root / "pools-M2m" / f"epoch_{epoch}"
        # the fresh run's pool is M2m's, row for row (f at lr 0 is M2m's f)
        a, b = open_pool(ours).rows(COLUMNS), open_pool(m2m).rows(COLUMNS)
        for col in COLUMNS:
            np.testing.assert_array_equal(np.asarray(a[col]), np.asarray(b[col]), err_msg=f"{name} epoch {epoch} {col}")
        # and the rule takes the same rows from it, with the same inputs and labels
        _, sa, _ = read_swaps(ours, digits, rule=spec.pool_rule, rule_params=params, seed=0)
        _, sb, _ = read_swaps(m2m, digits, rule=spec.pool_rule, rule_params=params, seed=0)
        np.testing.assert_array_equal(sa.slot, sb.slot)
        np.testing.assert_array_equal(sa.label, sb.label)
        np.testing.assert_array_equal(sa.x, sb.x)
        used_any += len(sa.slot)
    assert used_any > 0, f"{name}: no row used, the comparison would be empty"
    # identical training: the same history (the rows used per epoch, losses, validation) and weights
    assert _history(reuse) == _history(fresh)
    a, b = load_checkpoint(reuse.last_path), load_checkpoint(fresh.last_path)
    assert state_hash(a["model_state"]) == state_hash(b["model_state"])
    assert a["params"]["ablation_mode"] == "reuse" and b["params"]["ablation_mode"] == "fresh"
    assert a["params"]["rule"] == b["params"]["rule"] == spec.pool_rule


def test_metrics_and_report_name_the_mode(lr0, digits, tmp_path):
    from m2m_pipeline.evaluation import evaluate_run
    from m2m_pipeline.reports import ablation_report

    root, preset, kw = lr0
    runs = []
    for mode in ("reuse", "fresh"):
        out = tmp_path / mode
        train_method(digits, preset, method="M2m-Rand", mode=mode, out_dir=out, reused_pools=root / "pools-M2m",
                     pools_dir=tmp_path / f"pools-{mode}", **kw)
        metrics = evaluate_run(out, digits, method="M2m-Rand")
        assert metrics["ablation_mode"] == mode
        runs.append({**metrics, "seed": 0})
    assert "ablation_mode" not in evaluate_run(root / "M2m", digits, method="M2m")
    m2m = {**evaluate_run(root / "M2m", digits, method="M2m"), "seed": 0}
    table = ablation_report([m2m, runs[0]], dataset="digits")
    row = next(line for line in table.splitlines() if line.startswith("| M2m-Rand |"))
    assert "; mode reuse" in row.split("|")[2]
    json.dumps(runs)   # the metrics JSON stays plain JSON
