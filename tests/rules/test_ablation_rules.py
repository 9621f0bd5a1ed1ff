"""The paper's rules over stored pool rows (pools/rules.py) on hand-made rows with hand-computed
values, the seed subsets of Table 3 and the ablation table (Tables 3-5): fast, no model is
trained, so the mutation run (`make mutation`) uses them too."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.pools.draws import seed_subset_mask
from m2m_pipeline.pools.rules import apply_rule, random_other_labels
from m2m_pipeline.training import list_ablations
from m2m_pipeline.utils import M2mError

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these


# -- the rules on hand-made rows ------------------------------------------------------------------

def _rows():
    """Five attempts of a 4-class pool with N = (100, 50, 20, 10) and beta 0.9, gamma 0.9 (prob):
    row 0 accepted; 1 failed beta; 2 failed gamma (beta passes); 3 non-finite; 4 no seed."""
    return {
        "slot": np.array([3, 5, 8, 9, 12]),
        "target": np.array([3, 2, 3, 1, 1]),
        "seed_class": np.array([0, 1, 1, 0, -1]),
        "seed_index": np.array([7, 8, 9, 10, -1]),
        "seed_aug": np.zeros((5, 3), np.int16),
        # eq. (3): row 1, k0=1 -> k=2, gap 30, P = 1 - 0.9^30 = 0.9576; u = 0.97 fails it.
        # row 2, k0=1 -> k=3, gap 40, P = 1 - 0.9^40 = 0.9852; u = 0.5 passes.
        "u_beta": np.array([0.1, 0.97, 0.5, 0.2, 0.3]),
        "prob_g": np.array([0.95, 0.99, 0.6, 0.0, 0.0], np.float32),
        "loss_g": np.array([0.05, 0.01, 0.51, np.nan, np.nan], np.float32),
        "accepted": np.array([True, False, False, False, False]),
        "reason": np.array([0, 1, 2, 3, 4], np.uint8),
    }


ATTRS = {"class_counts": [100, 50, 20, 10], "params": {"beta": 0.9, "gamma": 0.9, "gamma_on": "prob"}}


@pytest.mark.parametrize("rule, used, clean", [
    ("accepted", [True, False, False, False, False], [False] * 5),
    ("clean", [True, False, False, False, False], [True, False, False, False, False]),
    ("no_reject_no_gamma", [True, True, True, False, False], [False] * 5),   # every finite attempt with a seed
    ("no_reject", [True, True, False, False, False], [False] * 5),   # beta dropped, gamma 0.9 kept: row 2 (0.6) out
    ("no_gamma", [True, False, True, False, False], [False] * 5),   # the beta test re-drawn from u_beta
])
def test_rules_pick_the_rows_the_paper_says(rule, used, clean):
    out = apply_rule(rule, _rows(), ATTRS, num_classes=4, seed=0, epoch=1)
    assert out.used.tolist() == used
    assert out.clean.tolist() == clean
    assert out.label.tolist() == [t if u else -1 for t, u in zip(_rows()["target"], used)]


def test_gamma_rule_redecides_from_stored_prob():
    # gamma 0.5: row 2 (prob 0.6, beta passes) joins row 0; row 1 still fails beta.
    out = apply_rule("gamma", _rows(), ATTRS, num_classes=4, seed=0, epoch=1, rule_params={"gamma": 0.5})
    assert out.used.tolist() == [True, False, True, False, False]
    # gamma 0.96: row 0 (prob 0.95) drops out.
    out = apply_rule("gamma", _rows(), ATTRS, num_classes=4, seed=0, epoch=1, rule_params={"gamma": 0.96})
    assert out.used.tolist() == [False] * 5
    # the pool's own gamma gives back M2m's own decisions
    out = apply_rule("gamma", _rows(), ATTRS, num_classes=4, seed=0, epoch=1, rule_params={"gamma": 0.9})
    assert out.used.tolist() == _rows()["accepted"].tolist()
    # under the loss rule, gamma 0.51 keeps row 2 (loss 0.51 <= 0.51, inclusive) and row 0
    attrs = {**ATTRS, "params": {**ATTRS["params"], "gamma_on": "loss"}}
    out = apply_rule("gamma", _rows(), attrs, num_classes=4, seed=0, epoch=1, rule_params={"gamma": 0.51})
    assert out.used.tolist() == [True, False, True, False, False]
    # gamma 0.05 tells the rules apart: the loss rule keeps row 0 only (loss 0.05), the
    # probability rule would keep rows 0 and 2 (prob 0.95 and 0.6 >= 0.05)
    out = apply_rule("gamma", _rows(), attrs, num_classes=4, seed=0, epoch=1, rule_params={"gamma": 0.05})
    assert out.used.tolist() == [True, False, False, False, False]


def test_random_labels_skip_target_and_seed_class():
    # K = 4, k = 3, k0 = 0: the allowed classes are {1, 2}; u in [0, 0.5) -> 1, [0.5, 1) -> 2.
    n = 2000
    labels = random_other_labels(np.full(n, 3), np.zeros(n, np.int64), np.arange(n), 4, seed=0, epoch=1)
    assert set(labels.tolist()) == {1, 2}
    assert abs(np.mean(labels == 1) - 0.5) < 4 * np.sqrt(0.25 / n)
    # the draw is keyed by slot: any subset of the rows gets the same labels
    again = random_other_labels(np.full(5, 3), np.zeros(5, np.int64), np.arange(5) * 7, 4, seed=0, epoch=1)
    assert again.tolist() == labels[np.arange(5) * 7].tolist()
    with pytest.raises(M2mError, match="at least 3 classes"):
        random_other_labels(np.array([1]), np.array([0]), np.array([0]), 2, seed=0, epoch=0)


def test_rule_parameters_are_checked():
    with pytest.raises(M2mError, match="unknown pool rule"):
        apply_rule("nope", _rows(), ATTRS, num_classes=4, seed=0, epoch=0)
    with pytest.raises(M2mError, match="needs a gamma"):
        apply_rule("gamma", _rows(), ATTRS, num_classes=4, seed=0, epoch=0)


def test_seed_subset_is_fixed_and_sized():
    labels = np.repeat(np.arange(3), [30, 12, 4])
    mask = seed_subset_mask(labels, 3, 10, seed=0)
    assert np.bincount(labels[mask], minlength=3).tolist() == [10, 10, 4]
    assert np.array_equal(mask, seed_subset_mask(labels, 3, 10, seed=0))
    assert not np.array_equal(mask, seed_subset_mask(labels, 3, 10, seed=1))
    with pytest.raises(ValueError, match="subset size"):
        seed_subset_mask(np.zeros(3, dtype=int), 1, 0, seed=0)
    # Table 3's smallest "# Seeds": one seed row per class (a class of 1 keeps its row)
    one = seed_subset_mask(np.array([0, 0, 0, 1, 2, 2]), 3, 1, seed=0)
    assert [int(one[np.array([0, 0, 0, 1, 2, 2]) == k].sum()) for k in range(3)] == [1, 1, 1]


# -- the ablation table ---------------------------------------------------------------------------

def _metrics(method, seed, bacc, gm, major, minor):
    sel = {"epoch": 5, "val": {"bacc": bacc}, "test": {"bacc": bacc, "gm": gm, "major": major, "minor": minor,
                                                       "per_class_recall": [bacc]}}
    return {"method": method, "seed": seed, "dataset": "cifar10-lt", "best_val": sel, "last": sel}


def test_ablation_table_gaps_are_relative_to_m2m_and_cite_the_paper():
    from m2m_pipeline.reports import ablation_report

    runs = [_metrics("M2m", 0, 80.0, 78.0, 90.0, 76.0), _metrics("M2m", 1, 82.0, 80.0, 92.0, 78.0),
            _metrics("M2m-Clean", 0, 72.0, 70.0, 80.0, 70.0), _metrics("M2m-Clean", 1, 74.0, 72.0, 82.0, 72.0),
            _metrics("ERM", 0, 60.0, 50.0, 95.0, 50.0)]
    table = ablation_report(runs, dataset="cifar10-lt", rho=100)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| M2m")}
    # M2m: mean 81.0 ± 1.41; M2m-Clean: 73.0, gap (73 - 81) / 81 = -9.88 %; GM (71 - 79) / 79 = -10.13 %
    assert rows["M2m"][2] == "91.0 ± 1.41" and rows["M2m"][4] == "81.0 ± 1.41"
    assert rows["M2m-Clean"][4] == "73.0 ± 1.41" and rows["M2m-Clean"][5] == "-9.88%"
    assert rows["M2m-Clean"][7] == "-10.13%"
    # the paper's Table 4: M2m-Clean 73.5 ± 0.81, (73.5 - 78.3) / 78.3 = -6.13 %
    assert rows["M2m-Clean"][8] == "73.5 ± 0.81 (-6.13%)"
    assert "| ERM |" not in table   # not an ablation, not in the paper's ablation tables
    with pytest.raises(M2mError, match="no M2m run"):
        ablation_report([_metrics("M2m-Clean", 0, 1, 1, 1, 1)], dataset="digits")


def test_methods_command_lists_every_ablation():
    from typer.testing import CliRunner

    from m2m_pipeline.cli import app

    out = CliRunner().invoke(app, ["methods"])
    assert out.exit_code == 0
    for name in list_ablations():
        assert name in out.stdout
    assert "modes: reuse (re-decides the stored rows of M2m's pools) | fresh" in out.stdout


def test_random_labels_skip_both_excluded_classes_in_order():
    # K = 5, k = 1, k0 = 3: the allowed classes are {0, 2, 4}, u in thirds: [0,1/3) -> 0,
    # [1/3,2/3) -> 2 (skips 1), [2/3,1) -> 4 (skips 1 and 3); each about 1/3 of 3000 draws.
    n = 3000
    labels = random_other_labels(np.full(n, 1), np.full(n, 3), np.arange(n), 5, seed=0, epoch=1)
    assert set(labels.tolist()) == {0, 2, 4}
    for c in (0, 2, 4):
        assert abs(np.mean(labels == c) - 1 / 3) < 4 * np.sqrt((1 / 3) * (2 / 3) / n)
    # the same with k and k0 the other way round
    swapped = random_other_labels(np.full(n, 3), np.full(n, 1), np.arange(n), 5, seed=0, epoch=1)
    assert np.array_equal(swapped, labels)
    # K = 3 leaves exactly one class
    assert random_other_labels(np.array([0, 2]), np.array([2, 1]), np.array([0, 1]), 3, seed=0, epoch=0).tolist() == [1, 0]
    # no rows, no draw
    assert random_other_labels(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 4,
                               seed=0, epoch=0).tolist() == []


def test_random_labels_are_keyed_by_epoch_and_seed():
    args = (np.full(500, 3), np.zeros(500, np.int64), np.arange(500), 10)
    a = random_other_labels(*args, seed=0, epoch=1)
    assert not np.array_equal(a, random_other_labels(*args, seed=0, epoch=2))
    assert not np.array_equal(a, random_other_labels(*args, seed=1, epoch=1))
    assert np.array_equal(a, random_other_labels(*args, seed=0, epoch=1))


def test_rand_rule_relabels_only_the_accepted_rows():
    out = apply_rule("rand", _rows(), ATTRS, num_classes=4, seed=0, epoch=1)
    assert out.used.tolist() == [True, False, False, False, False]
    # row 0: k = 3, k0 = 0, so its label is 1 or 2, the draw of slot 3 of (seed 0, epoch 1)
    want = random_other_labels(np.array([3]), np.array([0]), np.array([3]), 4, seed=0, epoch=1)
    assert out.label.tolist() == [int(want[0]), -1, -1, -1, -1] and want[0] in (1, 2)
    assert out.label.dtype == np.int64 and not out.clean.any()


def test_gamma_rule_defaults_to_the_probability_test():
    # a pool whose params do not name gamma_on is read with the release's probability rule
    attrs = {**ATTRS, "params": {"beta": 0.9}}
    out = apply_rule("gamma", _rows(), attrs, num_classes=4, seed=0, epoch=1, rule_params={"gamma": 0.5})
    assert out.used.tolist() == [True, False, True, False, False]


@pytest.mark.parametrize("gamma, ok", [(0.0, True), (0.99, True), (2.5, True), (-0.1, False),
                                       (float("inf"), False), (float("nan"), False), ("0.9", False)])
def test_gamma_rule_parameter_bounds(gamma, ok):
    from m2m_pipeline.pools.rules import check_rule

    if ok:
        check_rule("gamma", {"gamma": gamma})
    else:
        with pytest.raises(M2mError, match="gamma must be a finite number >= 0"):
            check_rule("gamma", {"gamma": gamma})
