"""The benchmark scripts: the reference restatement of Sec. 2.3 as an oracle for the library's
translation, and the GPU check's CPU dry run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from m2m_pipeline.models import create_model
from m2m_pipeline.translate import M2mTranslator

from tests.system import ROOT, load_benchmark


ref = load_benchmark("reference_translate")


def small_models(kind: str, k: int):
    torch.manual_seed(3)
    if kind == "image":
        kw = dict(input_shape=(3, 8, 8), num_classes=k, mean=[0.4, 0.5, 0.6], std=[0.2, 0.25, 0.3])
        g, f = create_model("small_cnn", width=4, **kw), create_model("small_cnn", width=4, **kw)
        # non-trivial BN statistics so eval mode matters
        for m in list(g.modules()) + list(f.modules()):
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        return g, f, (3, 8, 8)
    kw = dict(input_shape=(20,), num_classes=k, mean=[0.0], std=[1.0])
    return create_model("mlp", hidden=16, **kw), create_model("mlp", hidden=16, **kw), (20,)


@pytest.mark.parametrize("kind,gamma_on,gamma", [("image", "prob", 0.3), ("vector", "loss", 1.5)])
def test_reference_matches_library_translation(kind, gamma_on, gamma):
    counts = torch.tensor([60, 30, 12, 5])
    g, f, shape = small_models(kind, len(counts))
    gen = torch.Generator().manual_seed(11)
    y = torch.arange(48) % 4                       # a class-balanced mini-batch
    x = torch.rand(len(y), *shape, generator=gen)
    params = dict(steps=4, step_size=0.3, lam=0.5, gamma=gamma, beta=0.9)
    draws = ref.draw_batch(y, counts, shape, beta=0.9, noise_radius=0.1, gen=gen)
    # item i generates with P = 1 - N_{y_i}/N_1: class 0 never; 3 classes of 12 items each otherwise
    assert len(draws.rows) > 10 and (y[draws.rows] != 0).all()
    g.eval(), f.eval()
    want = ref.translate_batch(g, f, x, y, counts, draws, gamma_on=gamma_on, **params)

    translator = M2mTranslator(gamma_on=gamma_on, input_range=(0.0, 1.0), **params)
    got = translator.translate(g.train(), f.train(), x[draws.seed_rows], y[draws.rows], y[draws.seed_rows],
                               class_counts=counts.tolist(), noise=draws.noise, u_beta=draws.u_beta)
    assert g.training and f.training        # restored after the call
    torch.testing.assert_close(got.x, want.x_star, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.prob_g, want.prob, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.loss_g, want.loss, rtol=1e-5, atol=1e-6)
    assert torch.equal(got.reason, want.reason)
    # the test must see both decisions, or it checks nothing about the accept rule
    reasons = set(want.reason.tolist())
    assert ref.ACCEPTED in reasons and len(reasons) >= 2
    # every step moved x by eta before the clamp: x* differs from the start
    start = (x[draws.seed_rows] + draws.noise).clamp(0, 1)
    assert (got.x - start).flatten(1).norm(dim=1).min() > 0


def test_device_batches_equal_the_cpu_loop_batches():
    """The GPU path's batches (training/device_data.py), run here on the CPU, are the loop's."""
    from types import SimpleNamespace

    from m2m_pipeline.datasets import Split
    from m2m_pipeline.plan import make_plan
    from m2m_pipeline.training.device_data import DeviceImages, device_batch_inputs
    from m2m_pipeline.training.loop import batch_inputs

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), [30, 12, 6])
    train = Split(rng.integers(0, 256, size=(len(y), 3, 8, 8), dtype=np.uint8), y)
    augment = {"crop_pad": 2, "flip": True}
    data = SimpleNamespace(augment=augment, to_float=lambda a: torch.from_numpy(np.ascontiguousarray(a)).float() / 255)
    plan = make_plan(y, np.bincount(y), seed=0, epoch=3, order="balanced", attempts=False, augment=augment,
                     batch_size=16)
    assert (plan.aug[:, 2] == 1).any() and (plan.aug[:, :2] != 2).any()   # flips and off-centre crops occur
    images = DeviceImages(train.x, train.y, augment, torch.device("cpu"))
    slots = plan.batch_slots(1)
    swaps = {int(slots[3]): SimpleNamespace(x=np.full((3, 8, 8), 0.25, dtype=np.float32), label=2)}
    want_x, want_y = batch_inputs(data, train, plan, slots, swaps)
    got_x, got_y = device_batch_inputs(images, plan, slots, swaps)
    torch.testing.assert_close(got_x, want_x, rtol=0, atol=1e-7)
    assert torch.equal(got_y, want_y) and int(got_y[3]) == 2 and float(got_x[3].max()) == 0.25


def run_script(script: str, out: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(ROOT / "benchmarks" / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_gpu_check_dry_run(tmp_path):
    """gpu_check.sh --dry-run: the GPU check's code on the CPU at tiny sizes (about 15 s idle)."""
    proc = run_script("gpu_check.sh", tmp_path, "--dry-run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["dry_run"] and result["device"] == "cpu"
    assert set(result["per_epoch_s"]) == {"g", "warm", "ERM", "DRS", "M2m"}
    assert all(v > 0 for v in result["per_epoch_s"].values())
    speed = result["translate_bs8"]
    assert speed["reference_per_s"] > 0 and speed["ours_per_s"] > 0
    assert speed["ratio"] == pytest.approx(speed["ours_per_s"] / speed["reference_per_s"])
    assert 0 < speed["roofline_fraction_ours"] < 1.5
    assert 0 <= result["bf16"]["decision_agreement"] <= 1 and result["bf16"]["rows"] == 8


@pytest.mark.slow
def test_cifar_lt_gpu_dry_run_resumes_from_its_state(tmp_path):
    out1, out2 = tmp_path / "call1", tmp_path / "call2"
    proc = run_script("cifar_lt_gpu.sh", out1, "--dry-run", "--seed", "0", "--budget", "280")
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = json.loads((out1 / "cifar_lt_gpu_seed0.json").read_text())
    assert set(first["jobs"]) == {"g", "warm", "ERM", "DRS", "M2m", "warm-ldam", "LDAM-DRW", "LDAM-M2m"}
    assert "bacc" in json.dumps(first["jobs"]["M2m"]["metrics"])
    parts = sorted(out1.glob("seed0.tar.part-*"))
    assert parts
    carry = tmp_path / "carry"
    (carry / "state").mkdir(parents=True)
    for p in parts:
        (carry / "state" / p.name).write_bytes(p.read_bytes())
    env_carry = {"CARRY": str(carry)}
    os.environ.update(env_carry)
    try:
        proc = run_script("cifar_lt_gpu.sh", out2, "--dry-run", "--seed", "0", "--budget", "280")
    finally:
        os.environ.pop("CARRY")
    assert proc.returncode == 0, proc.stderr[-2000:]
    second = json.loads((out2 / "cifar_lt_gpu_seed0.json").read_text())
    assert all(job.get("done_before") for job in second["jobs"].values())
