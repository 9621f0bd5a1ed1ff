"""Translation backends (pools/backends.py, pools/distributed.py): which backend params build, the
options a user can get wrong, the in-process backend's shard loop, and how a backend that holds a
cluster opens it once for a ``with`` block however deeply nested.

Tiny data as in test_generate.py; no dask cluster is started here (tests/system/test_distributed.py
runs real ones).
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig, draw_slots
from m2m_pipeline.pools import backends as backends_mod
from m2m_pipeline.pools import distributed as distributed_mod
from m2m_pipeline.pools import shard as shard_mod
from m2m_pipeline.pools.backends import (DaskBackend, InProcessBackend, TranslationBackend, backend_options,
                                         create_backend)
from m2m_pipeline.pools.generate import make_translator
from m2m_pipeline.pools.shard import ShardJob
from m2m_pipeline.store import PoolWriter, open_pool
from m2m_pipeline.utils import M2mError

from tests.tiny import tiny_mlp, tiny_pool_attrs, tiny_vectors

pytestmark = pytest.mark.mutation


# -- backend_options / create_backend ------------------------------------------------------------

def test_backend_options_take_the_command_line_over_params():
    assert backend_options() == {"workers": None, "scheduler": None}
    assert backend_options(None, workers=None, scheduler=None) == {"workers": None, "scheduler": None}
    assert backend_options({"workers": 3}) == {"workers": 3, "scheduler": None}
    assert backend_options({"workers": 3}, workers=2) == {"workers": 2, "scheduler": None}
    # an explicit 0 (--workers 0) overrides params' workers: this process
    assert backend_options({"workers": 3}, workers=0) == {"workers": None, "scheduler": None}
    assert backend_options({"scheduler": "tcp://h:8786"}) == {"workers": None, "scheduler": "tcp://h:8786"}
    assert backend_options({"scheduler": "tcp://a:1"}, scheduler="tcp://b:2") == {"workers": None,
                                                                                  "scheduler": "tcp://b:2"}
    assert backend_options({"workers": None, "scheduler": None}) == {"workers": None, "scheduler": None}


def test_backend_options_refuse_both_and_bad_values():
    with pytest.raises(M2mError, match="not both"):
        backend_options({"workers": 2, "scheduler": "tcp://h:1"})
    with pytest.raises(M2mError, match="not both"):
        backend_options({"scheduler": "tcp://h:1"}, workers=0)   # 0 is given, so the two clash
    with pytest.raises(M2mError, match="not both"):
        backend_options(workers=1, scheduler="tcp://h:1")
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(M2mError, match="integer >= 0"):
            backend_options({"workers": bad})
    for bad in ("nohost", 8786, "h:8786", ""):
        with pytest.raises(M2mError, match="tcp://"):
            backend_options({"scheduler": bad})


def test_create_backend_builds_one_per_setting():
    here = create_backend()
    assert type(here) is InProcessBackend and not here.distributed and here.name == "in-process"
    assert type(create_backend({"workers": 0})) is InProcessBackend
    local = create_backend({"workers": 2})
    assert type(local) is DaskBackend and local.distributed
    assert (local.workers, local.scheduler, local.client) == (2, None, None)
    remote = create_backend({}, scheduler="tcp://h:8786")
    assert (remote.workers, remote.scheduler, remote.client) == (None, "tcp://h:8786", None)
    client = object()
    given = create_backend(client=client)
    assert type(given) is DaskBackend and given.client is client
    with pytest.raises(M2mError, match="not both"):
        create_backend({"workers": 1}, scheduler="tcp://h:1")
    assert repr(local) == "DaskBackend(workers=2)" and repr(remote) == "DaskBackend(scheduler='tcp://h:8786')"
    assert repr(given) == "DaskBackend(client)" and repr(here) == "InProcessBackend()"


# -- the interface: with-blocks ------------------------------------------------------------------

class _Counting(TranslationBackend):
    def __init__(self):
        super().__init__()
        self.events = []

    def open(self):
        self.events.append("open")

    def close(self):
        self.events.append("close")


def test_a_backend_opens_once_for_nested_blocks_and_closes_after_the_outermost():
    b = _Counting()
    with b as entered:
        assert entered is b and b.events == ["open"]
        with b:
            with b:
                assert b.events == ["open"]
        assert b.events == ["open"]
    assert b.events == ["open", "close"]
    with pytest.raises(RuntimeError):
        with b:
            raise RuntimeError("boom")   # an error still closes, and is not swallowed
    assert b.events == ["open", "close", "open", "close"]


def test_the_base_backend_translates_nothing():
    with pytest.raises(NotImplementedError):
        TranslationBackend().translate_shards(None, g=None, f=None, shards=[0])
    base = TranslationBackend()
    with base:   # open/close are no-ops by default
        pass
    assert not base.distributed


# -- the in-process backend ----------------------------------------------------------------------

def _job(tmp_path, d, *, rows_per_shard=4):
    cfg = TranslationConfig(steps=2, step_size=0.5, beta=0.5, gamma=0.9, batch_size=2, rows_per_shard=rows_per_shard)
    plan = make_plan(d.train.y, d.class_counts, seed=0, epoch=1, order="balanced", attempts=True,
                     augment=d.augment, batch_size=8)
    draws = draw_slots(d, plan, cfg, 0)
    writer = PoolWriter(tmp_path / "p", n_rows=len(draws.slot), input_shape=d.input_shape, input_kind=d.input_kind,
                        rows_per_shard=rows_per_shard, rows_per_chunk=rows_per_shard, job={"test": 1})
    job = ShardJob(data=d, draws=draws, translator=make_translator(cfg, d.input_range), cfg=cfg, seed=0, epoch=1,
                   work=writer.work, shard_rows=rows_per_shard)
    return plan, writer, job


def test_in_process_backend_translates_and_commits_each_shard_once(tmp_path, monkeypatch):
    d = tiny_vectors()
    g, f = tiny_mlp(d, seed=1), tiny_mlp(d, seed=2)
    plan, writer, job = _job(tmp_path, d)
    real, slices, threads = shard_mod.translate_rows, [], set()

    def spy(*a, **k):
        slices.append(a[4])
        return real(*a, **k)

    commit = shard_mod.commit_shard

    def commit_spy(*a, **k):
        threads.add(threading.current_thread().name)
        return commit(*a, **k)

    monkeypatch.setattr(backends_mod, "translate_rows", spy)
    monkeypatch.setattr(backends_mod, "commit_shard", commit_spy)
    calls = []
    with writer:
        writer.write_plan(plan.order, plan.attempt, plan.aug)
        counts = InProcessBackend().translate_shards(job, g=g, f=f, shards=[2, 0, 1], progress=calls.append)
        assert sorted(writer.done_shards()) == [0, 1, 2]
        whole = real(g, f, d, job.draws, slice(None), job.translator, job.cfg, 0, 1)
        writer.finish(tiny_pool_attrs(whole, class_counts=d.class_counts, n_slots=len(plan)))
    # shards in the order given; the last one has the 3 remaining rows
    assert slices == [slice(8, 12), slice(0, 4), slice(4, 8)] and calls == [3, 4, 4]
    assert [sum(c.values()) for c in counts] == [3, 4, 4]
    assert threads and all(t.startswith("pool-writer") for t in threads)   # commits on the writer thread
    total = {k: sum(c[k] for c in counts) for k in counts[0]}
    assert total == shard_mod.reason_counts(whole["reason"])
    got = open_pool(tmp_path / "p").rows(("slot", "reason", "accepted"))
    for name in ("slot", "reason", "accepted"):
        np.testing.assert_array_equal(got[name], whole[name])


def test_in_process_backend_without_shards_or_progress(tmp_path):
    d = tiny_vectors()
    _, writer, job = _job(tmp_path, d)
    writer.__enter__()
    try:
        assert InProcessBackend().translate_shards(job, g=tiny_mlp(d), f=tiny_mlp(d), shards=[]) == []
        counts = InProcessBackend().translate_shards(job, g=tiny_mlp(d), f=tiny_mlp(d), shards=[0])
        assert sum(counts[0].values()) == 4 and sorted(writer.done_shards()) == [0]
    finally:
        writer.discard()


# -- the dask backend's cluster, without dask ----------------------------------------------------

def test_dask_backend_starts_its_cluster_once_per_outermost_block(monkeypatch):
    events = []

    @contextlib.contextmanager
    def fake_client(workers=None, scheduler=None):
        events.append(("start", workers, scheduler))
        try:
            yield "CLIENT", 3
        finally:
            events.append(("stop",))

    monkeypatch.setattr(distributed_mod, "dask_client", fake_client)
    b = DaskBackend(workers=2)
    assert b.client is None
    with b:
        with b:
            assert (b.client, b.torch_threads) == ("CLIENT", 3)
        assert events == [("start", 2, None)]
    assert events == [("start", 2, None), ("stop",)] and (b.client, b.torch_threads) == (None, None)
    given = DaskBackend(client="MINE")
    with given:
        assert given.client == "MINE"
    assert given.client == "MINE" and len(events) == 2   # a given client is neither started nor closed


def test_dask_backend_refuses_shards_without_model_configs_and_skips_none(monkeypatch):
    monkeypatch.setattr(distributed_mod, "dask_client", lambda *a, **k: pytest.fail("no cluster for this"))
    b = DaskBackend(workers=2)
    assert b.translate_shards(None, g=None, f=None, shards=[]) == []
    with pytest.raises(M2mError, match="model_configs"):
        b.translate_shards(None, g=None, f=None, shards=[0])


def test_dask_backend_hands_the_shards_to_its_client(monkeypatch):
    calls = []

    @contextlib.contextmanager
    def fake_client(workers=None, scheduler=None):
        calls.append("start")
        yield "CLIENT", 2

    def fake_run(client, threads, g, f, model_configs, job, shards, progress):
        calls.append((client, threads, g, f, model_configs, job, list(shards), progress))
        return [{"accepted": 1}]

    monkeypatch.setattr(distributed_mod, "dask_client", fake_client)
    monkeypatch.setattr(distributed_mod, "run_on_client", fake_run)
    b = DaskBackend(workers=2)
    got = b.translate_shards("JOB", g="G", f="F", shards=[3, 1], model_configs=("gc", "fc"), progress=print)
    # a call outside any with-block starts the cluster for itself and stops it after
    assert got == [{"accepted": 1}] and calls == ["start", ("CLIENT", 2, "G", "F", ("gc", "fc"), "JOB", [3, 1], print)]
    assert b.client is None and b._stack is None

