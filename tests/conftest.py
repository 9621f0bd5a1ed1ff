"""Shared fixtures: the embedded digits data, a tiny schedule, and g/warm-f checkpoints trained once."""

from pathlib import Path

import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.jobs.train import pretrain_g, warm_f
from m2m_pipeline.training import Preset

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def digits():
    return create_dataset("digits", rho=10)


@pytest.fixture(scope="session")
def tiny_preset():
    return Preset(model="small_cnn", epochs=4, batch_size=64, warmup_epochs=1, milestones=(3,),
                  deferred_epoch=2, model_args={"width": 8})


@pytest.fixture(scope="session")
def tiny_m2m():
    # beta 0.9 and a large step so a tiny model accepts some rows within a test's budget
    return TranslationConfig(steps=3, step_size=1.0, beta=0.9, gamma=0.5, batch_size=32, rows_per_shard=64)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, digits, tiny_preset):
    root = tmp_path_factory.mktemp("trained")
    pretrain_g(digits, tiny_preset, seed=1000, out_dir=root / "g", progress=False)
    warm_f(digits, tiny_preset, seed=0, out_dir=root / "warm", progress=False)
    return root
