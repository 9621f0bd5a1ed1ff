"""The losses and class weights of the compared methods (training/losses.py, Sec. 3.1 (a)-(i)) as
numbers worked out by hand, and the bounds of every check on the valid and the invalid side. The
checks of a method's parameters are in test_methods.py, those of TranslationConfig in
tests/unit/pools/test_config.py.

Fast (no model is trained), so the mutation run (`make mutation`) uses them too. The hand
arithmetic is in the comments; the constants were computed with `math` alone, not with the code
under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from m2m_pipeline.training.losses import (FocalLoss, LDAMLoss, WeightedCE, class_weights, ldam_margins,
                                          make_criterion)
from m2m_pipeline.utils import M2mError

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these

# Two rows of K = 3 logits. Row 0: z = (2, 0, 0), y = 0: CE = log(1 + 2 e^-2) = 0.2395448.
# Row 1: z = (0, 0, 0), y = 1: CE = log 3 = 1.0986123.
LOGITS = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
TARGET = torch.tensor([0, 1])
WEIGHT = torch.tensor([0.5, 2.0, 0.5])   # sums to K = 3, as class_weights returns them
CE0, CE1 = math.log(1 + 2 * math.exp(-2)), math.log(3)


# -- class weights (Sec. 3.1 (d), (e)) -------------------------------------------------------------

def test_inverse_weights_are_one_over_n_normalised_to_sum_k():
    w = class_weights("inverse", np.array([100, 10, 1]))
    expected = np.array([0.01, 0.1, 1.0]) / 1.11 * 3
    np.testing.assert_allclose(w.numpy(), expected, rtol=1e-6)
    assert w.dtype == torch.float32
    assert float(w.sum()) == pytest.approx(3.0)


def test_effective_number_weights():
    # effective numbers (1 - 0.9^n) / (1 - 0.9) for n = 1, 2, 3: 1, 1.9, 2.71
    w = class_weights("effective", np.array([1, 2, 3]), beta=0.9)
    raw = np.array([1.0, 1 / 1.9, 1 / 2.71])
    np.testing.assert_allclose(w.numpy(), raw / raw.sum() * 3, rtol=1e-6)
    # the paper's beta = 0.9999 on Reuters-like sizes: close to 1/N_k for small classes
    w = class_weights("effective", np.array([2840, 4]), beta=0.9999).numpy()
    e = (1 - 0.9999 ** np.array([2840, 4])) / (1 - 0.9999)
    np.testing.assert_allclose(w, (1 / e) / (1 / e).sum() * 2, rtol=1e-5)


def test_no_weighting_and_bad_weighting():
    assert class_weights("none", np.array([5, 1])) is None
    with pytest.raises(M2mError, match="unknown class weighting 'sqrt'"):
        class_weights("sqrt", np.array([5, 1]))
    with pytest.raises(M2mError, match="0 < beta < 1"):
        class_weights("effective", np.array([5, 1]), beta=1.0)
    with pytest.raises(M2mError, match="positive count"):
        class_weights("inverse", np.array([5, 0]))


def test_effective_number_weights_default_beta_is_0_9999():
    # N = (10, 1000), beta 0.9999: 1e-4/(1-0.9999^10) = 0.100045, 1e-4/(1-0.9999^1000) = 0.0010508;
    # normalised to sum 2: (1.979212, 0.020788)
    assert class_weights("effective", [10, 1000]).tolist() == pytest.approx([1.9792121, 0.0207879], rel=1e-5)


def test_one_class_gets_weight_one():
    assert class_weights("inverse", [7]).tolist() == [1.0]
    assert class_weights("none", [7, 3]) is None


@pytest.mark.parametrize("counts", [[[1, 2], [3, 4]], [], [5, 0], [5, -1]])
def test_weights_refuse_counts_that_are_not_one_positive_row(counts):
    with pytest.raises(M2mError, match="positive count"):
        class_weights("inverse", counts)


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5])
def test_effective_weights_refuse_beta_outside_the_open_interval(beta):
    with pytest.raises(M2mError, match="0 < beta < 1"):
        class_weights("effective", [3, 4], beta=beta)


# -- LDAM margins (Sec. 3.1 (i)) ------------------------------------------------------------------

def test_ldam_margins_by_hand():
    # N^(-1/4) for N = (16, 81, 256) is (1/2, 1/3, 1/4); scaled so the largest is 0.5: (0.5, 1/3, 1/4)
    m = ldam_margins([16, 81, 256])
    assert m.dtype == torch.float32
    assert m.tolist() == pytest.approx([0.5, 1 / 3, 0.25])
    # max margin 1.0: (1, 2/3, 1/2)
    assert ldam_margins([16, 81, 256], 1.0).tolist() == pytest.approx([1.0, 2 / 3, 0.5])


@pytest.mark.parametrize("counts", [[5, 0], [0], [4, -2]])
def test_ldam_margins_refuse_empty_classes(counts):
    with pytest.raises(M2mError, match="positive count"):
        ldam_margins(counts)


# -- the losses, with both reductions ----------------------------------------------------------------

def test_weighted_ce_by_hand():
    assert WeightedCE()(LOGITS, TARGET).item() == pytest.approx((CE0 + CE1) / 2)          # 0.6690785
    # "mean": (0.5 * CE0 + 2 * CE1) / 2 = 1.1584985; "normalized": the same sum / (0.5 + 2) = 0.9267988
    assert WeightedCE(WEIGHT)(LOGITS, TARGET).item() == pytest.approx(1.1584985, rel=1e-6)
    assert WeightedCE(WEIGHT, "normalized")(LOGITS, TARGET).item() == pytest.approx(0.9267988, rel=1e-6)


def test_weighted_ce_is_plain_mean_of_weighted_terms():
    # zero logits over 2 classes: CE = ln 2 per row; both rows of class 0 with weight 0.5
    logits, target = torch.zeros(2, 2), torch.tensor([0, 0])
    loss = WeightedCE(torch.tensor([0.5, 1.5]))(logits, target)
    assert float(loss) == pytest.approx(0.5 * math.log(2))  # PyTorch's weighted mean would give ln 2
    assert float(WeightedCE()(logits, target)) == pytest.approx(math.log(2))
    # PyTorch's weighted mean (Cao et al.'s reduction), selectable: sum w l / sum w
    assert float(WeightedCE(torch.tensor([0.5, 1.5]), "normalized")(logits, target)) == pytest.approx(math.log(2))
    mixed = WeightedCE(torch.tensor([0.5, 1.5]), "normalized")(torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]]),
                                                                torch.tensor([0, 1]))
    assert float(mixed) == pytest.approx((0.5 * math.log(2) + 1.5 * math.log(4 / 3)) / 2.0)
    with pytest.raises(M2mError, match="unknown weight reduction 'sum'"):
        WeightedCE(None, "sum")
    crit = make_criterion("ce", np.array([3, 1]), class_weights("inverse", np.array([3, 1])))
    # weights 2 * [1/3, 1] / (4/3) = [0.5, 1.5]
    assert float(crit(logits, torch.tensor([1, 1]))) == pytest.approx(1.5 * math.log(2))


def test_focal_loss_by_hand():
    # p0 = e^-CE0 = 0.786986, p1 = 1/3. gamma 1 (the default): ((1-p0) CE0 + (2/3) CE1) / 2 = 0.3917173
    assert FocalLoss()(LOGITS, TARGET).item() == pytest.approx(0.3917173, rel=1e-6)
    # gamma 2: ((1-p0)^2 CE0 + (2/3)^2 CE1) / 2 = 0.2495707
    assert FocalLoss(2.0)(LOGITS, TARGET).item() == pytest.approx(0.2495707, rel=1e-6)
    # weighted: (0.5 f0 + 2 f1) / 2 = 0.7451648 ("mean"), / 2.5 = 0.5961318 ("normalized")
    assert FocalLoss(1.0, WEIGHT)(LOGITS, TARGET).item() == pytest.approx(0.7451648, rel=1e-6)
    assert FocalLoss(1.0, WEIGHT, "normalized")(LOGITS, TARGET).item() == pytest.approx(0.5961318, rel=1e-6)
    # gamma 0 is cross entropy
    assert FocalLoss(0.0)(LOGITS, TARGET).item() == pytest.approx((CE0 + CE1) / 2)


def test_focal_hand_value():
    # p(true) = 3/4: CE = ln(4/3); gamma 2: (1/4)^2 ln(4/3); gamma 1 (the default): ln(4/3) / 4
    logits, target = torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0])
    assert float(FocalLoss(2.0)(logits, target)) == pytest.approx(math.log(4 / 3) / 16, rel=1e-6)
    assert float(make_criterion("focal", np.array([3, 1]), None)(logits, target)) == pytest.approx(
        math.log(4 / 3) / 4, rel=1e-6)
    with pytest.raises(M2mError, match="focal gamma must be >= 0"):
        FocalLoss(-1.0)


# LDAM on cosines with N = (16, 81, 256), margins (0.5, 1/3, 1/4), s = 30.
# Row 0: z = (0.5, 0, 0), y = 0: shifted (0, 0, 0): CE = log 3.
# Row 1: z = (0, 0.5, 0), y = 1: shifted (0, 1/6, 0) * 30 = (0, 5, 0): CE = log(1 + 2 e^-5) = 0.0133859.
COUNTS = np.array([16, 81, 256])
COSINES = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])


def test_ldam_loss_by_hand():
    assert LDAMLoss(COUNTS)(COSINES, TARGET).item() == pytest.approx(0.5559991, rel=1e-6)
    # weighted: (0.5 log 3 + 2 * 0.0133859) / 2 = 0.2880390 ("mean"), / 2.5 = 0.2304312 ("normalized")
    assert LDAMLoss(COUNTS, weight=WEIGHT)(COSINES, TARGET).item() == pytest.approx(0.2880390, rel=1e-6)
    assert LDAMLoss(COUNTS, weight=WEIGHT, reduction="normalized")(COSINES, TARGET).item() == pytest.approx(
        0.2304312, rel=1e-6)
    # s = 10: row 1 shifted by 10/6: (log 3 + log(1 + 2 e^(-10/6))) / 2 = 0.7095324
    assert LDAMLoss(COUNTS, s=10.0)(COSINES, TARGET).item() == pytest.approx(0.7095324, rel=1e-6)
    # max margin 1: margins (1, 2/3, 1/2); row 0 shifted (-0.5, 0, 0) * 30, row 1 (0, -1/6, 0) * 30:
    # (log(e^-15 + 2) + 15 + log(e^-5 + 2) + 5) / 2 = 10.6948289
    assert LDAMLoss(COUNTS, max_margin=1.0)(COSINES, TARGET).item() == pytest.approx(10.6948289, rel=1e-6)


def test_ldam_loss_on_raw_logits_by_hand():
    counts = np.array([16, 1, 81])   # margins 0.25, 0.5, 1/6
    logits = torch.tensor([[0.2, -0.1, 0.4]])
    # target 1: logit -0.1 - 0.5 = -0.6; times s = 30: [6, -18, 12]; CE = 18 + log(e^6 + e^-18 + e^12)
    expected = 18 + math.log(math.exp(6) + math.exp(-18) + math.exp(12))
    loss = LDAMLoss(counts, s=30.0)(logits, torch.tensor([1]))
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # target 2 with s = 1: [0.2, -0.1, 0.4 - 1/6]
    z = [0.2, -0.1, 0.4 - 1 / 6]
    expected2 = -z[2] + math.log(sum(math.exp(v) for v in z))
    assert float(LDAMLoss(counts, s=1.0)(logits, torch.tensor([2]))) == pytest.approx(expected2, rel=1e-6)
    # LDAM-DRW: per-sample weight w_y, plain mean over the batch
    w = torch.tensor([1.0, 2.0, 0.5])
    two = LDAMLoss(counts, s=1.0, weight=w)(logits.repeat(2, 1), torch.tensor([2, 2]))
    assert float(two) == pytest.approx(0.5 * expected2, rel=1e-6)


def test_make_criterion_passes_every_parameter_through():
    assert isinstance(make_criterion("ce", COUNTS, None), WeightedCE)
    assert make_criterion("ce", COUNTS, WEIGHT, reduction="normalized")(LOGITS, TARGET).item() == pytest.approx(
        0.9267988, rel=1e-6)
    assert make_criterion("focal", COUNTS, WEIGHT, reduction="normalized")(LOGITS, TARGET).item() == pytest.approx(
        0.5961318, rel=1e-6)
    assert make_criterion("focal", COUNTS, None, focal_gamma=2.0)(LOGITS, TARGET).item() == pytest.approx(
        0.2495707, rel=1e-6)
    ldam = make_criterion("ldam", COUNTS, None)
    assert isinstance(ldam, LDAMLoss) and ldam.s == 30.0                       # Sec. 3.1 (i): s = 30
    assert ldam.margins.tolist() == pytest.approx([0.5, 1 / 3, 0.25])          # max margin 0.5
    assert ldam(COSINES, TARGET).item() == pytest.approx(0.5559991, rel=1e-6)
    assert make_criterion("ldam", COUNTS, WEIGHT, reduction="normalized")(COSINES, TARGET).item() == pytest.approx(
        0.2304312, rel=1e-6)
    custom = make_criterion("ldam", COUNTS, None, ldam_s=10.0, ldam_max_margin=1.0)
    assert custom.s == 10.0 and custom.margins.tolist() == pytest.approx([1.0, 2 / 3, 0.5])
    with pytest.raises(M2mError, match="unknown loss"):
        make_criterion("LDAM", COUNTS, None)


def test_loss_weights_move_with_the_module_but_stay_out_of_checkpoints():
    # the weights and margins are recomputed from the class counts, never saved with a checkpoint
    for crit in (WeightedCE(WEIGHT), FocalLoss(1.0, WEIGHT), LDAMLoss(COUNTS, weight=WEIGHT)):
        assert crit.weight is WEIGHT or torch.equal(crit.weight, WEIGHT)
        assert crit.state_dict() == {}


@pytest.mark.parametrize("cls, args", [(WeightedCE, ()), (FocalLoss, (1.0,)), (LDAMLoss, (COUNTS,))])
def test_losses_refuse_an_unknown_reduction(cls, args):
    with pytest.raises(M2mError, match="unknown weight reduction"):
        cls(*args, reduction="sum")
