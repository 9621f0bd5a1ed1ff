"""params.yaml ``pools.store: all | accepted`` (issue 16): an accepted-only pool keeps every attempt's
small columns but x* of the accepted rows only; it round-trips, verifies, serves the rules that use
accepted rows, and refuses with one line the ablations that need rejected rows' x*.

The pools are tests/unit/pools/test_reuse.py's hand-made rows (6 attempts, 2 accepted).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from m2m_pipeline.params import m2m_config, validate_params
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.pools.codec import NOT_STORED_EXP, encode_rows, read_x
from m2m_pipeline.pools.config import POOL_STORES
from m2m_pipeline.pools.generate import write_pool
from m2m_pipeline.pools.reuse import read_swaps
from m2m_pipeline.pools.sources.reused import ReusedPools
from m2m_pipeline.store import POOL_ROW_ARRAYS, open_pool, verify_pool
from m2m_pipeline.store.pool_schema import POOL_STORES as SCHEMA_STORES
from m2m_pipeline.utils import M2mError

from tests.unit.pools.test_reuse import ACCEPTED, CFG, REASON, _data, _plan, _rows

ACCEPTED_ROWS = np.flatnonzero(ACCEPTED)          # rows 0 and 2
DROPPED_ROWS = np.array([1, 4])                   # rejected (beta, gamma) rows with a seed: x* not kept


def _write_both(tmp_path, data, epoch: int = 2):
    paths = {}
    for store in POOL_STORES:
        paths[store] = tmp_path / store / f"epoch_{epoch}"
        write_pool(paths[store], data=data, plan=_plan(epoch), cfg=dataclasses.replace(CFG, store=store), seed=0,
                   rows=_rows(epoch), g_hash="g", f_hash="f", provenance={"run": "M2m"})
    return paths


def test_the_config_and_the_schema_name_the_same_stores():
    assert POOL_STORES == SCHEMA_STORES == ("all", "accepted")
    with pytest.raises(M2mError, match="pools.store must be one of all, accepted, got 'some'"):
        TranslationConfig(store="some")


def test_params_pools_store_is_validated_and_reaches_the_translation_config():
    params = {"presets": {"digits": {"model": "mlp", "epochs": 2, "batch_size": 4}}, "m2m": {"steps": 3}}
    assert m2m_config(validate_params(params), "digits").store == "all"
    accepted = validate_params({**params, "pools": {"store": "accepted"}})
    cfg = m2m_config(accepted, "digits")
    assert (cfg.store, cfg.steps) == ("accepted", 3)
    with pytest.raises(M2mError, match=r"pools\.store"):
        validate_params({**params, "pools": {"store": "rejected"}})
    with pytest.raises(M2mError, match="unknown key"):
        validate_params({**params, "pools": {"keep": "all"}})
    with pytest.raises(M2mError, match="unknown key"):   # the option lives under pools, not m2m
        validate_params({**params, "m2m": {"store": "accepted"}})


def test_encode_rows_accepted_keeps_only_the_accepted_rows_x():
    data = _data()
    rows = _rows(2)
    every, kept = encode_rows(rows, data, "all"), encode_rows(rows, data, "accepted")
    for name in every:
        if name in ("x_delta", "x_exp"):
            continue
        np.testing.assert_array_equal(kept[name], every[name])
    np.testing.assert_array_equal(kept["x_delta"][ACCEPTED_ROWS], every["x_delta"][ACCEPTED_ROWS])
    np.testing.assert_array_equal(kept["x_exp"][ACCEPTED_ROWS], every["x_exp"][ACCEPTED_ROWS])
    assert (kept["x_delta"][DROPPED_ROWS] == 0).all() and (kept["x_exp"][DROPPED_ROWS] == NOT_STORED_EXP).all()
    assert np.abs(every["x_delta"][DROPPED_ROWS]).max() > 0      # there was something to drop
    # rows without a seed or with a non-finite x* are encoded as before
    np.testing.assert_array_equal(kept["x_exp"][[3, 5]], every["x_exp"][[3, 5]])
    with pytest.raises(ValueError, match="store"):
        encode_rows(rows, data, "some")


def test_accepted_only_pool_round_trip_and_verify(tmp_path):
    data = _data()
    paths = _write_both(tmp_path, data)
    full, kept = open_pool(paths["all"]), open_pool(paths["accepted"])
    assert (full.store, kept.store) == ("all", "accepted")
    assert kept.attrs["store"] == "accepted" and kept.attrs["params"]["store"] == "accepted"
    assert len(kept) == len(full) == 6 and kept.attrs["summary"] == full.attrs["summary"]
    small = tuple(n for n in POOL_ROW_ARRAYS if n not in ("x_delta", "x_exp"))
    a, b = full.rows(small), kept.rows(small)
    for name in small:
        np.testing.assert_array_equal(b[name], a[name])
    np.testing.assert_array_equal(kept.plan_arrays()["order"], full.plan_arrays()["order"])
    # x* of the accepted rows decodes bit for bit as from the full pool; the dropped rows read NaN
    np.testing.assert_array_equal(read_x(kept, data, ACCEPTED_ROWS), read_x(full, data, ACCEPTED_ROWS))
    assert np.isfinite(read_x(full, data, DROPPED_ROWS)).all()
    assert np.isnan(read_x(kept, data, DROPPED_ROWS)).all()
    # the pool verify still works on it: every digest recomputed, every chunk decoded
    report = verify_pool(paths["accepted"])
    assert report["digests"] > 0 and report["arrays"] == verify_pool(paths["all"])["arrays"]
    # and it is smaller on disk
    size = {s: sum(p.stat().st_size for p in (paths[s] / "x_delta").rglob("*") if p.name != "zarr.json")
            for s in paths}
    assert size["accepted"] < size["all"]


@pytest.mark.parametrize("rule", ["accepted", "clean", "rand"])
def test_accepted_only_pool_serves_the_rules_of_accepted_rows(tmp_path, rule):
    data = _data()
    paths = _write_both(tmp_path, data)
    _, want, want_counts = read_swaps(paths["all"], data, rule=rule, seed=0)
    _, got, got_counts = read_swaps(paths["accepted"], data, rule=rule, seed=0)
    assert got_counts == want_counts and len(got) == len(ACCEPTED_ROWS)
    np.testing.assert_array_equal(got.slot, want.slot)
    np.testing.assert_array_equal(got.label, want.label)
    np.testing.assert_array_equal(got.x, want.x)


@pytest.mark.parametrize("method,rule", [("M2m-No-Reject", "no_reject"), ("M2m-No-Gamma", "no_gamma")])
def test_accepted_only_pool_refuses_ablations_that_need_rejected_x(tmp_path, method, rule):
    data = _data()
    paths = _write_both(tmp_path, data)
    read_swaps(paths["all"], data, rule=rule, seed=0, method=method)   # the full pool serves it
    with pytest.raises(M2mError) as err:
        read_swaps(paths["accepted"], data, rule=rule, seed=0, method=method)
    msg = str(err.value)
    assert "\n" not in msg and method in msg and "pools.store: accepted" in msg and "pools.store: all" in msg
    assert str(paths["accepted"]) in msg
    # the ablation's source refuses before training starts, with the same line
    source = ReusedPools(paths["accepted"].parent, data, rule=rule, seed=0, expected={"run": "M2m"}, method=method)
    with pytest.raises(M2mError) as err:
        source.check_ready(2, 3)
    assert str(err.value) == msg
    ReusedPools(paths["all"].parent, data, rule=rule, seed=0, expected={"run": "M2m"}, method=method).check_ready(2, 3)


def test_gamma_rule_on_an_accepted_only_pool_is_refused_only_when_it_needs_rejected_rows(tmp_path):
    data = _data()
    paths = _write_both(tmp_path, data)
    # the pool's own gamma (0.9) re-decides the same rows: served
    _, swaps, _ = read_swaps(paths["accepted"], data, rule="gamma", rule_params={"gamma": 0.9}, seed=0)
    np.testing.assert_array_equal(swaps.slot, [1, 4])
    # gamma 0.5 also takes row 4 (prob_g 0.6, rejected by gamma): its x* was not kept
    with pytest.raises(M2mError, match=r"M2m-Gamma \(rule 'gamma'\) trains on rejected rows' x\*"):
        read_swaps(paths["accepted"], data, rule="gamma", rule_params={"gamma": 0.5}, seed=0, method="M2m-Gamma")
    assert REASON[4] == 2   # row 4 is the gamma-rejected one


def test_generate_pool_with_store_accepted_writes_the_same_decisions(tmp_path):
    """Through the shard task and the writer thread (generate_pool), not only write_pool."""
    from tests.tiny import tiny_vectors
    from tests.unit.pools.test_generate import _cfg, _generate

    d = tiny_vectors()
    summaries = {s: _generate(d, tmp_path / s, cfg=_cfg(store=s, gamma=0.3), seed=3) for s in POOL_STORES}
    assert summaries["all"].reasons == summaries["accepted"].reasons
    full, kept = open_pool(tmp_path / "all"), open_pool(tmp_path / "accepted")
    assert kept.store == "accepted" and full.store == "all"
    accepted = full.array("accepted")
    assert 0 < accepted.sum() < len(accepted)
    np.testing.assert_array_equal(kept.array("reason"), full.array("reason"))
    rows = np.flatnonzero(accepted)
    np.testing.assert_array_equal(read_x(kept, d, rows), read_x(full, d, rows))
    dropped = np.flatnonzero(~accepted & (full.array("seed_index") >= 0))
    assert len(dropped) and np.isnan(read_x(kept, d, dropped)).all()
    verify_pool(tmp_path / "accepted")


def test_a_translating_run_whose_rule_needs_rejected_x_refuses_store_accepted(tmp_path):
    """An ablation that translates its own pools (fresh mode) is refused before translating."""
    from m2m_pipeline.pools.sources.translated import TranslatedPools

    data = _data()
    kw = dict(g=None, data=data, seed=0, pools_dir=tmp_path, batch_size=4, provenance={"run": "M2m-No-Reject"})
    with pytest.raises(M2mError, match=r"^pools.store: accepted keeps x\* of accepted rows only, but M2m-No-Reject "
                                       r"\(rule 'no_reject'\) trains on rejected rows' x\*; set pools.store: all"):
        TranslatedPools(cfg=dataclasses.replace(CFG, store="accepted"), rule="no_reject", **kw)
    TranslatedPools(cfg=CFG, rule="no_reject", **kw)                                     # store all: fine
    TranslatedPools(cfg=dataclasses.replace(CFG, store="accepted"), rule="accepted", **kw)   # M2m itself: fine


def test_the_ablation_job_refuses_no_reject_on_an_accepted_only_m2m_run(tmp_path, trained, digits, tiny_preset,
                                                                         tiny_m2m):
    """End to end: M2m trained with pools.store: accepted; M2m-No-Reject is refused with one line
    before it writes a run folder; M2m-Clean reuses the same pools."""
    from m2m_pipeline.jobs.ablate import train_ablation
    from m2m_pipeline.jobs.dispatch import train_method

    train_method(digits, tiny_preset, method="M2m", seed=0, out_dir=tmp_path / "M2m", warm_dir=trained / "warm",
                 g_path=trained / "g" / "best.pt", m2m=dataclasses.replace(tiny_m2m, store="accepted"),
                 pools_dir=tmp_path / "pools", progress=False)
    epochs = range(tiny_preset.deferred_epoch, tiny_preset.epochs)
    assert all(open_pool(tmp_path / "pools" / f"epoch_{e}").store == "accepted" for e in epochs)
    kw = dict(seed=0, reused_pools=tmp_path / "pools", warm_dir=trained / "warm", progress=False)
    with pytest.raises(M2mError) as err:
        train_ablation(digits, tiny_preset, method="M2m-No-Reject", out_dir=tmp_path / "no-reject", **kw)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"pool {tmp_path / 'pools' / f'epoch_{tiny_preset.deferred_epoch}'} "
                                              f"stores x* of accepted rows only (pools.store: accepted)")
    assert "M2m-No-Reject (rule 'no_reject')" in msg and msg.endswith("generate M2m's pools again with pools.store: all")
    assert not (tmp_path / "no-reject").exists()
    result = train_ablation(digits, tiny_preset, method="M2m-Clean", out_dir=tmp_path / "clean", **kw)
    assert len(result.history) == tiny_preset.epochs
