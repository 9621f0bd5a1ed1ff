"""Translation on dask.distributed and resumable pools: the pool does not depend on how many
workers made it, and a run killed by SIGKILL and started again ends byte-identical."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig, generate_pool
from m2m_pipeline.pools import backends as backends_mod
from m2m_pipeline.pools.backends import InProcessBackend, backend_options, create_backend
from m2m_pipeline.pools.backends import DaskBackend
from m2m_pipeline.pools.distributed import local_threads
from m2m_pipeline.store import POOL_ROW_ARRAYS, open_pool
from m2m_pipeline.training import load_checkpoint, model_from_checkpoint
from m2m_pipeline.utils import M2mError

ROOT = Path(__file__).resolve().parents[2]
# 32-row shards: about 9 translation tasks on the digits plan, so kills land between commits
CFG = dict(steps=3, step_size=1.0, beta=0.9, gamma=0.5, batch_size=16, rows_per_shard=32)


def _plan(digits):
    return make_plan(digits.train.y, digits.class_counts, seed=0, epoch=2, order="balanced", attempts=True,
                     augment=digits.augment, batch_size=64)


def _ckpts(trained):
    return load_checkpoint(trained / "g" / "last.pt"), load_checkpoint(trained / "warm" / "last.pt")


def _files(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_local_threads_keep_workers_times_threads_within_cores():
    assert local_threads(1, cores=2) == 2 and local_threads(2, cores=2) == 1 and local_threads(3, cores=8) == 2
    with pytest.raises(M2mError, match="exceeds the 2 CPU cores"):
        local_threads(3, cores=2)
    with pytest.raises(M2mError, match="exceeds the"):
        with DaskBackend(workers=1, threads=(os.cpu_count() or 1) + 1):
            pass
    # threads per worker: checked where they are chosen, and 0 is named as too few, not "exceeds"
    assert local_threads(2, cores=8, threads=3) == 3
    with pytest.raises(M2mError, match=r"^5 torch threads per worker x 2 workers exceeds the 8 CPU cores; use at most 4$"):
        local_threads(2, cores=8, threads=5)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(M2mError, match=rf"^torch threads per worker must be an integer >= 1, got {bad!r}$"):
            local_threads(1, cores=2, threads=bad)


def _pool_rows_by(tmp_path, trained, digits, name, backend=None, **where):
    gc, fc = _ckpts(trained)
    s = generate_pool(g=model_from_checkpoint(gc), f=model_from_checkpoint(fc), data=digits, plan=_plan(digits),
                      cfg=TranslationConfig(**CFG), seed=0, out=tmp_path / name,
                      model_configs=(gc["config"], fc["config"]), backend=backend or create_backend(**where))
    return s, open_pool(s.path).rows()


def test_two_dask_workers_give_the_pool_of_one_process(tmp_path, trained, digits):
    """A real LocalCluster of 2 worker processes (1 torch thread each) against this process on 1
    thread: the same shard task on the same threads. (At different thread counts torch may
    reduce in another order, and CI's CPU then moves loss_g in its last bit.)"""
    torch.set_num_threads(1)
    one, a = _pool_rows_by(tmp_path, trained, digits, "one")
    two, b = _pool_rows_by(tmp_path, trained, digits, "two", workers=2)
    assert one.n_attempts == two.n_attempts > 8 * 32 and one.reasons == two.reasons
    for name in POOL_ROW_ARRAYS:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


@pytest.mark.slow
def test_one_and_two_dask_workers_give_identical_pools(tmp_path, trained, digits):
    one, a = _pool_rows_by(tmp_path, trained, digits, "one", backend=DaskBackend(workers=1, threads=1))
    two, b = _pool_rows_by(tmp_path, trained, digits, "two", workers=2)
    assert one.n_attempts == two.n_attempts > 8 * 32 and one.reasons == two.reasons
    for name in POOL_ROW_ARRAYS:
        assert np.array_equal(a[name], b[name], equal_nan=True), name


def test_distributed_translation_needs_model_configs(tmp_path, trained, digits):
    gc, fc = _ckpts(trained)
    with pytest.raises(M2mError, match="model_configs"):
        generate_pool(g=model_from_checkpoint(gc), f=model_from_checkpoint(fc), data=digits, plan=_plan(digits),
                      cfg=TranslationConfig(**CFG), seed=0, out=tmp_path / "p", backend=create_backend(workers=2))
    assert not (tmp_path / "p").exists()


# The child translates one shard every 0.3 s so the parent can kill it between (and during) commits.
CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from m2m_pipeline.datasets import create_dataset
    from m2m_pipeline.plan import make_plan
    from m2m_pipeline.pools import TranslationConfig, generate_pool
    from m2m_pipeline.pools import backends as backends_mod
    from m2m_pipeline.training import load_checkpoint, model_from_checkpoint

    trained, out = Path(sys.argv[1]), Path(sys.argv[2])
    digits = create_dataset("digits", rho=10)
    g = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt"))
    f = model_from_checkpoint(load_checkpoint(trained / "warm" / "last.pt"))
    plan = make_plan(digits.train.y, digits.class_counts, seed=0, epoch=2, order="balanced", attempts=True,
                     augment=digits.augment, batch_size=64)
    slow = backends_mod.translate_rows
    def translate_rows(*args, **kwargs):
        time.sleep(0.3)
        return slow(*args, **kwargs)
    backends_mod.translate_rows = translate_rows
    generate_pool(g=g, f=f, data=digits, plan=plan, cfg=TranslationConfig(**%r), seed=0, out=out)
""" % CFG)


def test_sigkilled_generate_resumes_to_a_byte_identical_pool(tmp_path, trained, digits, monkeypatch):
    out = tmp_path / "pool"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(script), str(trained), str(out)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    records = out.with_name("pool.partial") / ".shards"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(records.glob("*.json"))) < 3 and child.poll() is None:
        time.sleep(0.05)
    assert child.poll() is None, child.stdout.read().decode()[-2000:]
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not out.exists()  # nothing reads as a pool
    committed = len(list(records.glob("*.json")))
    assert committed >= 3
    # leftovers of killed writers, which the next run removes
    (tmp_path / "pool.tmp-0badc0de").mkdir()
    (tmp_path / "pool.tmp-0badc0de" / "junk").write_text("x")
    (out.with_name("pool.partial") / ".tmp-deadbeef").mkdir()

    gc, fc = _ckpts(trained)
    g, f = model_from_checkpoint(gc), model_from_checkpoint(fc)
    translated = []
    real = backends_mod.translate_rows

    def counting(*args, **kwargs):
        translated.append(args[4].start // CFG["rows_per_shard"])   # the shard's row slice
        return real(*args, **kwargs)

    monkeypatch.setattr(backends_mod, "translate_rows", counting)
    torch.set_num_threads(1)
    resumed = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=TranslationConfig(**CFG), seed=0, out=out)
    n_shards = -(-resumed.n_attempts // CFG["rows_per_shard"])
    assert sorted(translated) == list(range(committed, n_shards))  # committed shards are kept
    monkeypatch.setattr(backends_mod, "translate_rows", real)
    whole = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=TranslationConfig(**CFG), seed=0,
                          out=tmp_path / "whole")
    assert resumed.reasons == whole.reasons
    assert _files(out) == _files(tmp_path / "whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["child.py", "pool", "whole"]  # .tmp- and .partial gone


def test_complete_pool_of_the_same_job_is_kept_and_another_job_rewrites(tmp_path, trained, digits, monkeypatch):
    gc, fc = _ckpts(trained)
    g, f = model_from_checkpoint(gc), model_from_checkpoint(fc)
    cfg = TranslationConfig(**CFG)
    first = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=cfg, seed=0, out=tmp_path / "p")
    before = _files(first.path)
    monkeypatch.setattr(backends_mod, "translate_rows", lambda *a, **k: pytest.fail("translated again"))
    again = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=cfg, seed=0, out=tmp_path / "p")
    assert again.reasons == first.reasons and _files(first.path) == before
    monkeypatch.undo()
    other = generate_pool(g=g, f=f, data=digits, plan=_plan(digits), cfg=TranslationConfig(**{**CFG, "steps": 2}),
                          seed=0, out=tmp_path / "p")
    assert open_pool(other.path).attrs["params"]["steps"] == 2


def test_bad_cluster_options_are_one_line_errors(tmp_path):
    import shutil

    with pytest.raises(M2mError, match="not both"):
        backend_options({}, workers=2, scheduler="tcp://h:8786")
    with pytest.raises(M2mError, match="must be an address like tcp://"):
        create_backend({"scheduler": "nohost"})
    assert backend_options({"workers": 2}) == {"workers": 2, "scheduler": None}
    assert backend_options({"workers": 2}, workers=1) == {"workers": 1, "scheduler": None}
    assert backend_options({"workers": 0}) == {"workers": None, "scheduler": None}
    assert isinstance(create_backend({"workers": 0}), InProcessBackend)
    local = create_backend({"workers": 2})
    assert isinstance(local, DaskBackend) and (local.workers, local.scheduler, local.client) == (2, None, None)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    res = subprocess.run([sys.executable, "-m", "m2m_pipeline.cli", "generate", "--dataset", "digits", "--workers=-1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0, res.stderr
    assert "--workers / translate.workers must be an integer >= 0" in res.stderr
