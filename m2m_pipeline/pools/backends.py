"""Where a pool's shards are translated: one small interface, built once from params.

A :class:`TranslationBackend` is handed the shards of a pool being built (a
:class:`~m2m_pipeline.pools.shard.ShardJob`, g and the f snapshot) and returns each shard's
reason counts; whoever translates a shard also commits it. ``generate_pool`` (pools/generate.py)
does not know which backend it talks to, and the pool does not depend on it.

- :class:`InProcessBackend`: this process (the default).
- :class:`DaskBackend`: dask.distributed, a local cluster of ``workers`` processes or the running
  one at ``scheduler``; the models travel as weights plus their checkpoint configs
  (``model_configs``). The dask side (cluster, tasks, the workers' model cache) is
  pools/distributed.py, imported only when such a backend starts.

:func:`create_backend` builds one from params.yaml's ``translate`` section (``workers``,
``scheduler``) with the command line's ``--workers`` / ``--scheduler`` over it. A backend holding
resources (a cluster) acquires them for a ``with backend:`` block, so one cluster serves every
epoch of a training run; nested blocks share it, and a call outside any block opens it for itself.

A new backend: subclass :class:`TranslationBackend` (``translate_shards``, and ``open`` /
``close`` when it holds resources), then give :func:`create_backend` a way to choose it.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

from torch import nn

from ..utils import M2mError
from .shard import ShardJob, commit_shard, translate_rows


class TranslationBackend:
    """Translates the shards of a pool being built; see the module docstring."""

    name = "backend"
    # True when the models leave this process: they then travel as weights plus their checkpoint
    # configs, which translate_shards needs as ``model_configs`` (g's and f's)
    distributed = False

    def __init__(self) -> None:
        self._depth = 0

    def open(self) -> None:
        """Acquire what the backend runs on (called by the outermost ``with``)."""

    def close(self) -> None:
        """Release what :meth:`open` acquired."""

    def __enter__(self) -> "TranslationBackend":
        if self._depth == 0:
            self.open()
        self._depth += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._depth -= 1
        if self._depth == 0:
            self.close()
        return False

    def translate_shards(self, job: ShardJob, *, g: nn.Module, f: nn.Module, shards: list[int],
                         model_configs: tuple[dict[str, Any], dict[str, Any]] | None = None,
                         progress: Callable[[int], None] | None = None) -> list[dict[str, int]]:
        """Translate and commit ``shards`` of ``job``; their reason counts. ``progress`` is called
        with the rows of each shard as it is done."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class InProcessBackend(TranslationBackend):
    """The shards in this process, one after another (torch uses this process's threads)."""

    name = "in-process"

    def translate_shards(self, job: ShardJob, *, g: nn.Module, f: nn.Module, shards: list[int],
                         model_configs: tuple[dict[str, Any], dict[str, Any]] | None = None,
                         progress: Callable[[int], None] | None = None) -> list[dict[str, int]]:
        return _translate_here(g=g, f=f, data=job.data, draws=job.draws, translator=job.translator, cfg=job.cfg,
                               seed=job.seed, epoch=job.epoch, work=job.work, shard_rows=job.shard_rows,
                               shards=shards, progress=progress, kept=job.kept)


class DaskBackend(TranslationBackend):
    """Translation on dask.distributed: a local cluster of ``workers`` processes, the running
    cluster at ``scheduler``, or a connected ``client`` (used as is and left open). The cluster
    is started by the outermost ``with backend:`` (or by a call outside one) and kept until it
    ends, so the epochs of a training run share it. ``threads``: torch threads per task on a
    local cluster (default cores // workers). A pool's floats are a function of the threads a
    task runs on (the order of torch's reductions), not of how many workers ran the shards."""

    name = "dask"
    distributed = True

    def __init__(self, *, workers: int | None = None, scheduler: str | None = None, client: Any = None,
                 threads: int | None = None):
        super().__init__()
        self.workers, self.scheduler, self.threads = workers, scheduler, threads
        self._given = client
        self.client = client
        self.torch_threads: int | None = None   # per task, on a local cluster
        self._stack: contextlib.ExitStack | None = None

    def open(self) -> None:
        if self._given is not None:
            return
        from .distributed import dask_client

        stack = contextlib.ExitStack()
        self.client, self.torch_threads = stack.enter_context(dask_client(self.workers, self.scheduler, self.threads))
        self._stack = stack

    def close(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            self.client, self.torch_threads = None, None
            stack.close()

    def translate_shards(self, job: ShardJob, *, g: nn.Module, f: nn.Module, shards: list[int],
                         model_configs: tuple[dict[str, Any], dict[str, Any]] | None = None,
                         progress: Callable[[int], None] | None = None) -> list[dict[str, int]]:
        if not shards:
            return []
        if model_configs is None:
            raise M2mError("translation on dask workers needs the models' configs (model_configs=(g's, f's) "
                           "checkpoint 'config'): workers rebuild g and f from weights, not live modules")
        from .distributed import run_on_client

        with self:
            return run_on_client(self.client, self.torch_threads, g, f, model_configs, job, shards, progress)

    def __repr__(self) -> str:
        where = f"scheduler={self.scheduler!r}" if self.scheduler else (
            f"workers={self.workers}" if self.workers else "client")
        return f"DaskBackend({where})"


def _translate_here(*, g, f, data, draws, translator, cfg, seed, epoch, work, shard_rows, shards,
                    progress, kept=None) -> list[dict[str, int]]:
    """The shards in this process: shard i is encoded and written by a writer thread while shard
    i + 1 is translated (torch and zstd release the GIL), one write in flight at a time; ``kept``
    collects the accepted rows decoded (shard.commit_shard)."""
    results: list[dict[str, int]] = []

    def done(future) -> None:
        counts = future.result()
        results.append(counts)
        if progress is not None:
            progress(sum(counts.values()))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool-writer") as writer_thread:
        pending = None
        for index in shards:
            rows = translate_rows(g, f, data, draws, slice(index * shard_rows, (index + 1) * shard_rows), translator,
                                  cfg, seed, epoch)
            if pending is not None:
                done(pending)
            pending = writer_thread.submit(commit_shard, rows, data, work, index, cfg.store, kept)
        if pending is not None:
            done(pending)
    return results


def backend_options(settings: Mapping[str, Any] | None = None, *, workers: int | None = None,
                    scheduler: str | None = None) -> dict[str, Any]:
    """``{"workers", "scheduler"}`` of the backend to build: ``workers`` / ``scheduler`` (the
    command line's ``--workers`` / ``--scheduler``) when given, else params' ``translate``
    section (``settings``); workers 0 or none means this process. A bad value or both at once
    is an M2mError naming the option."""
    section = settings or {}
    workers = workers if workers is not None else section.get("workers")
    scheduler = scheduler if scheduler is not None else section.get("scheduler")
    if workers is not None and scheduler:
        raise M2mError("pass either --workers (a local cluster) or --scheduler (a running one), not both")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 0):
        raise M2mError(f"--workers / translate.workers must be an integer >= 0 (0: in this process), got {workers!r}")
    workers = workers or None
    if scheduler is not None:
        from .distributed import parse_scheduler_address   # the syntax only: no dask, no connection

        parse_scheduler_address(scheduler)
    return {"workers": workers, "scheduler": scheduler or None}


def create_backend(settings: Mapping[str, Any] | None = None, *, workers: int | None = None,
                   scheduler: str | None = None, client: Any = None) -> TranslationBackend:
    """The translation backend of params' ``translate`` section (``settings``), with ``workers``
    / ``scheduler`` over it (:func:`backend_options`): dask.distributed when either is set (or a
    connected dask ``client`` is given, which the backend uses and leaves open), else this process."""
    options = backend_options(settings, workers=workers, scheduler=scheduler)
    if client is None and options["workers"] is None and options["scheduler"] is None:
        return InProcessBackend()
    return DaskBackend(**options, client=client)


__all__ = ["DaskBackend", "InProcessBackend", "TranslationBackend", "backend_options", "create_backend"]
