"""The training loop: schedule, checkpoints, and that M2m trains on exactly the pools' accepted rows."""

import numpy as np
import pytest
import torch

from m2m_pipeline.pools.codec import read_x
from m2m_pipeline.store import open_pool
from m2m_pipeline.pipeline import train_method as train_f
from m2m_pipeline.training import Preset, load_checkpoint, lr_at, save_checkpoint
from m2m_pipeline.training import loop as loop_mod
from m2m_pipeline.utils import M2mError


def test_lr_at_cifar_schedule():
    p = Preset(model="resnet32", epochs=200, batch_size=128, lr=0.1, warmup_epochs=5, milestones=(160, 180),
               lr_factor=0.01, deferred_epoch=160)
    assert lr_at(0, p) == pytest.approx(0.02)
    assert lr_at(4, p) == pytest.approx(0.1)
    assert lr_at(159, p) == pytest.approx(0.1)
    assert lr_at(160, p) == pytest.approx(0.001)
    assert lr_at(180, p) == pytest.approx(0.00001)


def test_preset_rejects_bad_values():
    with pytest.raises(M2mError, match="deferred_epoch"):
        Preset(model="mlp", epochs=10, batch_size=8, deferred_epoch=11)
    with pytest.raises(M2mError, match="unknown key"):
        Preset.from_params({"model": "mlp", "epochs": 2, "batch_size": 4, "bogus": 1}, "x")


def test_m2m_trains_on_exactly_the_accepted_pool_rows(tmp_path, trained, digits, tiny_preset, tiny_m2m, monkeypatch):
    seen = []
    real_batch_inputs = loop_mod.batch_inputs

    def spy(data, train, plan, slots, swaps):
        x, y = real_batch_inputs(data, train, plan, slots, swaps)
        seen.append((plan.epoch, slots.copy(), {int(s): x[i].clone() for i, s in enumerate(slots) if int(s) in swaps}))
        return x, y

    monkeypatch.setattr(loop_mod, "batch_inputs", spy)
    res = train_f(digits, tiny_preset, method="M2m", seed=0, out_dir=tmp_path / "run", warm_dir=trained / "warm",
                  g_path=trained / "g" / "last.pt", m2m=tiny_m2m, pools_dir=tmp_path / "pools", progress=False)
    total_accepted = 0
    for epoch in range(tiny_preset.deferred_epoch, tiny_preset.epochs):
        pool = open_pool(tmp_path / "pools" / f"epoch_{epoch}")
        rows = pool.rows(("slot", "accepted"))
        rows["x"] = read_x(pool, digits)   # x* as training reads it (decoded)
        accepted = {int(s): x for s, x, a in zip(rows["slot"], rows["x"], rows["accepted"]) if a}
        trained_on = {}
        for e, _slots, swapped in seen:
            if e == epoch:
                trained_on.update(swapped)
        assert set(trained_on) == set(accepted)
        for s, x in accepted.items():
            assert torch.equal(trained_on[s], torch.from_numpy(x))
        total_accepted += len(accepted)
        assert res.history[epoch]["n_accepted"] == len(accepted)
    assert total_accepted > 0
    assert len(res.history) == tiny_preset.epochs
    assert all(np.isfinite(h["val_bacc"]) for h in res.history)


def test_deferred_methods_start_from_warm(tmp_path, trained, digits, tiny_preset):
    res = train_f(digits, tiny_preset, method="DRS", seed=0, out_dir=tmp_path / "drs", warm_dir=trained / "warm",
                  progress=False)
    warm = load_checkpoint(trained / "warm" / "last.pt")
    assert [h["epoch"] for h in res.history[: tiny_preset.deferred_epoch]] == list(range(tiny_preset.deferred_epoch))
    assert res.history[:2] == warm["extra"]["history"][:2]
    ckpt = load_checkpoint(tmp_path / "drs" / "last.pt", data=digits)
    assert ckpt["epoch"] == tiny_preset.epochs and ckpt["params"]["method"] == "DRS"
    assert set(ckpt) >= {"model_state", "optimizer_state", "config", "params", "epoch"}


def test_warm_seed_mismatch_is_refused(tmp_path, trained, digits, tiny_preset):
    with pytest.raises(M2mError, match="seed"):
        train_f(digits, tiny_preset, method="DRS", seed=5, out_dir=tmp_path / "x", warm_dir=trained / "warm",
                progress=False)


def test_missing_corrupt_and_mismatched_checkpoints(tmp_path, trained, digits):
    with pytest.raises(M2mError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(M2mError, match="corrupt"):
        load_checkpoint(bad)
    ckpt = load_checkpoint(trained / "g" / "last.pt")
    ckpt["config"]["num_classes"] = 7
    from m2m_pipeline.training import model_from_checkpoint

    model = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt"))
    save_checkpoint(tmp_path / "seven.pt", model=model, optimizer=None, config=ckpt["config"], params={},
                    epoch=1, dataset_fingerprint=digits.fingerprint)
    with pytest.raises(M2mError, match="7 classes"):
        load_checkpoint(tmp_path / "seven.pt", data=digits)
