"""The SUN397 recipe (datasets/sun397.py) on a fixture tree, and its bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.utils import M2mError

from tests.unit.datasets.fixtures import make_sun397, write_image


def test_sun397_recipe_on_fixture(tmp_path):
    data = create_dataset("sun397", data_root=make_sun397(tmp_path))
    assert data.class_names == ["abbey", "apartment_building/outdoor", "bakery/shop"]
    assert np.bincount(data.test.y).tolist() == [40, 40, 40]
    assert np.bincount(data.val.y).tolist() == [10, 10, 10]
    assert data.class_counts.tolist() == [2, 5, 10]
    assert data.train.x.shape == (17, 3, 32, 32) and data.preset == "sun397"
    # centre square crop: the red margins are cut away, the blue centre fills the image
    x = data.train.x.astype(int)
    assert x[:, 2].mean() > 240 and x[:, 0].mean() < 15
    # torchvision's root or the SUN397 folder itself
    again = create_dataset("sun397", data_root=tmp_path / "SUN397")
    assert again.fingerprint == data.fingerprint


def test_sun397_errors(tmp_path):
    empty = tmp_path / "e"
    empty.mkdir()
    with pytest.raises(M2mError, match=r"sun397: missing .*ClassName\.txt; expected .*torchvision SUN397 layout"):
        create_dataset("sun397", data_root=empty)
    root = make_sun397(tmp_path / "x", per_class=(51, 51, 51))
    write_image(root / "SUN397" / "z" / "zoo" / "sun_zoo.jpg", (8, 8))
    with pytest.raises(M2mError, match=r"sun_zoo\.jpg lies in folder 'zoo', which is not a class"):
        create_dataset("sun397", data_root=root)
    root = make_sun397(tmp_path / "y", per_class=(51, 50, 51))
    with pytest.raises(M2mError, match=r"class 'apartment_building/outdoor' has 50 images"):
        create_dataset("sun397", data_root=root)
