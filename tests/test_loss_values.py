"""The losses, class weights and parameter checks of the compared methods (Sec. 3.1 (a)-(i)) as
numbers worked out by hand, and the bounds of every check on the valid and the invalid side.

Fast (no model is trained), so the mutation run (`make mutation`) uses them too. The hand
arithmetic is in the comments; the constants were computed with `math` alone, not with the code
under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.training import FitOptions, Preset
from m2m_pipeline.training import methods as methods_mod
from m2m_pipeline.training.losses import (FocalLoss, LDAMLoss, WeightedCE, class_weights, ldam_margins,
                                          make_criterion)
from m2m_pipeline.training.methods import (MethodSpec, available_memory_bytes, check_method, get_method,
                                           register_method, smote_bytes)
from m2m_pipeline.utils import M2mError

# Two rows of K = 3 logits. Row 0: z = (2, 0, 0), y = 0: CE = log(1 + 2 e^-2) = 0.2395448.
# Row 1: z = (0, 0, 0), y = 1: CE = log 3 = 1.0986123.
LOGITS = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
TARGET = torch.tensor([0, 1])
WEIGHT = torch.tensor([0.5, 2.0, 0.5])   # sums to K = 3, as class_weights returns them
CE0, CE1 = math.log(1 + 2 * math.exp(-2)), math.log(3)


# -- class weights (Sec. 3.1 (d), (e)) -------------------------------------------------------------

def test_inverse_weights_by_hand():
    # 1/10 and 1/40, normalised to sum K = 2: (0.1, 0.025) / 0.125 * 2 = (1.6, 0.4)
    w = class_weights("inverse", [10, 40])
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx([1.6, 0.4])


def test_effective_number_weights_by_hand():
    # beta 0.9, N = (1, 2): (1-0.9)/(1-0.9) = 1 and 0.1/0.19 = 10/19; sum 29/19; times 2 / sum = (38/29, 20/29)
    assert class_weights("effective", [1, 2], beta=0.9).tolist() == pytest.approx([38 / 29, 20 / 29])


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


# -- check_method: each bound on its valid and its invalid side ----------------------------------

TINY = Preset(model="mlp", epochs=4, batch_size=8, deferred_epoch=2)


@pytest.mark.parametrize("method, options", [
    ("Focal", None), ("Focal", FitOptions(focal_gamma=0.0)),           # gamma 0 is cross entropy
    ("RW", FitOptions(focal_gamma=-1.0)),                              # gamma is Focal's alone
    ("DRW", None), ("CB-RW", FitOptions(cb_beta=0.5)),
    ("RW", FitOptions(cb_beta=1.0)),                                   # beta is the effective weights' alone
    ("LDAM", None), ("LDAM", FitOptions(ldam_max_margin=0.5, ldam_s=0.5)),
    ("RW", FitOptions(ldam_s=0.0)),
    ("RW", FitOptions(weight_reduction="normalized")),
    ("SMOTE", FitOptions(smote_k_neighbors=1)),
])
def test_check_method_accepts_the_valid_side_of_each_bound(method, options):
    assert check_method(method, TINY, options=options) is get_method(method)


@pytest.mark.parametrize("method, options, match", [
    ("Focal", FitOptions(focal_gamma=-0.01), "focal_gamma"),
    ("CB-RW", FitOptions(cb_beta=0.0), "cb_beta"),
    ("LDAM-DRW", FitOptions(cb_beta=1.0), "cb_beta"),
    ("LDAM", FitOptions(ldam_s=0.0), "ldam_s"),
    ("LDAM", FitOptions(ldam_max_margin=0.0), "ldam_max_margin"),
    ("RW", FitOptions(weight_reduction="sum"), "weight_reduction"),
    ("SMOTE", FitOptions(smote_k_neighbors=0), "smote_k_neighbors"),
    ("SMOTE", FitOptions(smote_k_neighbors=1.5), "smote_k_neighbors"),
])
def test_check_method_refuses_the_invalid_side_of_each_bound(method, options, match):
    with pytest.raises(M2mError, match=match):
        check_method(method, TINY, options=options)


def test_smote_needs_two_samples_per_class():
    check_method("SMOTE", TINY, class_counts=np.array([5, 2]))
    with pytest.raises(M2mError, match="at least 2"):
        check_method("SMOTE", TINY, class_counts=np.array([5, 1]))


def test_smote_memory_limit_is_an_upper_bound(monkeypatch):
    counts = np.array([10, 5])
    need = smote_bytes(counts, (5,))
    assert need == 2 * 10 * 5 * 4                                              # K * N_1 * features * 4 bytes
    monkeypatch.setattr(methods_mod, "available_memory_bytes", lambda: 10**15)  # plenty, if it were asked
    check_method("SMOTE", TINY, class_counts=counts, input_shape=(5,), memory_limit=need)   # exactly at the limit
    with pytest.raises(M2mError, match="memory limit"):
        check_method("SMOTE", TINY, class_counts=counts, input_shape=(5,), memory_limit=need - 1)
    with pytest.raises(M2mError, match="memory limit"):
        check_method("SMOTE", TINY, class_counts=counts, input_shape=(5,),
                     options=FitOptions(smote_max_bytes=need - 1))


def test_smote_default_limit_is_half_the_available_memory(monkeypatch):
    counts = np.array([10, 5])
    need = smote_bytes(counts, (5,))                                           # 400 bytes
    monkeypatch.setattr(methods_mod, "available_memory_bytes", lambda: 2 * need)
    check_method("SMOTE", TINY, class_counts=counts, input_shape=(5,))         # 400 <= 800 // 2
    monkeypatch.setattr(methods_mod, "available_memory_bytes", lambda: 2 * need - 2)
    with pytest.raises(M2mError, match="memory limit"):                        # 400 > 798 // 2
        check_method("SMOTE", TINY, class_counts=counts, input_shape=(5,))
    monkeypatch.setattr(methods_mod, "available_memory_bytes", lambda: None)   # unknown: no limit
    check_method("SMOTE", TINY, class_counts=counts, input_shape=(5,))


def test_available_memory_reads_meminfo_in_kib(tmp_path, monkeypatch):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       2000 kB\nMemAvailable:   1500 kB\n")
    assert available_memory_bytes(str(meminfo)) == 1500 * 1024
    # without a meminfo: free pages times the page size
    monkeypatch.setattr(methods_mod.os, "sysconf", lambda key: {"SC_AVPHYS_PAGES": 3, "SC_PAGE_SIZE": 4096}[key])
    assert available_memory_bytes(str(tmp_path / "missing")) == 3 * 4096

    def no_sysconf(key):
        raise ValueError(key)
    monkeypatch.setattr(methods_mod.os, "sysconf", no_sysconf)
    assert available_memory_bytes(str(tmp_path / "missing")) is None


@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="no /proc/meminfo (not Linux)")
def test_available_memory_reads_proc_meminfo_by_default(monkeypatch):
    def no_sysconf(key):
        raise ValueError(key)
    monkeypatch.setattr(methods_mod.os, "sysconf", no_sysconf)   # only /proc/meminfo can answer
    assert available_memory_bytes() > 0


def test_register_method_adds_once_and_refuses_a_duplicate(monkeypatch):
    monkeypatch.setattr(methods_mod, "_METHODS", dict(methods_mod._METHODS))   # leave the registry as it was
    spec = register_method(MethodSpec("Test-Method", description="a test"))
    assert get_method("Test-Method") is spec
    with pytest.raises(ValueError, match="already registered"):
        register_method(MethodSpec("Test-Method"))


@pytest.mark.parametrize("name, epoch, expected", [
    ("M2m", 1, False), ("M2m", 2, True), ("M2m-Clean", 1, False), ("M2m-Clean", 2, True),
    ("M2m-RS", 0, True),      # not deferred: translates from epoch 0
    ("DRS", 3, False), ("ERM", 3, False),
])
def test_translates_at(name, epoch, expected):
    assert get_method(name).translates_at(epoch, deferred_epoch=2) is expected


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
