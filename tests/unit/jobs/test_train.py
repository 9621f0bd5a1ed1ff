"""Training jobs (jobs/train.py) on the embedded digits data: M2m trains on exactly the pools' accepted
rows, and the deferred methods start from the warm f of their own seed."""

import numpy as np
import pytest
import torch

from m2m_pipeline.pools.codec import read_x
from m2m_pipeline.store import open_pool
from m2m_pipeline.jobs.dispatch import train_method as train_f
from m2m_pipeline.training import load_checkpoint
from m2m_pipeline.training import loop as loop_mod
from m2m_pipeline.utils import M2mError


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
