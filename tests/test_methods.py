"""The compared training schemes (Sec. 3.1 (a)-(i)) on tiny tensors, their bad-input errors, and a
smoke run of every method on the embedded digits dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from m2m_pipeline.datasets import Split, create_dataset
from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.jobs.train import pretrain_g, warm_f
from m2m_pipeline.pipeline import train_method as train_f
from m2m_pipeline.training import FitOptions, Preset, fit, get_method, list_methods
from m2m_pipeline.training.losses import FocalLoss, LDAMLoss, WeightedCE, class_weights, ldam_margins, make_criterion
from m2m_pipeline.training.loop import smote_split
from m2m_pipeline.training.methods import check_method, smote_bytes
from m2m_pipeline.utils import M2mError

PAPER_METHODS = ["ERM", "RS", "SMOTE", "RW", "CB-RW", "DRS", "DRW", "Focal", "LDAM", "LDAM-DRW", "M2m", "LDAM-M2m"]
TINY = Preset(model="small_cnn", epochs=3, batch_size=64, deferred_epoch=1, warmup_epochs=1, milestones=(2,))


# -- class weights (RW, CB-RW, DRW) ---------------------------------------------------------------

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


# -- LDAM ----------------------------------------------------------------------------------------

def test_ldam_margins_scale_with_n_to_minus_quarter():
    m = ldam_margins(np.array([16, 1, 81]))
    np.testing.assert_allclose(m.numpy(), [0.25, 0.5, 0.5 / 3], rtol=1e-6)
    m = ldam_margins(np.array([16, 1, 81]), max_margin=1.0)
    np.testing.assert_allclose(m.numpy(), [0.5, 1.0, 1 / 3], rtol=1e-6)


def test_ldam_loss_hand_value():
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


# -- Focal -----------------------------------------------------------------------------------------

def test_focal_gamma_zero_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, target = torch.randn(8, 5, generator=g), torch.randint(0, 5, (8,), generator=g)
    assert float(FocalLoss(0.0)(logits, target)) == pytest.approx(float(F.cross_entropy(logits, target)), rel=1e-6)


def test_focal_hand_value():
    # p(true) = 3/4: CE = ln(4/3); gamma 2: (1/4)^2 ln(4/3); gamma 1 (the default): ln(4/3) / 4
    logits, target = torch.tensor([[math.log(3.0), 0.0]]), torch.tensor([0])
    assert float(FocalLoss(2.0)(logits, target)) == pytest.approx(math.log(4 / 3) / 16, rel=1e-6)
    assert float(make_criterion("focal", np.array([3, 1]), None)(logits, target)) == pytest.approx(
        math.log(4 / 3) / 4, rel=1e-6)
    with pytest.raises(M2mError, match="focal gamma must be >= 0"):
        FocalLoss(-1.0)


# -- sampling plans (RS, DRS, M2m) ---------------------------------------------------------------

def test_balanced_plan_samples_classes_uniformly():
    counts = np.array([1000, 100, 10])
    labels = np.repeat(np.arange(3), counts)
    seen = np.zeros(3)
    for epoch in range(20):
        plan = make_plan(labels, counts, seed=0, epoch=epoch, order="balanced", attempts=False, augment={},
                         batch_size=64)
        assert len(plan) == len(labels)
        seen += np.bincount(labels[plan.order], minlength=3)
    freq = seen / seen.sum()
    np.testing.assert_allclose(freq, [1 / 3] * 3, atol=0.015)  # 22,200 draws: std ~0.003


def test_shuffle_plan_is_a_permutation_and_plans_are_reproducible():
    counts = np.array([50, 5])
    labels = np.repeat(np.arange(2), counts)
    plan = make_plan(labels, counts, seed=3, epoch=1, order="shuffle", attempts=False, augment={}, batch_size=16)
    assert sorted(plan.order.tolist()) == list(range(55))
    again = make_plan(labels, counts, seed=3, epoch=1, order="shuffle", attempts=False, augment={}, batch_size=16)
    np.testing.assert_array_equal(plan.order, again.order)
    assert plan.n_batches == 4 and plan.batch_slots(3).tolist() == [48, 49, 50, 51, 52, 53, 54]


def test_attempt_probability_is_one_minus_n_over_n1():
    counts = np.array([100, 25])
    labels = np.repeat(np.arange(2), counts)
    rate = []
    for epoch in range(40):
        plan = make_plan(labels, counts, seed=1, epoch=epoch, order="balanced", attempts=True, augment={},
                         batch_size=32)
        y = labels[plan.order]
        assert not plan.attempt[y == 0].any()          # the largest class never gets an attempt
        rate.append(plan.attempt[y == 1].mean())
    assert np.mean(rate) == pytest.approx(1 - 25 / 100, abs=0.02)


# -- method specs and deferred switching ------------------------------------------------------------

def test_registry_has_every_paper_method():
    # the paper's methods first, in its table order; then M2m's ablations (tests/test_ablations.py)
    assert [m for m in list_methods() if not get_method(m).is_ablation] == PAPER_METHODS
    assert list_methods()[:len(PAPER_METHODS)] == PAPER_METHODS


@pytest.mark.parametrize("name, before, after", [
    # name: (order, weighting, translates) before and at the deferred epoch
    ("ERM", ("shuffle", "none", False), ("shuffle", "none", False)),
    ("RS", ("balanced", "none", False), ("balanced", "none", False)),
    ("RW", ("shuffle", "inverse", False), ("shuffle", "inverse", False)),
    ("CB-RW", ("shuffle", "effective", False), ("shuffle", "effective", False)),
    ("DRS", ("shuffle", "none", False), ("balanced", "none", False)),
    ("DRW", ("shuffle", "none", False), ("shuffle", "effective", False)),
    ("LDAM-DRW", ("shuffle", "none", False), ("shuffle", "effective", False)),
    ("M2m", ("shuffle", "none", False), ("balanced", "none", True)),
    ("LDAM-M2m", ("shuffle", "none", False), ("balanced", "none", True)),
])
def test_deferred_switching(name, before, after):
    spec = get_method(name)
    for epoch, want in ((9, before), (10, after), (14, after)):
        got = (spec.order_at(epoch, 10), spec.weighting_at(epoch, 10), spec.translates_at(epoch, 10))
        assert got == want, (name, epoch)


def test_losses_and_warm_checkpoints_of_specs():
    loss = {m: get_method(m).loss for m in PAPER_METHODS}
    assert {m for m, v in loss.items() if v == "ldam"} == {"LDAM", "LDAM-DRW", "LDAM-M2m"}
    assert loss["Focal"] == "focal"
    assert get_method("LDAM").norm_last and not get_method("ERM").norm_last
    warm = {m: get_method(m).warm for m in PAPER_METHODS}
    assert warm == {"ERM": "ce", "RS": None, "SMOTE": None, "RW": None, "CB-RW": None, "DRS": "ce",
                    "DRW": "ce", "Focal": None, "LDAM": None, "LDAM-DRW": "ldam", "M2m": "ce", "LDAM-M2m": "ldam"}
    assert get_method("SMOTE").smote and not get_method("RS").smote


# -- SMOTE -------------------------------------------------------------------------------------------

def test_smote_vectors_balance_every_class():
    rng = np.random.default_rng(0)
    counts = np.array([20, 5, 3])
    y = np.repeat(np.arange(3), counts)
    x = (rng.normal(size=(28, 4)) + y[:, None] * 10).astype(np.float32)
    out = smote_split(Split(x, y), counts, seed=0)
    assert out.x.shape == (60, 4) and out.x.dtype == np.float32 and out.y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(out.y), [20, 20, 20])
    np.testing.assert_array_equal(out.x[:28], x)          # the real rows come first, unchanged
    for k in range(3):                                    # synthetic rows interpolate their own class
        cls, new = x[y == k], out.x[28:][out.y[28:] == k]
        assert np.all(new >= cls.min(0) - 1e-6) and np.all(new <= cls.max(0) + 1e-6)
    again = smote_split(Split(x, y), counts, seed=0)
    np.testing.assert_array_equal(out.x, again.x)


def test_smote_uint8_images_keep_shape_and_dtype():
    rng = np.random.default_rng(1)
    counts = np.array([6, 2])
    y = np.repeat(np.arange(2), counts)
    x = rng.integers(0, 256, size=(8, 1, 2, 2), dtype=np.uint8)
    out = smote_split(Split(x, y), counts, seed=0)
    assert out.x.shape == (12, 1, 2, 2) and out.x.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(out.y), [6, 6])


def test_smote_bytes_estimate():
    assert smote_bytes(np.array([2840, 4, 10]), (1000,)) == 3 * 2840 * 1000 * 4


# -- bad input: one-line errors before any training ----------------------------------------------------

def test_unknown_method():
    with pytest.raises(M2mError, match="unknown method 'DRSS'; known: ERM, RS"):
        get_method("DRSS")
    with pytest.raises(M2mError, match="unknown method"):
        check_method("M2M", TINY)


@pytest.mark.parametrize("name", ["DRW", "DRS", "LDAM-DRW", "M2m", "LDAM-M2m"])
def test_deferred_method_with_no_deferred_epoch_left(name):
    preset = Preset(model="mlp", epochs=15, batch_size=64, deferred_epoch=15)
    with pytest.raises(M2mError, match=f"{name} defers to epoch 15 but the preset trains 15 epochs: no deferred"):
        check_method(name, preset)
    with pytest.raises(M2mError, match="no warm-up epoch"):
        check_method(name, Preset(model="mlp", epochs=15, batch_size=64, deferred_epoch=0))
    check_method("RW", preset)  # not deferred: fine


def test_smote_too_large_for_memory():
    counts = np.array([50_000, 500, 5])
    with pytest.raises(M2mError, match=r"SMOTE would hold 3 classes x 50000 rows x 150528 features .* 84\.11 GiB"):
        check_method("SMOTE", TINY, class_counts=counts, input_shape=(3, 224, 224), memory_limit=8 * 2**30)
    check_method("SMOTE", TINY, class_counts=counts, input_shape=(10,), memory_limit=8 * 2**30)
    with pytest.raises(M2mError, match="at least 2 training samples"):
        check_method("SMOTE", TINY, class_counts=np.array([5, 1]), input_shape=(10,))


def test_bad_method_parameters():
    with pytest.raises(M2mError, match="focal_gamma must be >= 0"):
        check_method("Focal", TINY, options=FitOptions(focal_gamma=-0.5))
    with pytest.raises(M2mError, match="0 < cb_beta < 1"):
        check_method("DRW", TINY, options=FitOptions(cb_beta=1.0))
    with pytest.raises(M2mError, match="weight_reduction must be 'mean' or 'normalized'"):
        check_method("RW", TINY, options=FitOptions(weight_reduction="sum"))
    with pytest.raises(M2mError, match="ldam_max_margin > 0"):
        check_method("LDAM", TINY, options=FitOptions(ldam_max_margin=0.0))


@pytest.fixture(scope="module")
def digits():
    return create_dataset("digits")


def test_errors_raise_before_training(digits, tmp_path):
    run = tmp_path / "smote"
    with pytest.raises(M2mError, match="SMOTE would hold"):
        fit(data=digits, preset=TINY, method=get_method("SMOTE"), seed=0, run_dir=run, end_epoch=3,
            options=FitOptions(smote_max_bytes=1000), progress=False)
    assert not run.exists()  # nothing written
    bad = Preset(model="small_cnn", epochs=3, batch_size=64, deferred_epoch=3)
    with pytest.raises(M2mError, match="DRW is deferred but the preset's deferred_epoch"):
        train_f(digits, bad, method="DRW", seed=0, out_dir=tmp_path / "drw", warm_dir=tmp_path / "none",
                progress=False)
    with pytest.raises(M2mError, match="unknown method 'Nope'"):
        train_f(digits, TINY, method="Nope", seed=0, out_dir=tmp_path / "nope", progress=False)


# -- smoke: every method trains on digits and gives finite metrics ------------------------------------

@pytest.fixture(scope="module")
def tiny_runs(digits, tmp_path_factory):
    from m2m_pipeline.evaluation import evaluate_run

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("methods")
    pretrain_g(digits, TINY, seed=1000, out_dir=root / "g", progress=False)
    warm_f(digits, TINY, seed=0, out_dir=root / "warm-ce", progress=False)
    warm_f(digits, TINY, seed=0, out_dir=root / "warm-ldam", loss="ldam", progress=False)
    m2m = TranslationConfig(steps=2, batch_size=128)
    out = {}
    for name in PAPER_METHODS:
        spec = get_method(name)
        result = train_f(digits, TINY, method=name, seed=0, out_dir=root / name,
                         warm_dir=root / f"warm-{spec.warm}" if spec.warm else None,
                         g_path=root / "g" / "last.pt", m2m=m2m if spec.translate else None,
                         pools_dir=root / "pools" / name if spec.translate else None, progress=False)
        out[name] = (result, evaluate_run(root / name, digits, method=name))
    return out


@pytest.mark.parametrize("name", PAPER_METHODS)
def test_every_method_trains_and_gives_finite_metrics(tiny_runs, name):
    result, metrics = tiny_runs[name]
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    for which in ("best_val", "last"):
        for split in ("val", "test"):
            m = metrics[which][split]
            assert all(math.isfinite(m[k]) and 0 <= m[k] <= 100 for k in ("bacc", "gm", "major", "minor"))
    assert metrics["last"]["epoch"] == 2
    assert metrics["method"] == name
    if get_method(name).translate:
        trans = [h for h in result.history if h["n_attempts"] > 0]
        assert [h["epoch"] for h in trans] == [1, 2]
        assert all(h["n_attempts"] > 0 for h in trans)
