"""Pool generation (pools/generate.py): value tests on tiny data (fast; the mutation run uses them),
then pools of the embedded digits data: determinism per (seed, epoch, slot), round trips through
zarr/dask/xarray, provenance.

Tiny data (tests/tiny.py: 3 classes of 12/6/3 training rows, 4 features in [-1, 1]) and tiny MLPs:
a pool of 11 attempts takes a few tens of milliseconds. Translation with ``steps=0`` leaves
x* = clamp(x0 + start noise), which the tests restate by hand; with steps > 0 the rows are compared
with the translator run one row at a time. Pools are read back through the pool store
(``store.open_pool``, ``codec.read_x``); x* is stored compactly (int16 delta on a per-row
power-of-two grid), so decoded x* is compared to 1e-3 (the codec's error is <= max|delta| * 2**-12).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from m2m_pipeline.datasets import Split
from m2m_pipeline.plan import EpochPlan, make_plan
from m2m_pipeline.pools import (TranslationConfig, check_provenance, draw_slots, generate_pool, load_swaps,
                                seed_inputs)
from m2m_pipeline.pools import backends as backends_mod
from m2m_pipeline.pools import generate as gen
from m2m_pipeline.pools import shard as shard_mod
from m2m_pipeline.pools.backends import TranslationBackend
from m2m_pipeline.pools.backends import DaskBackend
from m2m_pipeline.pools.sources import translated as translated_mod
from m2m_pipeline.pools.sources.translated import TranslatedPools
from m2m_pipeline.pools.codec import read_x
from m2m_pipeline.pools.reuse import read_swaps
from m2m_pipeline.pools.draws import SlotDraws, start_noise
from m2m_pipeline.store import POOL_ROW_ARRAYS, PoolWriter, open_pool, pool_as_dask
from m2m_pipeline.training import load_checkpoint, model_from_checkpoint
from m2m_pipeline.training.loop import batch_inputs
from m2m_pipeline.translate import M2mTranslator
from m2m_pipeline.utils import M2mError, state_hash

from tests.tiny import tiny_images, tiny_mlp, tiny_pool_attrs, tiny_vectors

ROW_ARRAYS = ("slot", "target", "seed_class", "seed_index", "seed_aug", "x_delta", "x_exp", "loss_g", "prob_g",
              "u_beta", "accepted", "reason")
REASON_CODES = {"accepted": 0, "beta": 1, "gamma": 2, "non_finite": 3, "no_seed": 4, "out_of_range": 5}
X_TOL = 1e-3   # decoded x* vs exact: |delta| <= 2 here, so the codec's error is <= 2 * 2**-12 = 5e-4


def _counts(reason) -> dict[str, int]:
    """Reason counts restated with bincount (every reason named, zeros included)."""
    b = np.bincount(np.asarray(reason, dtype=np.int64), minlength=6)
    return {name: int(b[code]) for name, code in REASON_CODES.items()}


def _softmax_target(g, x: np.ndarray, target: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        p = torch.softmax(g(torch.from_numpy(np.asarray(x, np.float32))), dim=1)
    return p[torch.arange(len(target)), torch.from_numpy(np.asarray(target, np.int64))].numpy()


# -- data_max_abs --------------------------------------------------------------------------------

@pytest.mark.mutation
def test_data_max_abs_is_the_larger_end_of_the_clamp_range():
    assert gen.data_max_abs(tiny_vectors(input_range=(-3.0, 2.0))) == 3.0     # |-3| > |2|
    assert gen.data_max_abs(tiny_vectors(input_range=(-0.5, 2.0))) == 2.0     # |2| > |-0.5|
    v = gen.data_max_abs(tiny_vectors(input_range=(0.0, 1.0)))
    assert v == 1.0 and type(v) is float


@pytest.mark.mutation
def test_data_max_abs_of_unbounded_data_is_the_training_split_max_ignoring_nan():
    d = tiny_vectors(input_range=None)
    d.train.x[0, 0] = -7.5      # the largest |x| (others lie within 0.95)
    d.train.x[1, 1] = np.nan    # ignored (nanmax)
    d.val.x[0, 0] = 50.0        # validation rows do not count
    v = gen.data_max_abs(d)
    assert v == 7.5 and type(v) is float


@pytest.mark.mutation
def test_data_max_abs_of_an_empty_unbounded_training_split_is_one():
    d = tiny_vectors(input_range=None)
    empty = dataclasses.replace(d, train=Split(np.zeros((0, 4), np.float32), np.zeros(0, np.int64)), fingerprint="")
    assert gen.data_max_abs(empty) == 1.0


# -- make_translator -----------------------------------------------------------------------------

@pytest.mark.mutation
def test_make_translator_passes_every_parameter_through():
    cfg = TranslationConfig(steps=3, step_size=0.25, lam=0.7, gamma=1.5, gamma_on="loss", beta=0.95)
    t = gen.make_translator(cfg, (-1.0, 2.0))
    assert isinstance(t, M2mTranslator)
    assert (t.steps, t.step_size, t.lam, t.gamma, t.gamma_on, t.beta) == (3, 0.25, 0.7, 1.5, "loss", 0.95)
    assert t.input_range == (-1.0, 2.0)
    # no data_max_abs: the clamp range's larger end, 2, times OUT_OF_RANGE_FACTOR 10
    assert t.max_abs == 20.0


@pytest.mark.parametrize("input_range, data_max_abs, max_abs", [
    ((-3.0, 2.0), None, 30.0),     # 10 * |-3|
    ((-1.0, 2.0), 0.5, 5.0),       # the data's own value wins over the range: 10 * 0.5
    (None, 4.0, 40.0),             # unbounded data: 10 * the training split's max
    (None, None, None),            # nothing known: no out_of_range test
])
@pytest.mark.mutation
def test_make_translator_out_of_range_bound(input_range, data_max_abs, max_abs):
    t = gen.make_translator(TranslationConfig(), input_range, data_max_abs=data_max_abs)
    assert t.max_abs == max_abs
    assert t.input_range == input_range


@pytest.mark.mutation
@pytest.mark.parametrize("bad, name", [({"step_size": 0.0}, "step_size"), ({"beta": 1.0}, "beta"),
                                       ({"gamma": 1.5}, "gamma"), ({"lam": -1.0}, "lam")])
def test_make_translator_names_a_bad_parameter(bad, name):
    with pytest.raises(M2mError, match=f"m2m parameters: {name}") as err:
        gen.make_translator(TranslationConfig(**bad), (0.0, 1.0))
    assert err.value.__cause__ is None


@pytest.mark.mutation
def test_make_translator_rejects_an_empty_input_range():
    with pytest.raises(M2mError, match="m2m parameters: input_range"):
        gen.make_translator(TranslationConfig(), (1.0, 1.0))


# -- translate_rows ------------------------------------------------------------------------------

def _hand_draws() -> SlotDraws:
    """Seven attempts on tiny_vectors (N = 12, 6, 3; class 0 = rows 0-11, class 1 = 12-17,
    class 2 = 18-20), beta 0.9: eq. (3) P(k0 -> k) = 1 - 0.9^(N_k0 - N_k):
    0 -> 2: 1 - 0.9^9 = 0.6126; 0 -> 1: 1 - 0.9^6 = 0.4686; 1 -> 2: 1 - 0.9^3 = 0.2710."""
    return SlotDraws(
        slot=np.array([5, 2, 7, 9, 4, 11, 13], np.int64),
        target=np.array([2, 1, 2, 1, 2, 1, 2], np.int64),
        seed_class=np.array([0, 0, -1, 0, 1, 0, 0], np.int64),
        seed_index=np.array([0, 3, -1, 11, 12, 6, 2], np.int64),   # row 0: seed index 0 is a seed
        seed_aug=np.zeros((7, 3), np.int16),
        # row 0: 0.5 < 0.6126 passes; row 1: 0.5 >= 0.4686 fails; row 3: 0.1 passes;
        # row 4: 0.2 < 0.2710 passes; row 5: 0.9 fails; row 6: 0.6 < 0.6126 passes
        u_beta=np.array([0.5, 0.5, 0.3, 0.1, 0.2, 0.9, 0.6]))


@pytest.mark.mutation
def test_translate_rows_values_with_zero_steps():
    d = tiny_vectors()
    g, f = tiny_mlp(d, seed=1), tiny_mlp(d, seed=2)
    draws = _hand_draws()
    cfg = TranslationConfig(steps=0, beta=0.9, gamma=0.0, noise_radius=0.3)
    out = shard_mod.translate_rows(g, f, d, draws, slice(None), gen.make_translator(cfg, d.input_range), cfg,
                                   seed=5, epoch=2)
    assert set(out) == {"slot", "target", "seed_class", "seed_index", "seed_aug", "u_beta", "x", "loss_g",
                        "prob_g", "accepted", "reason"}
    for name in ("slot", "target", "seed_class", "seed_index", "seed_aug", "u_beta"):
        np.testing.assert_array_equal(out[name], getattr(draws, name))
    dtypes = {"target": np.int32, "seed_class": np.int32, "x": np.float32, "loss_g": np.float32,
              "prob_g": np.float32, "accepted": np.bool_, "reason": np.uint8}
    for name, dtype in dtypes.items():
        assert out[name].dtype == dtype, name
    # steps 0: x* = clamp(x0 + noise, -1, 1) with the slot's own start noise (seed 5, epoch 2)
    seeded = np.array([0, 1, 3, 4, 5, 6])
    want_x = np.zeros((7, 4), np.float32)
    for i in seeded:
        want_x[i] = np.clip(d.train.x[draws.seed_index[i]] + start_noise((4,), 0.3, 5, 2, int(draws.slot[i])), -1, 1)
    np.testing.assert_allclose(out["x"], want_x, atol=1e-6)
    assert np.any(np.abs(out["x"][seeded] - d.train.x[draws.seed_index[seeded]]) > 0.01)   # noise is there
    # g's (not f's) softmax of the target at x*, and its cross-entropy
    p = _softmax_target(g, want_x[seeded], draws.target[seeded])
    np.testing.assert_allclose(out["prob_g"][seeded], p, rtol=1e-5)
    np.testing.assert_allclose(out["loss_g"][seeded], -np.log(p), rtol=1e-5)
    assert not np.allclose(p, _softmax_target(f, want_x[seeded], draws.target[seeded]), rtol=1e-3)
    # gamma 0 accepts every confident row: the beta draws alone decide (see _hand_draws)
    assert out["reason"].tolist() == [0, 1, 4, 0, 0, 1, 0]
    assert out["accepted"].tolist() == [True, False, False, True, True, False, True]
    # the row without a seed: reason no_seed, loss NaN, prob 0, x zeros
    assert np.isnan(out["loss_g"][2]) and out["prob_g"][2] == 0.0 and not out["x"][2].any()


@pytest.mark.mutation
def test_translate_rows_of_a_slice_in_batches_match_one_row_at_a_time():
    d = tiny_vectors()
    g, f = tiny_mlp(d, seed=1), tiny_mlp(d, seed=2)
    draws = _hand_draws()
    cfg = TranslationConfig(steps=2, step_size=0.5, lam=0.5, beta=0.9, gamma=0.3, batch_size=2, noise_radius=0.2)

    class Spy(M2mTranslator):
        sizes: list[int] = []

        def translate(self, g, f, x0, *args, **kwargs):
            self.sizes.append(len(x0))
            return super().translate(g, f, x0, *args, **kwargs)

    spy = Spy(steps=2, step_size=0.5, lam=0.5, gamma=0.3, beta=0.9, input_range=(-1.0, 1.0), max_abs=10.0)
    out = shard_mod.translate_rows(g, f, d, draws, slice(1, 7), spy, cfg, seed=4, epoch=1)
    # rows 1..6: five with a seed (row 2 has none), in batches of cfg.batch_size = 2
    assert spy.sizes == [2, 2, 1]
    assert out["slot"].tolist() == [2, 7, 9, 4, 11, 13]
    one = M2mTranslator(steps=2, step_size=0.5, lam=0.5, gamma=0.3, beta=0.9, input_range=(-1.0, 1.0),
                        max_abs=10.0)
    for j, i in enumerate(range(1, 7)):
        if draws.seed_index[i] < 0:
            assert out["reason"][j] == 4 and not out["accepted"][j]
            continue
        res = one.translate(g, f, torch.from_numpy(d.train.x[draws.seed_index[i]][None].copy()),
                            torch.tensor([draws.target[i]]), torch.tensor([draws.seed_class[i]]),
                            class_counts=[12, 6, 3],
                            noise=torch.from_numpy(start_noise((4,), 0.2, 4, 1, int(draws.slot[i]))[None]),
                            u_beta=torch.tensor([draws.u_beta[i]]))
        np.testing.assert_allclose(out["x"][j], res.x[0].numpy(), atol=1e-5)
        np.testing.assert_allclose(out["loss_g"][j], res.loss_g[0].item(), rtol=1e-4)
        np.testing.assert_allclose(out["prob_g"][j], res.prob_g[0].item(), rtol=1e-4)
        assert out["reason"][j] == int(res.reason[0]) and out["accepted"][j] == bool(res.accepted[0])


@pytest.mark.mutation
def test_translate_rows_rebuilds_augmented_image_seeds():
    d = tiny_images()   # (10, 5, 3) uint8 3x4x4 images, crop_pad 1 + flip; class 0 = rows 0-9
    g = f = tiny_mlp(d, seed=1)
    draws = SlotDraws(slot=np.array([3, 8]), target=np.array([2, 1]), seed_class=np.array([0, 0]),
                      seed_index=np.array([4, 7]),
                      # (dy, dx) = (1, 1) is the uncropped image (pad 1); flip 1 mirrors the width
                      seed_aug=np.array([[1, 1, 1], [1, 1, 0]], np.int16), u_beta=np.array([0.0, 0.0]))
    cfg = TranslationConfig(steps=0, gamma=0.0, noise_radius=0.1)
    out = shard_mod.translate_rows(g, f, d, draws, slice(None), gen.make_translator(cfg, d.input_range), cfg,
                                   seed=0, epoch=0)
    x0 = np.stack([d.train.x[4][:, :, ::-1], d.train.x[7]]).astype(np.float32) / 255.0
    noise = np.stack([start_noise((3, 4, 4), 0.1, 0, 0, 3), start_noise((3, 4, 4), 0.1, 0, 0, 8)])
    np.testing.assert_allclose(out["x"], np.clip(x0 + noise, 0, 1), atol=1e-6)
    assert out["x"].shape == (2, 3, 4, 4)


# -- summaries and attributes --------------------------------------------------------------------

@pytest.mark.mutation
def test_pool_summary_accept_rate():
    assert gen.PoolSummary(Path("p"), 10, 4, 3).accept_rate == 0.75
    assert np.isnan(gen.PoolSummary(Path("p"), 10, 0, 0).accept_rate)
    assert gen.PoolSummary(Path("p"), 10, 4, 3).reasons == {}


@pytest.mark.mutation
def test_reason_counts_names_every_reason():
    assert shard_mod.reason_counts(np.array([4, 0, 1, 4, 0, 5, 4], np.uint8)) == {
        "accepted": 2, "beta": 1, "gamma": 0, "non_finite": 0, "no_seed": 3, "out_of_range": 1}
    assert shard_mod.reason_counts(np.zeros(0, np.uint8)) == dict.fromkeys(REASON_CODES, 0)
    assert list(shard_mod.reason_counts(np.array([3], np.uint8)).items()) == [
        ("accepted", 0), ("beta", 0), ("gamma", 0), ("non_finite", 1), ("no_seed", 0), ("out_of_range", 0)]


CFG_FIELDS = {"steps": 2, "step_size": 0.5, "lam": 0.5, "gamma": 0.0, "gamma_on": "prob", "beta": 0.9,
              "seed_scope": "batch", "noise_radius": 0.1, "batch_size": 4, "rows_per_shard": 4,
              "max_non_finite": 0.0, "refresh_batches": 0, "store": "all"}


def _cfg(**kw) -> TranslationConfig:
    return TranslationConfig(**{**CFG_FIELDS, **kw})


def _plan(d, epoch=1, seed=0, batch_size=8) -> EpochPlan:
    # tiny_vectors, seed 0, epoch 1: 21 slots, 11 attempts; the draws leave one without a seed
    return make_plan(d.train.y, d.class_counts, seed=seed, epoch=epoch, order="balanced", attempts=True,
                     augment=d.augment, batch_size=batch_size)


@pytest.mark.mutation
def test_pool_attrs_holds_every_provenance_and_summary_key():
    d = tiny_vectors()
    p = _plan(d)
    plan = EpochPlan(epoch=np.int64(1), order=p.order, attempt=p.attempt, aug=p.aug, batch_size=np.int64(8))
    counts = {"accepted": 3, "beta": 6, "gamma": 1, "non_finite": 0, "no_seed": 1, "out_of_range": 0}
    attrs = gen.pool_attrs(data=d, plan=plan, cfg=_cfg(), seed=np.int64(7), g_hash="gh", f_hash="fh",
                           counts=counts, n_attempts=np.int64(11))
    assert attrs == {
        "dataset": "tiny-vec", "dataset_fingerprint": d.fingerprint, "class_counts": [12, 6, 3],
        "g_hash": "gh", "f_hash": "fh", "epoch": 1, "seed": 7, "params": CFG_FIELDS, "train_batch_size": 8,
        "reason_codes": REASON_CODES,
        "summary": {"n_slots": 21, "n_attempts": 11, "n_accepted": 3, "reasons": counts},
        "package_version": "0.1.0", "store": "all"}
    # plain ints (numpy integers would be written as strings into the JSON attributes)
    for value in (attrs["epoch"], attrs["seed"], attrs["train_batch_size"], attrs["summary"]["n_attempts"],
                  *attrs["class_counts"]):
        assert type(value) is int


# -- write_pool ----------------------------------------------------------------------------------

def _rows(d, plan, cfg, seed=0, g_seed=1, f_seed=2):
    draws = draw_slots(d, plan, cfg, seed)
    rows = shard_mod.translate_rows(tiny_mlp(d, seed=g_seed), tiny_mlp(d, seed=f_seed), d, draws, slice(None),
                                    gen.make_translator(cfg, d.input_range), cfg, seed, plan.epoch)
    return draws, rows


def _assert_pool_rows(path, d, rows):
    pool = open_pool(path)
    stored = pool.rows()
    for name in ("slot", "target", "seed_class", "seed_index", "seed_aug", "u_beta", "accepted", "reason",
                 "prob_g"):
        np.testing.assert_array_equal(stored[name], rows[name], err_msg=name)
    np.testing.assert_array_equal(stored["loss_g"], rows["loss_g"])   # NaN of the no-seed row included
    np.testing.assert_allclose(read_x(pool, d), rows["x"], atol=X_TOL)
    return pool


@pytest.mark.mutation
def test_write_pool_stores_rows_plan_and_attributes(tmp_path):
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg()
    _, rows = _rows(d, plan, cfg, seed=3)
    out = tmp_path / "online" / "epoch_1"
    s = gen.write_pool(str(out), data=d, plan=plan, cfg=cfg, seed=3, rows=rows, g_hash="gh", f_hash="fh",
                       provenance={"run": "M2m-Online", "f_epoch": 1})
    want = _counts(rows["reason"])
    assert want["no_seed"] == 1 and want["accepted"] >= 1 and want["beta"] >= 1
    assert s == gen.PoolSummary(out, 21, 11, want["accepted"], want)
    assert isinstance(s.path, Path)
    pool = _assert_pool_rows(out, d, rows)
    stored_plan = pool.plan_arrays()
    for name in ("order", "attempt", "aug"):
        np.testing.assert_array_equal(stored_plan[name], getattr(plan, name))
    a = pool.attrs
    assert (a["g_hash"], a["f_hash"], a["seed"], a["epoch"], a["train_batch_size"]) == ("gh", "fh", 3, 1, 8)
    assert a["run"] == "M2m-Online" and a["f_epoch"] == 1 and a["params"] == CFG_FIELDS
    assert a["summary"] == {"n_slots": 21, "n_attempts": 11, "n_accepted": want["accepted"], "reasons": want}
    assert a["class_counts"] == [12, 6, 3] and a["dataset_fingerprint"] == d.fingerprint
    assert pool.group["class"][...].tolist() == ["c0", "c1", "c2"]
    assert pool.group["slot"].chunks == (4,)   # rows_per_shard 4: 4-row chunks


@pytest.mark.mutation
def test_write_pool_without_provenance(tmp_path):
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg()
    _, rows = _rows(d, plan, cfg)
    gen.write_pool(tmp_path / "p", data=d, plan=plan, cfg=cfg, seed=0, rows=rows, g_hash="gh", f_hash="fh")
    assert "f_epoch" not in open_pool(tmp_path / "p").attrs


@pytest.mark.mutation
def test_pool_shards_hold_one_whole_chunk(tmp_path):
    # format 4 (issue 16): a row array's shard file is one inner chunk, read and written whole;
    # rows_per_shard 600 is the shard as asked (no rounding to 256-row chunks any more)
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg(rows_per_shard=600)
    _, rows = _rows(d, plan, cfg)
    gen.write_pool(tmp_path / "w", data=d, plan=plan, cfg=cfg, seed=0, rows=rows, g_hash="g", f_hash="f")
    gen.generate_pool(g=tiny_mlp(d, seed=1), f=tiny_mlp(d, seed=2), data=d, plan=plan, cfg=cfg, seed=0,
                      out=tmp_path / "g")
    for name in ("w", "g"):
        pool = open_pool(tmp_path / name)
        arr = pool.group["x_delta"]
        assert (arr.chunks, arr.shards) == ((600, 4), (600, 4))
        assert pool.layout("x_delta").chunks_per_shard == 1 and pool.layout("slot").shard_rows == 600


def test_writer_hands_over_the_accepted_rows_a_read_back_gives(tmp_path):
    """Training takes M2m's accepted rows from the writer (issue 16): the same slots, labels and x*
    bit for bit as reading the pool back, x* decoded from exactly the stored bytes; a resumed pool
    (a shard written by an earlier process) hands over nothing and is read back."""
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg(rows_per_shard=4, step_size=0.5, gamma=0.0)
    g, f = tiny_mlp(d, seed=1), tiny_mlp(d, seed=2)
    s = gen.generate_pool(g=g, f=f, data=d, plan=plan, cfg=cfg, seed=0, out=tmp_path / "p", keep_accepted=True)
    assert s.swaps is not None and 0 < len(s.swaps) == s.n_accepted < s.n_attempts
    _, back, _ = read_swaps(tmp_path / "p", d)
    assert np.array_equal(s.swaps.slot, back.slot) and np.array_equal(s.swaps.label, back.label)
    assert s.swaps.x.dtype == back.x.dtype == np.float32 and s.swaps.x.tobytes() == back.x.tobytes()
    assert not gen.generate_pool(g=g, f=f, data=d, plan=plan, cfg=cfg, seed=0, out=tmp_path / "q").swaps
    # the same job again: the finished pool is returned as is, and nothing is handed over
    again = gen.generate_pool(g=g, f=f, data=d, plan=plan, cfg=cfg, seed=0, out=tmp_path / "p", keep_accepted=True)
    assert again.swaps is None and again == s
    # TranslatedPools trains on the handed-over rows: the epoch's swaps equal the read back's
    tp = TranslatedPools(g=g, data=d, cfg=cfg, seed=0, pools_dir=tmp_path / "tp", batch_size=8, progress=False)
    tp_plan, info = tp.begin_epoch(1, f)
    assert info["n_used"] == info["n_accepted"] == s.n_accepted
    assert np.array_equal(tp_plan.order, plan.order)
    handed = tp.batch_swaps(np.arange(len(plan)), f)
    assert sorted(handed) == s.swaps.slot.tolist()
    assert all(handed[int(k)].x.tobytes() == back.x[i].tobytes() and handed[int(k)].label == back.label[i]
               for i, k in enumerate(back.slot))


# -- translate_shard / commit_shard --------------------------------------------------------------

def _assert_recorded_files(work, record, index):
    """A shard's commit record names its twelve files with the size and sha256 of what is on disk
    (the seal takes them from the record instead of reading the shard files again)."""
    assert sorted(record["files"]) == sorted(f"{name}/c/{index}" + ("/0" if name in ("seed_aug", "x_delta") else "")
                                             for name in ROW_ARRAYS)
    for rel, (size, sha) in record["files"].items():
        raw = (work / rel).read_bytes()
        assert size == len(raw) and sha == hashlib.sha256(raw).hexdigest(), rel


@pytest.mark.mutation
def test_translate_shard_writes_and_commits_its_rows(tmp_path):
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg()
    g, f = tiny_mlp(d, seed=1), tiny_mlp(d, seed=2)
    draws, whole = _rows(d, plan, cfg, seed=0)
    t = gen.make_translator(cfg, d.input_range)
    with PoolWriter(tmp_path / "p", n_rows=11, input_shape=(4,), input_kind="vector", rows_per_shard=4,
                    rows_per_chunk=4, job={"test": 1}, class_names=d.class_names) as w:
        w.write_plan(plan.order, plan.attempt, plan.aug)
        for index in (2, 0, 1):   # shards of 4, 4 and 3 rows, in any order
            counts = shard_mod.translate_shard(g, f, d, draws, index, 4, t, cfg, 0, 1, w.work)
            want = _counts(whole["reason"][index * 4:(index + 1) * 4])
            assert counts == want
            record = w.done_shards()[index]
            assert {k: record[k] for k in ("rows", "reasons")} == {"rows": 4 if index < 2 else 3, "reasons": want}
            _assert_recorded_files(w.work, record, index)
        w.finish(tiny_pool_attrs(whole, class_counts=[12, 6, 3], n_slots=len(plan)))
    _assert_pool_rows(tmp_path / "p", d, whole)


@pytest.mark.mutation
def test_commit_shard_encodes_and_commits_given_rows(tmp_path):
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg()
    _, whole = _rows(d, plan, cfg)
    with PoolWriter(tmp_path / "p", n_rows=11, input_shape=(4,), input_kind="vector", rows_per_shard=8,
                    rows_per_chunk=8, job={"test": 2}) as w:
        w.write_plan(plan.order, plan.attempt, plan.aug)
        got = [shard_mod.commit_shard({k: v[s] for k, v in whole.items()}, d, w.work, i)
               for i, s in ((1, slice(8, 11)), (0, slice(0, 8)))]
        assert got == [_counts(whole["reason"][8:]), _counts(whole["reason"][:8])]
        records = w.done_shards()
        assert {i: {k: r[k] for k in ("rows", "reasons")} for i, r in records.items()} == \
            {0: {"rows": 8, "reasons": got[1]}, 1: {"rows": 3, "reasons": got[0]}}
        for index, record in records.items():
            _assert_recorded_files(w.work, record, index)
        w.finish(tiny_pool_attrs(whole, class_counts=d.class_counts, n_slots=len(plan)))
    _assert_pool_rows(tmp_path / "p", d, whole)


# -- the job key and finished pools --------------------------------------------------------------

def _key_args(d, base_plan, **kw):
    args = dict(data=d, plan=base_plan, cfg=_cfg(), seed=7, g_hash="gh", f_hash="fh", allowed_seeds=None,
                provenance=None)
    args.update(kw)
    return args


@pytest.mark.mutation
def test_job_key_values():
    d = tiny_vectors()
    plan = _plan(d)
    allowed = np.arange(21) % 2 == 0
    h = hashlib.sha256()
    for arr in (plan.order, plan.attempt, plan.aug, allowed):
        h.update(np.ascontiguousarray(arr).tobytes())
    key = gen._job_key(**_key_args(d, plan, allowed_seeds=allowed, provenance={"run": "M2m", "warm": 3}))
    assert key == {"dataset_fingerprint": d.fingerprint, "g_hash": "gh", "f_hash": "fh", "epoch": 1, "seed": 7,
                   "params": CFG_FIELDS, "train_batch_size": 8, "plan_sha256": h.hexdigest(),
                   "allowed_seeds": True, "provenance": {"run": "M2m", "warm": 3}, "package_version": "0.1.0"}
    h = hashlib.sha256()
    for arr in (plan.order, plan.attempt, plan.aug):
        h.update(np.ascontiguousarray(arr).tobytes())
    key = gen._job_key(**_key_args(d, plan))
    assert key["plan_sha256"] == h.hexdigest() and key["allowed_seeds"] is False and key["provenance"] == {}
    # provenance values that JSON cannot hold (a path, a numpy integer) are keyed by their text
    key = gen._job_key(**_key_args(d, plan, provenance={"warm": Path("/runs/warm/last.pt"), "step": np.int64(3)}))
    assert key["provenance"] == {"warm": "/runs/warm/last.pt", "step": "3"}


@pytest.mark.mutation
def test_job_key_changes_with_every_input(monkeypatch):
    d = tiny_vectors()
    plan = _plan(d)
    order = plan.order.copy()
    order[[0, 1]] = order[[1, 0]]
    attempt = plan.attempt.copy()
    attempt[1] = ~attempt[1]
    aug = plan.aug.copy()
    aug[0, 2] = 1
    mask = np.ones(21, bool)
    other_mask = mask.copy()
    other_mask[3] = False
    variants = [
        {}, {"data": tiny_vectors(seed=1)}, {"plan": dataclasses.replace(plan, order=order)},
        {"plan": dataclasses.replace(plan, attempt=attempt)}, {"plan": dataclasses.replace(plan, aug=aug)},
        {"plan": dataclasses.replace(plan, epoch=2)}, {"plan": dataclasses.replace(plan, batch_size=4)},
        {"cfg": _cfg(steps=3)}, {"cfg": _cfg(store="accepted")}, {"seed": 8}, {"g_hash": "gx"}, {"f_hash": "fx"},
        {"allowed_seeds": mask}, {"allowed_seeds": other_mask}, {"provenance": {"run": "a"}},
        {"provenance": {"run": "b"}},
    ]
    keys = [json.dumps(gen._job_key(**_key_args(d, plan, **v)), sort_keys=True) for v in variants]
    monkeypatch.setattr(gen, "__version__", "9.9.9")
    keys.append(json.dumps(gen._job_key(**_key_args(d, plan)), sort_keys=True))
    assert len(set(keys)) == len(variants) + 1
    # the same inputs give the same key
    monkeypatch.undo()
    assert json.dumps(gen._job_key(**_key_args(d, _plan(d))), sort_keys=True) == keys[0]


@pytest.mark.mutation
def test_finished_pool_only_for_a_complete_pool_of_the_same_job(tmp_path):
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg()
    assert gen._finished_pool(tmp_path / "missing", "abc") is None
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "zarr.json").write_text("not json")
    assert gen._finished_pool(tmp_path / "junk", "abc") is None      # unreadable: not finished
    s = gen.generate_pool(g=tiny_mlp(d, seed=1), f=tiny_mlp(d, seed=2), data=d, plan=plan, cfg=cfg, seed=0,
                          out=tmp_path / "p")
    job_hash = open_pool(tmp_path / "p").attrs["job_hash"]
    assert gen._finished_pool(tmp_path / "p", "0" * 16) is None     # another job
    again = gen._finished_pool(tmp_path / "p", job_hash)
    assert again == gen.PoolSummary(tmp_path / "p", 21, 11, s.n_accepted, s.reasons)
    assert sum(again.reasons.values()) == 11


# -- generate_pool -------------------------------------------------------------------------------

def _generate(d, out, *, plan=None, cfg=None, g_seed=1, f_seed=2, **kw):
    return gen.generate_pool(g=tiny_mlp(d, seed=g_seed), f=tiny_mlp(d, seed=f_seed), data=d,
                             plan=plan or _plan(d), cfg=cfg or _cfg(), seed=kw.pop("seed", 0), out=out, **kw)


@pytest.mark.mutation
def test_generate_pool_writes_the_translated_rows(tmp_path):
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg()
    calls = []
    s = _generate(d, str(tmp_path / "p"), seed=3, progress=calls.append, provenance={"run": "M2m", "f_epoch": 1})
    _, rows = _rows(d, plan, cfg, seed=3)
    want = _counts(rows["reason"])
    assert s == gen.PoolSummary(tmp_path / "p", 21, 11, want["accepted"], want)
    assert calls == [4, 4, 3]          # 11 attempts in shards of rows_per_shard = 4
    pool = _assert_pool_rows(tmp_path / "p", d, rows)
    a = pool.attrs
    assert a["g_hash"] == state_hash(tiny_mlp(d, seed=1).state_dict())
    assert a["f_hash"] == state_hash(tiny_mlp(d, seed=2).state_dict())
    assert (a["run"], a["f_epoch"], a["seed"], a["epoch"], a["params"]) == ("M2m", 1, 3, 1, CFG_FIELDS)
    assert a["summary"] == {"n_slots": 21, "n_attempts": 11, "n_accepted": want["accepted"], "reasons": want}
    np.testing.assert_array_equal(pool.plan_arrays()["order"], plan.order)
    assert pool.group["class"][...].tolist() == ["c0", "c1", "c2"]
    assert not (tmp_path / "p.partial").exists()


@pytest.mark.mutation
def test_generate_pool_records_the_hash_of_its_job(tmp_path):
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg()
    allowed = np.ones(21, bool)
    allowed[:6] = False
    prov = {"run": "M2m"}
    _generate(d, tmp_path / "p", seed=3, allowed_seeds=allowed, provenance=prov)
    key = gen._job_key(data=d, plan=plan, cfg=cfg, seed=3, g_hash=state_hash(tiny_mlp(d, seed=1).state_dict()),
                       f_hash=state_hash(tiny_mlp(d, seed=2).state_dict()), allowed_seeds=allowed,
                       provenance=prov)
    want = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    pool = open_pool(tmp_path / "p")
    assert pool.attrs["job_hash"] == want
    seed_index = pool.rows(("seed_index",))["seed_index"]
    assert np.all((seed_index >= 6) | (seed_index == -1))   # the allowed seeds only


@pytest.mark.mutation
def test_generate_pool_rerun_of_the_same_job_returns_the_finished_pool(tmp_path, monkeypatch):
    d = tiny_vectors()
    first = _generate(d, tmp_path / "p")
    files = {p: p.stat().st_mtime_ns for p in (tmp_path / "p").rglob("*") if p.is_file()}
    monkeypatch.setattr(backends_mod, "translate_rows", lambda *a, **k: pytest.fail("translated again"))
    calls = []
    again = _generate(d, tmp_path / "p", progress=calls.append)
    assert again == first and calls == [11]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "p").rglob("*") if p.is_file()} == files


@pytest.mark.mutation
def test_generate_pool_rerun_with_a_changed_input_translates_again(tmp_path, monkeypatch):
    # (every input that changes the job: test_job_key_changes_with_every_input)
    change = {"g_seed": 3}
    d = tiny_vectors()
    _generate(d, tmp_path / "p")
    real, n = shard_mod.translate_rows, []

    def counting(*a, **k):
        n.append(1)
        return real(*a, **k)

    monkeypatch.setattr(backends_mod, "translate_rows", counting)
    _generate(d, tmp_path / "p", **change)
    assert len(n) == 3


@pytest.mark.mutation
def test_generate_pool_resumes_after_an_interruption(tmp_path, monkeypatch):
    d = tiny_vectors()
    whole = _generate(d, tmp_path / "whole")
    real, slices, budget = shard_mod.translate_rows, [], [1]

    def interrupted(*a, **k):   # Ctrl-C once ``budget`` shards are translated
        if not budget[0]:
            raise KeyboardInterrupt
        budget[0] -= 1
        slices.append(a[4])
        return real(*a, **k)

    monkeypatch.setattr(backends_mod, "translate_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):   # shard 0 committed
        _generate(d, tmp_path / "p")
    assert (tmp_path / "p.partial").is_dir() and not (tmp_path / "p").exists()
    budget[0] = 1
    with pytest.raises(KeyboardInterrupt):   # resumed without a progress callback: shard 1 committed
        _generate(d, tmp_path / "p")
    budget[0] = 99
    calls = []
    s = _generate(d, tmp_path / "p", progress=calls.append)
    # each shard translated once: 0 and 1 before the interruptions, 2 after
    assert slices == [slice(0, 4), slice(4, 8), slice(8, 12)]
    assert calls == [8, 3]            # the committed rows (4 + 4) first, then the new shard
    assert dataclasses.replace(s, path=whole.path) == whole   # counts include the committed shards
    a, b = open_pool(tmp_path / "p"), open_pool(tmp_path / "whole")
    for name in ROW_ARRAYS:
        np.testing.assert_array_equal(a.rows((name,))[name], b.rows((name,))[name], err_msg=name)
    assert a.attrs["summary"] == b.attrs["summary"] and a.attrs["job_hash"] == b.attrs["job_hash"]
    assert not (tmp_path / "p.partial").exists()


class _RecordingBackend(TranslationBackend):
    """A backend's stand-in that hands every shard to the shard task in this process and records
    what it was given; ``distributed`` as asked (a distributed one needs the model configs)."""

    name = "recording"

    def __init__(self, distributed=True):
        super().__init__()
        self.distributed = distributed
        self.calls, self.opened = [], 0

    def open(self):
        self.opened += 1

    def translate_shards(self, job, *, g, f, shards, model_configs=None, progress=None):
        self.calls.append({"job": job, "g": g, "f": f, "shards": list(shards), "model_configs": model_configs})
        out = []
        for i in shards:
            out.append(shard_mod.translate_shard(g, f, job.data, job.draws, i, job.shard_rows, job.translator,
                                                 job.cfg, job.seed, job.epoch, job.work))
            if progress is not None:
                progress(sum(out[-1].values()))
        return out


@pytest.mark.mutation
@pytest.mark.parametrize("backend", [DaskBackend(workers=2), DaskBackend(scheduler="tcp://127.0.0.1:1"),
                                     DaskBackend(client=object()), _RecordingBackend()],
                         ids=["workers", "scheduler", "client", "any-distributed"])
def test_generate_pool_on_a_distributed_backend_needs_model_configs(tmp_path, backend):
    d = tiny_vectors()
    with pytest.raises(M2mError, match="model_configs"):
        _generate(d, tmp_path / "p", backend=backend)
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.partial").exists()
    if isinstance(backend, _RecordingBackend):
        assert backend.calls == [] and backend.opened == 0   # refused before any shard
    else:
        assert backend._stack is None   # no cluster was started


@pytest.mark.mutation
@pytest.mark.parametrize("distributed", [True, False])
def test_generate_pool_hands_the_shards_to_its_backend(tmp_path, distributed):
    d = tiny_vectors()
    plan, cfg = _plan(d), _cfg()
    backend = _RecordingBackend(distributed)
    calls = []
    configs = ({"g": 1}, {"f": 2}) if distributed else None
    g, f = tiny_mlp(d, seed=1), tiny_mlp(d, seed=2)
    s = gen.generate_pool(g=g, f=f, data=d, plan=plan, cfg=cfg, seed=3, out=tmp_path / "p", backend=backend,
                          model_configs=configs, progress=calls.append)
    (seen,) = backend.calls
    job = seen["job"]
    assert seen["g"] is g and seen["f"] is f and seen["model_configs"] == configs
    assert seen["shards"] == [0, 1, 2] and job.shard_rows == 4 and job.epoch == 1 and job.seed == 3
    assert job.cfg is cfg and job.data is d and Path(job.work) == tmp_path / "p.partial"
    assert job.translator.max_abs == 10.0 and job.translator.steps == 2
    assert job.draws.slot.tolist() == np.flatnonzero(plan.attempt).tolist()
    assert calls == [4, 4, 3]
    _, rows = _rows(d, plan, cfg, seed=3)
    assert s.reasons == _counts(rows["reason"])
    _assert_pool_rows(tmp_path / "p", d, rows)


def _nan_g(d):
    g = tiny_mlp(d, seed=1)
    with torch.no_grad():
        next(g.parameters()).fill_(float("nan"))
    return g


@pytest.mark.mutation
def test_generate_pool_refuses_non_finite_rows_beyond_the_tolerated_share(tmp_path):
    d = tiny_vectors()
    # dataset scope: every one of the 11 attempts has a seed, and a NaN g makes each x* NaN
    cfg = _cfg(seed_scope="dataset")
    with pytest.raises(M2mError, match="non-finite values in 11 of 11"):
        gen.generate_pool(g=_nan_g(d), f=tiny_mlp(d, seed=2), data=d, plan=_plan(d), cfg=cfg, seed=0,
                          out=tmp_path / "p")
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.partial").exists()
    # 11 of 11 is more than a share of 0.95 (10.45 rows)
    with pytest.raises(M2mError, match="non-finite"):
        gen.generate_pool(g=_nan_g(d), f=tiny_mlp(d, seed=2), data=d, plan=_plan(d),
                          cfg=_cfg(seed_scope="dataset", max_non_finite=0.95), seed=0, out=tmp_path / "p")
    # a share of 1.0 tolerates them all (11 is not more than 1.0 * 11): the pool is written
    s = gen.generate_pool(g=_nan_g(d), f=tiny_mlp(d, seed=2), data=d, plan=_plan(d),
                          cfg=_cfg(seed_scope="dataset", max_non_finite=1.0), seed=0, out=tmp_path / "p")
    assert s.reasons["non_finite"] == 11 and s.n_accepted == 0
    assert np.isnan(read_x(open_pool(tmp_path / "p"), d)).all()


@pytest.mark.mutation
def test_generate_pool_of_a_plan_without_attempts(tmp_path):
    d = tiny_vectors()
    p = _plan(d)
    plan = dataclasses.replace(p, attempt=np.zeros(21, bool))
    calls = []
    s = _generate(d, tmp_path / "p", plan=plan, progress=calls.append)
    assert (s.n_slots, s.n_attempts, s.n_accepted) == (21, 0, 0) and np.isnan(s.accept_rate)
    assert calls == [] and len(open_pool(tmp_path / "p")) == 0


# -- TranslatedPools -----------------------------------------------------------------------------

class _Bar:
    """progress_bar's stand-in: records its arguments and updates."""

    made: list = []

    def __init__(self, **kw):
        self.kw, self.updates = kw, []
        _Bar.made.append(self)

    def update(self, n):
        self.updates.append(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.mutation
def test_translated_pools_begin_epoch(tmp_path, monkeypatch):
    d = tiny_vectors()
    g, model = tiny_mlp(d, seed=1), tiny_mlp(d, seed=2)
    _Bar.made = []
    monkeypatch.setattr(translated_mod, "progress_bar", _Bar)
    tp = TranslatedPools(g=g, data=d, cfg=_cfg(), seed=3, pools_dir=tmp_path / "pools", batch_size=8,
                         rule="no_reject_no_gamma", provenance={"run": "M2m"}, progress=False)
    plan, record = tp.begin_epoch(2, model)
    want = make_plan(d.train.y, d.class_counts, seed=3, epoch=2, order="balanced", attempts=True,
                     augment=d.augment, batch_size=8)
    assert (plan.epoch, plan.batch_size) == (2, 8)
    for name in ("order", "attempt", "aug"):
        np.testing.assert_array_equal(getattr(plan, name), getattr(want, name))
    pool = open_pool(tmp_path / "pools" / "epoch_2")
    a = pool.attrs
    assert (a["run"], a["f_epoch"], a["seed"], a["epoch"]) == ("M2m", 2, 3, 2)
    assert a["g_hash"] == state_hash(g.state_dict()) and a["f_hash"] == state_hash(model.state_dict())
    rows = pool.rows(("slot", "target", "reason"))
    n = int(want.attempt.sum())
    reasons = _counts(rows["reason"])
    # no_reject_no_gamma: every attempt with a seed and a finite, in-range x*
    used = np.isin(rows["reason"], [0, 1, 2])
    assert record == {"n_attempts": n, "n_accepted": reasons["accepted"], "n_used": int(used.sum()),
                      "reasons": reasons}
    assert record["n_used"] > record["n_accepted"]
    swaps = tp.batch_swaps(np.arange(len(plan)), model)
    assert sorted(swaps) == rows["slot"][used].tolist()
    assert [swaps[s].label for s in sorted(swaps)] == rows["target"][used].tolist()
    (bar,) = _Bar.made
    assert bar.kw["total"] == n and bar.kw["enabled"] is False
    assert sum(bar.updates) == n


@pytest.mark.mutation
def test_translated_pools_without_g_translate_with_f_and_keep_the_rule_params(tmp_path):
    d = tiny_vectors()
    model = tiny_mlp(d, seed=2)
    allowed = np.ones(21, bool)
    allowed[:6] = False
    tp = TranslatedPools(g=None, data=d, cfg=_cfg(), seed=0, pools_dir=tmp_path, batch_size=8, rule="gamma",
                         rule_params={"gamma": 1.0}, allowed_seeds=allowed, progress=False)
    plan, record = tp.begin_epoch(1, model)
    a = open_pool(tmp_path / "epoch_1").attrs
    assert a["g_hash"] == a["f_hash"] == state_hash(model.state_dict()) and a["f_epoch"] == 1
    # gamma 1.0: no row is that confident (prob_g < 1), so the rule uses none of them
    assert record["n_used"] == 0 and record["n_attempts"] == int(plan.attempt.sum())
    seed_index = open_pool(tmp_path / "epoch_1").rows(("seed_index",))["seed_index"]
    assert np.all((seed_index >= 6) | (seed_index == -1))


@pytest.mark.mutation
def test_translated_pools_rejects_an_unknown_rule(tmp_path):
    with pytest.raises(M2mError, match="unknown pool rule"):
        TranslatedPools(g=None, data=tiny_vectors(), cfg=_cfg(), seed=0, pools_dir=tmp_path, batch_size=8,
                        rule="nope")
    with pytest.raises(M2mError, match="needs a gamma"):
        TranslatedPools(g=None, data=tiny_vectors(), cfg=_cfg(), seed=0, pools_dir=tmp_path, batch_size=8,
                        rule="gamma")


@pytest.mark.mutation
def test_translated_pools_translate_on_the_given_backend(tmp_path, monkeypatch):
    d = tiny_vectors()
    backend = _RecordingBackend()
    _Bar.made = []
    monkeypatch.setattr(translated_mod, "progress_bar", _Bar)
    # defaults: M2m's own rule, and a progress bar
    tp = TranslatedPools(g=tiny_mlp(d, seed=1), data=d, cfg=_cfg(), seed=0, pools_dir=tmp_path, batch_size=8,
                         backend=backend, model_configs=({"g": 1}, {"f": 2}))
    _, record = tp.begin_epoch(1, tiny_mlp(d, seed=2))
    (seen,) = backend.calls
    assert seen["model_configs"] == ({"g": 1}, {"f": 2}) and seen["job"].epoch == 1
    assert record["n_used"] == record["n_accepted"]   # rule "accepted"
    assert _Bar.made[0].kw["enabled"] is True


@pytest.mark.mutation
def test_image_pools_carry_image_dimension_names(tmp_path):
    # xarray.open_zarr reads x_delta as (sample, channel, height, width) for image data
    d = tiny_images()
    plan = make_plan(d.train.y, d.class_counts, seed=0, epoch=1, order="balanced", attempts=True,
                     augment=d.augment, batch_size=8)
    cfg = _cfg(steps=1)
    g, f = tiny_mlp(d, seed=1), tiny_mlp(d, seed=2)
    draws = draw_slots(d, plan, cfg, 0)
    rows = shard_mod.translate_rows(g, f, d, draws, slice(None), gen.make_translator(cfg, d.input_range), cfg, 0, 1)
    gen.write_pool(tmp_path / "w", data=d, plan=plan, cfg=cfg, seed=0, rows=rows, g_hash="g", f_hash="f")
    gen.generate_pool(g=g, f=f, data=d, plan=plan, cfg=cfg, seed=0, out=tmp_path / "g")
    for name in ("w", "g"):
        pool = open_pool(tmp_path / name)
        assert pool.group["x_delta"].metadata.dimension_names == ("sample", "channel", "height", "width")
        np.testing.assert_allclose(read_x(pool, d), rows["x"], atol=X_TOL)


@pytest.mark.mutation
def test_generate_pool_bounds_unbounded_data_by_the_training_split(tmp_path):
    # input_range None (embeddings): the out_of_range bound is 10 x max|train x| (about 10 x 0.95).
    # One step of L2 length 30 puts some component of every 4-feature row beyond 30 / 2 = 15 from
    # its start (|x0 + noise| < 1.1), so past the bound: every row with a seed is out_of_range.
    d = tiny_vectors(input_range=None)
    s = _generate(d, tmp_path / "p", cfg=_cfg(steps=1, step_size=30.0))
    assert s.reasons == {"accepted": 0, "beta": 0, "gamma": 0, "non_finite": 0, "no_seed": 1, "out_of_range": 10}


@pytest.mark.mutation
@pytest.mark.parametrize("swap, field", [({"g": "other"}, "g_hash"), ({"f": "other"}, "f_hash"),
                                         ({"seed": 99}, "seed"), ({"epoch": 3}, "epoch")])
def test_translated_pools_read_back_only_rows_of_their_models_seed_and_epoch(tmp_path, monkeypatch, swap, field):
    # a pool that does not match (here made by a stand-in generate_pool) is refused, naming the field
    d = tiny_vectors()
    other, real = tiny_mlp(d, seed=5), gen.generate_pool

    def mismatched(**kw):
        if "epoch" in swap:
            kw["plan"] = dataclasses.replace(kw["plan"], epoch=swap["epoch"])
        else:
            kw.update({k: other if v == "other" else v for k, v in swap.items()})
        return real(**kw)

    monkeypatch.setattr(translated_mod, "generate_pool", mismatched)
    tp = TranslatedPools(g=tiny_mlp(d, seed=1), data=d, cfg=_cfg(), seed=0, pools_dir=tmp_path, batch_size=8,
                         progress=False)
    with pytest.raises(M2mError, match=f"made with {field}="):
        tp.begin_epoch(2, tiny_mlp(d, seed=2))


# -- pools of the embedded digits data (a g and a warm f trained once per session) -----------------

def _trained_models(trained, digits):
    g = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt", data=digits))
    f = model_from_checkpoint(load_checkpoint(trained / "warm" / "last.pt", data=digits))
    return g, f


def _digits_plan(digits, epoch=2, batch_size=64):
    return make_plan(digits.train.y, digits.class_counts, seed=0, epoch=epoch, order="balanced", attempts=True,
                     augment=digits.augment, batch_size=batch_size)


def test_pool_independent_of_batch_size_and_shards(tmp_path, trained, digits):
    g, f = _trained_models(trained, digits)
    plan = _digits_plan(digits)
    a = generate_pool(g=g, f=f, data=digits, plan=plan, seed=0, out=tmp_path / "a",
                      cfg=TranslationConfig(steps=3, step_size=1.0, beta=0.9, gamma=0.5, batch_size=7, rows_per_shard=32))
    b = generate_pool(g=g, f=f, data=digits, plan=plan, seed=0, out=tmp_path / "b",
                      cfg=TranslationConfig(steps=3, step_size=1.0, beta=0.9, gamma=0.5, batch_size=200, rows_per_shard=256))
    assert a.n_attempts == b.n_attempts > 0
    ra, rb = open_pool(a.path).rows(), open_pool(b.path).rows()
    for name in POOL_ROW_ARRAYS:
        if name in ("x_delta", "x_exp"):  # compared decoded below: the last float bit may move a grid step
            continue
        elif name in ("loss_g", "prob_g"):
            np.testing.assert_allclose(ra[name], rb[name], rtol=1e-4, atol=1e-5)
        else:
            assert np.array_equal(ra[name], rb[name]), name
    # decoded x*: float noise in the last bit may move a value by one grid step (<= 2**-12 of the row's range)
    np.testing.assert_allclose(read_x(open_pool(a.path), digits), read_x(open_pool(b.path), digits), atol=5e-4)


def test_pool_rows_rebuild_x0_and_read_back_with_dask_and_xarray(tmp_path, trained, digits, tiny_m2m):
    import xarray as xr

    g, f = _trained_models(trained, digits)
    s = generate_pool(g=g, f=f, data=digits, plan=_digits_plan(digits), cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    pool = open_pool(s.path)
    rows = pool.rows()
    lazy = pool_as_dask(s.path)
    for name in POOL_ROW_ARRAYS:
        assert np.array_equal(lazy[name].compute(), rows[name], equal_nan=rows[name].dtype.kind == "f")
    ds = xr.open_zarr(str(s.path), consolidated=False)
    assert ds["x_delta"].dims == ("sample", "channel", "height", "width")
    assert ds.sizes["sample"] == s.n_attempts
    # x0 is rebuilt exactly from seed_index + seed_aug; the noise radius bounds the start point
    ok = rows["seed_index"] >= 0
    x0 = seed_inputs(digits, rows["seed_index"][ok], rows["seed_aug"][ok]).numpy()
    moved = np.linalg.norm((read_x(pool, digits)[ok] - x0).reshape(ok.sum(), -1), axis=1)
    assert np.all(moved <= tiny_m2m.steps * tiny_m2m.step_size + tiny_m2m.noise_radius + 1e-4)
    a = pool.attrs
    assert a["complete"] and a["g_hash"] == state_hash(g.state_dict()) and a["f_hash"] == state_hash(f.state_dict())
    assert a["summary"]["n_accepted"] == int(rows["accepted"].sum())
    assert np.array_equal(rows["accepted"], rows["reason"] == 0)


def test_rejected_slots_keep_the_real_sample(tmp_path, trained, digits, tiny_m2m):
    g, f = _trained_models(trained, digits)
    s = generate_pool(g=g, f=f, data=digits, plan=_digits_plan(digits), cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    plan, swaps = load_swaps(s.path, digits)
    rows = open_pool(s.path).rows()
    accepted_slots = set(rows["slot"][rows["accepted"]].tolist())
    assert set(swaps) == accepted_slots and 0 < len(accepted_slots) < len(rows["slot"])
    slots = np.arange(len(plan))
    x, y = batch_inputs(digits, digits.train, plan, slots, swaps)
    real, _ = batch_inputs(digits, digits.train, plan, slots, {})
    for s_ in slots:
        if s_ in accepted_slots:
            assert torch.equal(x[s_], torch.from_numpy(swaps[s_].x))
        else:
            assert torch.equal(x[s_], real[s_])
    assert np.array_equal(y.numpy(), digits.train.y[plan.order])


def test_provenance_mismatch_is_refused(tmp_path, trained, digits, tiny_m2m):
    g, f = _trained_models(trained, digits)
    s = generate_pool(g=g, f=f, data=digits, plan=_digits_plan(digits), cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    with pytest.raises(M2mError, match="g_hash"):
        check_provenance(open_pool(s.path), g_hash="0" * 16)
    with pytest.raises(M2mError, match="epoch"):
        load_swaps(s.path, digits, epoch=99)


def test_incomplete_pool_is_refused_and_nothing_left_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with PoolWriter(tmp_path / "p", n_rows=3, input_shape=(4,), input_kind="vector", rows_per_shard=2):
            raise RuntimeError("crash mid-write")
    assert not (tmp_path / "p").exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(M2mError, match="does not exist"):
        open_pool(tmp_path / "p")
    (tmp_path / "junk").mkdir()
    with pytest.raises(M2mError, match="not a zarr v3 group"):
        open_pool(tmp_path / "junk")
    (tmp_path / "junk" / "zarr.json").write_text("{ truncated")
    with pytest.raises(M2mError, match="not a readable zarr group"):
        open_pool(tmp_path / "junk")


def test_non_finite_translation_is_an_error_and_leaves_no_pool(tmp_path, trained, digits, tiny_m2m):
    from dataclasses import replace

    g, f = _trained_models(trained, digits)
    with torch.no_grad():
        for p in g.parameters():
            p.fill_(float("nan"))
    with pytest.raises(M2mError, match="non-finite values in"):
        generate_pool(g=g, f=f, data=digits, plan=_digits_plan(digits), cfg=tiny_m2m, seed=0, out=tmp_path / "p")
    assert not (tmp_path / "p").exists() and list(tmp_path.iterdir()) == []
    s = generate_pool(g=g, f=f, data=digits, plan=_digits_plan(digits), cfg=replace(tiny_m2m, max_non_finite=1.0),
                      seed=0, out=tmp_path / "q")
    rows = open_pool(s.path).rows(("accepted", "reason"))
    assert not rows["accepted"].any() and s.reasons["non_finite"] > 0
