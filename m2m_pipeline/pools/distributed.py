"""Translation on dask.distributed, behind ``backends.DaskBackend``: one task per pool shard.

Translation is the expensive, embarrassingly parallel part of an M2m epoch (Sec. 2.3: every
attempt is independent given g, the f snapshot and its draws). A task translates the planned rows
of one pool shard and writes and commits that shard itself (``shard.translate_shard``), so the
driver never holds x* and a lost worker costs one shard, which dask runs again elsewhere.

:class:`~m2m_pipeline.pools.backends.DaskBackend` (built by ``backends.create_backend``) runs on one of:

- ``workers=N``: a ``LocalCluster`` of N worker processes, one task at a time each, with torch
  pinned to ``cores // N`` threads, so N x threads <= cores.
- ``scheduler="tcp://HOST:PORT"``: a running cluster (``dask scheduler`` / ``dask worker``). When
  its workers advertise a ``GPU`` resource (``dask worker --resources GPU=1``), every task asks
  for ``GPU=1``, so each GPU runs one shard at a time. Workers must see the pool's folder
  (a shared file system) and have this package installed. The address is checked first
  (:func:`parse_scheduler_address`, then :func:`probe_scheduler`, bounded by
  :data:`SCHEDULER_TIMEOUT_S`): what is not a dask scheduler is one line, never a hang.

The models travel as weights plus their checkpoint ``config`` (not live modules); each worker
process builds g and f once and keeps them, keyed by weights hash, for the following tasks and
epochs. Every draw is a function of (seed, epoch, slot) and the shard boundaries are fixed by
``rows_per_shard``, so the pool is the same whatever the number of workers
(tests/system/test_distributed.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import struct
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from ..models import create_model
from ..utils import M2mError, state_hash
from .shard import ShardJob, translate_shard


@dataclass(frozen=True)
class ModelSpec:
    """A model as it travels to a worker: its checkpoint ``config`` and CPU weights."""

    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    weights_hash: str


def model_spec(module: nn.Module, config: dict[str, Any]) -> ModelSpec:
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    return ModelSpec(dict(config), state, state_hash(state))


def build_from_spec(spec: ModelSpec, device: torch.device | str = "cpu") -> nn.Module:
    """The network of a checkpoint ``config`` (the fields ``training.checkpoint.model_config`` writes)."""
    c = spec.config
    model = create_model(c["model"], input_shape=tuple(c["input_shape"]), num_classes=c["num_classes"],
                         mean=c["mean"], std=c["std"], norm_last=c.get("norm_last", False), **c.get("model_args", {}))
    model.load_state_dict(spec.state)
    return model.to(device).eval()


# Per worker process: weights hash -> model. Small, since f changes every epoch while g stays.
_MODELS: OrderedDict[str, nn.Module] = OrderedDict()
_MODELS_KEPT = 4


def cached_model(spec: ModelSpec, device: torch.device) -> nn.Module:
    key = f"{spec.weights_hash}@{device}"
    if key not in _MODELS:
        _MODELS[key] = build_from_spec(spec, device)
        while len(_MODELS) > _MODELS_KEPT:
            _MODELS.popitem(last=False)
    _MODELS.move_to_end(key)
    return _MODELS[key]


def run_shard(job: ShardJob, g_spec: ModelSpec, f_spec: ModelSpec, index: int,
              torch_threads: int | None = None) -> tuple[int, dict[str, int]]:
    """The task: translate and commit shard ``index`` on this worker."""
    if torch_threads:
        torch.set_num_threads(torch_threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    g, f = cached_model(g_spec, device), cached_model(f_spec, device)
    counts = translate_shard(g, f, job.data, job.draws, index, job.shard_rows, job.translator, job.cfg, job.seed,
                             job.epoch, job.work)
    return index, counts


def local_threads(workers: int, cores: int | None = None, threads: int | None = None) -> int:
    """Torch threads per worker of a local cluster: ``threads`` when given (1 up to cores //
    workers, so N x threads <= cores), else cores // workers; a bad value is a one-line M2mError."""
    cores = cores or os.cpu_count() or 1
    if workers < 1:
        raise M2mError(f"--workers must be >= 1, got {workers}")
    if workers > cores:
        raise M2mError(f"--workers {workers} exceeds the {cores} CPU cores of this machine; "
                       f"use at most {cores} (each worker process needs a core)")
    most = max(1, cores // workers)
    if threads is None:
        return most
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise M2mError(f"torch threads per worker must be an integer >= 1, got {threads!r}")
    if threads > most:
        raise M2mError(f"{threads} torch threads per worker x {workers} workers exceeds the {cores} CPU cores; "
                       f"use at most {most}")
    return threads


# the address schemes of dask.distributed's comms that a scheduler can listen on
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?")


def parse_scheduler_address(address: Any) -> tuple[str, str, int]:
    """(scheme, host, port) of a dask scheduler address ``SCHEME://HOST:PORT`` (an IPv6 host in
    brackets: ``tcp://[::1]:8786``); anything else is a one-line M2mError naming it, checked
    before any connection (``tcp://[::1`` used to be a ValueError traceback inside dask)."""
    def bad(why: str) -> M2mError:
        return M2mError(f"--scheduler / translate.scheduler must be an address like tcp://HOST:8786, got "
                        f"{address!r} ({why})")

    if not isinstance(address, str) or "://" not in address:
        raise bad("no SCHEME://")
    scheme, rest = address.split("://", 1)
    if scheme.lower() not in SCHEDULER_SCHEMES:
        raise bad(f"scheme {scheme!r} is none of {', '.join(SCHEDULER_SCHEMES)}")
    if rest.startswith("["):
        host, sep, tail = rest[1:].partition("]")
        if not sep or not _IPV6.fullmatch(host) or ":" not in host:
            raise bad("an IPv6 host needs a closing ']'" if not sep else f"{host!r} is not an IPv6 address")
        if not tail.startswith(":"):
            raise bad("no :PORT")
        port = tail[1:]
    else:
        if rest.count(":") != 1:
            raise bad("no :PORT" if ":" not in rest else "put an IPv6 host in brackets: tcp://[::1]:8786")
        host, port = rest.split(":")
        if not _HOST_NAME.fullmatch(host):
            raise bad(f"{host!r} is not a host name or address")
    if not re.fullmatch(r"[0-9]{1,5}", port) or not 1 <= int(port) <= 65535:
        raise bad(f"port {port!r} is not a number in 1..65535")
    return scheme.lower(), host, int(port)


# Seconds a --scheduler / translate.scheduler address has to accept a connection and answer as a
# dask scheduler (a silent listener, an HTTP server); the same bound for dask's own connect.
SCHEDULER_TIMEOUT_S = 5.0
# Both ends of a dask connection send a handshake at once: one small message (an 8-byte length,
# a prelude of frame count and lengths, then msgpack; about 60 bytes).
_HANDSHAKE_MAX_BYTES = 1 << 20


def _handshake_message() -> bytes:
    """What dask's own connect sends first (comm.core.connect: ``{"compression": None, "python":
    (major, minor, micro), "pickle-protocol": N}``, msgpack, framed as comm.tcp writes it), so a
    real scheduler sees an ordinary client and an HTTP server answers as it would to dask."""
    import pickle
    import sys

    def fixstr(text: str) -> bytes:
        return bytes([0xA0 | len(text)]) + text.encode()

    payload = (b"\x83" + fixstr("compression") + b"\xc0" + fixstr("python") + b"\x93"
               + bytes(int(v) & 0x7F for v in sys.version_info[:3]) + fixstr("pickle-protocol")
               + bytes([pickle.HIGHEST_PROTOCOL & 0x7F]))
    framed = struct.pack("<QQ", 1, len(payload)) + payload
    return struct.pack("<Q", len(framed)) + framed


def _start_it(address: str) -> str:
    return f"start it with `dask scheduler` and workers with `dask worker {address}`"


def _recv_exactly(sock: socket.socket, n: int, deadline: float) -> bytes | None:
    """``n`` bytes from ``sock`` by ``deadline`` (time.monotonic), fewer if it closes; None when
    the deadline passes first."""
    got = bytearray()
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            block = sock.recv(min(n - len(got), 1 << 16))
        except (socket.timeout, TimeoutError):
            return None
        if not block:
            break
        got += block
    return bytes(got)


def probe_scheduler(address: str, timeout: float | None = None) -> None:
    """Refuse, in one line naming ``address`` and within about ``timeout`` seconds (default
    :data:`SCHEDULER_TIMEOUT_S`), an address
    where no dask scheduler answers: nothing listening, a listener that never answers, or a
    server of another protocol (an HTTP server's reply used to be read as a 3 EiB message).
    ``tcp://`` is checked to answer with a dask handshake; ``tls``/``ws``/``wss`` to accept a
    connection (their first bytes are TLS or HTTP); ``ucx`` is left to dask. The probe sends the
    handshake dask's connect sends and reads the scheduler's, then hangs up."""
    timeout = SCHEDULER_TIMEOUT_S if timeout is None else float(timeout)
    scheme, host, port = parse_scheduler_address(address)
    if scheme == "ucx":
        return
    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except (socket.timeout, TimeoutError):
        raise M2mError(f"no dask scheduler at {address}: it accepted no connection within {timeout:g} s; "
                       f"{_start_it(address)}") from None
    except OSError as exc:
        raise M2mError(f"cannot reach the dask scheduler at {address} ({exc.strerror or type(exc).__name__}); "
                       f"{_start_it(address)}") from None
    with sock:
        if scheme != "tcp":
            return
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            sock.sendall(_handshake_message())
        except OSError:
            pass   # a server that hung up is told apart by what it sent, below
        head = _recv_exactly(sock, 8, deadline)
        if head is None:
            raise M2mError(f"{address} accepted a connection but sent nothing within {timeout:g} s, as a dask "
                           f"scheduler does at once: it is not one (pass the scheduler's address, port 8786 by "
                           f"default)")
        if not head:
            raise M2mError(f"{address} accepted a connection and closed it without a word, which a dask scheduler "
                           f"does not do: it is not one (pass the scheduler's address, port 8786 by default)")
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        body = _recv_exactly(sock, n, deadline) if 16 <= n <= _HANDSHAKE_MAX_BYTES else None
        frames = struct.unpack_from("<Q", body)[0] if body is not None and len(body) == n else 0
        if not (1 <= frames <= 64 and 8 * (1 + frames) <= n):
            raise M2mError(f"{address} answered {bytes(head[:8])!r}..., not a dask scheduler's handshake (another "
                           f"server listens there, e.g. HTTP); pass the scheduler's address (port 8786 by default)")


def connect_scheduler(address: str, timeout: float | None = None) -> Any:
    """A dask Client of the scheduler at ``address``, after :func:`probe_scheduler`; whatever goes
    wrong while connecting is one line naming the address."""
    from dask.distributed import Client

    timeout = SCHEDULER_TIMEOUT_S if timeout is None else float(timeout)
    probe_scheduler(address, timeout)
    try:
        return Client(address, timeout=f"{timeout:g}s")
    except Exception as exc:  # dask raises OSError, TimeoutError, ValueError, MemoryError, CommClosedError...
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise M2mError(f"cannot connect to the dask scheduler at {address} ({type(exc).__name__}"
                       f"{': ' + first if first else ''}); {_start_it(address)}") from None


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None,
                threads: int | None = None) -> Iterator[tuple[Any, int | None]]:
    """(client, torch threads per task): a new local cluster of ``workers`` processes, each task
    on ``threads`` torch threads (default ``cores // workers``), or the cluster at ``scheduler``."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise M2mError("distributed translation needs dask.distributed: pip install 'dask[distributed]'") from None
    if scheduler:
        client = connect_scheduler(scheduler)
        try:
            yield client, None
        finally:
            client.close()
        return
    threads = local_threads(int(workers), threads=threads)
    pinned = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR, env=pinned) as cluster, Client(cluster) as client:
        yield client, threads


def run_on_client(client: Any, threads: int | None, g: nn.Module, f: nn.Module,
                  model_configs: tuple[dict[str, Any], dict[str, Any]], job: ShardJob, shards: list[int],
                  progress: Callable[[int], None] | None = None) -> list[dict[str, int]]:
    """Translate ``shards`` of ``job`` as dask tasks on ``client`` (torch on ``threads`` threads
    per task when set); their reason counts, in the order they finish."""
    from dask.distributed import as_completed


    # workers may run elsewhere (another cwd): the pool being built by its absolute path
    job = replace(job, seed=int(job.seed), epoch=int(job.epoch), work=str(Path(job.work).resolve()),
                              shard_rows=int(job.shard_rows))
    g_spec, f_spec = model_spec(g, model_configs[0]), model_spec(f, model_configs[1])
    workers_info = client.scheduler_info().get("workers", {})
    gpu = any("GPU" in (w.get("resources") or {}) for w in workers_info.values())
    # Sent once per worker, not once per task.
    job_f, g_f, f_f = client.scatter([job, g_spec, f_spec], broadcast=True)
    run_id = uuid.uuid4().hex[:8]
    futures = [client.submit(run_shard, job_f, g_f, f_f, index, threads, key=f"m2m-shard-{run_id}-{index}",
                             resources={"GPU": 1} if gpu else None, retries=2, pure=False)
               for index in shards]
    results: list[dict[str, int]] = []
    try:
        for fut in as_completed(futures):
            _, counts = fut.result()
            results.append(counts)
            if progress is not None:
                progress(sum(counts.values()))
    finally:
        for fut in futures:
            fut.cancel()
    return results


__all__ = ["SCHEDULER_SCHEMES", "SCHEDULER_TIMEOUT_S", "ModelSpec", "build_from_spec", "cached_model",
           "connect_scheduler", "dask_client", "local_threads", "model_spec", "parse_scheduler_address",
           "probe_scheduler", "run_on_client", "run_shard"]
