"""The baselines published after M2m (issue 19): LA, LA-posthoc, BalancedSoftmax, CMO and LA-M2m.

Hand-computed values of each formula (the logit adjustment, the balanced softmax, the post-hoc
argmax, the CutMix box and its label weight for a fixed seed), the loop trained as an independent
restatement of each method (no code of loop.py), the bad-input errors, and a smoke run of every
new method on the embedded digits data (the registry's contract: trains, finite metrics).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from m2m_pipeline.plan import apply_augment, draw_augment, make_plan
from m2m_pipeline.training import FitOptions, Preset
from m2m_pipeline.training import loop as loop_mod
from m2m_pipeline.training.checkpoint import build_model, load_checkpoint, logit_offset_of, model_config
from m2m_pipeline.training.cmo import (cmo_active, cutmix_box, draw_cutmix, label_weight, minority_plan,
                                       mixed_loss, paste)
from m2m_pipeline.training.losses import (LogitAdjustedCE, balanced_softmax_offsets, la_offsets, make_criterion,
                                          posthoc_offsets)
from m2m_pipeline.training.methods import check_method, get_method, list_methods
from m2m_pipeline.utils import M2mError, rng_for

from tests.tiny import tiny_images, tiny_vectors

pytestmark = pytest.mark.mutation

CPU = torch.device("cpu")
NEW = ["LA", "LA-posthoc", "BalancedSoftmax", "CMO", "LA-M2m"]
TINY = Preset(model="small_cnn", epochs=3, batch_size=64, deferred_epoch=1, warmup_epochs=1, milestones=(2,))


# -- LA: CE(z + tau log pi) (Menon et al., eq. 10) --------------------------------------------------

def test_la_loss_hand_values():
    counts = np.array([3, 1])                      # pi = (3/4, 1/4)
    crit = make_criterion("la", counts, None)      # tau = 1
    # zero logits: z + log pi = (log 3/4, log 1/4), so the loss of class y is -log pi_y
    assert float(crit(torch.zeros(1, 2), torch.tensor([1]))) == pytest.approx(math.log(4), rel=1e-6)
    assert float(crit(torch.zeros(1, 2), torch.tensor([0]))) == pytest.approx(math.log(4 / 3), rel=1e-6)
    # z = (1, 0), tau = 2, target 1: exp(0 + 2 log 1/4) / (exp(1 + 2 log 3/4) + exp(2 log 1/4))
    #   = (1/16) / (9e/16 + 1/16) = 1 / (9e + 1)
    crit2 = make_criterion("la", counts, None, la_tau=2.0)
    got = float(crit2(torch.tensor([[1.0, 0.0]]), torch.tensor([1])))
    assert got == pytest.approx(math.log(9 * math.e + 1), rel=1e-6)
    # tau = 0 is plain cross entropy
    z = torch.tensor([[0.3, -1.2]])
    assert float(make_criterion("la", counts, None, la_tau=0.0)(z, torch.tensor([1]))) == pytest.approx(
        float(F.cross_entropy(z, torch.tensor([1]))), rel=1e-6)


def test_la_offsets_are_tau_log_prior():
    np.testing.assert_allclose(la_offsets(np.array([6, 3, 1]), 1.5).numpy(),
                               1.5 * np.log([0.6, 0.3, 0.1]), rtol=1e-6)
    with pytest.raises(M2mError, match="positive count"):
        la_offsets(np.array([3, 0]))


def test_la_class_weights_and_reduction():
    # weights [0.5, 1.5] on two rows of class 1 at zero logits: each row's loss is log 4
    w = torch.tensor([0.5, 1.5])
    two = LogitAdjustedCE(la_offsets(np.array([3, 1])), w)(torch.zeros(2, 2), torch.tensor([1, 1]))
    assert float(two) == pytest.approx(1.5 * math.log(4), rel=1e-6)
    norm = LogitAdjustedCE(la_offsets(np.array([3, 1])), w, "normalized")(torch.zeros(2, 2), torch.tensor([1, 1]))
    assert float(norm) == pytest.approx(math.log(4), rel=1e-6)


# -- BalancedSoftmax: -log(N_y e^z_y / sum_k N_k e^z_k) (Ren et al., eq. 4) ---------------------------

def test_balanced_softmax_hand_values():
    counts = np.array([9, 3, 1])
    z = torch.tensor([[0.5, 0.0, -1.0]])
    crit = make_criterion("balanced_softmax", counts, None)
    # target 2: 1 * e^-1 / (9 e^0.5 + 3 e^0 + 1 e^-1)
    want = -math.log(math.exp(-1) / (9 * math.exp(0.5) + 3 + math.exp(-1)))
    assert float(crit(z, torch.tensor([2]))) == pytest.approx(want, rel=1e-6)
    want0 = -math.log(9 * math.exp(0.5) / (9 * math.exp(0.5) + 3 + math.exp(-1)))
    assert float(crit(z, torch.tensor([0]))) == pytest.approx(want0, rel=1e-6)
    np.testing.assert_allclose(balanced_softmax_offsets(counts).numpy(), np.log([9, 3, 1]), rtol=1e-6)


def test_balanced_softmax_equals_la_at_tau_one():
    counts = np.array([50, 7, 2, 1])
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(16, 4, generator=g), torch.randint(0, 4, (16,), generator=g)
    bs = make_criterion("balanced_softmax", counts, None)(z, y)
    la = make_criterion("la", counts, None, la_tau=1.0)(z, y)
    assert float(bs) == pytest.approx(float(la), rel=1e-5)
    assert float(make_criterion("la", counts, None, la_tau=2.0)(z, y)) != pytest.approx(float(bs), rel=1e-3)


# -- LA-posthoc: argmax z - tau log pi (Menon et al., eq. 9) ------------------------------------------

class _Fixed(nn.Module):
    """A 'model' whose logits are fixed rows, whatever the input."""

    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits[: len(x)] + 0 * self.w


def test_posthoc_offsets_and_predict():
    counts = np.array([3, 1])
    off = posthoc_offsets(counts, 1.0)
    np.testing.assert_allclose(off.numpy(), [-math.log(0.75), -math.log(0.25)], rtol=1e-6)
    data = tiny_vectors(counts=(3, 1), dim=2)
    split = data.train                                  # 4 rows
    # z = (1, 0): ERM predicts 0; adjusted (1 + log 4/3, 0 + log 4) = (1.288, 1.386) predicts 1
    # z = (2, 0): (2.288, 1.386) still 0.   z = (0, 0.1): 1 either way.
    model = _Fixed([[1.0, 0.0], [2.0, 0.0], [0.0, 0.1], [1.0, 0.0]])
    assert loop_mod.predict(model, data, split).tolist() == [0, 0, 1, 0]
    assert loop_mod.predict(model, data, split, logit_offset=off).tolist() == [1, 0, 1, 1]
    # tau = 2: (1 + 2 log 4/3, 2 log 4) = (1.575, 2.773): 1; (2.575, 2.773): 1
    assert loop_mod.predict(model, data, split, logit_offset=posthoc_offsets(counts, 2.0)).tolist() == [1, 1, 1, 1]


def test_checkpoint_logit_offset_round_trip_and_damage():
    data = tiny_vectors()
    cfg = model_config(data, "mlp", {"hidden": 4}, False, logit_offset=[0.5, 1.0, 2.0])
    assert cfg["logit_offset"] == [0.5, 1.0, 2.0]
    assert "logit_offset" not in model_config(data, "mlp", {"hidden": 4}, False)   # other methods: unchanged
    assert logit_offset_of({"config": cfg}).tolist() == [0.5, 1.0, 2.0]
    assert logit_offset_of({"config": model_config(data, "mlp", {}, False)}) is None
    with pytest.raises(M2mError, match="logit_offset of 2 values for 3 classes"):
        logit_offset_of({"config": {**cfg, "logit_offset": [0.0, 1.0]}})


def _preset(**kw) -> Preset:
    args = dict(model="mlp", epochs=3, batch_size=8, lr=0.1, warmup_epochs=2, milestones=(2,), lr_factor=0.5,
                momentum=0.5, weight_decay=0.01, deferred_epoch=1, model_args={"hidden": 8})
    return Preset(**{**args, **kw})


LRS = [0.05, 0.1, 0.05]


def _fit(data, method, run_dir, *, options=None, end_epoch=3, preset=None, **kw):
    return loop_mod.fit(data=data, preset=preset or _preset(), method=get_method(method) if isinstance(method, str)
                        else method, seed=kw.pop("seed", 0), run_dir=run_dir, end_epoch=end_epoch,
                        options=options or FitOptions(), device=CPU, progress=False, **kw)


def test_la_posthoc_selects_and_evaluates_with_the_adjusted_logits(tmp_path):
    from m2m_pipeline.evaluation import evaluate_checkpoint, write_predictions

    data = tiny_vectors(counts=(12, 6, 3))
    # tau = 50 drowns the logits: every adjusted prediction is the smallest class (class 2),
    # whatever the weights; with the sign flipped it would be the largest (class 0)
    spec = dataclasses.replace(get_method("LA-posthoc"), warm=None)   # from scratch: no warm run needed
    res = _fit(data, spec, tmp_path / "run", options=FitOptions(la_tau=50.0))
    ckpt = load_checkpoint(res.best_path, data=data)
    pi = np.array([12, 6, 3]) / 21
    np.testing.assert_allclose(ckpt["config"]["logit_offset"], -50.0 * np.log(pi), rtol=1e-6)
    # validation selection saw the adjusted predictions: bACC = recall of class 2 only = 100/3
    assert [h["val_bacc"] for h in res.history] == pytest.approx([100 / 3] * 3)
    m = evaluate_checkpoint(res.best_path, data)
    assert m["test"]["bacc"] == pytest.approx(100 / 3) and m["val"]["bacc"] == pytest.approx(100 / 3)
    out = write_predictions(tmp_path / "run", data, tmp_path / "pred.npz", method="LA-posthoc", features_per_class=1)
    assert np.load(out)["y_pred"].tolist() == [2] * len(data.test)
    # the same weights without the offset predict otherwise (a plain ERM model of this data)
    model = build_model(ckpt["config"])
    model.load_state_dict(ckpt["model_state"])
    assert set(loop_mod.predict(model, data, data.test).tolist()) != {2}


# -- the loop trains LA and BalancedSoftmax as restated here --------------------------------------------

def _reference(data, offsets, *, seed=0, end=3):
    """ERM's loop (shuffled plan, SGD momentum 0.5, weight decay 0.01, lr LRS) with the loss
    CE(z + offsets, y) written out here."""
    train = data.train
    torch.manual_seed(int(rng_for(seed, "init").integers(2**31 - 1)))
    model = build_model(model_config(data, "mlp", {"hidden": 8}, False))
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.5, weight_decay=0.01)
    for epoch in range(end):
        for group in opt.param_groups:
            group["lr"] = LRS[epoch]
        plan = make_plan(train.y, np.bincount(train.y), seed=seed, epoch=epoch, order="shuffle", attempts=False,
                         augment={}, batch_size=8)
        model.train()
        for b in range(plan.n_batches):
            rows = plan.order[plan.batch_slots(b)]
            if len(rows) < 2:
                continue
            z = model(torch.from_numpy(train.x[rows]))
            loss = F.cross_entropy(z + offsets, torch.from_numpy(train.y[rows]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


@pytest.mark.parametrize("method, tau, offsets", [
    ("LA", 1.0, torch.log(torch.tensor([12.0, 6.0, 3.0]) / 21)),
    ("LA", 2.0, 2.0 * torch.log(torch.tensor([12.0, 6.0, 3.0]) / 21)),
    ("BalancedSoftmax", 2.0, torch.log(torch.tensor([12.0, 6.0, 3.0]))),   # tau does not apply
])
def test_fit_trains_la_and_balanced_softmax_as_restated(tmp_path, method, tau, offsets):
    data = tiny_vectors()
    res = _fit(data, method, tmp_path / "run", options=FitOptions(la_tau=tau))
    ref = _reference(data, offsets)
    state = torch.load(res.last_path, map_location="cpu", weights_only=True)["model_state"]
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=1e-5, atol=1e-6, msg=k)
    # prediction uses the raw logits: no offset recorded for a training-time adjustment
    assert "logit_offset" not in torch.load(res.last_path, map_location="cpu", weights_only=True)["config"]


# -- CMO: the CutMix box and its label weight ---------------------------------------------------------

def test_cutmix_box_hand_values():
    # lam 0.75: side sqrt(0.25) = 1/2 of 8 = 4; centre (1, 6): rows 1-2 .. 1+2 clipped to 0..3,
    # columns 6-2 .. 6+2 = 4..8; area 3 * 4 = 12 of 64: the background label keeps 1 - 12/64
    box = cutmix_box(8, 8, 0.75, 1, 6)
    assert box == (0, 4, 3, 8)
    assert label_weight(box, 8, 8) == pytest.approx(1 - 12 / 64)
    # non-square: H 4, W 10, lam 0: full sides 4 and 10, centre (2, 5): the whole image, weight 0
    assert cutmix_box(4, 10, 0.0, 2, 5) == (0, 0, 4, 10)
    assert label_weight((0, 0, 4, 10), 4, 10) == 0.0
    # lam 1: an empty box, the batch keeps its labels
    assert label_weight(cutmix_box(8, 8, 1.0, 3, 3), 8, 8) == 1.0


def test_cutmix_draw_for_a_fixed_seed():
    # seed 0, epoch 5, batch 1, 8x8 images: stream cmo_mix gives u = 0.1424 (< 0.5: mix),
    # lam = 0.18147, cy = 4, cx = 6. Side int(8 sqrt(1 - 0.18147)) = int(7.238) = 7, half 3:
    # rows 4-3 .. 4+3 = 1..7, columns 6-3 .. min(6+3, 8) = 3..8; area 6 * 5 = 30: weight 1 - 30/64 = 0.53125
    rng = rng_for(0, "cmo_mix", 5, 1)
    u, lam, cy, cx = rng.random(), rng.beta(1.0, 1.0), rng.integers(8), rng.integers(8)
    assert (round(u, 4), round(lam, 5), int(cy), int(cx)) == (0.1424, 0.18147, 4, 6)
    mix = draw_cutmix(0, 5, 1, 8, 8, prob=0.5, beta=1.0)
    assert mix.box == (1, 3, 7, 8)
    assert mix.weight == 34 / 64
    # batch 3 of the same epoch draws u = 0.789 >= 0.5: no mix; with prob 1 it mixes
    assert draw_cutmix(0, 5, 3, 8, 8, prob=0.5) is None
    assert draw_cutmix(0, 5, 3, 8, 8, prob=1.0) is not None
    assert draw_cutmix(0, 5, 1, 8, 8, prob=0.0) is None
    assert draw_cutmix(0, 5, 1, 8, 8) == draw_cutmix(0, 5, 1, 8, 8)     # a pure function of the keys


def test_paste_and_mixed_loss():
    x = np.zeros((2, 1, 4, 4))
    x2 = np.ones((2, 1, 4, 4))
    out = paste(x, x2, (1, 2, 3, 4))
    assert out[:, 0, 1:3, 2:4].sum() == 2 * 4 and out.sum() == 2 * 4
    counts = np.array([3, 1])
    crit = make_criterion("ce", counts, None)
    z = torch.zeros(1, 2)
    # CE at zero logits is log 2 for either label: 0.25 log 2 + 0.75 log 2
    assert float(mixed_loss(crit, z, torch.tensor([0]), torch.tensor([1]), 0.25)) == pytest.approx(math.log(2))
    z = torch.tensor([[math.log(3.0), 0.0]])          # p = (3/4, 1/4)
    got = float(mixed_loss(crit, z, torch.tensor([0]), torch.tensor([1]), 0.8))
    assert got == pytest.approx(0.8 * math.log(4 / 3) + 0.2 * math.log(4), rel=1e-6)


def test_cmo_epochs_and_minority_sampler():
    # the release: start 3 < e < 200 - 3
    assert [e for e in range(10) if cmo_active(e, 10, 3, 3)] == [4, 5, 6]
    counts = np.array([40, 8, 2])
    labels = np.repeat(np.arange(3), counts)
    seen = np.zeros(3)
    for epoch in range(30):
        plan = minority_plan(labels, counts, seed=1, epoch=epoch, augment={}, batch_size=16)
        assert len(plan) == len(labels)
        seen += np.bincount(labels[plan.order], minlength=3)
    np.testing.assert_allclose(seen / seen.sum(), [1 / 3] * 3, atol=0.03)   # 1500 draws
    a = minority_plan(labels, counts, seed=1, epoch=4, augment={"crop_pad": 1, "flip": True}, batch_size=16)
    b = minority_plan(labels, counts, seed=1, epoch=4, augment={"crop_pad": 1, "flip": True}, batch_size=16)
    np.testing.assert_array_equal(a.order, b.order)
    np.testing.assert_array_equal(a.aug, b.aug)
    # its own streams: the epoch's natural-order plan is untouched
    assert not np.array_equal(a.order, make_plan(labels, counts, seed=1, epoch=4, order="balanced", attempts=False,
                                                 augment={}, batch_size=16).order)


def _cmo_reference(data, *, options, seed=0, end=3, batch_size=8):
    """CE on the shuffled plan; in the CMO epochs each batch's CutMix (restated: rows drawn with
    probability ~ 1/N_y from stream cmo_sampler, crops from cmo_augment, the box from cmo_mix)."""
    train = data.train
    n, counts = len(train.y), np.bincount(train.y)
    h, w = train.x.shape[2], train.x.shape[3]
    torch.manual_seed(int(rng_for(seed, "init").integers(2**31 - 1)))
    model = build_model(model_config(data, "mlp", {"hidden": 8}, False))
    opt = torch.optim.SGD(model.parameters(), lr=1.0, momentum=0.5, weight_decay=0.01)
    n_mixed = 0
    for epoch in range(end):
        for group in opt.param_groups:
            group["lr"] = LRS[epoch]
        plan = make_plan(train.y, counts, seed=seed, epoch=epoch, order="shuffle", attempts=False,
                         augment=data.augment, batch_size=batch_size)
        active = options.cmo_start_epoch < epoch < end - options.cmo_end_epochs
        p = 1.0 / counts[train.y]
        rows2_all = rng_for(seed, "cmo_sampler", epoch).choice(n, size=n, replace=True, p=p / p.sum())
        aug2_all = draw_augment(rng_for(seed, "cmo_augment", epoch), n, data.augment)
        model.train()
        for b in range(plan.n_batches):
            slots = plan.batch_slots(b)
            if len(slots) < 2:
                continue
            rows = plan.order[slots]
            x = torch.from_numpy(apply_augment(train.x[rows], plan.aug[slots], data.augment)).float() / 255
            y = torch.from_numpy(train.y[rows])
            rng = rng_for(seed, "cmo_mix", epoch, b)
            if active and rng.random() < options.cmo_prob:
                lam = rng.beta(options.cmo_beta, options.cmo_beta)
                cy, cx = rng.integers(h), rng.integers(w)
                cut = math.sqrt(1 - lam)
                ch, cw = int(h * cut), int(w * cut)
                r0, r1 = min(max(cy - ch // 2, 0), h), min(max(cy + ch // 2, 0), h)
                c0, c1 = min(max(cx - cw // 2, 0), w), min(max(cx + cw // 2, 0), w)
                x2 = torch.from_numpy(apply_augment(train.x[rows2_all[slots]], aug2_all[slots], data.augment)).float() / 255
                x[:, :, r0:r1, c0:c1] = x2[:, :, r0:r1, c0:c1]
                keep = 1 - (r1 - r0) * (c1 - c0) / (h * w)
                z = model(x)
                loss = keep * F.cross_entropy(z, y) + (1 - keep) * F.cross_entropy(z, torch.from_numpy(train.y[rows2_all[slots]]))
                n_mixed += 1
            else:
                loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model, n_mixed


@pytest.mark.parametrize("prob", [0.0, 0.5, 1.0])
def test_fit_trains_cmo_as_restated(tmp_path, prob):
    data = tiny_images(counts=(10, 5, 3))
    options = FitOptions(cmo_prob=prob, cmo_start_epoch=0, cmo_end_epochs=0)   # epoch 1 mixes (0 < e < 3)
    res = _fit(data, "CMO", tmp_path / "run", options=options)
    ref, n_mixed = _cmo_reference(data, options=options)
    state = torch.load(res.last_path, map_location="cpu", weights_only=True)["model_state"]
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(state[k], v, rtol=1e-5, atol=1e-6, msg=k)
    assert (n_mixed > 0) is (prob > 0)


def test_cmo_resume_reaches_the_uninterrupted_run(tmp_path):
    data = tiny_images(counts=(10, 5, 3))
    options = FitOptions(cmo_prob=0.5, cmo_start_epoch=0, cmo_end_epochs=0)
    preset = _preset(epochs=4, milestones=(3,))
    full = _fit(data, "CMO", tmp_path / "full", options=options, preset=preset, end_epoch=4)
    _fit(data, "CMO", tmp_path / "part", options=options, preset=preset, end_epoch=2)
    start = load_checkpoint(tmp_path / "part" / "last.pt", data=data)
    res = _fit(data, "CMO", tmp_path / "part", options=options, preset=preset, end_epoch=4, start=start, resume=True)
    a = torch.load(full.last_path, map_location="cpu", weights_only=True)["model_state"]
    b = torch.load(res.last_path, map_location="cpu", weights_only=True)["model_state"]
    for k in a:
        assert torch.equal(a[k], b[k]), k


# -- bad input: one-line errors before any training ---------------------------------------------------

def test_cmo_refuses_text_and_tables_in_one_line(tmp_path):
    with pytest.raises(M2mError, match=r"CMO pastes a box of one image's pixels .* vector rows of shape \(4,\)") as e:
        check_method("CMO", TINY, input_shape=(4,), input_kind="vector")
    assert "\n" not in str(e.value) and "no pixel grid" in str(e.value)
    with pytest.raises(M2mError, match="CMO pastes a box"):
        check_method("CMO", TINY, input_shape=(300,))          # a vector shape alone is enough
    check_method("CMO", TINY, input_shape=(1, 8, 8), input_kind="image")
    data = tiny_vectors()
    with pytest.raises(M2mError, match="CMO pastes a box"):
        _fit(data, "CMO", tmp_path / "cmo")
    assert not (tmp_path / "cmo").exists()                     # refused before writing anything


@pytest.mark.parametrize("method, options, message", [
    ("LA", FitOptions(la_tau=-1.0), "LA: la_tau must be a finite number >= 0, got -1.0"),
    ("LA-posthoc", FitOptions(la_tau=float("nan")), "la_tau must be a finite number"),
    ("LA-M2m", FitOptions(la_tau=float("inf")), "la_tau must be a finite number"),
    ("CMO", FitOptions(cmo_prob=1.5), r"cmo_prob must be in \[0, 1\]"),
    ("CMO", FitOptions(cmo_beta=0.0), "cmo_beta must be > 0"),
    ("CMO", FitOptions(cmo_start_epoch=-1), "cmo_start_epoch must be an int >= 0"),
    ("CMO", FitOptions(cmo_end_epochs=1.5), "cmo_end_epochs must be an int >= 0"),
])
def test_bad_baseline_parameters(method, options, message):
    with pytest.raises(M2mError, match=message):
        check_method(method, TINY, options=options, input_shape=(1, 8, 8), input_kind="image")


def test_tau_is_ignored_by_methods_that_do_not_use_it():
    check_method("ERM", TINY, options=FitOptions(la_tau=-1.0))
    check_method("BalancedSoftmax", TINY, options=FitOptions(la_tau=-1.0))


def test_params_schema_takes_the_new_methods_and_checks_their_parameters():
    from m2m_pipeline.params import validate_params

    ok = validate_params({"train_f": {"methods": ["LA", "LA-posthoc", "BalancedSoftmax", "CMO"], "la_tau": 1.5,
                                      "cmo_prob": 0.25, "cmo_beta": 2, "cmo_start_epoch": 0, "cmo_end_epochs": 1}})
    assert ok["train_f"]["la_tau"] == 1.5 and ok["train_f"]["cmo_beta"] == 2.0
    with pytest.raises(M2mError, match="train_f.la_tau"):
        validate_params({"train_f": {"la_tau": -0.5}})
    with pytest.raises(M2mError, match="train_f.cmo_prob"):
        validate_params({"train_f": {"cmo_prob": 2}})
    # LA-M2m's LA warm phase has no DVC stage: refused in train_m2m.methods, with where to run it
    with pytest.raises(M2mError, match="LA-M2m continues a warm phase trained with loss 'la'.*reproduce.py"):
        validate_params({"train_m2m": {"methods": ["M2m", "LA-M2m"]}})
    validate_params({"train_m2m": {"methods": ["M2m", "LDAM-M2m"]}})


def test_default_pipeline_methods_are_unchanged():
    # `make run` trains what it did before issue 19: the new methods are opt-in
    import yaml

    from tests.conftest import ROOT

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert params["train_f"]["methods"] == ["ERM", "DRS"]
    assert params["train_m2m"]["methods"] == ["M2m"]
    assert params["evaluate"]["methods"] == ["ERM", "DRS", "M2m"]


# -- the specs ------------------------------------------------------------------------------------------

def test_new_methods_are_registered_after_the_paper_and_its_ablations():
    names = list_methods()
    assert names[-len(NEW):] == NEW
    for name in NEW:
        spec = get_method(name)
        assert spec.after_paper and not spec.is_ablation and spec.source


def test_la_m2m_is_ldam_m2m_with_the_la_loss():
    la, ldam = get_method("LA-M2m"), get_method("LDAM-M2m")
    assert dataclasses.replace(ldam, name="LA-M2m", loss="la", warm="la", source=la.source,
                               description=la.description) == la
    assert not la.norm_last and la.uses_tau
    for epoch, want in ((0, ("shuffle", False)), (1, ("balanced", True))):
        assert (la.order_at(epoch, 1), la.translates_at(epoch, 1)) == want


def test_specs_of_the_other_baselines():
    assert (get_method("LA").loss, get_method("LA").warm) == ("la", None)
    assert (get_method("BalancedSoftmax").loss, get_method("BalancedSoftmax").warm) == ("balanced_softmax", None)
    post = get_method("LA-posthoc")
    assert post.posthoc and post.loss == "ce" and post.warm == "ce" and not post.uses_pools
    assert dataclasses.replace(post, name="ERM", posthoc=False, source="", description="") == \
        dataclasses.replace(get_method("ERM"), description="")
    cmo = get_method("CMO")
    assert cmo.cmo and cmo.loss == "ce" and cmo.order == "shuffle" and cmo.warm is None


def test_la_m2m_refuses_a_warm_phase_of_another_loss_or_tau(digits, tiny_preset, tmp_path):
    from m2m_pipeline.jobs.train import f_params, start_for, warm_f

    warm_f(digits, tiny_preset, seed=0, out_dir=tmp_path / "warm-ce", progress=False)
    spec = get_method("LA-M2m")
    with pytest.raises(M2mError, match="LA-M2m continues a warm phase trained with loss 'la', but .*warm-ce"):
        start_for(spec, data=digits, preset=tiny_preset, seed=0, out_dir=tmp_path / "run",
                  warm_dir=tmp_path / "warm-ce", params=f_params(spec, options=FitOptions()))
    warm_f(digits, tiny_preset, seed=0, out_dir=tmp_path / "warm-la", loss="la", progress=False)
    with pytest.raises(M2mError, match="la_tau = 2.0 but its LA warm phase .* la_tau = 1.0"):
        start_for(spec, data=digits, preset=tiny_preset, seed=0, out_dir=tmp_path / "run",
                  warm_dir=tmp_path / "warm-la", params=f_params(spec, options=FitOptions(la_tau=2.0)))
    start, resume, _ = start_for(spec, data=digits, preset=tiny_preset, seed=0, out_dir=tmp_path / "run",
                                 warm_dir=tmp_path / "warm-la", params=f_params(spec, options=FitOptions()))
    assert not resume and start["params"]["loss"] == "la"


# -- the contract: every new method trains on digits and gives finite metrics ----------------------------

@pytest.fixture(scope="module")
def new_runs(digits, tmp_path_factory):
    from m2m_pipeline.evaluation import evaluate_run
    from m2m_pipeline.jobs.train import pretrain_g, warm_f
    from m2m_pipeline.jobs.dispatch import train_method
    from m2m_pipeline.pools import TranslationConfig

    torch.set_num_threads(1)
    preset = Preset(model="small_cnn", epochs=4, batch_size=64, warmup_epochs=1, milestones=(3,),
                    deferred_epoch=2, model_args={"width": 8})
    options = FitOptions(cmo_start_epoch=0, cmo_end_epochs=0)   # CMO mixes in epochs 1 and 2 of 4
    root = tmp_path_factory.mktemp("baselines")
    pretrain_g(digits, preset, seed=1000, out_dir=root / "g", progress=False)
    for loss in ("ce", "la"):
        warm_f(digits, preset, seed=0, out_dir=root / f"warm-{loss}", loss=loss, options=options, progress=False)
    m2m = TranslationConfig(steps=2, batch_size=128)
    out = {}
    for name in NEW:
        spec = get_method(name)
        result = train_method(digits, preset, method=name, seed=0, out_dir=root / name,
                              warm_dir=root / f"warm-{spec.warm}" if spec.warm else None,
                              g_path=root / "g" / "last.pt", m2m=m2m if spec.translate else None,
                              pools_dir=root / "pools" / name if spec.translate else None, options=options,
                              progress=False)
        out[name] = (result, evaluate_run(root / name, digits, method=name))
    return out


@pytest.mark.parametrize("name", NEW)
def test_every_new_method_trains_and_gives_finite_metrics(new_runs, name):
    result, metrics = new_runs[name]
    assert [h["epoch"] for h in result.history] == [0, 1, 2, 3]
    for which in ("best_val", "last"):
        for split in ("val", "test"):
            m = metrics[which][split]
            assert all(math.isfinite(m[k]) and 0 <= m[k] <= 100 for k in ("bacc", "gm", "major", "minor"))
    assert metrics["last"]["epoch"] == 3 and metrics["method"] == name
    if get_method(name).translate:
        assert [h["epoch"] for h in result.history if h["n_attempts"] > 0] == [2, 3]
    if get_method(name).deferred:
        assert metrics["best_val"]["epoch"] >= 2           # the shared warm phase is never selected
