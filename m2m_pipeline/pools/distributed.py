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
  (a shared file system) and have this package installed.

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


def local_threads(workers: int, cores: int | None = None) -> int:
    """Torch threads per worker of a local cluster: N x threads <= cores."""
    cores = cores or os.cpu_count() or 1
    if workers < 1:
        raise M2mError(f"--workers must be >= 1, got {workers}")
    if workers > cores:
        raise M2mError(f"--workers {workers} exceeds the {cores} CPU cores of this machine; "
                       f"use at most {cores} (each worker process needs a core)")
    return max(1, cores // workers)


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[tuple[Any, int | None]]:
    """(client, torch threads per task): a new local cluster of ``workers`` processes, or the
    cluster at ``scheduler``."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise M2mError("distributed translation needs dask.distributed: pip install 'dask[distributed]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError) as exc:
            raise M2mError(f"cannot reach the dask scheduler at {scheduler} ({type(exc).__name__}); start it with "
                           f"`dask scheduler` and workers with `dask worker {scheduler}`") from None
        try:
            yield client, None
        finally:
            client.close()
        return
    threads = local_threads(int(workers))
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


__all__ = ["ModelSpec", "build_from_spec", "cached_model", "dask_client", "local_threads", "model_spec", "run_on_client",
           "run_shard"]
