"""The compared training schemes (training/methods.py, Sec. 3.1 (a)-(i)): the method registry and its
deferred switching, each bound of a method's parameters on its valid and its invalid side, SMOTE, the
bad-input errors, and a smoke run of every method on the embedded digits dataset. Their losses and
class weights are in test_losses.py, the sampling plans in tests/unit/test_plan.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from m2m_pipeline.datasets import Split, create_dataset
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.jobs.train import pretrain_g, warm_f
from m2m_pipeline.jobs.dispatch import train_method as train_f
from m2m_pipeline.training import FitOptions, Preset, fit, get_method, list_methods
from m2m_pipeline.training.loop import smote_split
from m2m_pipeline.training import methods as methods_mod
from m2m_pipeline.training.methods import (MethodSpec, available_memory_bytes, check_method, register_method,
                                           smote_bytes)
from m2m_pipeline.utils import M2mError

PAPER_METHODS = ["ERM", "RS", "SMOTE", "RW", "CB-RW", "DRS", "DRW", "Focal", "LDAM", "LDAM-DRW", "M2m", "LDAM-M2m"]
TINY = Preset(model="small_cnn", epochs=3, batch_size=64, deferred_epoch=1, warmup_epochs=1, milestones=(2,))


# -- method specs and deferred switching ------------------------------------------------------------

@pytest.mark.mutation
def test_registry_has_every_paper_method():
    # the paper's methods first, in its table order; then M2m's ablations (tests/unit/jobs/test_ablate.py),
    # then the baselines published after it (test_baselines.py)
    assert [m for m in list_methods() if not (get_method(m).is_ablation or get_method(m).after_paper)] \
        == PAPER_METHODS
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
@pytest.mark.mutation
def test_deferred_switching(name, before, after):
    spec = get_method(name)
    for epoch, want in ((9, before), (10, after), (14, after)):
        got = (spec.order_at(epoch, 10), spec.weighting_at(epoch, 10), spec.translates_at(epoch, 10))
        assert got == want, (name, epoch)


@pytest.mark.mutation
def test_losses_and_warm_checkpoints_of_specs():
    loss = {m: get_method(m).loss for m in PAPER_METHODS}
    assert {m for m, v in loss.items() if v == "ldam"} == {"LDAM", "LDAM-DRW", "LDAM-M2m"}
    assert loss["Focal"] == "focal"
    assert get_method("LDAM").norm_last and not get_method("ERM").norm_last
    warm = {m: get_method(m).warm for m in PAPER_METHODS}
    assert warm == {"ERM": "ce", "RS": None, "SMOTE": None, "RW": None, "CB-RW": None, "DRS": "ce",
                    "DRW": "ce", "Focal": None, "LDAM": None, "LDAM-DRW": "ldam", "M2m": "ce", "LDAM-M2m": "ldam"}
    assert get_method("SMOTE").smote and not get_method("RS").smote


# -- check_method: each bound on its valid and its invalid side ----------------------------------

MLP_PRESET = Preset(model="mlp", epochs=4, batch_size=8, deferred_epoch=2)


@pytest.mark.mutation
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
    assert check_method(method, MLP_PRESET, options=options) is get_method(method)


@pytest.mark.mutation
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
        check_method(method, MLP_PRESET, options=options)


@pytest.mark.mutation
def test_smote_needs_two_samples_per_class():
    check_method("SMOTE", MLP_PRESET, class_counts=np.array([5, 2]))
    with pytest.raises(M2mError, match="at least 2"):
        check_method("SMOTE", MLP_PRESET, class_counts=np.array([5, 1]))


@pytest.mark.mutation
def test_smote_memory_limit_is_an_upper_bound(monkeypatch):
    counts = np.array([10, 5])
    need = smote_bytes(counts, (5,))
    assert need == 2 * 10 * 5 * 4                                              # K * N_1 * features * 4 bytes
    monkeypatch.setattr(methods_mod, "available_memory_bytes", lambda: 10**15)  # plenty, if it were asked
    check_method("SMOTE", MLP_PRESET, class_counts=counts, input_shape=(5,), memory_limit=need)   # exactly at the limit
    with pytest.raises(M2mError, match="memory limit"):
        check_method("SMOTE", MLP_PRESET, class_counts=counts, input_shape=(5,), memory_limit=need - 1)
    with pytest.raises(M2mError, match="memory limit"):
        check_method("SMOTE", MLP_PRESET, class_counts=counts, input_shape=(5,),
                     options=FitOptions(smote_max_bytes=need - 1))


@pytest.mark.mutation
def test_smote_default_limit_is_half_the_available_memory(monkeypatch):
    counts = np.array([10, 5])
    need = smote_bytes(counts, (5,))                                           # 400 bytes
    monkeypatch.setattr(methods_mod, "available_memory_bytes", lambda: 2 * need)
    check_method("SMOTE", MLP_PRESET, class_counts=counts, input_shape=(5,))         # 400 <= 800 // 2
    monkeypatch.setattr(methods_mod, "available_memory_bytes", lambda: 2 * need - 2)
    with pytest.raises(M2mError, match="memory limit"):                        # 400 > 798 // 2
        check_method("SMOTE", MLP_PRESET, class_counts=counts, input_shape=(5,))
    monkeypatch.setattr(methods_mod, "available_memory_bytes", lambda: None)   # unknown: no limit
    check_method("SMOTE", MLP_PRESET, class_counts=counts, input_shape=(5,))


@pytest.mark.mutation
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


@pytest.mark.mutation
@pytest.mark.skipif(not Path("/proc/meminfo").is_file(), reason="no /proc/meminfo (not Linux)")
def test_available_memory_reads_proc_meminfo_by_default(monkeypatch):
    def no_sysconf(key):
        raise ValueError(key)
    monkeypatch.setattr(methods_mod.os, "sysconf", no_sysconf)   # only /proc/meminfo can answer
    assert available_memory_bytes() > 0


@pytest.mark.mutation
def test_register_method_adds_once_and_refuses_a_duplicate(monkeypatch):
    monkeypatch.setattr(methods_mod, "_METHODS", dict(methods_mod._METHODS))   # leave the registry as it was
    spec = register_method(MethodSpec("Test-Method", description="a test"))
    assert get_method("Test-Method") is spec
    with pytest.raises(ValueError, match="already registered"):
        register_method(MethodSpec("Test-Method"))


@pytest.mark.mutation
@pytest.mark.parametrize("name, epoch, expected", [
    ("M2m", 1, False), ("M2m", 2, True), ("M2m-Clean", 1, False), ("M2m-Clean", 2, True),
    ("M2m-RS", 0, True),      # not deferred: translates from epoch 0
    ("DRS", 3, False), ("ERM", 3, False),
])
def test_translates_at(name, epoch, expected):
    assert get_method(name).translates_at(epoch, deferred_epoch=2) is expected


# -- SMOTE -------------------------------------------------------------------------------------------

@pytest.mark.mutation
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


@pytest.mark.mutation
def test_smote_uint8_images_keep_shape_and_dtype():
    rng = np.random.default_rng(1)
    counts = np.array([6, 2])
    y = np.repeat(np.arange(2), counts)
    x = rng.integers(0, 256, size=(8, 1, 2, 2), dtype=np.uint8)
    out = smote_split(Split(x, y), counts, seed=0)
    assert out.x.shape == (12, 1, 2, 2) and out.x.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(out.y), [6, 6])


@pytest.mark.mutation
def test_smote_bytes_estimate():
    assert smote_bytes(np.array([2840, 4, 10]), (1000,)) == 3 * 2840 * 1000 * 4


# -- bad input: one-line errors before any training ----------------------------------------------------

@pytest.mark.mutation
def test_unknown_method():
    with pytest.raises(M2mError, match="unknown method 'DRSS'; known: ERM, RS"):
        get_method("DRSS")
    with pytest.raises(M2mError, match="unknown method"):
        check_method("M2M", TINY)


@pytest.mark.mutation
@pytest.mark.parametrize("name", ["DRW", "DRS", "LDAM-DRW", "M2m", "LDAM-M2m"])
def test_deferred_method_with_no_deferred_epoch_left(name):
    preset = Preset(model="mlp", epochs=15, batch_size=64, deferred_epoch=15)
    with pytest.raises(M2mError, match=f"{name} defers to epoch 15 but the preset trains 15 epochs: no deferred"):
        check_method(name, preset)
    with pytest.raises(M2mError, match="no warm-up epoch"):
        check_method(name, Preset(model="mlp", epochs=15, batch_size=64, deferred_epoch=0))
    check_method("RW", preset)  # not deferred: fine


@pytest.mark.mutation
def test_smote_too_large_for_memory():
    counts = np.array([50_000, 500, 5])
    with pytest.raises(M2mError, match=r"SMOTE would hold 3 classes x 50000 rows x 150528 features .* 84\.11 GiB"):
        check_method("SMOTE", TINY, class_counts=counts, input_shape=(3, 224, 224), memory_limit=8 * 2**30)
    check_method("SMOTE", TINY, class_counts=counts, input_shape=(10,), memory_limit=8 * 2**30)
    with pytest.raises(M2mError, match="at least 2 training samples"):
        check_method("SMOTE", TINY, class_counts=np.array([5, 1]), input_shape=(10,))


@pytest.mark.mutation
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


@pytest.mark.mutation
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
