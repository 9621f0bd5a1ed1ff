"""Issue 20, items 8 and 14: a second writer of one pools folder is refused in one line naming the
holder (PID, host, command), and a refused reuse ablation writes nothing (no empty run folder).
Tiny digits fixtures (tests/conftest.py)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest

from m2m_pipeline.jobs.ablate import train_ablation
from m2m_pipeline.jobs.dispatch import train_method
from m2m_pipeline.utils import M2mError

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def m2m_run(tmp_path_factory, trained, digits, tiny_preset, tiny_m2m):
    """A finished M2m run of seed 0 (pools of epochs deferred_epoch .. epochs - 1)."""
    root = tmp_path_factory.mktemp("m2m_run_refusals")
    train_method(digits, tiny_preset, method="M2m", seed=0, out_dir=root / "M2m", warm_dir=trained / "warm",
                 g_path=trained / "g" / "best.pt", m2m=tiny_m2m, pools_dir=root / "pools", progress=False)
    return root


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


# -- item 8: one writer per pools folder, on the training path too ----------------------------------

HOLDER = ("import sys, time\nfrom m2m_pipeline.utils import output_lock\n"
          "with output_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(120)\n")


def test_second_training_run_on_the_same_pools_is_refused_naming_the_holder(tmp_path, trained, digits,
                                                                             tiny_preset, tiny_m2m):
    pools = tmp_path / "pools" / "M2m-seed0"
    # another process writing these pools (a train-f --method M2m of another --out holds this lock)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(pools), "--as", "train-f-M2m-first"], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = _tree(tmp_path)
        with pytest.raises(M2mError) as err:
            train_method(digits, tiny_preset, method="M2m", seed=0, out_dir=tmp_path / "runs" / "second",
                         warm_dir=trained / "warm", g_path=trained / "g" / "best.pt", m2m=tiny_m2m,
                         pools_dir=pools, progress=False)
        msg = str(err.value)
        assert "\n" not in msg
        assert f"{pools} is being written by process {holder.pid} on {socket.gethostname()}" in msg
        assert "train-f-M2m-first" in msg                 # the holder's command line
        assert _tree(tmp_path) == before                  # no run folder, no runs/ made for it
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_two_real_training_processes_on_one_pools_folder(tmp_path, trained, tiny_m2m):
    """Two real processes run train_m2m with different run folders and the same pools folder: one
    finishes, the other gets the one-line error (never FileNotFoundError on a partial pool)."""
    script = (
        "import sys\n"
        "from m2m_pipeline.datasets import create_dataset\n"
        "from m2m_pipeline.jobs.m2m import train_m2m\n"
        "from m2m_pipeline.pools import TranslationConfig\n"
        "from m2m_pipeline.training import Preset\n"
        "from m2m_pipeline.utils import M2mError, set_torch_threads\n"
        "set_torch_threads()\n"
        "preset = Preset(model='small_cnn', epochs=4, batch_size=64, warmup_epochs=1, milestones=(3,),\n"
        "                deferred_epoch=2, model_args={'width': 8})\n"
        f"cfg = TranslationConfig(steps=3, step_size=1.0, beta=0.9, gamma=0.5, batch_size=32, rows_per_shard=64)\n"
        "try:\n"
        "    train_m2m(create_dataset('digits', rho=10), preset, method='M2m', seed=0, out_dir=sys.argv[1],\n"
        f"              pools_dir=sys.argv[2], m2m=cfg, g_path={str(trained / 'g' / 'best.pt')!r},\n"
        f"              warm_dir={str(trained / 'warm')!r}, progress=False)\n"
        "except M2mError as e:\n"
        "    print('error:', e, file=sys.stderr); sys.exit(2)\n")
    pools = tmp_path / "pools"
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"run{i}"), str(pools)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    results = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    if codes == [0, 0]:
        pytest.skip("the two runs did not overlap on this machine (the first finished before the second started)")
    assert codes == [0, 2], results
    err = next(e for rc, e in results if rc == 2)
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "is being written by process" in lines[0], err
    assert "FileNotFoundError" not in err and "Traceback" not in err, err
    loser = next(i for i, (rc, _) in enumerate(results) if rc == 2)
    assert not (tmp_path / f"run{loser}").exists()


# -- item 14: a refused reuse ablation leaves no run folder ----------------------------------------

def test_reuse_of_missing_pools_writes_nothing(tmp_path, trained, digits, tiny_preset):
    out = tmp_path / "runs" / "digits" / "M2m-Clean-seed0"
    with pytest.raises(M2mError, match=r"does not exist: the reused run has no pool for epoch 2") as err:
        train_ablation(digits, tiny_preset, method="M2m-Clean", seed=0, out_dir=out,
                       reused_pools=tmp_path / "no-such-pools", warm_dir=trained / "warm", progress=False)
    assert "\n" not in str(err.value)
    assert _tree(tmp_path) == []


def test_reuse_of_pools_missing_a_later_epoch_is_refused_before_training(tmp_path, m2m_run, trained, digits,
                                                                          tiny_preset):
    # epoch 2's pool is there, epoch 3's is not: refused before epoch 2 trains, not after it
    pools = tmp_path / "pools"
    shutil.copytree(m2m_run / "pools", pools)
    shutil.rmtree(pools / "epoch_3")
    before = _tree(tmp_path)
    for method in ("M2m-Clean", "M2m-Rand"):
        with pytest.raises(M2mError, match=r"pool .*epoch_3 does not exist"):
            train_ablation(digits, tiny_preset, method=method, seed=0, out_dir=tmp_path / "runs" / method,
                           reused_pools=pools, warm_dir=trained / "warm", progress=False)
    assert _tree(tmp_path) == before


def test_reuse_of_pools_of_another_seed_writes_nothing(tmp_path, m2m_run, trained, digits, tiny_preset):
    from m2m_pipeline.jobs.train import warm_f

    warm1 = tmp_path / "warm1"
    warm_f(digits, tiny_preset, seed=1, out_dir=warm1, progress=False)
    before = _tree(tmp_path)
    with pytest.raises(M2mError, match=r"seed=0 but is used with 1"):
        train_ablation(digits, tiny_preset, method="M2m-Clean", seed=1, out_dir=tmp_path / "runs" / "s1",
                       reused_pools=m2m_run / "pools", warm_dir=warm1, progress=False)
    assert _tree(tmp_path) == before


def test_pools_inside_the_run_folder_still_train(tmp_path, trained, digits, tiny_preset, tiny_m2m):
    """The CLI's default with --out: pools in <out>/pools, so the pools lock sits inside the run folder."""
    out = tmp_path / "runs" / "mine"
    res = train_method(digits, tiny_preset, method="M2m", seed=0, out_dir=out, warm_dir=trained / "warm",
                       g_path=trained / "g" / "best.pt", m2m=tiny_m2m, pools_dir=out / "pools", progress=False)
    assert (out / "complete.json").is_file() and res.best_epoch >= tiny_preset.deferred_epoch
    assert sorted(p.name for p in (out / "pools").iterdir()) == ["epoch_2", "epoch_3"]
    assert not list(tmp_path.rglob("*.lock"))                   # both locks released and removed
