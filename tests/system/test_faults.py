"""Faults and bad input found by trying the pipeline as a hostile user, and the output lock: each is
a one-line error (exit code 2 from the CLI) with nothing lost and nothing half-written."""

from __future__ import annotations

import copy
import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from m2m_pipeline import params as config_mod
from m2m_pipeline.acceptance import REASONS, decide, range_bound
from m2m_pipeline.params import check_seed, load_params, m2m_config, validate_params
from m2m_pipeline.datasets.text import read_labelled_lines
from m2m_pipeline.reports import select_metrics_files, write_report
from m2m_pipeline.store import PoolWriter, estimate_pool_bytes, open_pool, read_prepared, verify_pool, write_prepared
from m2m_pipeline.translate import M2mTranslator
from m2m_pipeline.utils import M2mError, check_output_dir, output_lock, user_os_errors

from tests.conftest import ROOT
from tests.tiny import tiny_pool_attrs

BASE_PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def _cli(args, cwd):
    """The real CLI in a subprocess: the exit code and the one-line error are the point."""
    return subprocess.run([sys.executable, "-m", "m2m_pipeline.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def _one_line_error(res, *needles):
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def _params_file(tmp_path, edit=None):
    params = copy.deepcopy(BASE_PARAMS)
    if edit:
        edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _tiny_pool(path, n=100, rows_per_shard=32):
    """A synthetic pool (vector inputs) written through the real PoolWriter."""
    rng = np.random.default_rng(0)
    rows = {"slot": np.arange(n), "target": np.zeros(n, np.int32), "seed_class": np.ones(n, np.int32),
            "seed_index": np.arange(n), "seed_aug": np.zeros((n, 3), np.int16),
            "x_delta": rng.integers(-500, 500, (n, 5)).astype(np.int16), "x_exp": np.full(n, -10, np.int8),
            "loss_g": np.ones(n, np.float32),
            "prob_g": np.ones(n, np.float32), "u_beta": rng.random(n), "accepted": np.arange(n) % 2 == 0,
            "reason": (np.arange(n) % 2).astype(np.uint8)}
    with PoolWriter(path, n_rows=n, input_shape=(5,), input_kind="vector", rows_per_shard=rows_per_shard,
                    rows_per_chunk=16) as w:
        w.write_plan(np.arange(n + 20), np.ones(n + 20, bool), np.zeros((n + 20, 3)))
        w.write_rows(0, rows)
        w.finish(tiny_pool_attrs(rows, class_counts=[10, 5], n_slots=n + 20))
    return rows


# -- --out never deletes a folder of other files ---------------------------------------------------

def test_out_refuses_a_folder_of_other_files(tmp_path, digits, trained):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("x")
    _params_file(tmp_path)
    write_prepared(tmp_path / "data" / "prepared" / "digits", digits)
    res = _cli(["generate", "--dataset", "digits", "--epoch", "40", "--out", "mine", "--g",
                str(trained / "g" / "last.pt"), "--f", str(trained / "warm" / "last.pt")], tmp_path)
    _one_line_error(res, "mine", "not empty")
    from m2m_pipeline.jobs.prepare import prepare

    with pytest.raises(M2mError, match="not empty"):
        prepare("digits", mine, options={"rho": 10})
    assert (mine / "notes.txt").read_text() == "x" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # the same kind of artefact may be replaced; an empty folder may be used
    prep = tmp_path / "data" / "prepared" / "digits"
    check_output_dir(prep, "m2m-prepared-dataset")
    with pytest.raises(M2mError, match="does not hold a m2m-pool"):
        check_output_dir(prep, "m2m-pool")
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", "m2m-pool")


# -- params validated once at load, naming the key -------------------------------------------------

@pytest.mark.parametrize("key,value,message", [
    ("presets.digits.batch_size", 0, "presets.digits.batch_size must be an int >= 2, got 0"),
    ("presets.digits.batch_size", -3, "presets.digits.batch_size must be an int >= 2, got -3"),
    ("presets.digits.batch_size", 1, "presets.digits.batch_size must be an int >= 2, got 1"),
    ("presets.digits.epochs", "sixty", "presets.digits.epochs must be an int >= 1, got 'sixty'"),
    ("presets.digits.lr", float("nan"), "presets.digits.lr must be a finite number > 0, got nan"),
    ("presets.digits.lr", 0, "presets.digits.lr must be a finite number > 0, got 0"),
    ("presets.reuters.milestones", [12, 10], "presets.reuters.milestones must be a list of distinct ints >= 1 "
                                             "in increasing order"),
    ("presets.digits.deferred_epoch", 61, "presets.digits.deferred_epoch must be an int in 0..epochs (60)"),
    ("seeds", [0, -1], "seeds must be a non-empty list of distinct ints >= 0"),
    ("seeds", [], "seeds must be a non-empty list"),
    ("pretrain_g.seed", "1000", "pretrain_g.seed must be an int >= 0, got '1000'"),
    ("m2m.step_size", float("inf"), "m2m.step_size must be a finite number > 0 and <= 1000, got inf"),
    ("m2m.step_size", 1e30, "m2m.step_size must be a finite number > 0 and <= 1000, got 1e+30"),
    ("m2m.beta", 1.0, "m2m.beta must be a finite number >= 0 and < 1"),
    ("m2m.steps", 2.5, "m2m.steps must be an int >= 0 and <= 10000"),
    ("presets.twitter.m2m.gamma", 1.5, "presets.twitter.m2m.gamma must be a finite number in [0, 1] when gamma_on"),
    ("train_f.methods", ["ERM", "Nope"], "train_f.methods[1] is 'Nope', not a known name"),
    ("train_f.cb_beta", True, "train_f.cb_beta must be a finite number >= 0 and < 1, got True"),
])
def test_bad_params_name_their_key(tmp_path, key, value, message):
    def edit(params):
        *parents, last = key.split(".")
        node = params
        for k in parents:
            node = node[k]
        node[last] = value

    with pytest.raises(M2mError) as err:
        load_params(_params_file(tmp_path, edit))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_params_accept_the_shipped_file_and_new_sections(tmp_path):
    params = load_params(ROOT / "params.yaml")
    assert params["presets"]["digits"]["batch_size"] == 64 and params["m2m"]["step_size"] == 0.1

    def edit(p):
        p.update(translate={"workers": 2, "scheduler": None})
        p["presets"]["digits"]["weight_decay"] = "2e-4"   # YAML 1.1 reads this as a string
    loaded = load_params(_params_file(tmp_path, edit))
    assert loaded["presets"]["digits"]["weight_decay"] == 2e-4
    with pytest.raises(M2mError, match=r"unknown key\(s\) \['colour'\] under the top level"):
        validate_params({**BASE_PARAMS, "colour": 1})
    with pytest.raises(M2mError, match="translate.workers must be an int >= 0 or null, got -1"):
        validate_params({**BASE_PARAMS, "translate": {"workers": -1}})


def test_cli_seed_and_epoch_and_params_are_one_line_errors(tmp_path):
    _params_file(tmp_path, lambda p: p["presets"]["digits"].update(batch_size=0))
    _one_line_error(_cli(["prepare"], tmp_path), "presets.digits.batch_size must be an int >= 2, got 0")
    assert not (tmp_path / "data").exists()
    _params_file(tmp_path)
    _one_line_error(_cli(["pretrain-g", "--seed", "-1"], tmp_path), "--seed must be an int >= 0, got -1")
    _one_line_error(_cli(["generate", "--epoch", "60", "--out", "p"], tmp_path),
                    "--epoch must be an int >= 0 and <= 59, got 60")
    assert check_seed(3) == 3


def test_preset_override_of_top_level_m2m_warns_once(capsys, monkeypatch):
    monkeypatch.setattr(config_mod, "_WARNED_OVERRIDES", set())
    params = copy.deepcopy(BASE_PARAMS)
    params["m2m"]["beta"] = 0.5                       # the user's -S m2m.beta=0.5
    params = validate_params(params)
    cfg = m2m_config(params, "digits")
    assert cfg.beta == 0.9                            # the preset's value wins ...
    m2m_config(params, "digits")
    err = capsys.readouterr().err
    # ... and says so once, naming the key that does change it
    assert err.count("warning: presets.digits.m2m.beta = 0.9 overrides m2m.beta = 0.5") == 1


# -- non-finite parameters refused; rows far outside the data rejected -----------------------------

class _Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.fc.weight.copy_(torch.arange(12, dtype=torch.float32).view(3, 4) / 10)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x)


def test_runaway_step_is_rejected_as_out_of_range():
    g, f = _Linear(), _Linear()
    x0 = torch.ones(2, 4)                                  # unbounded inputs whose largest |x| is 1
    bound = range_bound(1.0)
    assert bound == 10.0                                   # OUT_OF_RANGE_FACTOR (10) x 1
    args = dict(target=torch.tensor([2, 2]), seed_class=torch.tensor([0, 0]), class_counts=[10, 5, 2],
                noise=torch.zeros(2, 4), u_beta=torch.zeros(2))
    # one normalised step of eta moves a row by exactly eta in L2 (eq. 2): eta = 1e6 puts x* at |x| ~ 5e5
    runaway = M2mTranslator(steps=1, step_size=1e6, lam=0.0, gamma=0.0, beta=0.5, input_range=None,
                            max_abs=bound).translate(g, f, x0, **args)
    assert runaway.reason.tolist() == [REASONS["out_of_range"]] * 2 and not runaway.accepted.any()
    # eta = 0.1 stays within |x| <= 1.1: accepted (gamma 0, and u_beta 0 < 1 - 0.5^8 passes eq. 3)
    honest = M2mTranslator(steps=1, step_size=0.1, lam=0.0, gamma=0.0, beta=0.5, input_range=None,
                           max_abs=bound).translate(g, f, x0, **args)
    assert honest.reason.tolist() == [REASONS["accepted"]] * 2
    assert float(honest.x.abs().max()) <= 1.1 + 1e-6
    # priority: non_finite > out_of_range > gamma > beta
    reason = decide(finite=np.array([False, True, True, True]), confident=np.array([False, False, False, True]),
                    beta_ok=np.array([False, False, False, False]), in_range=np.array([False, False, True, True]))
    assert reason.tolist() == [REASONS["non_finite"], REASONS["out_of_range"], REASONS["gamma"], REASONS["beta"]]
    with pytest.raises(ValueError, match="finite"):
        M2mTranslator(step_size=float("inf"), input_range=None).check_params()


# -- a damaged pool or prepared dataset is refused, naming the array -------------------------------

def test_damaged_pool_is_refused_naming_the_array(tmp_path):
    rows = _tiny_pool(tmp_path / "pool")
    assert np.array_equal(open_pool(tmp_path / "pool").array("x_delta"), rows["x_delta"])
    deleted = tmp_path / "deleted"
    shutil.copytree(tmp_path / "pool", deleted)
    shutil.rmtree(deleted / "accepted" / "c")              # read back as all False before
    with pytest.raises(M2mError, match=r"array 'accepted' misses its data file accepted/c/0"):
        open_pool(deleted)
    truncated = tmp_path / "truncated"
    shutil.copytree(tmp_path / "pool", truncated)
    shard = truncated / "x_delta" / "c" / "1" / "0"
    shard.write_bytes(shard.read_bytes()[:-7])             # a checksum traceback before
    res = _cli(["pools", "info", str(truncated)], tmp_path)
    _one_line_error(res, "array 'x_delta'", "truncated")
    flipped = tmp_path / "flipped"                          # same size, damaged bytes: caught on read
    shutil.copytree(tmp_path / "pool", flipped)
    shard = flipped / "x_delta" / "c" / "2" / "0"
    data = bytearray(shard.read_bytes())
    data[-6:] = bytes(b ^ 0xFF for b in data[-6:])
    shard.write_bytes(bytes(data))
    # the last bytes are the shard index's checksum: the index covers the whole shard, rows 64..95
    with pytest.raises(M2mError, match=r"array 'x_delta' fails its crc32c checksum in rows 64..95 \(file x_delta/c/2/0\)"):
        open_pool(flipped).array("x_delta")
    # pools verify names the file by its recorded sha256 before it decodes anything
    with pytest.raises(M2mError, match=r"file x_delta/c/2/0 differs from its recorded sha256"):
        verify_pool(flipped)


def test_damaged_prepared_dataset_is_refused(tmp_path, digits):
    write_prepared(tmp_path / "prep", digits)
    shutil.rmtree(tmp_path / "prep" / "train" / "x" / "c")
    with pytest.raises(M2mError, match=r"prepared dataset .* is damaged: array 'train/x' misses"):
        read_prepared(tmp_path / "prep")


# -- checkpoints that do not fit; read-only and full disks -----------------------------------------

def test_checkpoint_with_missing_keys_or_wrong_shapes(tmp_path, trained, digits):
    from m2m_pipeline.training import load_checkpoint, model_from_checkpoint
    from m2m_pipeline.utils import state_hash

    good = torch.load(trained / "g" / "last.pt", weights_only=True)
    name = sorted(good["model_state"])[0]
    missing = copy.deepcopy(good)
    del missing["model_state"][name]
    missing["weights_hash"] = state_hash(missing["model_state"])   # a consistent file of another model
    torch.save(missing, tmp_path / "missing.pt")
    with pytest.raises(M2mError, match=f"missing keys {name}") as err:
        model_from_checkpoint(load_checkpoint(tmp_path / "missing.pt", data=digits))
    assert "missing.pt" in str(err.value) and "\n" not in str(err.value)
    shaped = copy.deepcopy(good)
    weight = next(k for k, v in shaped["model_state"].items() if v.dim() >= 2)
    shaped["model_state"][weight] = torch.zeros(3, 3)
    shaped["weights_hash"] = state_hash(shaped["model_state"])
    torch.save(shaped, tmp_path / "shaped.pt")
    with pytest.raises(M2mError, match=rf"wrong shapes {weight} \(3, 3\) \(expected"):
        model_from_checkpoint(load_checkpoint(tmp_path / "shaped.pt", data=digits))
    bare = {k: v for k, v in good.items() if k != "model_state"}
    torch.save(bare, tmp_path / "bare.pt")
    with pytest.raises(M2mError, match=r"misses \['model_state'\]"):
        load_checkpoint(tmp_path / "bare.pt")


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC])
def test_read_only_or_full_disk_leaves_nothing(tmp_path, digits, monkeypatch, code):
    """The OSError comes from the final rename (what a read-only folder or a full disk fails);
    the job boundary turns it into one line and the atomic writer leaves no folder behind."""
    from m2m_pipeline import utils
    from m2m_pipeline.jobs.prepare import prepare

    def refuse(src, dst):
        raise OSError(code, os.strerror(code), str(dst))
    monkeypatch.setattr(utils.os, "replace", refuse)
    with pytest.raises(M2mError) as err:
        prepare("digits", tmp_path / "prep", options={"rho": 10})
    assert "\n" not in str(err.value) and str(tmp_path / "prep") in str(err.value)
    assert list(tmp_path.iterdir()) == []                  # no output, no .tmp- folder, no lock
    with pytest.raises(OSError):                           # other errors stay errors (a bug is a bug)
        with user_os_errors():
            raise OSError(errno.EBADF, "bad file descriptor")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_for_real(tmp_path, digits):
    from m2m_pipeline.jobs.prepare import prepare

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(M2mError, match="permission denied"):
            prepare("digits", ro / "prep", options={"rho": 10})
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_pool_larger_than_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    from m2m_pipeline import utils

    need = estimate_pool_bytes(100, (5,))
    # int16 x_delta + the other row arrays: slot 8, target 4, seed_class 4, seed_index 8, seed_aug 6,
    # x_exp 1, loss_g 4, prob_g 4, u_beta 8, accepted 1, reason 1 = 49 bytes; + 1 MiB of metadata
    assert need == 100 * (5 * 2 + 49) + (1 << 20)
    monkeypatch.setattr(utils.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, need - 1))
    with pytest.raises(M2mError, match=r"pool .* needs about 1\.0 MiB but .* has only 1\.0 MiB free"):
        _tiny_pool(tmp_path / "pool")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(utils.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, need))
    _tiny_pool(tmp_path / "pool")


# -- a UTF-8 BOM and CRLF line ends ----------------------------------------------------------------

def test_bom_and_crlf_keep_the_first_document(tmp_path):
    from m2m_pipeline.datasets import create_dataset

    def write(name, docs):
        (tmp_path / name).write_bytes(b"\xef\xbb\xbf" + "".join(f"{lab}\t{txt}\r\n" for lab, txt in docs).encode())
    train = [("alpha", "first document words")] + [("alpha", f"apple pie {i}") for i in range(9)] + \
            [("beta", f"banana bread {i}") for i in range(6)]
    test = [("alpha", "apple")] * 5 + [("beta", "banana")] * 5
    write("train.txt", train)
    write("test.txt", test)
    labels, texts = read_labelled_lines(tmp_path / "train.txt")
    assert labels[0] == "alpha" and texts[0] == "first document words" and len(labels) == 16
    data = create_dataset(f"text:{tmp_path}")
    assert data.class_names == ["alpha", "beta"]
    assert data.meta["n_train_before_holdout"] == 16 and data.meta["n_test"] == 10
    assert data.meta["dropped_classes"] == {}
    assert "first" in data.meta["vocabulary"]              # the first document's words were counted


# -- the report reads only the runs of the current DAG ---------------------------------------------

def _metrics(method, seed, bacc):
    test = {"bacc": bacc, "gm": bacc, "major": bacc, "minor": bacc, "per_class_recall": [bacc / 100] * 2}
    sel = {"epoch": 5, "val": test, "test": test}
    return {"dataset": "digits", "method": method, "seed": seed, "best_val": sel, "last": sel}


def test_report_ignores_metrics_outside_the_dag(tmp_path):
    folder = tmp_path / "metrics" / "digits"
    folder.mkdir(parents=True)
    for method, seed, bacc in [("ERM", 0, 90.0), ("ERM", 1, 92.0), ("M2m", 0, 95.0), ("M2m", 1, 93.0),
                               ("RS", 0, 11.0), ("ERM", 7, 12.0)]:   # RS dropped from evaluate.methods; seed 7 old
        (folder / f"{method}-seed{seed}.json").write_text(json.dumps(_metrics(method, seed, bacc)))
    kept, ignored, missing = select_metrics_files(folder, ["ERM", "M2m", "DRS"], [0, 1])
    assert [p.name for p in ignored] == ["ERM-seed7.json", "RS-seed0.json"]
    assert missing == ["DRS-seed0", "DRS-seed1"] and len(kept) == 4
    md = write_report("digits", tmp_path / "metrics", tmp_path / "out", methods=["ERM", "M2m", "DRS"], seeds=[0, 1])
    assert "| ERM | 2 | 91.0 ± 1.41 |" in md and "| M2m | 2 | 94.0 ± 1.41 |" in md   # mean of 90, 92; std sqrt(2)
    assert "| RS |" not in md
    assert "Ignored (not in evaluate.methods x seeds): ERM-seed7.json, RS-seed0.json." in md
    assert "Not evaluated yet: DRS-seed0, DRS-seed1." in md
    everything = write_report("digits", tmp_path / "metrics", tmp_path / "all")
    assert "| RS |" in everything


# -- the output lock ------------------------------------------------------------------------------

def test_second_writer_is_refused_naming_the_holder(tmp_path):
    out = tmp_path / "pool"
    script = ("import sys; from m2m_pipeline.utils import output_lock, M2mError\n"
              "try:\n    with output_lock(sys.argv[1]): pass\n"
              "except M2mError as e:\n    print(e); sys.exit(2)\n")
    with output_lock(out) as lock:
        assert lock.read_text().splitlines()[0] == str(os.getpid())
        res = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and f"being written by process {os.getpid()}" in res.stdout
        with pytest.raises(M2mError, match=f"process {os.getpid()}"):   # also within one process
            with output_lock(out):
                pass
    assert not lock.exists()


def test_lock_of_a_killed_writer_is_taken_over(tmp_path):
    out = tmp_path / "pool"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from m2m_pipeline.utils import output_lock\n"
                               "with output_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)\n",
                               str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(M2mError, match=f"process {holder.pid}"):
            with output_lock(out):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    stale = tmp_path / ".pool.lock"
    assert stale.read_text().splitlines()[0] == str(holder.pid)    # the dead writer's lock is still there
    with output_lock(out) as lock:                          # and is taken over
        assert lock.read_text().splitlines()[0] == str(os.getpid())


# -- a --scheduler that is not a dask scheduler: one line, bounded time (issue 20, item 4) ---------

def test_generate_on_a_scheduler_address_that_is_not_one(tmp_path, digits, trained):
    import socket
    import threading
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)

    def answer_400():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(30)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass
    threading.Thread(target=answer_400, daemon=True).start()
    address = f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    _params_file(tmp_path)
    write_prepared(tmp_path / "data" / "prepared" / "digits", digits)
    args = ["generate", "--dataset", "digits", "--epoch", "40", "--out", "pool", "--g", str(trained / "g" / "last.pt"),
            "--f", str(trained / "warm" / "last.pt")]
    try:
        start = time.monotonic()
        res = _cli([*args, "--scheduler", address], tmp_path)
        took = time.monotonic() - start
    finally:
        srv.close()
    # was: _ArrayMemoryError: Unable to allocate 3.07 EiB
    _one_line_error(res, address, "b'HTTP/1.0'", "not a dask scheduler")
    assert took < 120 and not (tmp_path / "pool").exists(), took   # a hang guard; nothing written
    _params_file(tmp_path, lambda p: p["translate"].update(scheduler="tcp://[::1"))
    _one_line_error(_cli(args, tmp_path), "'tcp://[::1'", "closing ']'")   # was a ValueError traceback


# -- a malformed metrics file: `table` names it in one line, as `report` does (issue 20, item 10) --

@pytest.mark.parametrize("text,needle", [
    ("[", "cannot be read as JSON (JSONDecodeError)"),
    ("[1, 2]", "it holds a list, not an object"),
    (json.dumps({"dataset": "digits", "method": "M2m", "last": {}}), "it has no best_val key"),
])
def test_table_and_report_refuse_a_malformed_metrics_file_in_one_line(tmp_path, text, needle):
    _params_file(tmp_path)
    folder = tmp_path / "metrics" / "digits"
    folder.mkdir(parents=True)
    (folder / "ERM-seed1.json").write_text(json.dumps(_metrics("ERM", 1, 70.0)))
    (folder / "M2m-seed1.json").write_text(text)
    bad = "metrics/digits/M2m-seed1.json"
    _one_line_error(_cli(["table", "--dataset", "digits"], tmp_path), bad, needle)
    _one_line_error(_cli(["report", "--dataset", "digits", "--all-files"], tmp_path), bad, needle)
    assert not (tmp_path / "reports").exists()


def test_metrics_records_are_checked_deeper_than_their_keys(tmp_path):
    from m2m_pipeline.reports import read_metrics_file
    from m2m_pipeline.reports.run_tables import run_tables

    good = _metrics("M2m", 0, 70.0)
    cases = [
        ({**good, "best_val": 5}, "best_val is a number, not an object"),
        ({**good, "last": {**good["last"], "test": [1]}}, "last.test is missing or not an object"),
        ({**good, "best_val": {**good["best_val"], "test": {**good["best_val"]["test"], "bacc": "x"}}},
         "best_val.test.bacc should be a number, not 'x'"),
        ({**good, "best_val": {**good["best_val"], "val": {"bacc": None}}}, "best_val.val.bacc should be a number"),
        ({**good, "seed": "1"}, "seed should be an integer, not '1'"),
    ]
    path = tmp_path / "M2m-seed0.json"
    for record, needle in cases:
        path.write_text(json.dumps(record))
        with pytest.raises(M2mError) as err:
            run_tables([path])
        assert needle in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)
    path.write_text("[" * 100_000)   # nested too deep: one line, not a RecursionError
    with pytest.raises(M2mError, match="cannot be read as JSON"):
        read_metrics_file(path)
    path.write_text(json.dumps(good))
    assert "| M2m (seed 0) | 70.0 |" in run_tables([path], which="best_val")["best_val"]
