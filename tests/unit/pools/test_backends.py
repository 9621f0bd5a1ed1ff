"""Translation backends (pools/backends.py, pools/distributed.py): which backend params build, the
options a user can get wrong, the in-process backend's shard loop, and how a backend that holds a
cluster opens it once for a ``with`` block however deeply nested.

Tiny data as in test_generate.py; no dask cluster with workers is started here
(tests/system/test_distributed.py runs real ones). A --scheduler address that is not a dask
scheduler (issue 20) is tried against real listeners on 127.0.0.1 (silent, HTTP, a real
scheduler of no workers in this process).
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
    def fake_client(workers=None, scheduler=None, threads=None):
        events.append(("start", workers, scheduler, threads))
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
        assert events == [("start", 2, None, None)]
    assert events == [("start", 2, None, None), ("stop",)] and (b.client, b.torch_threads) == (None, None)
    given = DaskBackend(client="MINE")
    with given:
        assert given.client == "MINE"
    assert given.client == "MINE" and len(events) == 2   # a given client is neither started nor closed
    with DaskBackend(workers=2, threads=1):   # threads per task go to the cluster it starts
        assert events[-1] == ("start", 2, None, 1)


def test_dask_backend_refuses_shards_without_model_configs_and_skips_none(monkeypatch):
    monkeypatch.setattr(distributed_mod, "dask_client", lambda *a, **k: pytest.fail("no cluster for this"))
    b = DaskBackend(workers=2)
    assert b.translate_shards(None, g=None, f=None, shards=[]) == []
    with pytest.raises(M2mError, match="model_configs"):
        b.translate_shards(None, g=None, f=None, shards=[0])


def test_dask_backend_hands_the_shards_to_its_client(monkeypatch):
    calls = []

    @contextlib.contextmanager
    def fake_client(workers=None, scheduler=None, threads=None):
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



# -- a --scheduler address that is not a dask scheduler: one line, in bounded time (issue 20) -----

@pytest.mark.parametrize("address,why", [
    ("tcp://[::1", "closing ']'"),
    ("tcp://[::1]", "no :PORT"),
    ("tcp://[nothex]:8786", "not an IPv6 address"),
    ("tcp://::1:8786", "in brackets"),
    ("tcp://host", "no :PORT"),
    ("tcp://host:", "port ''"),
    ("tcp://host:0", "port '0'"),
    ("tcp://host:99999", "port '99999'"),
    ("tcp://host:87a6", "port '87a6'"),
    ("tcp://host:8\u00b2", "port '8\u00b2'"),   # a digit to str.isdigit, not to int()
    ("tcp://:8786", "not a host name"),
    ("tcp://ho st:8786", "not a host name"),
    ("tcp://host:8786/path", "port '8786/path'"),
    ("http://host:8786", "scheme 'http'"),
    ("host:8786", "no SCHEME://"),
])
def test_a_malformed_scheduler_address_is_one_line_before_any_connection(address, why):
    with pytest.raises(M2mError) as err:
        backend_options(scheduler=address)
    msg = str(err.value)
    assert "\n" not in msg and repr(address) in msg and why in msg and "tcp://HOST:8786" in msg


def test_well_formed_scheduler_addresses_parse():
    parse = distributed_mod.parse_scheduler_address
    assert parse("tcp://10.0.0.5:8786") == ("tcp", "10.0.0.5", 8786)
    assert parse("TCP://head-node.cluster:1") == ("tcp", "head-node.cluster", 1)
    assert parse("tcp://[::1]:8786") == ("tcp", "::1", 8786)
    assert parse("tls://[fe80::1%eth0]:8786") == ("tls", "fe80::1%eth0", 8786)
    assert parse("ucx://h:65535") == ("ucx", "h", 65535)


class _Listener:
    """A real TCP listener on 127.0.0.1 in a thread: ``reply`` None accepts and never answers;
    bytes are sent back after the first read (as an HTTP server answers a request)."""

    def __init__(self, reply: bytes | None, *, speak_first: bool = False):
        import socket

        self.reply, self.speak_first, self.conns = reply, speak_first, []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.address = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.reply is None:
                continue
            try:
                if not self.speak_first:
                    conn.settimeout(30)
                    conn.recv(4096)
                conn.sendall(self.reply)
            except OSError:
                pass
            conn.close()   # an answering server hangs up after its reply

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


def _refused_quickly(address, *needles, timeout=1.0):
    """The M2mError of connecting to ``address`` (with the bound ``timeout``) and the wall time."""
    import time

    start = time.monotonic()
    with pytest.raises(M2mError) as err:
        with distributed_mod.dask_client(scheduler=address):
            pytest.fail("connected to something that is not a dask scheduler")
    took = time.monotonic() - start
    msg = str(err.value)
    assert "\n" not in msg and address in msg, msg
    for n in needles:
        assert n in msg, (n, msg)
    assert took < 30, took   # a hang guard, not a speed test
    return msg, took


@pytest.mark.parametrize("server,needle", [
    (lambda: _Listener(None), "sent nothing within 1 s"),                                # silent listener
    (lambda: _Listener(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n"), "b'HTTP/1.0'"),  # HTTP 400
    (lambda: _Listener(b"HTTP/1.0 200 OK\r\n\r\n<html></html>", speak_first=True), "not a dask scheduler"),
    (lambda: _Listener(b"\x05\x00\x00\x00\x00\x00\x00\x00abc"), "not a dask scheduler"),   # a short message, closed
    (lambda: _Listener(b""), "closed it without a word"),                                  # hangs up at once
])
def test_a_listener_that_is_not_a_dask_scheduler_is_one_line_in_bounded_time(monkeypatch, server, needle):
    monkeypatch.setattr(distributed_mod, "SCHEDULER_TIMEOUT_S", 1.0)
    listener = server()
    try:
        _refused_quickly(listener.address, needle, "dask scheduler")
    finally:
        listener.close()


def test_python_http_server_as_scheduler_is_one_line(monkeypatch):
    """`python -m http.server` (its server and handler, in a thread) on the port: it waits for the
    end of a request line that dask's handshake never brings, so it stays silent (dask used to wait
    forever); the probe's bound ends it."""
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    monkeypatch.setattr(distributed_mod, "SCHEDULER_TIMEOUT_S", 1.0)
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        _refused_quickly(f"tcp://127.0.0.1:{httpd.server_address[1]}", "sent nothing within 1 s", "not one")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_nothing_listening_and_a_bad_address_in_params_are_one_line():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # a port nothing listens on
    _refused_quickly(f"tcp://127.0.0.1:{port}", "cannot reach the dask scheduler")
    with pytest.raises(M2mError, match=r"'tcp://\[::1'.*closing"):
        create_backend({"scheduler": "tcp://[::1"})


def test_what_dask_raises_after_the_probe_is_one_line(monkeypatch):
    """A server that passes the probe but breaks dask's connect (here: dask raising MemoryError, as
    it did on an HTTP reply) still gives one line naming the address."""
    import dask.distributed

    monkeypatch.setattr(distributed_mod, "probe_scheduler", lambda address, timeout=None: None)

    def broken(*a, **k):
        raise MemoryError("Unable to allocate 3.07 EiB for an array with shape (3471766442030158920,)")
    monkeypatch.setattr(dask.distributed, "Client", broken)
    msg, _ = _refused_quickly("tcp://127.0.0.1:1", "MemoryError", "cannot connect to the dask scheduler")


def test_a_real_dask_scheduler_passes_the_probe():
    """The probe must not refuse the real thing: a scheduler of no workers, in this process."""
    import logging

    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster:
        distributed_mod.probe_scheduler(cluster.scheduler_address, 5.0)
        with distributed_mod.dask_client(scheduler=cluster.scheduler_address) as (client, threads):
            assert threads is None and client.scheduler_info()["address"] == cluster.scheduler_address
