"""The hyper-parameter grid of the validation selection (Sec. 3.1, "Details on M2m") and its
params.yaml edit, which changes only the chosen preset's m2m key and keeps every comment."""

from __future__ import annotations

import pytest
import yaml

from m2m_pipeline.studies.grid import PAPER_GRID, grid_points, write_preset_m2m
from m2m_pipeline.utils import M2mError


PARAMS = """\
# top comment
dataset: reuters
presets:
  a:
    model: mlp   # a comment
    m2m: {step_size: 1.0}

  b:
    model: cnn
    m2m:
      step_size: 0.5
      beta: 0.9
  c:
    model: x
    epochs: 3
# between
other: {x: 1}
"""


def test_write_preset_m2m_edits_only_that_key(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    write_preset_m2m(path, "a", {"beta": 0.999, "lam": 0.1, "gamma": 0.9}, comment="chosen")
    write_preset_m2m(path, "b", {"beta": 0.99, "lam": 0.5, "gamma": 0.99})
    write_preset_m2m(path, "c", {"beta": 0.9, "lam": 0.01, "gamma": 0.9})
    text = path.read_text()
    data = yaml.safe_load(text)
    assert data["presets"]["a"] == {"model": "mlp", "m2m": {"step_size": 1.0, "beta": 0.999, "lam": 0.1, "gamma": 0.9}}
    assert data["presets"]["b"]["m2m"] == {"step_size": 0.5, "beta": 0.99, "lam": 0.5, "gamma": 0.99}
    assert data["presets"]["c"] == {"model": "x", "epochs": 3, "m2m": {"beta": 0.9, "lam": 0.01, "gamma": 0.9}}
    assert data["other"] == {"x": 1} and data["dataset"] == "reuters"
    assert "    m2m: {step_size: 1.0, beta: 0.999, lam: 0.1, gamma: 0.9}  # chosen\n\n  b:\n" in text
    assert text.startswith("# top comment\n") and "    model: mlp   # a comment\n" in text
    assert "    epochs: 3\n    m2m: {beta: 0.9, lam: 0.01, gamma: 0.9}\n# between\n" in text
    with pytest.raises(M2mError, match="no preset 'zzz'"):
        write_preset_m2m(path, "zzz", {"beta": 0.9})


def test_paper_grid():
    points = grid_points()
    assert len(points) == 18 and points[0] == {"beta": 0.9, "lam": 0.01, "gamma": 0.9}
    assert points[-1] == {"beta": 0.999, "lam": 0.5, "gamma": 0.99}
    assert PAPER_GRID == {"beta": (0.9, 0.99, 0.999), "lam": (0.01, 0.1, 0.5), "gamma": (0.9, 0.99)}
