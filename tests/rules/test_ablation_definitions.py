"""The paper's definitions of the ablations (Sec. 3.4, Tables 3-5, Appendix B), issue 15 item 3, each
checked on hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from m2m_pipeline.acceptance import REASONS
from m2m_pipeline.jobs.m2m import ensemble_gamma, method_config
from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.pools.draws import draw_slots, seed_subset_mask
from m2m_pipeline.pools.rules import apply_rule
from m2m_pipeline.training.methods import get_method, list_ablations
from tests.tiny import tiny_images

# -- M2m-No-Reject drops eq. (3) only; M2m-No-Reject-No-Gamma drops both --------------------------------
# class_counts [100, 50, 20, 10], beta 0.9. Rows (k0 -> k):
#   0: 0 -> 3, gap 90, P = 1 - 0.9^90 = 0.99992; u = 0.99995 fails eq. (3) (reason beta); prob 0.95.
#   1: 1 -> 3, gap 40, P = 1 - 0.9^40 = 0.98522; u = 0.5 passes; prob 0.5 < gamma 0.9 (reason gamma).
#   2: 0 -> 2, gap 80, P = 0.99978; u = 0.1 passes; prob 0.92 >= 0.9 (accepted).
#   3: no seed.
#   4: 1 -> 2, gap 30, P = 1 - 0.9^30 = 0.95761; u = 0.97 fails (reason beta); prob 0.6 < 0.9.
_ROWS = {
    "slot": np.array([0, 1, 2, 3, 4]),
    "target": np.array([3, 3, 2, 2, 2]),
    "seed_class": np.array([0, 1, 0, -1, 1]),
    "seed_index": np.array([5, 120, 7, -1, 130]),
    "seed_aug": np.zeros((5, 3), np.int16),
    "u_beta": np.array([0.99995, 0.5, 0.1, 0.3, 0.97]),
    "prob_g": np.array([0.95, 0.5, 0.92, 0.0, 0.6], np.float32),
    # -log p: 0.0513, 0.6931, 0.0834, -, 0.5108
    "loss_g": np.array([0.0513, 0.6931, 0.0834, np.nan, 0.5108], np.float32),
    "accepted": np.array([False, False, True, False, False]),
    "reason": np.array([REASONS["beta"], REASONS["gamma"], REASONS["accepted"], REASONS["no_seed"],
                        REASONS["beta"]], np.uint8),
}
_COUNTS = [100, 50, 20, 10]


def _used(rule, gamma=0.9, gamma_on="prob"):
    attrs = {"class_counts": _COUNTS, "params": {"beta": 0.9, "gamma": gamma, "gamma_on": gamma_on}}
    return apply_rule(rule, _ROWS, attrs, num_classes=4, seed=0, epoch=1).used.tolist()


def test_hand_numbers_of_the_beta_draws():
    assert 1 - 0.9 ** 90 == pytest.approx(0.99992, abs=1e-5) and 0.99995 > 1 - 0.9 ** 90
    assert 1 - 0.9 ** 30 == pytest.approx(0.95761, abs=1e-5) and 0.97 > 1 - 0.9 ** 30
    assert _used("no_gamma") == [False, True, True, False, False]      # eq. (3) alone: rows 1, 2


def test_no_reject_keeps_the_gamma_test():
    # beta dropped, gamma 0.9 kept: rows 0 (0.95) and 2 (0.92); rows 1 (0.5) and 4 (0.6) fail gamma
    assert _used("no_reject") == [True, False, True, False, False]
    # under Algorithm 1's loss rule, gamma 0.1: loss 0.0513 and 0.0834 pass, 0.6931 and 0.5108 do not
    assert _used("no_reject", gamma=0.1, gamma_on="loss") == [True, False, True, False, False]
    # a gamma of 0.55 lets row 4 (prob 0.6, failed eq. 3) in as well: the beta test is not applied
    assert _used("no_reject", gamma=0.55) == [True, False, True, False, True]


def test_no_reject_no_gamma_drops_both():
    assert _used("no_reject_no_gamma") == [True, True, True, False, True]   # every row with a seed


def test_no_reject_methods_are_named_for_what_they_drop():
    assert get_method("M2m-No-Reject").pool_rule == "no_reject"
    assert get_method("M2m-No-Reject").paper_table == "Table 5"
    both = get_method("M2m-No-Reject-No-Gamma")
    assert both.pool_rule == "no_reject_no_gamma" and both.paper_table == "" and both.variant_of
    assert "M2m-No-Reject-No-Gamma" in list_ablations()


# -- M2m-Seeds-N: k0 ~ Q(.|k), then a uniform seed within k0's fixed subset --------------------------

def test_seeds_n_draws_k0_from_q_then_a_seed_of_the_subset():
    assert method_config("M2m-Seeds10", TranslationConfig(seed_scope="batch")).seed_scope == "dataset"
    assert method_config("M2m", TranslationConfig(seed_scope="batch")).seed_scope == "batch"
    data = tiny_images((10, 5, 3))
    y = data.train.y
    plan = make_plan(y, data.class_counts, seed=3, epoch=2, order="balanced", attempts=True,
                     augment=data.augment, batch_size=6)
    cfg = TranslationConfig(seed_scope="dataset", beta=0.5)
    full = draw_slots(data, plan, cfg, 3)
    # subset of 1 per class: each class seeds from exactly one row
    mask = seed_subset_mask(y, 3, 1, seed=3)
    assert int(mask.sum()) == 3
    sub = draw_slots(data, plan, cfg, 3, allowed_seeds=mask)
    n_attempts = int(plan.attempt.sum())
    assert n_attempts > 0 and len(sub.slot) == len(full.slot) == n_attempts
    # the class draw k0 ~ Q(.|k) is the same uniform: the same k0 for every attempt, so as many seeded
    # attempts as M2m's; only the row within k0 changes (the single member of k0's subset)
    assert sub.seed_class.tolist() == full.seed_class.tolist()
    only = {k: int(np.flatnonzero(mask & (y == k))[0]) for k in range(3)}
    assert sub.seed_index.tolist() == [only[k0] if k0 >= 0 else -1 for k0 in sub.seed_class.tolist()]
    # Q(k0 | k) > 0 only for k0 larger than k: target 1 seeds from class 0; target 2 from 0 or 1;
    # the largest class 0 has no larger class, so no seed in either draw (not caused by the subset)
    t = sub.target
    assert set(sub.seed_class[t == 1].tolist()) <= {0}
    assert set(sub.seed_class[t == 2].tolist()) <= {0, 1}
    assert ((sub.seed_class >= 0) == (t > 0)).all()


# -- M2m-Ensemble: a more lenient gamma ("higher" in Algorithm 1's loss threshold) -------------------

def test_ensemble_gamma_doubles_the_loss_threshold():
    # prob rule: keep p >= gamma <=> -log p <= -log gamma; doubled: p >= gamma^2
    assert ensemble_gamma(0.9, "prob") == pytest.approx(0.81)
    assert ensemble_gamma(0.99, "prob") == pytest.approx(0.9801)
    assert -math.log(ensemble_gamma(0.9, "prob")) == pytest.approx(2 * -math.log(0.9))
    assert ensemble_gamma(0.1, "loss") == pytest.approx(0.2)
    cfg = method_config("M2m-Ensemble", TranslationConfig(gamma=0.9))
    assert cfg.gamma == pytest.approx(0.81) and cfg.gamma < 0.9      # lower prob threshold: more lenient
    assert method_config("M2m-Ensemble", TranslationConfig(gamma=0.1, gamma_on="loss")).gamma == pytest.approx(0.2)
    # an explicit ablation_params.M2m-Ensemble.gamma still wins
    assert method_config("M2m-Ensemble", TranslationConfig(gamma=0.9), {"gamma": 0.7}).gamma == 0.7
    # a row at p = 0.85 (smoothed by the average) is kept by the ensemble and not by M2m's gamma
    assert 0.85 >= cfg.gamma and not 0.85 >= 0.9


# -- M2m-RS-Rand is Table 4's row; M2m-Rand a variant without a paper value -------------------------

def _metrics(method, seed, bacc):
    sel = {"epoch": 5, "val": {"bacc": bacc}, "test": {"bacc": bacc, "gm": bacc, "major": bacc, "minor": bacc,
                                                       "per_class_recall": [bacc]}}
    return {"method": method, "seed": seed, "dataset": "cifar10-lt", "best_val": sel, "last": sel}


def test_rs_rand_is_the_table_4_row_and_rand_a_variant():
    from m2m_pipeline.reports import ablation_report

    assert get_method("M2m-RS-Rand").paper_table == "Table 4"
    rand = get_method("M2m-Rand")
    assert rand.paper_table == "" and "M2m-RS-Rand" in rand.variant_of and rand.is_ablation
    runs = [_metrics(m, s, v) for m in ("M2m", "M2m-RS-Rand", "M2m-Rand") for s, v in ((0, 70.0), (1, 72.0))]
    table = ablation_report(runs, dataset="cifar10-lt", rho=100)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| M2m")}
    # the paper's Table 4: M2m-RS-Rand 71.6 ± 0.36, (71.6 - 78.3) / 78.3 = -8.56 %
    assert rows["M2m-RS-Rand"][0] == "Table 4" and rows["M2m-RS-Rand"][8] == "71.6 ± 0.36 (-8.56%)"
    assert rows["M2m-Rand"][0].startswith("variant of M2m-RS-Rand")
    assert rows["M2m-Rand"][8] == "-" and rows["M2m-Rand"][9] == "-"


def test_default_ablations_include_the_papers_rs_rand():
    from pathlib import Path

    import yaml

    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    assert "M2m-RS-Rand" in params["ablations"]["translate"]
    assert "M2m-No-Reject-No-Gamma" in params["ablation_params"]
