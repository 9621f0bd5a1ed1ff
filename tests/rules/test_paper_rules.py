"""The paper's rules stated as hand-computed values, so that a flipped sign or a moved boundary fails.

Each test names the rule it checks (section / equation of Kim, Jeong, Shin, CVPR 2020, or the
authors' release where the paper is silent) and states the expected number, worked out by hand
in the comment next to it, never a value the code under test returned.
"""

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from m2m_pipeline.acceptance import decide, is_confident, passes_beta, REASONS
from m2m_pipeline.datasets import PreparedData, Split, majority_classes
from m2m_pipeline.metrics import GM_CORRECTION, balanced_metrics
from m2m_pipeline.plan import apply_augment, make_plan
from m2m_pipeline.pools import TranslationConfig, draw_slots
from m2m_pipeline.pools.sources.translated import TranslatedPools
from m2m_pipeline.pools.codec import read_x
from m2m_pipeline.store import open_pool, read_prepared, write_prepared
from m2m_pipeline.training import Preset, lr_at
from m2m_pipeline.training import loop as loop_mod
from m2m_pipeline.training.methods import get_method
from m2m_pipeline.translate import M2mTranslator, translation_steps

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


# -- metrics (Sec. 3.1: bACC, GM; Sec. 3.4: Major / Minor) ---------------------------------------

# Training sizes 50, 30, 20 (total 100): class 0 alone holds exactly 50%, which is not "more than
# 50%", so the majority set needs class 1 too: Major = {0, 1}, Minor = {2}.
COUNTS_AT_LINE = np.array([50, 30, 20])
# 4 test samples of class 0 (3 right: recall 3/4), 4 of class 1 (2 right: 1/2), 2 of class 2.
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
PRED_CLASS2_MISSED = np.array([0, 0, 0, 1, 1, 1, 0, 2, 0, 1])   # class 2 recall 0
PRED_CLASS2_HALF = np.array([0, 0, 0, 1, 1, 1, 0, 2, 2, 1])     # class 2 recall 1/2


def test_majority_rule_at_exactly_fifty_percent():
    # 50 of 100 is not more than half: class 1 (the next largest) joins the majority.
    assert majority_classes(COUNTS_AT_LINE).tolist() == [True, True, False]
    # The same sizes in another class order: class 1 holds 50, class 2 (30) joins it.
    assert majority_classes(np.array([20, 50, 30])).tolist() == [False, True, True]
    # 51 of 100 is more than half on its own.
    assert majority_classes(np.array([51, 30, 19])).tolist() == [True, False, False]
    # Equal sizes 25 x 4: two classes make exactly 50%, a third is needed; ties go by class index.
    assert majority_classes(np.array([25, 25, 25, 25])).tolist() == [True, True, True, False]


def test_metrics_with_a_missed_class():
    m = balanced_metrics(Y_TRUE, PRED_CLASS2_MISSED, COUNTS_AT_LINE)
    assert m["bacc"] == pytest.approx(100 * (0.75 + 0.5 + 0.0) / 3)        # 41.667
    assert m["gm"] == 0.0                                                   # strict GM: a zero recall
    # imbalanced-learn's correction: the zero recall counts as 1e-3; (0.75 * 0.5 * 0.001)^(1/3) = 0.07211
    assert GM_CORRECTION == 1e-3
    assert m["gm_corrected"] == pytest.approx(100 * (0.75 * 0.5 * 1e-3) ** (1 / 3))
    assert m["gm_corrected"] == pytest.approx(7.2112, abs=1e-4)
    assert m["major"] == pytest.approx(100 * (0.75 + 0.5) / 2)              # 62.5, classes 0 and 1
    assert m["minor"] == 0.0                                                # class 2
    assert m["acc"] == pytest.approx(50.0)                                  # 5 of 10 right
    assert m["per_class_recall"] == pytest.approx([75.0, 50.0, 0.0])


def test_metrics_with_every_class_recalled():
    m = balanced_metrics(Y_TRUE, PRED_CLASS2_HALF, COUNTS_AT_LINE)
    assert m["bacc"] == pytest.approx(100 * (0.75 + 0.5 + 0.5) / 3)        # 58.333
    # (0.75 * 0.5 * 0.5)^(1/3) = 0.1875^(1/3) = 0.57236; no zero recall, so both GMs agree
    assert m["gm"] == pytest.approx(57.2357, abs=1e-4)
    assert m["gm_corrected"] == pytest.approx(m["gm"])
    assert m["major"] == pytest.approx(62.5) and m["minor"] == pytest.approx(50.0)
    assert m["acc"] == pytest.approx(60.0)                                  # 6 of 10 right


def test_major_is_nan_when_no_majority_class_is_in_the_test_split():
    # Major = {0} (60 of 100); the test split holds only classes 1 and 2 (recalls 1 and 0). An absent
    # group is NaN without numpy's "mean of empty slice" warning (warnings are errors here).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = balanced_metrics(np.array([1, 1, 2]), np.array([1, 1, 1]), np.array([60, 30, 10]))
    assert np.isnan(m["major"]) and m["minor"] == pytest.approx(50.0)
    assert m["bacc"] == pytest.approx(50.0)
    # and the other way round: only the majority class is present
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = balanced_metrics(np.array([0, 0]), np.array([0, 1]), np.array([60, 30, 10]))
    assert m["major"] == pytest.approx(50.0) and np.isnan(m["minor"])


def test_metrics_skip_a_class_absent_from_the_test_split():
    # Four training classes (40, 30, 20, 10); class 3 has no test sample, so it is left out of bACC
    # and GM instead of counting as a zero, even though one sample is predicted as class 3.
    # Major: 40 + 30 = 70 > 50 -> {0, 1}; Minor {2, 3}, of which only class 2 has a recall.
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 3])                                   # recalls 1/2, 1, 1/2
    m = balanced_metrics(y_true, y_pred, np.array([40, 30, 20, 10]))
    assert m["bacc"] == pytest.approx(100 * 2 / 3)
    assert m["gm"] == pytest.approx(100 * 0.25 ** (1 / 3))                  # (0.5 * 1 * 0.5)^(1/3)
    assert m["major"] == pytest.approx(75.0) and m["minor"] == pytest.approx(50.0)
    assert m["per_class_recall"][3] is None


# -- learning-rate schedule (Sec. 3.1, Appendix A) -----------------------------------------------

# lr at every boundary epoch (0-based) of every preset in params.yaml, worked out by hand:
# warm-up lr * (e + 1) / 5 over epochs 0..4, then lr * factor^(milestones passed).
EXPECTED_LR = {
    "digits": {0: 0.02, 1: 0.04, 3: 0.08, 4: 0.1, 5: 0.1, 39: 0.1, 40: 0.01, 49: 0.01, 50: 0.001, 59: 0.001},
    "cifar10-lt": {0: 0.02, 4: 0.1, 5: 0.1, 159: 0.1, 160: 1e-3, 179: 1e-3, 180: 1e-5, 199: 1e-5},
    "cifar100-lt": {0: 0.02, 4: 0.1, 5: 0.1, 159: 0.1, 160: 1e-3, 179: 1e-3, 180: 1e-5, 199: 1e-5},
    "sun397": {0: 0.02, 4: 0.1, 5: 0.1, 29: 0.1, 30: 0.01, 59: 0.01, 60: 0.001, 89: 0.001},
    "celeba5": {0: 0.02, 4: 0.1, 5: 0.1, 29: 0.1, 30: 0.01, 59: 0.01, 60: 0.001, 89: 0.001},
    "imagenet-lt": {0: 0.02, 4: 0.1, 5: 0.1, 159: 0.1, 160: 0.01, 179: 0.01, 180: 0.001, 199: 0.001},
    "reuters": {0: 0.02, 4: 0.1, 5: 0.1, 9: 0.1, 10: 0.01, 14: 0.01},
    "twitter": {0: 0.02, 4: 0.1, 5: 0.1, 9: 0.1, 10: 0.01, 14: 0.01},
    # bring-your-own kinds, sized at the sizes of SIZED_AT (training/sizing.py): 20,000 32x32 images
    # -> 200 epochs, milestones 160/180, warm-up 5 (the CIFAR-LT schedule); 20,000 text vectors -> 15
    # epochs, milestone round(2*15/3) = 10, warm-up min(5, 15 // 10) = 1; 500 table rows -> 30 epochs,
    # milestone 20, warm-up 3: 0.1 * 1/3, 0.1 * 2/3, then 0.1 and 0.01 from epoch 20
    "images": {0: 0.02, 4: 0.1, 5: 0.1, 159: 0.1, 160: 1e-3, 179: 1e-3, 180: 1e-5, 199: 1e-5},
    "text": {0: 0.1, 1: 0.1, 9: 0.1, 10: 0.01, 14: 0.01},
    "table": {0: 0.1 / 3, 1: 0.2 / 3, 2: 0.1, 3: 0.1, 19: 0.1, 20: 0.01, 29: 0.01},
}
SIZED_AT = {"images": {"input_kind": "image", "n_train": 20000, "input_shape": (3, 32, 32)},
            "text": {"input_kind": "vector", "n_train": 20000, "input_shape": (5000,)},
            "table": {"input_kind": "vector", "n_train": 500, "input_shape": (8,)}}


def _presets() -> dict:
    from m2m_pipeline.training.sizing import fill_auto, has_auto

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return {name: Preset.from_params(fill_auto(p, SIZED_AT[name]) if has_auto(p) else p, name)
            for name, p in params["presets"].items()}


def test_every_preset_has_hand_computed_boundaries():
    presets = _presets()
    assert set(presets) == set(EXPECTED_LR), "a preset was added or removed: add its boundary epochs above"
    for name, preset in presets.items():
        # the table covers the last epoch, the last warm-up epoch and both sides of every milestone
        want = {0, preset.warmup_epochs - 1, preset.warmup_epochs, preset.epochs - 1}
        want |= {m for m in preset.milestones} | {m - 1 for m in preset.milestones}
        assert want <= set(EXPECTED_LR[name]), name


@pytest.mark.parametrize("name", sorted(EXPECTED_LR))
def test_lr_at_every_boundary_epoch(name):
    preset = _presets()[name]
    for epoch, lr in EXPECTED_LR[name].items():
        assert lr_at(epoch, preset) == pytest.approx(lr, rel=1e-12), (name, epoch)


def test_lr_without_warm_up_and_with_a_milestone_at_zero():
    p = Preset(model="mlp", epochs=4, batch_size=8, lr=0.5, warmup_epochs=0, milestones=(0, 2), lr_factor=0.5)
    # no warm-up: epoch 0 has passed milestone 0 already -> 0.25; epoch 2 passed both -> 0.125
    assert [lr_at(e, p) for e in range(4)] == pytest.approx([0.25, 0.25, 0.125, 0.125])


# -- the plan's augmentation draws (Sec. 3.1: random crop after zero padding, horizontal flip) ----

def test_augment_draws_cover_every_crop_offset_and_flip():
    from m2m_pipeline.plan import draw_augment

    rng = np.random.default_rng(0)
    aug = draw_augment(rng, 3000, {"crop_pad": 2, "flip": True})
    # offsets 0..2*pad (5 values) and flip 0/1, each about equally often (5 sigma)
    for col, values in ((0, 5), (1, 5), (2, 2)):
        counts = np.bincount(aug[:, col], minlength=values)
        assert len(counts) == values, col
        p = 1 / values
        assert np.all(np.abs(counts - 3000 * p) <= 5 * np.sqrt(3000 * p * (1 - p))), (col, counts)
    # no augmentation: the identity (pad, pad, 0) = (0, 0, 0); flip only: offsets stay 0
    assert not draw_augment(rng, 5, {}).any()
    flip_only = draw_augment(rng, 400, {"flip": True})
    assert not flip_only[:, :2].any() and set(np.unique(flip_only[:, 2])) == {0, 1}
    crop_only = draw_augment(rng, 400, {"crop_pad": 3})
    assert crop_only.dtype == np.int16 and not crop_only[:, 2].any()      # no flip without "flip"
    assert set(np.unique(crop_only[:, :2])) == set(range(7))


def test_augment_draws_change_with_the_epoch():
    # each epoch draws fresh crops and flips (the same for the same (seed, epoch))
    labels = np.repeat([0, 1], [30, 10])
    plans = [make_plan(labels, np.array([30, 10]), seed=5, epoch=e, order="shuffle", attempts=False,
                       augment={"crop_pad": 2, "flip": True}, batch_size=8) for e in (0, 1, 0)]
    assert not np.array_equal(plans[0].aug, plans[1].aug)
    assert np.array_equal(plans[0].aug, plans[2].aug)


def test_attempt_draws_are_fresh_every_epoch():
    # N = (300, 100): a slot of class 1 attempts a translation with probability 1 - 100/300 = 2/3,
    # class 0 never. Slots of class 1 in both epochs agree on "attempt" with probability
    # (2/3)^2 + (1/3)^2 = 5/9 when each epoch draws afresh, and always when the draws repeat.
    labels, counts = np.repeat([0, 1], [300, 100]), np.array([300, 100])
    e0, e1 = (make_plan(labels, counts, seed=3, epoch=e, order="balanced", attempts=True, augment={},
                        batch_size=50) for e in (0, 1))
    both = (labels[e0.order] == 1) & (labels[e1.order] == 1)
    assert not e0.attempt[labels[e0.order] == 0].any()
    n, disagree = int(both.sum()), int((e0.attempt[both] != e1.attempt[both]).sum())
    expected, sigma = n * 4 / 9, np.sqrt(n * 4 / 9 * 5 / 9)
    assert n > 50 and abs(disagree - expected) < 4 * sigma, (n, disagree)


def test_apply_augment_crops_the_padded_image_and_flips():
    from m2m_pipeline.plan import apply_augment

    img = np.arange(1, 10, dtype=np.uint8).reshape(1, 1, 3, 3)        # [[1 2 3] [4 5 6] [7 8 9]]
    x = np.repeat(img, 3, axis=0)
    aug = np.array([[1, 1, 0], [0, 0, 0], [2, 1, 1]], dtype=np.int16)
    out = apply_augment(x, aug, {"crop_pad": 1, "flip": True})
    # (1, 1): the centre crop of the padded image is the image itself
    assert out[0, 0].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    # (0, 0): the top-left crop shifts the image down-right, zeros come in
    assert out[1, 0].tolist() == [[0, 0, 0], [0, 1, 2], [0, 4, 5]]
    # (2, 1) then flipped: shifted up by one, mirrored left-right
    assert out[2, 0].tolist() == [[6, 5, 4], [9, 8, 7], [0, 0, 0]]
    # a flip-only recipe flips without cropping (no padding, offsets 0)
    flipped = apply_augment(x[:2], np.array([[0, 0, 1], [0, 0, 0]], dtype=np.int16), {"flip": True})
    assert flipped[0, 0].tolist() == [[3, 2, 1], [6, 5, 4], [9, 8, 7]] and np.array_equal(flipped[1], x[1])
    # vectors and an empty recipe pass through unchanged
    v = np.ones((2, 4), dtype=np.float32)
    assert apply_augment(v, aug[:2], {"crop_pad": 1}) is v
    assert apply_augment(x, aug, {}) is x


# -- eq. (2): the direction of its two terms -----------------------------------------------------

class FlatG(nn.Module):
    """Logits that do not depend on x at all: the CE term of eq. (2) has a zero gradient."""

    def __init__(self, logits):
        super().__init__()
        self.logits = nn.Parameter(torch.tensor(logits, dtype=torch.float32))

    def forward(self, x):
        return self.logits.expand(len(x), -1) + 0.0 * x.sum(dim=1, keepdim=True)


def _linear(weight) -> nn.Linear:
    w = torch.tensor(weight, dtype=torch.float32)
    lin = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.zero_()
    return lin.eval()


def test_translation_lowers_f_k0_when_g_is_flat():
    # f_0(x) = 3 x_1 + 4 x_2, so its gradient is (3, 4) everywhere, of norm 5. Each normalised step
    # of eq. (2) moves x by eta along -(3, 4)/5 and lowers f_0 by eta * 5: two steps of 0.1 -> 1.0.
    g = FlatG([0.0, 0.0, 0.0]).eval()
    f = _linear([[3.0, 4.0], [1.0, 0.0], [0.0, 1.0]])
    x0 = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.3, 0.7], [-5.0, 4.0]])
    x = translation_steps(g, f, x0, torch.full((4,), 2), torch.zeros(4, dtype=torch.long), steps=2, step_size=0.1,
                          lam=0.5, input_range=None)
    with torch.no_grad():
        drop = f(x0)[:, 0] - f(x)[:, 0]
    np.testing.assert_allclose(drop.numpy(), np.full(4, 1.0), atol=1e-5)
    np.testing.assert_allclose((x - x0).numpy(), np.tile([-0.12, -0.16], (4, 1)), atol=1e-6)


def test_translation_with_lambda_zero_raises_g_probability_of_k():
    # Two classes, g logits z = (x_1, x_2): the CE gradient for target 1 is p_0 (W_0 - W_1), whose
    # direction is (1, -1)/sqrt(2). Each step of 0.1 raises z_1 - z_0 by 0.1 * sqrt(2); three steps
    # raise it by 0.3 sqrt(2), so p_1 = sigmoid(z_1 - z_0 + 0.3 sqrt(2)). f pushes the other way but
    # lambda = 0 switches it off.
    g = _linear([[1.0, 0.0], [0.0, 1.0]])
    f = _linear([[0.0, -100.0], [0.0, 100.0]])
    x0 = torch.tensor([[0.0, 0.0], [2.0, -1.0], [-0.5, 0.25]])
    x = translation_steps(g, f, x0, torch.ones(3, dtype=torch.long), torch.zeros(3, dtype=torch.long), steps=3,
                          step_size=0.1, lam=0.0, input_range=None)
    gap0 = (x0[:, 1] - x0[:, 0]).numpy()
    with torch.no_grad():
        p1 = g(x).softmax(dim=1)[:, 1].numpy()
    expected = 1 / (1 + np.exp(-(gap0 + 0.3 * np.sqrt(2))))
    np.testing.assert_allclose(p1, expected, rtol=1e-5)
    assert np.all(p1 > 1 / (1 + np.exp(-gap0)))


def test_both_terms_together_follow_the_sum_of_their_gradients():
    # g as above (target 1) plus lambda * f_0 with f_0 = x_2 and lambda = 1: at x0 = 0 the CE
    # gradient is p_0 (1, -1) = (0.5, -0.5), the f term adds (0, 1): total (0.5, 0.5), one step of 0.1
    # along -(1, 1)/sqrt(2).
    # Two identical rows: the loss is a sum over rows, so each row's step is the same as alone.
    g = _linear([[1.0, 0.0], [0.0, 1.0]])
    f = _linear([[0.0, 1.0], [0.0, 0.0]])
    x = translation_steps(g, f, torch.zeros(2, 2), torch.ones(2, dtype=torch.long), torch.zeros(2, dtype=torch.long),
                          steps=1, step_size=0.1, lam=1.0, input_range=None)
    np.testing.assert_allclose(x.numpy(), [[-0.1 / np.sqrt(2), -0.1 / np.sqrt(2)]] * 2, atol=1e-6)


def _steps_by_hand(g, f, x, target, seed_class, steps, eta, lam):
    """Eq. (2)'s normalised gradient steps written out with the full models, as a reference."""
    for _ in range(steps):
        x = x.detach().requires_grad_(True)
        loss = nn.functional.cross_entropy(g(x), target, reduction="sum")
        loss = loss + lam * f(x)[torch.arange(len(x)), seed_class].sum()
        (grad,) = torch.autograd.grad(loss, x)
        x = x - eta * grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return x.detach()


@pytest.mark.parametrize("lam,f_norm", [(0.0, (0.3, 0.2)), (0.5, (0.3, 0.2)), (1.0, (0.3, 0.2)),
                                        (0.5, (0.3, 0.4)), (0.5, (0.1, 0.2)), (0.5, None), (0.5, "g_identity")])
def test_translation_of_real_models_matches_eq2_by_hand(lam, f_norm):
    # g and f built like the pipeline's (an input normalisation, then the network): the translation
    # may share the normalisation between them when it is the same map, but must take the very
    # steps of eq. (2) also when f normalises differently or has no normalisation of its own.
    from m2m_pipeline.models import create_model

    torch.manual_seed(0)
    g = create_model("mlp", input_shape=(1, 4, 4), num_classes=3, mean=[0.3], std=[0.2], hidden=8).eval()
    if f_norm is None:
        f = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    elif f_norm == "g_identity":  # g without normalisation (an identity), f with its own
        f = create_model("mlp", input_shape=(1, 4, 4), num_classes=3, mean=[0.3], std=[0.2], hidden=8).eval()
        g.normalize = nn.Identity()
    else:
        f = create_model("mlp", input_shape=(1, 4, 4), num_classes=3, mean=[f_norm[0]], std=[f_norm[1]],
                         hidden=8).eval()
    x0 = torch.rand(4, 1, 4, 4)
    target, seed_class = torch.tensor([2, 2, 1, 2]), torch.tensor([0, 1, 0, 0])
    x = translation_steps(g, f, x0, target, seed_class, steps=3, step_size=0.1, lam=lam, input_range=None)
    np.testing.assert_allclose(x.numpy(), _steps_by_hand(g, f, x0, target, seed_class, 3, 0.1, lam).numpy(),
                               atol=1e-5)


def test_translation_clamps_to_the_input_range_after_each_step():
    # From (0.95, 0.5) a step of 0.1 along +x_1 (g target 0 with z = (x_1, -x_1)) reaches 1.05 and
    # is clamped to 1.0; x_2 does not move (zero gradient component).
    g = _linear([[1.0, 0.0], [-1.0, 0.0]])
    x = translation_steps(g, g, torch.tensor([[0.95, 0.5]]), torch.zeros(1, dtype=torch.long),
                          torch.ones(1, dtype=torch.long), steps=1, step_size=0.1, lam=0.0, input_range=(0.0, 1.0))
    np.testing.assert_allclose(x.numpy(), [[1.0, 0.5]], atol=1e-7)


# -- the gamma test and eq. (3) as a draw, at their boundaries -----------------------------------

def test_gamma_prob_rule_keeps_exactly_at_the_threshold():
    # the release: keep x* when softmax(g(x*))_k >= gamma (0.75 is exact in binary)
    prob = np.array([0.75, np.nextafter(0.75, 0.0), 0.8, 0.0])
    assert is_confident(prob, np.zeros(4), 0.75, "prob").tolist() == [True, False, True, False]


def test_gamma_loss_rule_keeps_exactly_at_the_threshold():
    # Algorithm 1, line 12: reject when L(g; x*, k) > gamma, so a loss equal to gamma is kept
    loss = np.array([0.25, np.nextafter(0.25, 1.0), 0.1, 3.0])
    assert is_confident(np.zeros(4), loss, 0.25, "loss").tolist() == [True, False, True, False]


def test_gamma_rule_name_is_checked():
    with pytest.raises(ValueError, match="gamma_on"):
        is_confident(np.zeros(1), np.zeros(1), 0.5, "probability")


def test_beta_draw_passes_strictly_below_eq3():
    # sizes 10 and 9, beta 0.5: P(accept) = 1 - 0.5^1 = 0.5; u = 0.5 fails, the float below passes
    counts = [10, 9]
    u = np.array([0.5, np.nextafter(0.5, 0.0), 0.0, 0.99])
    ok = passes_beta(u, counts, np.zeros(4, dtype=int), np.ones(4, dtype=int), 0.5)
    assert ok.tolist() == [False, True, True, False]
    # a seed no larger than the target never passes: 1 - beta^0 = 0
    assert not passes_beta(np.array([0.0]), counts, np.array([1]), np.array([0]), 0.5)[0]


def test_reason_priority_non_finite_then_gamma_then_beta():
    finite = np.array([True, True, True, False, True])
    confident = np.array([True, True, False, False, False])
    beta_ok = np.array([True, False, False, False, True])
    assert decide(finite=finite, confident=confident, beta_ok=beta_ok).tolist() == [
        REASONS["accepted"], REASONS["beta"], REASONS["gamma"], REASONS["non_finite"], REASONS["gamma"]]
    # the codes stored in pools (their meaning must not shift under existing pools)
    assert {k: REASONS[k] for k in ("accepted", "beta", "gamma", "non_finite", "no_seed")} == {
        "accepted": 0, "beta": 1, "gamma": 2, "non_finite": 3, "no_seed": 4}


def test_reason_codes_are_uint8_and_masks_may_be_zero_one():
    # the pool stores uint8 codes; 0/1 integer masks (as read back from a store) mean False/True
    reason = decide(finite=[1, 1, 1, 1, 0], confident=[0, 1, 1, 1, 1], beta_ok=[1, 1, 0, 1, 1],
                    in_range=[1, 0, 1, 1, 1])
    assert reason.dtype == np.uint8
    assert reason.tolist() == [REASONS["gamma"], REASONS["out_of_range"], REASONS["beta"], REASONS["accepted"],
                               REASONS["non_finite"]]
    assert decide(finite=[1, 1], confident=[1, 1], beta_ok=[1, 1], in_range=[0, 1]).tolist() == [
        REASONS["out_of_range"], REASONS["accepted"]]


def test_range_and_beta_tests_compare_in_float64():
    from m2m_pipeline.acceptance import within_range

    # float32(0.1) = 0.100000001490116 lies above the float64 bound 0.1: out of range. Compared in
    # float32 the bound would round to the same value and the row would pass.
    assert within_range(np.array([0.1], dtype=np.float32), 0.1).tolist() == [False]
    assert within_range(np.array([0.1], dtype=np.float64), 0.1).tolist() == [True]
    # sizes 2 vs 1, beta 0.9: P = 1 - 0.9 = 0.09999999999999998 in float64; float32(0.1) is above it
    assert passes_beta(np.array([0.1], dtype=np.float32), [2, 1], np.array([0]), np.array([1]), 0.9).tolist() == [False]


def test_out_of_range_rule_and_its_priority():
    from m2m_pipeline.acceptance import OUT_OF_RANGE_FACTOR, range_bound, within_range

    # the bound is 10x the data's largest absolute value; a row exactly at it stays inside
    assert OUT_OF_RANGE_FACTOR == 10.0
    assert range_bound(2.0) == 20.0 and range_bound(0.0) == pytest.approx(1e-11)
    assert within_range(np.array([20.0, np.nextafter(20.0, 21.0), 0.0, np.nan]), 20.0).tolist() == [
        True, False, True, True]
    # priority: non_finite > out_of_range > gamma > beta
    finite = np.array([False, True, True, True, True])
    in_range = np.array([False, False, True, True, True])
    confident = np.array([False, False, False, True, True])
    beta_ok = np.array([False, False, False, False, True])
    assert decide(finite=finite, confident=confident, beta_ok=beta_ok, in_range=in_range).tolist() == [
        REASONS["non_finite"], REASONS["out_of_range"], REASONS["gamma"], REASONS["beta"], REASONS["accepted"]]


@pytest.mark.parametrize("gamma_on,gamma,keep", [("prob", 0.5, True), ("prob", 0.5 + 1e-3, False),
                                                 ("loss", float(np.log(2)), True), ("loss", 0.69, False)])
def test_translator_applies_the_gamma_boundary(gamma_on, gamma, keep):
    # g flat with equal logits over two classes: softmax_k = 0.5 and CE = log 2 = 0.693147 for every
    # x*, whatever the steps do. Sizes 100 vs 1 and beta 0.5: eq. (3) accepts with 1 - 0.5^99 ~ 1.
    g = FlatG([0.0, 0.0]).eval()
    t = M2mTranslator(steps=1, step_size=0.1, lam=0.0, gamma=gamma, gamma_on=gamma_on, beta=0.5, input_range=None)
    res = t.translate(g, g, torch.zeros(3, 2), torch.ones(3, dtype=torch.long), torch.zeros(3, dtype=torch.long),
                      class_counts=[100, 1], noise=torch.zeros(3, 2), u_beta=torch.zeros(3))
    assert res.accepted.tolist() == [keep] * 3
    assert res.reason.tolist() == [REASONS["accepted"] if keep else REASONS["gamma"]] * 3
    np.testing.assert_allclose(res.prob_g.numpy(), 0.5, rtol=1e-6)
    np.testing.assert_allclose(res.loss_g.numpy(), np.log(2), rtol=1e-6)
    assert (t.n_attempts_, t.n_accepted_) == (3, 3 if keep else 0)
    assert t.accept_rate_ == (1.0 if keep else 0.0)


def test_translator_start_point_is_clamped_and_out_of_range_rows_rejected():
    # T = 0 steps: x* is the start point x0 + noise, clamped to the input range
    g = FlatG([0.0, 0.0]).eval()
    t = M2mTranslator(steps=0, step_size=0.1, lam=0.0, gamma=0.0, gamma_on="prob", beta=0.5, input_range=(0.0, 1.0))
    res = t.translate(g, g, torch.tensor([[0.9, 0.1], [0.5, 0.5]]), torch.ones(2, dtype=torch.long),
                      torch.zeros(2, dtype=torch.long), class_counts=[100, 1],
                      noise=torch.tensor([[0.5, -0.5], [0.25, -0.25]]), u_beta=torch.zeros(2))
    assert res.x.tolist() == [[1.0, 0.0], [0.75, 0.25]]
    # a row whose largest |value| exceeds max_abs is rejected as out_of_range; at max_abs it is kept
    t = M2mTranslator(steps=0, step_size=0.1, lam=0.0, gamma=0.0, gamma_on="prob", beta=0.5, input_range=None,
                      max_abs=2.0)
    res = t.translate(g, g, torch.tensor([[3.0, 0.0], [-2.0, 1.0], [0.0, -2.5]]), torch.ones(3, dtype=torch.long),
                      torch.zeros(3, dtype=torch.long), class_counts=[100, 1], noise=torch.zeros(3, 2),
                      u_beta=torch.zeros(3))
    assert res.reason.tolist() == [REASONS["out_of_range"], REASONS["accepted"], REASONS["out_of_range"]]
    # the counters add up over calls until reset
    t.translate(g, g, torch.zeros(1, 2), torch.ones(1, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                class_counts=[2, 1], noise=torch.zeros(1, 2), u_beta=torch.tensor([0.9]))  # 0.9 >= 1 - 0.5^1
    assert (t.n_attempts_, t.n_accepted_) == (4, 1)
    assert dict(t.reason_counts_) == {"out_of_range": 2, "accepted": 1, "beta": 1}
    assert t.reset().n_attempts_ == 0 and t.n_accepted_ == 0 and not t.reason_counts_
    assert np.isnan(t.accept_rate_)


def test_translator_clamps_every_step_and_rejects_an_infinite_loss():
    # g pushes x_1 up for target 0 (z = (x_1, -x_1)): from 0.95 two steps of 0.1 would reach 1.15,
    # the clamp after each step holds it at 1.0
    g = _linear([[1.0, 0.0], [-1.0, 0.0]])
    t = M2mTranslator(steps=2, step_size=0.1, lam=0.0, gamma=0.0, gamma_on="prob", beta=0.5, input_range=(0.0, 1.0))
    res = t.translate(g, g, torch.tensor([[0.95, 0.5]]), torch.zeros(1, dtype=torch.long), torch.ones(1, dtype=torch.long),
                      class_counts=[1, 100], noise=torch.zeros(1, 2), u_beta=torch.zeros(1))
    np.testing.assert_allclose(res.x.numpy(), [[1.0, 0.5]], atol=1e-7)
    # logits (3e38, -3e38) for target 1: x* and softmax_k = 0 are finite, but the cross entropy
    # 6e38 overflows float32 to inf, so the row is non_finite, never accepted (here gamma 0 would keep it)
    big = _linear([[3e38], [-3e38]])
    t = M2mTranslator(steps=0, step_size=0.1, lam=0.0, gamma=0.0, gamma_on="prob", beta=0.5, input_range=None)
    res = t.translate(big, big, torch.ones(1, 1), torch.ones(1, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                      class_counts=[100, 1], noise=torch.zeros(1, 1), u_beta=torch.zeros(1))
    assert torch.isfinite(res.x).all() and torch.isfinite(res.prob_g).all() and torch.isinf(res.loss_g).all()
    assert res.reason.tolist() == [REASONS["non_finite"]] and not res.accepted.any()


def test_translator_reports_loss_and_probability_per_row():
    # T = 0, g logits z = x (identity): row (0, 0) has CE log 2 and p = 1/2 for target 1; row (1, 0)
    # has CE log(1 + e) = 1.31326 and p = 1 / (1 + e) = 0.26894
    g = _linear([[1.0, 0.0], [0.0, 1.0]])
    t = M2mTranslator(steps=0, step_size=0.1, lam=0.0, gamma=0.0, gamma_on="prob", beta=0.5, input_range=None)
    res = t.translate(g, g, torch.tensor([[0.0, 0.0], [1.0, 0.0]]), torch.ones(2, dtype=torch.long),
                      torch.zeros(2, dtype=torch.long), class_counts=[100, 1], noise=torch.zeros(2, 2),
                      u_beta=torch.zeros(2))
    np.testing.assert_allclose(res.loss_g.numpy(), [np.log(2), np.log(1 + np.e)], rtol=1e-6)
    np.testing.assert_allclose(res.prob_g.numpy(), [0.5, 1 / (1 + np.e)], rtol=1e-6)
    # a single row of a single value still gets the range test
    t = M2mTranslator(steps=0, step_size=0.1, lam=0.0, gamma=0.0, gamma_on="prob", beta=0.5, input_range=None,
                      max_abs=2.0)
    res = t.translate(_linear([[1.0], [-1.0]]), _linear([[1.0], [-1.0]]), torch.tensor([[3.0]]),
                      torch.ones(1, dtype=torch.long), torch.zeros(1, dtype=torch.long), class_counts=[100, 1],
                      noise=torch.zeros(1, 1), u_beta=torch.zeros(1))
    assert res.reason.tolist() == [REASONS["out_of_range"]]


@pytest.mark.parametrize("kwargs", [dict(steps=0), dict(lam=0.0), dict(gamma=0.0), dict(gamma=1.0),
                                    dict(gamma_on="loss", gamma=0.0), dict(gamma_on="loss", gamma=50.0),
                                    dict(beta=0.0), dict(beta=1e-9), dict(beta=1 - 1e-9), dict(input_range=None),
                                    dict(input_range=(-1.0, -0.5)), dict(max_abs=1e-9)])
def test_translator_accepts_parameters_on_the_valid_side_of_each_bound(kwargs):
    M2mTranslator(**kwargs).check_params()


@pytest.mark.parametrize("kwargs,name", [
    (dict(steps=-1), "steps"), (dict(steps=2.0), "steps"), (dict(step_size=0.0), "step_size"),
    (dict(lam=-1e-9), "lam"), (dict(beta=-1e-9), "beta"), (dict(beta=1.0), "beta"),
    (dict(gamma_on="logit"), "gamma_on"), (dict(gamma=1.0 + 1e-9), "gamma"), (dict(gamma=-1e-9), "gamma"),
    (dict(gamma_on="loss", gamma=-1e-9), "gamma"), (dict(input_range=(1.0, 1.0)), "input_range"),
    (dict(step_size=float("inf")), "finite"), (dict(lam=float("nan")), "lam"),
    (dict(gamma_on="loss", gamma=float("inf")), "finite"), (dict(max_abs=0.0), "max_abs"),
    (dict(max_abs=float("inf")), "max_abs")])
def test_translator_refuses_parameters_beyond_each_bound(kwargs, name):
    with pytest.raises(ValueError, match=name):
        M2mTranslator(**kwargs).check_params()


def test_translator_defaults_are_sec_3_1():
    # T = 10, eta = 0.1, lambda = 0.5, gamma = 0.9 (the release's prob rule), beta = 0.999, inputs in [0, 1]
    assert M2mTranslator().get_params() == {"steps": 10, "step_size": 0.1, "lam": 0.5, "gamma": 0.9,
                                            "gamma_on": "prob", "beta": 0.999, "input_range": [0.0, 1.0]}
    assert M2mTranslator().max_abs is None


def _call(**over):
    g = FlatG([0.0, 0.0, 0.0]).eval()
    args = dict(x0=torch.zeros(2, 2), target=torch.tensor([2, 2]), seed_class=torch.tensor([0, 1]),
                class_counts=[100, 50, 10], noise=torch.zeros(2, 2), u_beta=torch.zeros(2))
    args.update(over)
    return M2mTranslator(steps=0, input_range=None).translate(g, g, args.pop("x0"), args.pop("target"),
                                                              args.pop("seed_class"), **args)


@pytest.mark.parametrize("over,match", [
    (dict(target=torch.tensor([2, 2, 2])), "shape"), (dict(seed_class=torch.tensor([0])), "shape"),
    (dict(u_beta=torch.zeros(3)), "shape"), (dict(noise=torch.zeros(2, 3)), "noise"),
    (dict(target=torch.tensor([2, -1])), "target classes"), (dict(target=torch.tensor([2, 3])), "target classes"),
    (dict(seed_class=torch.tensor([0, -1])), "seed classes"), (dict(seed_class=torch.tensor([0, 3])), "seed classes"),
    (dict(class_counts=[100, 10, 10]), "larger"),   # seed class 1 has as many samples as target 2
])
def test_translator_refuses_inconsistent_inputs(over, match):
    with pytest.raises(ValueError, match=match):
        _call(**over)
    _call()  # the unchanged call is valid


def test_translator_parameters_round_trip():
    t = M2mTranslator(steps=3, step_size=0.25, lam=0.5, gamma=0.75, gamma_on="loss", beta=0.9, input_range=(0.0, 2.0))
    assert t.get_params() == {"steps": 3, "step_size": 0.25, "lam": 0.5, "gamma": 0.75, "gamma_on": "loss",
                              "beta": 0.9, "input_range": [0.0, 2.0]}
    assert M2mTranslator(input_range=None).get_params()["input_range"] is None


# -- seed choice: batch scope (release) and dataset scope (Algorithm 1, eq. 5) -------------------

def _q_by_hand(counts: np.ndarray, k: int, beta: float) -> np.ndarray:
    """Eq. (5) written out here, independent of the code: (1 - beta^((N_k0 - N_k)^+)) / sum."""
    w = 1.0 - beta ** np.maximum(counts.astype(float) - counts[k], 0.0)
    return w / w.sum()


def _seed_class_counts_vs_expected(digits, scope: str, beta: float, epochs: int, uniform_alt: bool = False):
    counts = digits.class_counts
    k_all = len(counts)
    observed, expected, variance, alt = (np.zeros(k_all) for _ in range(4))
    q = {k: _q_by_hand(counts, k, beta) for k in range(k_all) if counts[k] < counts.max()}
    cfg = TranslationConfig(seed_scope=scope, beta=beta)
    for e in range(epochs):
        plan = make_plan(digits.train.y, counts, seed=0, epoch=e, order="balanced", attempts=True,
                         augment=digits.augment, batch_size=64)
        d = draw_slots(digits, plan, cfg, seed=0)
        slot_labels = digits.train.y[plan.order]
        for s, k, k0 in zip(d.slot, d.target, d.seed_class):
            if k0 < 0:  # no larger class (dataset) or no larger item in the batch: no seed, by design
                continue
            if scope == "batch":
                batch_labels = slot_labels[plan.batch_slots(int(s) // plan.batch_size)]
                w = q[int(k)][batch_labels]                         # Q(y_j | k) per batch item j
                p = np.bincount(batch_labels, weights=w, minlength=k_all) / w.sum()
                larger = (counts[batch_labels] > counts[k]).astype(float)
                p_alt = np.bincount(batch_labels, weights=larger, minlength=k_all) / larger.sum()
            else:
                p = q[int(k)]
                p_alt = (counts > counts[k]) / (counts > counts[k]).sum()
            observed[k0] += 1
            expected += p
            variance += p * (1 - p)
            alt += p_alt
    return observed, expected, np.sqrt(variance), alt


@pytest.mark.parametrize("scope", ["batch", "dataset"])
def test_seed_class_follows_q_statistically(digits, scope):
    # Over 40 epochs of attempts (about 7,000 draws) the count of seeds of each class k0 must lie within
    # 4 sigma of sum_i P_i(k0), where P_i is Q(y_j | k) over the attempt's batch items (batch scope)
    # or Q(k0 | k) itself (dataset scope). beta 0.99 makes Q far from uniform over larger classes:
    # the same bound rejects a uniform choice among larger classes / larger batch items.
    observed, expected, sigma, alt = _seed_class_counts_vs_expected(digits, scope, beta=0.99, epochs=40)
    assert observed.sum() > 5000
    assert np.all(np.abs(observed - expected) <= 4 * sigma + 1e-9), (observed, expected, sigma)
    assert np.any(np.abs(alt - expected) > 12 * sigma), "the bound cannot tell Q from a uniform choice"


def test_dataset_scope_seed_row_is_uniform_within_its_class(digits):
    # Algorithm 1, line 6: x0 uniformly random among the training samples of class k0. The mean
    # rank of the chosen row within its class, divided by the class size, is 1/2 (within 4 sigma of
    # a uniform's 1/sqrt(12 n)); a rule that always took the first or last rows fails.
    counts = digits.class_counts
    cfg = TranslationConfig(seed_scope="dataset", beta=0.99)
    ranks = []
    rows_of = [np.flatnonzero(digits.train.y == k) for k in range(len(counts))]
    for e in range(20):
        plan = make_plan(digits.train.y, counts, seed=0, epoch=e, order="balanced", attempts=True,
                         augment=digits.augment, batch_size=64)
        d = draw_slots(digits, plan, cfg, seed=0)
        for k0, idx in zip(d.seed_class, d.seed_index):
            members = rows_of[k0]
            ranks.append((np.searchsorted(members, idx) + 0.5) / len(members))
    ranks = np.array(ranks)
    assert abs(ranks.mean() - 0.5) <= 4 / np.sqrt(12 * len(ranks))


@pytest.mark.parametrize("scope", ["batch", "dataset"])
def test_seed_draws_carry_augmentation_and_respect_allowed_seeds(digits, scope):
    from m2m_pipeline.pools.draws import seed_subset_mask

    data = _augmented_digits(digits)
    counts = data.class_counts
    plan = make_plan(data.train.y, counts, seed=0, epoch=3, order="balanced", attempts=True, augment=data.augment,
                     batch_size=64)
    allowed = seed_subset_mask(data.train.y, len(counts), 5, seed=0)       # 5 seed rows per class
    assert allowed.sum() == 5 * len(counts)
    d = draw_slots(data, plan, TranslationConfig(seed_scope=scope, beta=0.99), seed=0, allowed_seeds=allowed)
    ok = d.seed_index >= 0
    assert ok.mean() > 0.5 and np.all(allowed[d.seed_index[ok]])
    assert np.all(d.seed_class[~ok] == -1) and not d.seed_aug[~ok].any()
    assert np.array_equal(d.target, data.train.y[plan.order[d.slot]])
    if scope == "batch":
        # x0 is the batch item as the batch holds it: the same row with the same augmentation
        for s, idx, aug in zip(d.slot[ok], d.seed_index[ok], d.seed_aug[ok]):
            batch = plan.batch_slots(int(s) // plan.batch_size)
            same = batch[plan.order[batch] == idx]
            assert any(np.array_equal(plan.aug[j], aug) for j in same)
    else:
        # its own augmentation draw: crops 0..2 and flips vary across seeds
        assert set(np.unique(d.seed_aug[ok][:, :2])) == {0, 1, 2} and set(np.unique(d.seed_aug[ok][:, 2])) == {0, 1}
    # u_beta: one uniform per attempt, in [0, 1)
    assert d.u_beta.shape == d.slot.shape and np.all((d.u_beta >= 0) & (d.u_beta < 1))
    # no allowed seed row at all: every attempt is no_seed
    none = draw_slots(data, plan, TranslationConfig(seed_scope=scope, beta=0.99), seed=0,
                      allowed_seeds=np.zeros(len(data.train.y), dtype=bool))
    assert np.all(none.seed_index == -1) and np.all(none.seed_class == -1)


def test_start_noise_has_the_radius_and_depends_only_on_the_slot():
    from m2m_pipeline.pools.draws import start_noise, start_noise_batch

    batch = start_noise_batch((1, 4, 4), 0.25, 7, 2, np.array([5, 0, 9]))
    assert batch.shape == (3, 1, 4, 4) and batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch.reshape(3, -1), axis=1), 0.25, rtol=1e-5)
    assert np.all(np.abs(batch) <= 0.25)
    np.testing.assert_array_equal(batch[2], start_noise((1, 4, 4), 0.25, 7, 2, 9))   # same slot, alone
    assert not np.array_equal(batch[0], batch[1])
    assert not np.array_equal(start_noise((1, 4, 4), 0.25, 7, 3, 9), batch[2])       # another epoch
    with pytest.raises(ValueError, match="non-negative"):
        start_noise_batch((2,), 0.1, 0, 0, np.array([-1]))


# -- prepared dataset round trip (a recipe with augmentation) ------------------------------------

def _tiny_augmented_data() -> PreparedData:
    rng = np.random.default_rng(3)

    def split(n):
        return Split(rng.integers(0, 256, size=(n, 3, 6, 6), dtype=np.uint8), rng.integers(0, 3, size=n))

    train = split(13)
    train.y[:3] = [0, 1, 2]  # every class present
    return PreparedData(name="tiny-aug", class_names=["cat", "dog", "eel"], train=train, val=split(5), test=split(7),
                        input_kind="image", input_range=(0.0, 1.0), mean=[0.5, 0.25, 0.125], std=[0.2, 0.3, 0.4],
                        augment={"crop_pad": 2, "flip": True}, preset="cifar",
                        meta={"rho": 100, "source": "synthetic", "sizes": [5, 4, 4]})


def test_prepared_round_trip_field_by_field(tmp_path):
    data = _tiny_augmented_data()
    write_prepared(tmp_path / "p", data, rows_per_shard=4)  # several shards per split
    back = read_prepared(tmp_path / "p")
    for name in ("train", "val", "test"):
        a, b = getattr(data, name), getattr(back, name)
        assert b.x.dtype == np.uint8 and b.y.dtype == np.int64, name
        assert b.x.shape == a.x.shape and np.array_equal(b.x, a.x), name
        assert np.array_equal(b.y, a.y), name
    assert back.name == "tiny-aug"
    assert back.class_names == ["cat", "dog", "eel"]
    assert back.input_kind == "image"
    assert back.input_range == (0.0, 1.0) and isinstance(back.input_range, tuple)
    assert back.mean == [0.5, 0.25, 0.125] and back.std == [0.2, 0.3, 0.4]
    assert back.augment == {"crop_pad": 2, "flip": True}
    assert type(back.augment["crop_pad"]) is int and type(back.augment["flip"]) is bool
    assert back.preset == "cifar"
    assert back.meta == {"rho": 100, "source": "synthetic", "sizes": [5, 4, 4]}
    assert back.fingerprint == data.fingerprint == back.compute_fingerprint()
    assert back.class_counts.tolist() == data.class_counts.tolist()
    # the augmentation read back reproduces the same training inputs for the same draws
    aug = np.array([[0, 4, 1], [2, 2, 0], [4, 0, 1]] + [[1, 3, 0]] * 10, dtype=np.int16)
    assert np.array_equal(apply_augment(back.train.x, aug, back.augment), apply_augment(data.train.x, aug, data.augment))
    # and it is not the identity: crop offset (0, 4) of a 2-padded image shifts it
    assert not np.array_equal(apply_augment(back.train.x, aug, back.augment), back.train.x)


def test_prepared_round_trip_of_unbounded_vectors(tmp_path):
    rng = np.random.default_rng(4)
    splits = {s: Split(rng.normal(size=(n, 5)).astype(np.float32), np.arange(n) % 2)
              for s, n in (("train", 6), ("val", 4), ("test", 4))}
    data = PreparedData(name="vec", class_names=["a", "b"], input_kind="vector", input_range=None, mean=[0.0] * 5,
                        std=[1.0] * 5, **splits)
    write_prepared(tmp_path / "v", data)
    back = read_prepared(tmp_path / "v")
    assert back.input_range is None and back.augment == {} and back.input_kind == "vector"
    assert back.train.x.dtype == np.float32 and np.array_equal(back.train.x, data.train.x)
    assert back.fingerprint == data.fingerprint


# -- training: best-validation tie rule and the rows read back from a pool -----------------------

def test_best_validation_tie_goes_to_the_last_epoch(tmp_path, digits, monkeypatch):
    # The release keeps the last epoch with the best validation bACC (">="). Scripted validation
    # bACC per epoch 60, 70, 70, 40: the best is epoch 2 (not 1, the first of the tie; not 3, the last).
    scripted = iter([60.0, 70.0, 70.0, 40.0])
    real = loop_mod.balanced_metrics

    def scripted_metrics(y_true, y_pred, class_counts):
        return {**real(y_true, y_pred, class_counts), "bacc": next(scripted)}

    monkeypatch.setattr(loop_mod, "balanced_metrics", scripted_metrics)
    preset = Preset(model="mlp", epochs=4, batch_size=512, warmup_epochs=1, model_args={"hidden": 8})
    res = loop_mod.fit(data=digits, preset=preset, method=get_method("RS"), seed=0, run_dir=tmp_path / "r",
                       end_epoch=4, device=CPU, progress=False)
    assert (res.best_epoch, res.best_val_bacc) == (2, 70.0)
    assert [h["val_bacc"] for h in res.history] == [60.0, 70.0, 70.0, 40.0]
    best = torch.load(res.best_path, map_location="cpu", weights_only=False)
    last = torch.load(res.last_path, map_location="cpu", weights_only=False)
    assert best["epoch"] == 3 and last["epoch"] == 4   # checkpoints store the next epoch to train


def _augmented_digits(digits) -> PreparedData:
    return replace(digits, augment={"crop_pad": 1, "flip": True}, fingerprint="")


def test_training_reads_label_input_and_slot_from_the_pool(tmp_path, digits, monkeypatch):
    # What f trains on in a translating epoch, recorded at f's input and at the loss, against the
    # pool's own columns: slot s of the stored plan holds either the accepted x* of the pool row
    # with slot s, labelled with that row's target k, or the real row order[s] with its stored
    # augmentation aug[s] and its own label.
    data = _augmented_digits(digits)
    seen_x, seen_y = [], []
    real_build, real_criterion = loop_mod.build_model, loop_mod.make_criterion

    def build_recording(config):
        model = real_build(config)
        model.register_forward_pre_hook(lambda m, args: seen_x.append(args[0].detach().clone()) if m.training else None)
        return model

    class RecordingLoss(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, logits, target):
            seen_y.append(target.detach().clone())
            return self.inner(logits, target)

    monkeypatch.setattr(loop_mod, "build_model", build_recording)
    monkeypatch.setattr(loop_mod, "make_criterion", lambda *a, **k: RecordingLoss(real_criterion(*a, **k)))
    from m2m_pipeline.training.checkpoint import model_config

    torch.manual_seed(0)
    g = real_build(model_config(data, "small_cnn", {"width": 4}, False)).eval()
    preset = Preset(model="small_cnn", epochs=2, batch_size=64, warmup_epochs=1, deferred_epoch=1,
                    model_args={"width": 4})
    # gamma 0 keeps every confident-or-not x*; beta 0.9 rejects some rows (small size gaps), so the
    # pool holds both accepted and rejected attempts.
    cfg = TranslationConfig(steps=2, step_size=0.5, beta=0.9, gamma=0.0, batch_size=50, rows_per_shard=64)
    swaps = TranslatedPools(g=g, data=data, cfg=cfg, seed=0, pools_dir=tmp_path / "pools",
                            batch_size=preset.batch_size, progress=False)
    loop_mod.fit(data=data, preset=preset, method=get_method("M2m"), seed=0, run_dir=tmp_path / "run", end_epoch=2,
                 swaps=swaps, device=CPU, progress=False)

    pool = open_pool(tmp_path / "pools" / "epoch_1")
    plan = pool.plan_arrays()
    rows = pool.rows(("slot", "target", "accepted"))
    rows["x"] = read_x(pool, data)   # x* as training reads it (decoded)
    bs = int(pool.attrs["train_batch_size"])
    n_slots = len(plan["order"])
    accepted_slots = rows["slot"][rows["accepted"]]
    assert 0 < len(accepted_slots) < len(rows["slot"])
    # the epoch-1 batches are the last ones f saw; batch b holds slots b*bs .. (b+1)*bs - 1
    n_batches = -(-n_slots // bs)
    assert len(seen_x) == len(seen_y) == 2 * n_batches
    x_seen = torch.cat(seen_x[n_batches:]).numpy()
    y_seen = torch.cat(seen_y[n_batches:]).numpy()
    assert len(x_seen) == n_slots

    order = plan["order"]
    want_x = data.to_float(apply_augment(data.train.x[order], plan["aug"], data.augment)).numpy()
    want_y = data.train.y[order].copy()
    for slot, target, x in zip(rows["slot"][rows["accepted"]], rows["target"][rows["accepted"]],
                               rows["x"][rows["accepted"]]):
        want_x[slot] = x
        want_y[slot] = target
    assert np.array_equal(y_seen, want_y)
    np.testing.assert_array_equal(x_seen, want_x)
    # the swapped rows are not the real ones, and the real ones carry the stored augmentation
    assert not np.array_equal(x_seen[accepted_slots], data.to_float(data.train.x[order[accepted_slots]]).numpy())
    flipped = np.flatnonzero(plan["aug"][:, 2] == 1)
    assert len(set(flipped) - set(accepted_slots.tolist())) > 0
