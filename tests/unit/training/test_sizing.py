"""The preset of a bring-your-own dataset (training/sizing.py): the size rule, and params.yaml's
``auto`` values filled from the prepared data, a number there overriding the rule."""

import copy

import numpy as np
import pytest
import yaml

from m2m_pipeline.datasets import PreparedData, Split
from m2m_pipeline.errors import M2mError
from m2m_pipeline.params import m2m_config, preset_for, validate_params
from m2m_pipeline.store import prepared_summary, write_prepared
from m2m_pipeline.training.sizing import sized_schedule

from tests.conftest import ROOT


@pytest.mark.parametrize("kind, n, shape, want", [
    # tiny image set: small_cnn, 60 epochs, batch capped at half the set (a power of two)
    ("image", 40, (3, 32, 32), {"model": "small_cnn", "epochs": 60, "batch_size": 16, "warmup_epochs": 5,
                                "milestones": [48, 54], "deferred_epoch": 48}),
    ("image", 5000, (3, 32, 32), {"model": "resnet32", "epochs": 120, "batch_size": 64, "warmup_epochs": 5,
                                  "milestones": [96, 108], "deferred_epoch": 96}),
    ("image", 5000, (1, 8, 8), {"model": "small_cnn", "epochs": 120, "batch_size": 64, "warmup_epochs": 5,
                                "milestones": [96, 108], "deferred_epoch": 96}),
    # CIFAR-10-LT's size: the paper's preset (200 epochs, batch 128, milestones 160/180, deferral at 160)
    ("image", 12406, (3, 32, 32), {"model": "resnet32", "epochs": 200, "batch_size": 128, "warmup_epochs": 5,
                                   "milestones": [160, 180], "deferred_epoch": 160}),
    ("vector", 300, (4,), {"model": "mlp", "epochs": 30, "batch_size": 32, "warmup_epochs": 3,
                           "milestones": [20], "deferred_epoch": 20}),
    # Reuters' size: the Reuters preset's 15 epochs, batch 64, milestone and deferral at 10
    ("vector", 20000, (1000,), {"model": "mlp", "epochs": 15, "batch_size": 64, "warmup_epochs": 1,
                                "milestones": [10], "deferred_epoch": 10}),
])
def test_the_size_rule(kind, n, shape, want):
    assert sized_schedule(kind, n, shape) == want


def test_given_epochs_scale_the_schedule():
    assert sized_schedule("vector", 300, (4,), epochs=3) == {"model": "mlp", "epochs": 3, "batch_size": 32,
                                                            "warmup_epochs": 0, "milestones": [2], "deferred_epoch": 2}
    assert sized_schedule("image", 10, (3, 8, 8))["batch_size"] == 4
    with pytest.raises(ValueError):
        sized_schedule("audio", 10, (3,))


def _table(n_per_class=(30, 10)):
    y = np.repeat(np.arange(len(n_per_class)), n_per_class)
    x = np.random.default_rng(0).normal(size=(len(y), 3)).astype(np.float32)
    split = Split(x, y)
    return PreparedData(name="table:t.csv", class_names=["a", "b"], train=split, val=split, test=split,
                        input_kind="vector", input_range=None, mean=[0.0], std=[1.0], preset="table")


def _params():
    return validate_params(yaml.safe_load((ROOT / "params.yaml").read_text()))


def test_auto_values_come_from_the_prepared_data_and_numbers_override(tmp_path):
    params = _params()
    assert params["presets"]["table"]["epochs"] == "auto"
    data = _table()
    preset = preset_for(params, "table", prepared=data)
    assert (preset.model, preset.epochs, preset.batch_size, preset.milestones, preset.deferred_epoch) == \
        ("mlp", 30, 16, (20,), 20)
    write_prepared(tmp_path / "prep", data)
    assert prepared_summary(tmp_path / "prep") == {"input_kind": "vector", "n_train": 40, "input_shape": [3],
                                                   "num_classes": 2}
    assert preset_for(params, "table:t.csv", prepared=tmp_path / "prep") == preset
    over = copy.deepcopy(params)
    over["presets"]["table"].update(epochs=6, batch_size=8)   # params.yaml under the dataset's name
    preset = preset_for(validate_params(over), "table", prepared=data)
    assert (preset.epochs, preset.batch_size, preset.milestones, preset.deferred_epoch) == (6, 8, (4,), 4)
    bad = copy.deepcopy(params)
    bad["presets"]["table"].update(milestones=[50])
    with pytest.raises(M2mError, match=r"presets.table \(auto values sized from the data\).milestones"):
        preset_for(validate_params(bad), "table", prepared=data)
    assert m2m_config(params, "table").step_size == 0.5   # the m2m overrides need no prepared data


def test_auto_without_prepared_data_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(M2mError, match=r"no prepared dataset at data/prepared/images; presets.images has `auto`"):
        preset_for(_params(), "images")
    with pytest.raises(M2mError, match="presets.table.epochs must be"):
        validate_params({**_params(), "presets": {"table": {**_params()["presets"]["table"], "epochs": "many"}}})
