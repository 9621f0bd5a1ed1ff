"""Value tests of m2m_pipeline/training/loop.py (fast; used by the mutation run).

Every fit here trains the package's MLP (hidden 8) on the tiny vectors of tests/tiny.py (classes of
12, 6 and 3 training rows, 4 features) for at most 3 epochs on the CPU: well under a second each.
What the loop must do is checked against hand-stated numbers (learning rates, epochs, counters) or
against ``_reference_fit``, an independent restatement of the training loop written out here with
SGD, the plan and the loss classes used directly (no code of loop.py).
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from m2m_pipeline.datasets import PreparedData, Split
from m2m_pipeline.plan import apply_augment, make_plan
from m2m_pipeline.training import FitOptions, Preset
from m2m_pipeline.training import loop as loop_mod
from m2m_pipeline.training.checkpoint import build_model, load_checkpoint, model_config
from m2m_pipeline.training.losses import FocalLoss, LDAMLoss, WeightedCE, class_weights
from m2m_pipeline.training.methods import get_method
from m2m_pipeline.utils import M2mError, rng_for, state_hash

from tests.tiny import tiny_images, tiny_vectors

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these

CPU = torch.device("cpu")
KEYS = {"epoch", "lr", "n_attempts", "n_accepted", "n_used", "train_loss", "val_bacc", "val_gm"}


# -- predict --------------------------------------------------------------------------------------

class _ModeRecorder(nn.Module):
    """Logits = x @ W (4 features -> 3 classes); records the training flag and the batch sizes."""

    def __init__(self, weight):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(weight, dtype=torch.float32))
        self.modes, self.sizes = [], []

    def forward(self, x):
        self.modes.append(self.training)
        self.sizes.append(len(x))
        return x @ self.w


W3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def _vec_data(x_val) -> PreparedData:
    x_val = np.asarray(x_val, dtype=np.float32)
    tr = Split(np.eye(4, dtype=np.float32)[[0, 0, 1, 1, 2, 2]], [0, 0, 1, 1, 2, 2])
    return PreparedData(name="v", class_names=["a", "b", "c"], train=tr, val=Split(x_val, np.zeros(len(x_val))),
                        test=tr, input_kind="vector", input_range=None, mean=[0.0] * 4, std=[1.0] * 4)


def test_predict_is_the_argmax_in_batches_in_eval_mode_and_restores_the_mode():
    # logits = the first three features: argmax of (0.1, 0.5, 0.2) is 1, of (0.9, 0, 0) is 0, ...
    x = [[0.1, 0.5, 0.2, 9.0], [0.9, 0.0, 0.0, 9.0], [0.0, 0.0, 0.3, 9.0], [0.2, 0.1, 0.0, 9.0],
         [-1.0, -2.0, -0.5, 9.0]]
    data = _vec_data(x)
    model = _ModeRecorder(W3).train()
    pred = loop_mod.predict(model, data, data.val, batch_size=2)
    assert pred.tolist() == [1, 0, 2, 0, 2] and pred.dtype == np.int64
    assert model.sizes == [2, 2, 1]                   # 5 rows in batches of 2
    assert model.modes == [False, False, False]       # eval mode during the call
    assert model.training                             # and training mode again after it
    model.eval()
    assert loop_mod.predict(model, data, data.val, device=CPU).tolist() == [1, 0, 2, 0, 2]
    assert not model.training                          # an eval model stays in eval mode
    assert model.sizes[-1] == 5                        # default batch 1024: one batch


def test_predict_default_batch_size_is_1024():
    data = _vec_data(np.zeros((1025, 4)))
    model = _ModeRecorder(W3)
    assert loop_mod.predict(model, data, data.val).tolist() == [0] * 1025   # ties: argmax takes the first
    assert model.sizes == [1024, 1]


def test_predict_of_an_empty_split_is_an_empty_int64_array():
    data = _vec_data(np.zeros((0, 4)))
    model = _ModeRecorder(W3).train()
    pred = loop_mod.predict(model, data, data.val)
    assert pred.shape == (0,) and pred.dtype == np.int64
    assert model.sizes == [] and model.training


def test_predict_scales_uint8_images():
    # images are scaled to [0, 1] before the model: a pixel of 255 is 1.0
    data = tiny_images()
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            seen.append(x.clone())
            return torch.zeros(len(x), 3)

    loop_mod.predict(Probe(), data, data.val)
    np.testing.assert_array_equal(seen[0].numpy(), data.val.x.astype(np.float32) / 255.0)


# -- SMOTE ----------------------------------------------------------------------------------------

def _imblearn(x, y, k, seed):
    """imbalanced-learn's SMOTE on float32 rows, with the seed stream the package documents."""
    from imblearn.over_sampling import SMOTE

    state = int(rng_for(seed, "smote").integers(2**31 - 1))
    return SMOTE(k_neighbors=k, random_state=state).fit_resample(x.reshape(len(x), -1).astype(np.float32), y)


def test_smote_neighbours_shrink_to_the_smallest_class_minus_one():
    data = tiny_vectors()                              # classes 12, 6, 3: k = min(5, 3 - 1) = 2
    out = loop_mod.smote_split(data.train, data.class_counts, seed=4)
    xr, yr = _imblearn(data.train.x, data.train.y, 2, 4)
    np.testing.assert_array_equal(out.x, xr)
    np.testing.assert_array_equal(out.y, yr)
    assert np.bincount(out.y).tolist() == [12, 12, 12]  # balanced to the largest class
    assert out.x.dtype == np.float32 and out.x.shape == (36, 4)
    # an explicit k_neighbors below the bound is used as given
    out1 = loop_mod.smote_split(data.train, data.class_counts, seed=4, k_neighbors=1)
    np.testing.assert_array_equal(out1.x, _imblearn(data.train.x, data.train.y, 1, 4)[0])
    assert not np.array_equal(out1.x, out.x)


def test_smote_default_is_five_neighbours():
    data = tiny_vectors(counts=(14, 8, 7))             # min(5, 7 - 1) = 5
    out = loop_mod.smote_split(data.train, data.class_counts, seed=1)
    np.testing.assert_array_equal(out.x, _imblearn(data.train.x, data.train.y, 5, 1)[0])
    assert np.bincount(out.y).tolist() == [14, 14, 14]
    # the seed picks the draws
    other = loop_mod.smote_split(data.train, data.class_counts, seed=2)
    assert not np.array_equal(other.x, out.x)


def test_smote_with_two_rows_in_the_smallest_class_uses_one_neighbour():
    data = tiny_vectors(counts=(6, 2))                 # min(5, 2 - 1) = 1: allowed
    out = loop_mod.smote_split(data.train, data.class_counts, seed=0)
    np.testing.assert_array_equal(out.x, _imblearn(data.train.x, data.train.y, 1, 0)[0])
    with pytest.raises(M2mError, match="at least 2 training samples in every class"):
        loop_mod.smote_split(tiny_vectors(counts=(6, 1)).train, np.array([6, 1]), seed=0)


def test_smote_images_are_rounded_to_uint8():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], [6, 3])
    x = rng.integers(0, 256, size=(9, 1, 2, 3), dtype=np.uint8)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0, 255               # the ends of the pixel range survive
    out = loop_mod.smote_split(Split(x, y), np.array([6, 3]), seed=0)
    assert out.x.dtype == np.uint8 and out.x.shape == (12, 1, 2, 3)
    xr, yr = _imblearn(x, y, 2, 0)                      # min(5, 3 - 1) = 2
    want = np.rint(xr).reshape(12, 1, 2, 3)             # to the nearest integer, not truncated
    assert np.array_equal(out.x, want.astype(np.uint8)) and np.array_equal(out.y, yr)
    assert not np.array_equal(xr, np.rint(xr))          # SMOTE made fractional pixels ...
    assert not np.array_equal(out.x, np.floor(xr).reshape(12, 1, 2, 3).astype(np.uint8))  # ... rounded
    np.testing.assert_array_equal(out.x[:9], x)        # real rows unchanged, 0 and 255 included


# -- batch_inputs ---------------------------------------------------------------------------------

def test_batch_inputs_real_rows_carry_the_planned_augmentation_and_swaps_their_row():
    data = tiny_images()                                # 18 uint8 images 3x4x4, crop_pad 1 + flip
    plan = make_plan(data.train.y, data.class_counts, seed=0, epoch=2, order="shuffle", attempts=False,
                     augment=data.augment, batch_size=4)
    slots = np.array([4, 5, 6, 7])
    sw_x = np.full((3, 4, 4), 0.25, dtype=np.float64)  # float64 pool row: used as float32
    swaps = {6: SimpleNamespace(x=sw_x, label=np.int64(2)), 11: SimpleNamespace(x=sw_x * 2, label=0)}
    x, y = loop_mod.batch_inputs(data, data.train, plan, slots, swaps)
    rows = plan.order[slots]
    want = apply_augment(data.train.x[rows], plan.aug[slots], data.augment).astype(np.float32) / 255.0
    want[2] = 0.25                                      # slot 6 is the batch's third row
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), want)
    want_y = data.train.y[rows].copy()
    want_y[2] = 2
    assert y.tolist() == want_y.tolist()
    # without swaps (and with swaps of other slots only) the batch is the real rows
    for sw in ({}, {11: swaps[11]}):
        x0, y0 = loop_mod.batch_inputs(data, data.train, plan, slots, sw)
        np.testing.assert_array_equal(x0.numpy(), apply_augment(data.train.x[rows], plan.aug[slots],
                                                                 data.augment).astype(np.float32) / 255.0)
        assert y0.tolist() == data.train.y[rows].tolist()


def test_batch_inputs_swaps_several_slots():
    data = tiny_vectors()
    plan = make_plan(data.train.y, data.class_counts, seed=1, epoch=0, order="balanced", attempts=False,
                     augment={}, batch_size=8)
    slots = plan.batch_slots(1)                        # slots 8..15
    swaps = {8: SimpleNamespace(x=[1, 2, 3, 4], label=1), 15: SimpleNamespace(x=[5, 6, 7, 8], label=2)}
    x, y = loop_mod.batch_inputs(data, data.train, plan, slots, swaps)
    want = data.train.x[plan.order[slots]].copy()
    want[0], want[7] = [1, 2, 3, 4], [5, 6, 7, 8]
    np.testing.assert_array_equal(x.numpy(), want)
    want_y = data.train.y[plan.order[slots]].copy()
    want_y[0], want_y[7] = 1, 2
    assert y.tolist() == want_y.tolist()


# -- run_status and write_history -----------------------------------------------------------------

def test_run_status_missing_corrupt_and_valid(tmp_path):
    assert loop_mod.COMPLETE_MARKER == "complete.json"
    assert loop_mod.run_status(tmp_path) is None                      # no marker
    assert loop_mod.run_status(tmp_path / "nowhere") is None           # no folder
    (tmp_path / "complete.json").write_text('{"method": "ERM", ')      # cut short
    assert loop_mod.run_status(tmp_path) is None
    (tmp_path / "complete.json").write_text('{"method": "ERM", "seed": 3}')
    assert loop_mod.run_status(str(tmp_path)) == {"method": "ERM", "seed": 3}
    d = tmp_path / "d"
    (d / "complete.json").mkdir(parents=True)                          # not a file
    assert loop_mod.run_status(d) is None
    (tmp_path / "complete.json").write_bytes(b"\xff\xfe\x00")          # not text
    assert loop_mod.run_status(tmp_path) is None


def test_write_history_drops_dict_fields(tmp_path):
    history = [{"epoch": 0, "lr": 0.05, "val_bacc": 50.0, "pool": {"a": 1}, "name": "x", "ok": None},
               {"epoch": 1, "lr": 0.1, "val_bacc": 60.0, "pool": {}}]
    path = tmp_path / "deep" / "er" / "history.json"      # parents are made
    loop_mod.write_history(path, history)
    rows = [{"epoch": 0, "lr": 0.05, "val_bacc": 50.0, "name": "x", "ok": None},
            {"epoch": 1, "lr": 0.1, "val_bacc": 60.0}]
    assert json.loads(path.read_text()) == rows
    assert path.read_text() == json.dumps(rows, indent=1)
    assert "pool" in history[0]                            # the caller's records are not changed
    loop_mod.write_history(str(tmp_path / "h.json"), [])
    assert (tmp_path / "h.json").read_text() == "[]"


# -- fit: an independent restatement of the loop ----------------------------------------------------

def _preset(**kw) -> Preset:
    # lr 0.1, 2 warm-up epochs: epoch 0 -> 0.1 * 1/2 = 0.05, epoch 1 -> 0.1 * 2/2 = 0.1; milestone 2 with
    # factor 0.5: epoch 2 -> 0.05. Momentum and weight decay away from the defaults (0.9, 2e-4).
    args = dict(model="mlp", epochs=3, batch_size=8, lr=0.1, warmup_epochs=2, milestones=(2,), lr_factor=0.5,
                momentum=0.5, weight_decay=0.01, deferred_epoch=1, model_args={"hidden": 8})
    return Preset(**{**args, **kw})


LRS = [0.05, 0.1, 0.05]
OPTIONS = FitOptions(focal_gamma=2.0, cb_beta=0.99, ldam_max_margin=0.3, ldam_s=10.0, weight_reduction="normalized",
                     smote_k_neighbors=1)


def _criterion(method: str, epoch: int, counts):
    """The loss of ``method`` at ``epoch`` (deferred epoch 1) with OPTIONS, stated per method."""
    deferred = epoch >= 1
    if method in ("ERM", "RS", "DRS", "SMOTE", "M2m"):
        return WeightedCE(None, "normalized")
    if method == "RW":
        return WeightedCE(class_weights("inverse", counts), "normalized")
    if method == "CB-RW":
        return WeightedCE(class_weights("effective", counts, beta=0.99), "normalized")
    if method == "DRW":
        return WeightedCE(class_weights("effective", counts, beta=0.99) if deferred else None, "normalized")
    if method == "Focal":
        return FocalLoss(2.0, None, "normalized")
    if method == "LDAM":
        return LDAMLoss(counts, max_margin=0.3, s=10.0, weight=None, reduction="normalized")
    if method == "LDAM-DRW":
        w = class_weights("effective", counts, beta=0.99) if deferred else None
        return LDAMLoss(counts, max_margin=0.3, s=10.0, weight=w, reduction="normalized")
    raise AssertionError(method)


def _order(method: str, epoch: int) -> str:
    if method == "RS" or (method in ("DRS", "M2m") and epoch >= 1):
        return "balanced"
    return "shuffle"


def _reference_fit(data, method: str, *, seed: int = 0, end: int = 3, batch_size: int = 8, train=None):
    """Train the MLP as the loop should: init from the "init" stream, SGD(momentum 0.5, weight decay
    0.01), lr of LRS per epoch, the epoch's plan, batches of one row skipped, the slot-weighted mean
    loss and the validation predictions after every epoch."""
    train = train if train is not None else data.train
    counts = data.class_counts
    torch.manual_seed(int(rng_for(seed, "init").integers(2**31 - 1)))
    model = build_model(model_config(data, "mlp", {"hidden": 8}, method.startswith("LDAM")))
    opt = torch.optim.SGD(model.parameters(), lr=123.0, momentum=0.5, weight_decay=0.01)
    rows_out = []
    for epoch in range(end):
        for group in opt.param_groups:
            group["lr"] = LRS[epoch]
        plan = make_plan(train.y, np.bincount(train.y), seed=seed, epoch=epoch, order=_order(method, epoch),
                         attempts=False, augment={}, batch_size=batch_size)
        crit = _criterion(method, epoch, counts)
        model.train()
        total, seen = 0.0, 0
        for b in range(plan.n_batches):
            slots = plan.batch_slots(b)
            if len(slots) == 1:
                continue
            rows = plan.order[slots]
            loss = crit(model(torch.from_numpy(train.x[rows])), torch.from_numpy(train.y[rows]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, seen = total + loss.item() * len(slots), seen + len(slots)
        model.eval()
        with torch.no_grad():
            pred = model(torch.from_numpy(data.val.x)).argmax(1).numpy()
        rows_out.append({"train_loss": total / seen, "pred": pred, "n_seen": seen})
    return model, rows_out


class _ScriptedMetrics:
    """Stands in for balanced_metrics in the loop: records what it is given, answers scripted values."""

    def __init__(self, baccs, gms=None):
        self.baccs, self.gms = list(baccs), list(gms or [0.5 * b for b in baccs])
        self.calls = []

    def __call__(self, y_true, y_pred, class_counts):
        self.calls.append((np.asarray(y_true).copy(), np.asarray(y_pred).copy(), np.asarray(class_counts).copy()))
        i = len(self.calls) - 1
        return {"bacc": self.baccs[i], "gm": self.gms[i]}


def _fit(data, method, run_dir, *, end_epoch=3, preset=None, options=OPTIONS, **kw):
    return loop_mod.fit(data=data, preset=preset or _preset(), method=get_method(method), seed=kw.pop("seed", 0),
                        run_dir=run_dir, end_epoch=end_epoch, options=options, device=CPU, progress=False, **kw)


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


def _assert_same_weights(model_state, ref_model):
    ref = ref_model.state_dict()
    assert set(model_state) == set(ref)
    for k, v in ref.items():
        torch.testing.assert_close(model_state[k], v, rtol=1e-6, atol=1e-7, msg=k)


@pytest.mark.parametrize("method", ["ERM", "RS", "RW", "CB-RW", "DRS", "DRW", "Focal", "LDAM", "LDAM-DRW"])
def test_fit_trains_as_the_restated_loop(tmp_path, monkeypatch, method):
    data = tiny_vectors()
    metrics = _ScriptedMetrics([10.0, 30.0, 20.0])
    monkeypatch.setattr(loop_mod, "balanced_metrics", metrics)
    res = _fit(data, method, tmp_path / "run")
    ref, ref_rows = _reference_fit(data, method)
    last = _load(res.last_path)
    _assert_same_weights(last["model_state"], ref)
    assert last["config"]["norm_last"] is method.startswith("LDAM")
    # what validation was given: the labels, the epoch's predictions, the training class sizes
    for (y_true, y_pred, counts), row in zip(metrics.calls, ref_rows, strict=True):
        assert y_true.tolist() == data.val.y.tolist() and counts.tolist() == [12, 6, 3]
        assert y_pred.tolist() == row["pred"].tolist()
    assert [h["epoch"] for h in res.history] == [0, 1, 2]
    assert [h["lr"] for h in res.history] == pytest.approx(LRS, rel=1e-12)
    assert [h["train_loss"] for h in res.history] == pytest.approx([r["train_loss"] for r in ref_rows], rel=1e-5)
    assert [h["val_bacc"] for h in res.history] == [10.0, 30.0, 20.0]
    assert [h["val_gm"] for h in res.history] == [5.0, 15.0, 10.0]
    # epoch 1 is the best (30): best.pt stores epoch 1 + 1 = 2, last.pt the end epoch 3
    assert (res.best_epoch, res.best_val_bacc) == (1, 30.0)
    assert _load(res.best_path)["epoch"] == 2 and last["epoch"] == 3


def test_fit_history_records_and_checkpoint_contents(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([40.0, 40.0, 50.0]))
    preset = _preset()
    res = _fit(data, "ERM", tmp_path / "run", params={"note": "x"}, seed=3)
    for i, h in enumerate(res.history):
        assert set(h) == KEYS
        assert (h["n_attempts"], h["n_accepted"], h["n_used"]) == (0, 0, 0)   # no pool: zeros
        assert h["epoch"] == i
    assert loop_mod.POOL_COUNTERS == ("n_attempts", "n_accepted", "n_used")
    last, best = _load(res.last_path), _load(res.best_path)
    assert res.last_path == tmp_path / "run" / "last.pt" and res.best_path == tmp_path / "run" / "best.pt"
    assert last["params"] == {"method": "ERM", "seed": 3, "preset": preset.to_dict(), "note": "x"}
    assert last["dataset_fingerprint"] == data.fingerprint
    assert last["config"] == model_config(data, "mlp", {"hidden": 8}, False)
    assert last["extra"] == {"history": res.history, "best_val_bacc": 50.0, "best_epoch": 2}
    assert best["epoch"] == 3 and best["extra"]["best_epoch"] == 2
    # the optimizer state of the last epoch: lr of epoch 2, momentum and weight decay from the preset
    (group,) = last["optimizer_state"]["param_groups"]
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.5, 0.01)
    # the completion marker names the run and hashes the final weights
    status = loop_mod.run_status(tmp_path / "run")
    assert status == {"method": "ERM", "seed": 3, "end_epoch": 3, "best_epoch": 2,
                      "weights_hash": state_hash(last["model_state"])}
    assert (tmp_path / "run" / "complete.json").read_text() == json.dumps(status, indent=1)   # readable


def test_fit_best_checkpoint_is_the_best_epochs_weights(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([70.0, 20.0, 30.0]))
    res = _fit(data, "ERM", tmp_path / "run")
    ref1, _ = _reference_fit(data, "ERM", end=1)
    best = _load(res.best_path)
    assert (res.best_epoch, res.best_val_bacc, best["epoch"]) == (0, 70.0, 1)
    _assert_same_weights(best["model_state"], ref1)
    assert best["extra"]["history"] == res.history[:1]


def test_fit_single_row_batches_are_skipped_and_two_row_batches_trained(tmp_path, monkeypatch):
    # 21 rows in batches of 10: 10, 10 and a batch of one, skipped (20 slots seen per epoch);
    # 22 rows: 10, 10, 2, all trained (22 slots).
    sizes = []
    real = loop_mod.make_criterion

    class Recording(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, logits, target):
            sizes.append(len(target))
            return self.inner(logits, target)

    monkeypatch.setattr(loop_mod, "make_criterion", lambda *a, **k: Recording(real(*a, **k)))
    for counts, want in (((12, 6, 3), [10, 10]), ((12, 6, 4), [10, 10, 2])):
        sizes.clear()
        data = tiny_vectors(counts=counts)
        res = _fit(data, "ERM", tmp_path / str(sum(counts)), preset=_preset(batch_size=10))
        assert sizes == want * 3
        _, ref_rows = _reference_fit(data, "ERM", batch_size=10)
        assert [r["n_seen"] for r in ref_rows] == [sum(want)] * 3
        assert [h["train_loss"] for h in res.history] == pytest.approx([r["train_loss"] for r in ref_rows], rel=1e-5)


def test_fit_smote_trains_on_the_oversampled_split(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0, 2.0, 3.0]))
    res = _fit(data, "SMOTE", tmp_path / "run")               # OPTIONS: smote_k_neighbors 1
    xr, yr = _imblearn(data.train.x, data.train.y, 1, 0)
    ref, ref_rows = _reference_fit(data, "SMOTE", train=Split(xr, yr))
    _assert_same_weights(_load(res.last_path)["model_state"], ref)
    assert [r["n_seen"] for r in ref_rows] == [36] * 3          # 3 x 12 rows, no single-row batch
    assert [h["train_loss"] for h in res.history] == pytest.approx([r["train_loss"] for r in ref_rows], rel=1e-5)


# -- fit: resume, warm start, the keep-the-start case -----------------------------------------------

def test_resume_from_last_reaches_the_uninterrupted_run(tmp_path, monkeypatch):
    # validation bACC 50, 80 | 60: the best (epoch 1) was seen before the interruption and must
    # survive it; the resumed epoch 2 (60 < 80) does not replace it.
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([50.0, 80.0, 60.0]))
    full = _fit(data, "DRW", tmp_path / "full")
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([50.0, 80.0]))
    part = _fit(data, "DRW", tmp_path / "part", end_epoch=2)
    assert _load(part.last_path)["epoch"] == 2
    start = load_checkpoint(part.last_path, data=data)
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([60.0]))
    res = _fit(data, "DRW", tmp_path / "part", start=start, resume=True)
    a, b = _load(full.last_path), _load(res.last_path)
    for k, v in a["model_state"].items():
        assert torch.equal(v, b["model_state"][k]), k
    assert a["optimizer_state"]["state"].keys() == b["optimizer_state"]["state"].keys()
    for k, st in a["optimizer_state"]["state"].items():   # the momentum buffers went on, too
        assert torch.equal(st["momentum_buffer"], b["optimizer_state"]["state"][k]["momentum_buffer"])
    assert res.history == full.history and len(res.history) == 3
    assert (res.best_epoch, res.best_val_bacc) == (1, 80.0) == (full.best_epoch, full.best_val_bacc)
    assert _load(res.best_path)["epoch"] == 2                 # still the best.pt written before the break
    assert b["extra"]["best_epoch"] == 1 and b["extra"]["best_val_bacc"] == 80.0
    assert loop_mod.run_status(tmp_path / "part") == loop_mod.run_status(tmp_path / "full")


def test_warm_start_continues_the_weights_but_never_selects_the_warm_phase(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([90.0]))
    warm = _fit(data, "ERM", tmp_path / "warm", end_epoch=1)   # the warm phase: epoch 0, bACC 90
    start = load_checkpoint(warm.last_path, data=data)
    # the deferred phase scores far below the warm phase: its best is still one of its own epochs
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([10.0, 5.0]))
    res = _fit(data, "DRW", tmp_path / "drw", start=start)
    assert (res.best_epoch, res.best_val_bacc) == (1, 10.0)
    assert [h["epoch"] for h in res.history] == [0, 1, 2]      # the warm history comes first
    assert res.history[0] == warm.history[0]
    assert [h["val_bacc"] for h in res.history] == [90.0, 10.0, 5.0]
    assert _load(res.best_path)["epoch"] == 2 and _load(res.last_path)["epoch"] == 3
    assert _load(res.last_path)["extra"]["history"] == res.history      # this run's record, not the start's
    # the warm start plus epochs 1, 2 are the DRW run from scratch (the same plan and init)
    ref, _ = _reference_fit(data, "DRW")
    _assert_same_weights(_load(res.last_path)["model_state"], ref)
    assert loop_mod.run_status(tmp_path / "drw")["best_epoch"] == 1


def test_warm_start_at_the_end_epoch_keeps_the_start_as_last(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([90.0, 70.0]))
    warm = _fit(data, "ERM", tmp_path / "warm", end_epoch=2)
    start = load_checkpoint(warm.last_path, data=data)
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([]))   # nothing is evaluated
    res = _fit(data, "DRW", tmp_path / "drw", start=start, end_epoch=2)
    assert res.history == warm.history and (res.best_epoch, res.best_val_bacc) == (-1, -1.0)
    last, best = _load(res.last_path), _load(res.best_path)
    assert last["epoch"] == 2 and last["extra"] == start["extra"]
    assert last["params"]["method"] == "DRW" and last["config"] == start["config"]
    assert last["dataset_fingerprint"] == data.fingerprint
    assert last["optimizer_state"]["param_groups"] == start["optimizer_state"]["param_groups"]
    for k, st in start["optimizer_state"]["state"].items():
        assert torch.equal(last["optimizer_state"]["state"][k]["momentum_buffer"], st["momentum_buffer"])
    for k, v in start["model_state"].items():
        assert torch.equal(last["model_state"][k], v), k
    assert (tmp_path / "drw" / "best.pt").read_bytes() == (tmp_path / "drw" / "last.pt").read_bytes()
    assert best["epoch"] == 2
    assert loop_mod.run_status(tmp_path / "drw") == {
        "method": "DRW", "seed": 0, "end_epoch": 2, "best_epoch": -1, "weights_hash": state_hash(start["model_state"])}


def test_warm_start_of_the_other_loss_is_refused(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0] * 6))
    ce = load_checkpoint(_fit(data, "ERM", tmp_path / "ce", end_epoch=1).last_path)
    ldam = load_checkpoint(_fit(data, "LDAM", tmp_path / "ldam", end_epoch=1).last_path)
    with pytest.raises(M2mError, match="LDAM-DRW needs a LDAM warm checkpoint"):
        _fit(data, "LDAM-DRW", tmp_path / "a", start=ce)
    with pytest.raises(M2mError, match="DRW needs a CE warm checkpoint"):
        _fit(data, "DRW", tmp_path / "b", start=ldam)
    _fit(data, "LDAM-DRW", tmp_path / "c", start=ldam, end_epoch=2)   # the matching loss is fine


def test_fit_refuses_end_epochs_outside_the_start_and_the_preset(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0] * 9))
    with pytest.raises(M2mError, match="cannot train ERM from epoch 0 to 4 .the preset has 3 epochs"):
        _fit(data, "ERM", tmp_path / "a", end_epoch=4)
    start = load_checkpoint(_fit(data, "ERM", tmp_path / "b", end_epoch=2).last_path)
    with pytest.raises(M2mError, match="cannot train DRW from epoch 2 to 1"):
        _fit(data, "DRW", tmp_path / "c", start=start, end_epoch=1)
    # the bounds themselves are allowed: end at the preset's last epoch, or at the start's epoch
    assert len(_fit(data, "DRW", tmp_path / "d", start=start, end_epoch=3).history) == 3
    # from scratch, at least one epoch: a run of none would have no checkpoint to select
    with pytest.raises(M2mError, match="cannot train ERM from epoch 0 to 0"):
        _fit(data, "ERM", tmp_path / "e", end_epoch=0)
    assert not (tmp_path / "e").exists()   # refused before anything is written
    assert len(_fit(data, "ERM", tmp_path / "f", end_epoch=1).history) == 1


def test_a_preset_needs_two_rows_a_batch():
    # one-row batches are skipped (batch norm cannot train on them), so batch_size 1 would train nothing
    with pytest.raises(M2mError, match="batch_size must be >= 2, got 1"):
        _preset(batch_size=1)
    assert _preset(batch_size=2).batch_size == 2


def test_a_rerun_removes_the_completion_marker_first(tmp_path, monkeypatch):
    data = tiny_vectors(input_range=None)
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0] * 3))
    _fit(data, "ERM", tmp_path / "run", end_epoch=1)
    marker = loop_mod.run_status(tmp_path / "run")
    assert marker is not None
    # a re-run refused for its arguments touches nothing: the finished run stays finished
    with pytest.raises(M2mError, match="cannot train"):
        _fit(data, "ERM", tmp_path / "run", end_epoch=9)
    assert loop_mod.run_status(tmp_path / "run") == marker
    # a re-run that starts training and then fails leaves no marker behind (its last.pt is not the run's)
    data.train.x[5, 0] = np.nan
    with pytest.raises(M2mError, match="non-finite"):
        _fit(data, "ERM", tmp_path / "run", end_epoch=1)
    assert not (tmp_path / "run" / "complete.json").exists()


def test_a_non_finite_loss_stops_the_run(tmp_path):
    data = tiny_vectors(input_range=None)
    data.train.x[5, 0] = np.nan
    with pytest.raises(M2mError, match="ERM: the training loss became non-finite at epoch 0"):
        _fit(data, "ERM", tmp_path / "run", options=None)
    assert not (tmp_path / "run" / "last.pt").exists() and not (tmp_path / "run" / "complete.json").exists()


# -- fit with a swap source (M2m) -------------------------------------------------------------------

class _FakeSwaps:
    """A swap source: balanced plans, the first slot of every batch swapped for a constant row of
    class 2, and fixed counters."""

    def __init__(self, data, batch_size=8):
        self.data, self.batch_size, self.calls = data, batch_size, []

    def begin_epoch(self, epoch, model):
        self.calls.append(("begin", epoch, isinstance(model, nn.Module)))
        plan = make_plan(self.data.train.y, self.data.class_counts, seed=0, epoch=epoch, order="balanced",
                         attempts=False, augment={}, batch_size=self.batch_size)
        return plan, {"n_attempts": 7, "pool": {"epoch": epoch}}

    def batch_swaps(self, slots, model):
        self.calls.append(("batch", int(slots[0]), isinstance(model, nn.Module)))
        return {int(slots[0]): SimpleNamespace(x=np.full(4, 0.75, np.float32), label=2)}

    def end_epoch(self, model):
        self.calls.append(("end", isinstance(model, nn.Module)))
        return {"n_accepted": 3, "n_used": 2}


def test_fit_takes_plans_rows_and_counters_from_the_swap_source(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0, 2.0, 3.0]))
    seen = []
    real = loop_mod.build_model

    def build_recording(config):
        model = real(config)
        model.register_forward_pre_hook(lambda m, a: seen.append(a[0].clone()) if m.training else None)
        return model

    targets = []
    real_crit = loop_mod.make_criterion

    class Recording(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, logits, target):
            targets.append(target.clone())
            return self.inner(logits, target)

    monkeypatch.setattr(loop_mod, "build_model", build_recording)
    monkeypatch.setattr(loop_mod, "make_criterion", lambda *a, **k: Recording(real_crit(*a, **k)))
    swaps = _FakeSwaps(data)
    res = _fit(data, "M2m", tmp_path / "run", swaps=swaps)
    # deferred epoch 1: epoch 0 trains without the source, epochs 1 and 2 with it (21 slots: 8, 8, 5)
    per_epoch = [("begin", None, True), ("batch", 0, True), ("batch", 8, True), ("batch", 16, True), ("end", True)]
    assert swaps.calls == [(c[0], e, c[2]) if c[0] == "begin" else c for e in (1, 2) for c in per_epoch]
    assert [(h["n_attempts"], h["n_accepted"], h["n_used"]) for h in res.history] == [(0, 0, 0), (7, 3, 2), (7, 3, 2)]
    assert [h["pool"] for h in res.history[1:]] == [{"epoch": 1}, {"epoch": 2}]
    assert "pool" not in res.history[0]
    # the swapped first row of every batch in epochs 1 and 2: x = 0.75 everywhere, label 2
    assert len(seen) == len(targets) == 9
    for x, y in zip(seen[3:], targets[3:]):
        assert x[0].tolist() == [0.75] * 4 and int(y[0]) == 2
    for x, y in zip(seen[:3], targets[:3]):      # epoch 0: real rows only
        assert not any(row.tolist() == [0.75] * 4 for row in x)
    # and the rows of epoch 1 are the source's balanced plan
    plan1 = make_plan(data.train.y, data.class_counts, seed=0, epoch=1, order="balanced", attempts=False,
                      augment={}, batch_size=8)
    want = data.train.x[plan1.order].copy()
    want[[0, 8, 16]] = 0.75
    np.testing.assert_array_equal(torch.cat(seen[3:6]).numpy(), want)


def test_a_pool_method_without_a_swap_source_is_refused(tmp_path):
    data = tiny_vectors()
    with pytest.raises(M2mError, match="method M2m trains on pool rows: it needs a swap source"):
        _fit(data, "M2m", tmp_path / "run")
    with pytest.raises(M2mError, match="method M2m-Clean trains on pool rows"):
        _fit(data, "M2m-Clean", tmp_path / "run")
    assert not (tmp_path / "run").exists()      # refused before any output


# -- fit: defaults, boundaries of the best-epoch rule, devices ---------------------------------------

def test_fit_without_a_device_uses_the_default_device(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0]))
    res = loop_mod.fit(data=data, preset=_preset(), method=get_method("ERM"), seed=0, run_dir=tmp_path / "a" / "b",
                       end_epoch=1, progress=False)          # nested run folder: its parents are made
    assert res.last_path == tmp_path / "a" / "b" / "last.pt" and loop_mod.run_status(tmp_path / "a" / "b")


def test_a_zero_validation_bacc_still_selects_an_epoch(tmp_path, monkeypatch):
    # bACC 0 is a valid score (no class recalled) and beats "no epoch yet" (-1): the last of the tied
    # epochs is the best, from scratch and after a warm start alike.
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([0.0, 0.0]))
    res = _fit(data, "ERM", tmp_path / "scratch", end_epoch=2)
    assert (res.best_epoch, res.best_val_bacc) == (1, 0.0)
    assert _load(res.best_path)["epoch"] == 2
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([0.0]))
    warm = _fit(data, "DRW", tmp_path / "warm", start=load_checkpoint(res.last_path), end_epoch=3)
    assert (warm.best_epoch, warm.best_val_bacc) == (2, 0.0)
    assert _load(warm.best_path)["epoch"] == 3


def test_fit_evaluates_in_batches_of_the_presets_eval_batch_size(tmp_path, monkeypatch):
    data = tiny_vectors()                                  # 6 validation rows
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0, 2.0]))
    eval_sizes = []
    real = loop_mod.build_model

    def build_recording(config):
        model = real(config)
        model.register_forward_pre_hook(lambda m, a: None if m.training else eval_sizes.append(len(a[0])))
        return model

    monkeypatch.setattr(loop_mod, "build_model", build_recording)
    _fit(data, "ERM", tmp_path / "run", end_epoch=2, preset=_preset(eval_batch_size=4))
    assert eval_sizes == [4, 2, 4, 2]                     # 6 rows = 4 + 2, after each of 2 epochs


class _ToRecorder(torch.overrides.TorchFunctionMode):
    """Records the target of every Tensor.to call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.Tensor.to:
            self.calls.append((tuple(args[0].shape), args[1:], kwargs))
        return func(*args, **kwargs)


def test_fit_moves_model_loss_and_batches_to_the_device(tmp_path, monkeypatch):
    data = tiny_vectors()
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0, 2.0, 3.0]))
    moved = []
    real_build, real_crit, real_from = loop_mod.build_model, loop_mod.make_criterion, loop_mod.model_from_checkpoint

    def spy_to(module, what):
        real_to = module.to

        def to(*args, **kwargs):
            moved.append((what, args, kwargs))
            return real_to(*args, **kwargs)
        module.to = to
        return module

    monkeypatch.setattr(loop_mod, "build_model", lambda config: spy_to(real_build(config), "model"))
    monkeypatch.setattr(loop_mod, "make_criterion", lambda *a, **k: spy_to(real_crit(*a, **k), "loss"))
    with _ToRecorder() as rec:
        res = _fit(data, "ERM", tmp_path / "run", end_epoch=2, preset=_preset(batch_size=5))
    assert moved == [("model", (CPU,), {}), ("loss", (CPU,), {}), ("loss", (CPU,), {})]
    # the batches (21 rows: 4 of 5 rows and one single row, skipped) go to the device: inputs (5, 4),
    # labels (5,); no parameter of the MLP (8x4, 8, 3x8, 3) has these shapes
    batches = [c for c in rec.calls if c[0] in ((5, 4), (5,))]
    assert [c[0] for c in batches] == [(5, 4), (5,)] * 8
    assert all(c[1][:1] == (CPU,) for c in batches)
    # a warm start is rebuilt on the device too
    froms = []
    monkeypatch.setattr(loop_mod, "model_from_checkpoint", lambda ckpt, *a, **k: froms.append((a, k)) or real_from(ckpt, *a, **k))
    _fit(data, "DRW", tmp_path / "drw", start=load_checkpoint(res.last_path), end_epoch=3)
    assert froms == [((CPU,), {})]


def test_predict_moves_inputs_to_the_model_or_the_given_device():
    data = _vec_data(np.zeros((3, 4)))
    with _ToRecorder() as rec:
        loop_mod.predict(_ModeRecorder(W3), data, data.val)
        loop_mod.predict(_ModeRecorder(W3), data, data.val, device=CPU)
    assert [c[1][:1] for c in rec.calls if c[0] == (3, 4)] == [(CPU,), (CPU,)]


class _ImageSwaps(_FakeSwaps):
    def batch_swaps(self, slots, model):
        return {int(slots[0]): SimpleNamespace(x=np.full((3, 4, 4), 0.75, np.float32), label=2)}


def test_the_accelerator_batch_path_trains_as_the_cpu_path(tmp_path, monkeypatch):
    # On an accelerator the loop builds batches with DeviceImages; forced here on the CPU (the class
    # works there), the run must equal the CPU path's, swapped rows included.
    from m2m_pipeline.training.device_data import DeviceImages

    data = tiny_images()
    preset = _preset(model_args={"hidden": 8})
    monkeypatch.setattr(loop_mod, "balanced_metrics", _ScriptedMetrics([1.0] * 6))
    cpu = _fit(data, "M2m", tmp_path / "cpu", preset=preset, swaps=_ImageSwaps(data))
    made = []

    def for_training(d, train, device):
        made.append((d.name, len(train), device))
        return DeviceImages(train.x, train.y, d.augment, CPU)

    monkeypatch.setattr(loop_mod.DeviceImages, "for_training", staticmethod(for_training))
    dev = _fit(data, "M2m", tmp_path / "dev", preset=preset, swaps=_ImageSwaps(data))
    assert made == [("tiny-img", 18, CPU)]
    a, b = _load(cpu.last_path)["model_state"], _load(dev.last_path)["model_state"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [h["train_loss"] for h in dev.history] == [h["train_loss"] for h in cpu.history]
