"""Ablations of M2m (Sec. 3.4, Tables 3-5): rules over the stored rows of the M2m run's pools, and
the ablations with pools of their own. Tiny digits fixtures; every rule checked against the pool's
own columns, not against what the same code returned."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from m2m_pipeline.acceptance import REASONS, accept_prob
from m2m_pipeline.jobs.ablate import train_ablation
from m2m_pipeline.jobs.evaluate import check_finished
from m2m_pipeline.jobs.train import warm_f
from m2m_pipeline.jobs.dispatch import train_method
from m2m_pipeline.pools.codec import read_x
from m2m_pipeline.pools.draws import seed_inputs, seed_subset_mask
from m2m_pipeline.store import open_pool
from m2m_pipeline.training import Preset, get_method, list_ablations, load_checkpoint
from m2m_pipeline.training import loop as loop_mod
from m2m_pipeline.utils import M2mError, state_hash

from tests.conftest import ROOT

REUSE = [m for m in list_ablations() if get_method(m).reuse]
OWN_POOLS = [m for m in list_ablations() if get_method(m).translate]


# -- ablations that reuse the M2m run's pools -----------------------------------------------------------

@pytest.fixture(scope="module")
def m2m_run(tmp_path_factory, trained, digits, tiny_preset, tiny_m2m):
    """The main M2m run of seed 0 whose pools the ablations reuse."""
    root = tmp_path_factory.mktemp("m2m_run")
    train_method(digits, tiny_preset, method="M2m", seed=0, out_dir=root / "M2m", warm_dir=trained / "warm",
                 g_path=trained / "g" / "best.pt", m2m=tiny_m2m, pools_dir=root / "pools", progress=False)
    return root


def _spy(monkeypatch):
    """Record what every training batch held in its swapped slots: {epoch: {slot: (x, y)}}."""
    seen: dict[int, dict[int, tuple[torch.Tensor, int]]] = {}
    real = loop_mod.batch_inputs

    def spy(data, train, plan, slots, swaps):
        x, y = real(data, train, plan, slots, swaps)
        for i, s in enumerate(slots):
            if int(s) in swaps:
                seen.setdefault(plan.epoch, {})[int(s)] = (x[i].clone(), int(y[i]))
        return x, y

    monkeypatch.setattr(loop_mod, "batch_inputs", spy)
    return seen


def _no_translation(monkeypatch):
    """Make any call into the translation math fail the test."""
    import m2m_pipeline.translate as tr

    def boom(*a, **k):
        raise AssertionError("a pool-reusing ablation called the translation code")

    monkeypatch.setattr(tr.M2mTranslator, "translate", boom)
    monkeypatch.setattr(tr, "translation_steps", boom)


def _ablate(name, m2m_run, trained, digits, tiny_preset, tmp_path, **kw):
    return train_ablation(digits, tiny_preset, method=name, seed=0, out_dir=tmp_path / name,
                          reused_pools=m2m_run / "pools", warm_dir=trained / "warm", progress=False, **kw)


def _epochs(tiny_preset):
    return range(tiny_preset.deferred_epoch, tiny_preset.epochs)


def test_clean_trains_on_exactly_the_stored_x0(m2m_run, trained, digits, tiny_preset, tmp_path, monkeypatch):
    seen = _spy(monkeypatch)
    _no_translation(monkeypatch)
    _ablate("M2m-Clean", m2m_run, trained, digits, tiny_preset, tmp_path)
    n_rows = 0
    for epoch in _epochs(tiny_preset):
        pool = open_pool(m2m_run / "pools" / f"epoch_{epoch}")
        cols = {**pool.rows(("slot", "target", "seed_index", "seed_aug", "accepted")), "x": read_x(pool, digits)}
        acc = np.flatnonzero(cols["accepted"])
        x0 = seed_inputs(digits, cols["seed_index"][acc], cols["seed_aug"][acc])
        got = seen.get(epoch, {})
        assert set(got) == set(cols["slot"][acc].tolist())
        for i, r in enumerate(acc):
            x, y = got[int(cols["slot"][r])]
            assert torch.equal(x, x0[i])                   # the clean seed, not x*
            assert not torch.equal(x, torch.from_numpy(cols["x"][r]))
            assert y == int(cols["target"][r])             # labelled with the target k
        n_rows += len(acc)
    assert n_rows > 0


def test_rand_labels_avoid_target_and_seed_class(m2m_run, trained, digits, tiny_preset, tmp_path, monkeypatch):
    seen = _spy(monkeypatch)
    _no_translation(monkeypatch)
    _ablate("M2m-Rand", m2m_run, trained, digits, tiny_preset, tmp_path)
    n_rows = 0
    for epoch in _epochs(tiny_preset):
        pool = open_pool(m2m_run / "pools" / f"epoch_{epoch}")
        cols = {**pool.rows(("slot", "target", "seed_class", "accepted")), "x": read_x(pool, digits)}
        acc = np.flatnonzero(cols["accepted"])
        got = seen.get(epoch, {})
        assert set(got) == set(cols["slot"][acc].tolist())
        for r in acc:
            x, y = got[int(cols["slot"][r])]
            assert torch.equal(x, torch.from_numpy(cols["x"][r]))   # x* itself
            assert y not in (int(cols["target"][r]), int(cols["seed_class"][r]))
            assert 0 <= y < digits.num_classes
        n_rows += len(acc)
    assert n_rows > 0
    # re-runs agree: the relabelling is drawn from the seeded stream
    again = _spy(monkeypatch)
    _ablate("M2m-Rand", m2m_run, trained, digits, tiny_preset, tmp_path / "again")
    assert {e: {s: y for s, (_, y) in v.items()} for e, v in again.items()} == \
        {e: {s: y for s, (_, y) in v.items()} for e, v in seen.items()}


def test_no_reject_no_gamma_uses_every_finite_attempt(m2m_run, trained, digits, tiny_preset, tmp_path, monkeypatch):
    seen = _spy(monkeypatch)
    _no_translation(monkeypatch)
    res = _ablate("M2m-No-Reject-No-Gamma", m2m_run, trained, digits, tiny_preset, tmp_path)
    for epoch in _epochs(tiny_preset):
        pool = open_pool(m2m_run / "pools" / f"epoch_{epoch}")
        cols = {**pool.rows(("slot", "seed_index", "accepted", "reason")), "x": read_x(pool, digits)}
        finite = np.isfinite(cols["x"].reshape(len(cols["x"]), -1)).all(axis=1) & (cols["seed_index"] >= 0)
        usable = finite & ~np.isin(cols["reason"], [REASONS["non_finite"], REASONS["no_seed"]])
        assert set(seen.get(epoch, {})) == set(cols["slot"][usable].tolist())
        assert usable.sum() > cols["accepted"].sum()     # more rows than M2m's own rule keeps
        assert res.history[epoch]["n_used"] == int(usable.sum())


def test_no_gamma_keeps_the_beta_test(m2m_run, trained, digits, tiny_preset, tmp_path, monkeypatch):
    seen = _spy(monkeypatch)
    _no_translation(monkeypatch)
    _ablate("M2m-No-Gamma", m2m_run, trained, digits, tiny_preset, tmp_path)
    for epoch in _epochs(tiny_preset):
        pool = open_pool(m2m_run / "pools" / f"epoch_{epoch}")
        cols, attrs = pool.rows(("slot", "target", "seed_class", "seed_index", "u_beta", "reason")), pool.attrs
        ok = cols["seed_index"] >= 0
        p = np.zeros(len(ok))
        p[ok] = accept_prob(attrs["class_counts"], cols["seed_class"][ok], cols["target"][ok], attrs["params"]["beta"])
        want = ok & (cols["u_beta"] < p) & (cols["reason"] != REASONS["non_finite"])
        assert set(seen.get(epoch, {})) == set(cols["slot"][want].tolist())


def test_reused_pools_of_another_seed_or_warm_start_are_refused(m2m_run, trained, digits, tiny_preset, tmp_path):
    # another seed: a warm checkpoint of seed 1, checked against the pools of seed 0
    warm1 = tmp_path / "warm1"
    warm_f(digits, tiny_preset, seed=1, out_dir=warm1, progress=False)
    with pytest.raises(M2mError, match=r"seed=0 but is used with 1") as err:
        train_ablation(digits, tiny_preset, method="M2m-Clean", seed=1, out_dir=tmp_path / "s1",
                       reused_pools=m2m_run / "pools", warm_dir=warm1, progress=False)
    assert "\n" not in str(err.value)
    # another warm checkpoint of the same seed (a different schedule): its hash differs
    other = Preset(**{**tiny_preset.to_dict(), "lr": 0.05})
    warm_b = tmp_path / "warm_b"
    warm_f(digits, other, seed=0, out_dir=warm_b, progress=False)
    with pytest.raises(M2mError, match=r"warm_hash") as err:
        train_ablation(digits, other, method="M2m-Clean", seed=0, out_dir=tmp_path / "wb",
                       reused_pools=m2m_run / "pools", warm_dir=warm_b, progress=False)
    assert "\n" not in str(err.value)


def test_reuse_job_does_not_import_the_translation_code():
    code = ("import sys, m2m_pipeline.jobs.ablate, m2m_pipeline.pools.reuse; "
            "print(sorted(m for m in sys.modules if m.startswith('m2m_pipeline.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "m2m_pipeline.translate" not in out and "m2m_pipeline.pools.generate" not in out
    for translating in ("shard", "backends", "distributed", "sources.translated", "sources.online"):
        assert f"'m2m_pipeline.pools.{translating}'" not in out, translating
    assert "m2m_pipeline.jobs.ablate" in out and "'m2m_pipeline.pools.sources.reused'" in out


# -- ablations with pools of their own --------------------------------------------------------------

@pytest.mark.parametrize("name", OWN_POOLS)
def test_every_translating_ablation_is_registered_and_checkable(name):
    spec = get_method(name)
    assert spec.translate and spec.paper_table in ("Table 3", "Table 4", "Table 5", "")
    assert name.startswith("M2m-")


def test_lambda0_ensemble_and_seed_subset_translate(trained, digits, tiny_preset, tiny_m2m, tmp_path, m2m_run):
    erm = tmp_path / "ERM"
    train_method(digits, tiny_preset, method="ERM", seed=0, out_dir=erm, warm_dir=trained / "warm", progress=False)
    common = dict(seed=0, warm_dir=trained / "warm", g_path=trained / "g" / "best.pt", g2_path=erm / "best.pt",
                  m2m=tiny_m2m, progress=False)
    for name in ("M2m-Lambda0", "M2m-Ensemble", "M2m-Seeds10", "M2m-Self"):
        train_method(digits, tiny_preset, method=name, out_dir=tmp_path / name, pools_dir=tmp_path / f"pools-{name}",
                     **common)
    pool = lambda name: open_pool(tmp_path / f"pools-{name}" / f"epoch_{tiny_preset.deferred_epoch}")  # noqa: E731
    assert pool("M2m-Lambda0").attrs["params"]["lam"] == 0.0
    # the loss threshold doubled: under the prob rule gamma ** 2, more lenient than the run's gamma
    assert tiny_m2m.gamma_on == "prob"
    assert pool("M2m-Ensemble").attrs["params"]["gamma"] == pytest.approx(tiny_m2m.gamma ** 2)
    assert pool("M2m-Ensemble").attrs["params"]["gamma"] < tiny_m2m.gamma
    # the ensemble's hash is neither g's nor the ERM run's
    g_hash = load_checkpoint(trained / "g" / "best.pt")["weights_hash"]
    assert pool("M2m-Ensemble").attrs["g_hash"] not in (g_hash, load_checkpoint(erm / "best.pt")["weights_hash"])
    # M2m-Self: the generator is f itself, so the pool's g and f hashes are the same model
    a = pool("M2m-Self").attrs
    assert a["g_hash"] == a["f_hash"]
    # M2m-Seeds10: every seed row comes from the fixed subset of 10 per class
    mask = seed_subset_mask(digits.train.y, digits.num_classes, 10, seed=0)
    for e in _epochs(tiny_preset):
        idx = open_pool(tmp_path / "pools-M2m-Seeds10" / f"epoch_{e}").array("seed_index")
        assert mask[idx[idx >= 0]].all()
    # k0 ~ Q(.|k) then a seed within k0's subset: every attempt has a seed, as many attempts as M2m's
    for e in _epochs(tiny_preset):
        own = open_pool(tmp_path / "pools-M2m-Seeds10" / f"epoch_{e}").rows(("slot", "reason"))
        ref = open_pool(m2m_run / "pools" / f"epoch_{e}").rows(("slot", "reason"))
        assert len(own["slot"]) == len(ref["slot"]) > 0
        assert own["slot"].tolist() == ref["slot"].tolist()
        assert not (own["reason"] == REASONS["no_seed"]).any()


def test_rs_translates_from_epoch_zero(trained, digits, tiny_preset, tiny_m2m, tmp_path):
    res = train_method(digits, tiny_preset, method="M2m-RS", seed=0, out_dir=tmp_path / "rs",
                       g_path=trained / "g" / "best.pt", m2m=tiny_m2m, pools_dir=tmp_path / "pools", progress=False)
    assert [h["epoch"] for h in res.history if h["n_attempts"] > 0] == list(range(tiny_preset.epochs))
    assert (tmp_path / "pools" / "epoch_0" / "zarr.json").is_file()


def test_online_and_staged_pools_agree_when_f_does_not_change(digits, tiny_m2m, tmp_path):
    # lr 0 and a model without batch norm: f is the same at every mini-batch of the epoch, so the
    # paper's online loop and the staged pool must translate identically.
    preset = Preset(model="mlp", epochs=3, batch_size=64, lr=0.0, warmup_epochs=0, deferred_epoch=2,
                    model_args={"hidden": 32})
    from m2m_pipeline.jobs.train import pretrain_g

    pretrain_g(digits, Preset(model="mlp", epochs=2, batch_size=64, warmup_epochs=0, model_args={"hidden": 32}),
               seed=1000, out_dir=tmp_path / "g", progress=False)
    warm_f(digits, Preset(**{**preset.to_dict(), "lr": 0.1}), seed=0, out_dir=tmp_path / "warm", progress=False)
    # the warm phase trains with lr 0.1; the deferred epoch then runs with lr 0
    common = dict(seed=0, warm_dir=tmp_path / "warm", g_path=tmp_path / "g" / "best.pt", m2m=tiny_m2m,
                  progress=False)
    for name in ("M2m", "M2m-Online"):
        train_method(digits, preset, method=name, out_dir=tmp_path / name, pools_dir=tmp_path / f"pools-{name}",
                     **common)
    # sub-epoch parts of 3 mini-batches (m2m.refresh_batches) translate the same rows too
    import dataclasses

    train_method(digits, preset, method="M2m", out_dir=tmp_path / "parts", pools_dir=tmp_path / "pools-parts",
                 **{**common, "m2m": dataclasses.replace(tiny_m2m, refresh_batches=3)})
    a = open_pool(tmp_path / "pools-M2m" / "epoch_2")
    b = open_pool(tmp_path / "pools-M2m-Online" / "epoch_2")
    c = open_pool(tmp_path / "pools-parts" / "epoch_2")
    assert c.attrs["refresh_batches"] == 3 and b.attrs["refresh_batches"] == 1
    assert np.array_equal(c.array("accepted"), a.array("accepted"))
    np.testing.assert_allclose(read_x(c, digits), read_x(a, digits), atol=1e-5)
    keys = ("slot", "target", "seed_class", "seed_index", "seed_aug", "u_beta", "accepted", "reason")
    ra, rb = {**a.rows(keys), "x": read_x(a, digits)}, {**b.rows(keys), "x": read_x(b, digits)}
    assert len(ra["slot"]) > 0 and ra["accepted"].any()
    for key in ("slot", "target", "seed_class", "seed_index", "seed_aug", "u_beta", "accepted", "reason"):
        assert np.array_equal(ra[key], rb[key]), key
    np.testing.assert_allclose(ra["x"], rb["x"], atol=1e-5)
    assert b.attrs["online"] is True and b.attrs["f_hash"] == a.attrs["f_hash"]


# -- runs: selection, completion, resume --------------------------------------------------------------

def test_deferred_method_selects_among_its_own_epochs(m2m_run, tiny_preset):
    ckpt = load_checkpoint(m2m_run / "M2m" / "best.pt")
    assert ckpt["epoch"] - 1 >= tiny_preset.deferred_epoch


def test_evaluate_refuses_an_unfinished_run(trained, digits, tiny_preset, tmp_path, monkeypatch):
    calls = {"n": 0}
    real = loop_mod.predict

    def stop_after_first_epoch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(loop_mod, "predict", stop_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_method(digits, tiny_preset, method="DRS", seed=0, out_dir=tmp_path / "drs", warm_dir=trained / "warm",
                     progress=False)
    with pytest.raises(M2mError, match=r"stopped after 3 of 4 epochs.*resume"):
        check_finished(tmp_path / "drs")


def test_interrupted_run_resumes_to_the_same_weights(trained, digits, tiny_preset, tiny_m2m, tmp_path, monkeypatch):
    common = dict(seed=0, warm_dir=trained / "warm", g_path=trained / "g" / "best.pt", m2m=tiny_m2m, progress=False)
    whole = train_method(digits, tiny_preset, method="M2m", out_dir=tmp_path / "whole", pools_dir=tmp_path / "pw",
                         **common)
    calls = {"n": 0}
    real = loop_mod.predict

    def crash_in_last_epoch(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:          # the second deferred epoch's validation: after epoch 2 is saved
            raise RuntimeError("killed")
        return real(*a, **k)

    monkeypatch.setattr(loop_mod, "predict", crash_in_last_epoch)
    with pytest.raises(RuntimeError, match="killed"):
        train_method(digits, tiny_preset, method="M2m", out_dir=tmp_path / "cut", pools_dir=tmp_path / "pc", **common)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == tiny_preset.deferred_epoch + 1
    monkeypatch.setattr(loop_mod, "predict", real)
    resumed = train_method(digits, tiny_preset, method="M2m", out_dir=tmp_path / "cut", pools_dir=tmp_path / "pc",
                           **common)
    a = load_checkpoint(tmp_path / "whole" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert a["weights_hash"] == b["weights_hash"]
    assert [h["epoch"] for h in resumed.history] == [h["epoch"] for h in whole.history]
    assert state_hash(b["model_state"]) == a["weights_hash"]
    check_finished(tmp_path / "cut")
