"""The images:<dir> recipe (datasets/image_folder.py) on a fixture tree, and its bad-input errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.utils import M2mError

from tests.unit.datasets.fixtures import make_image_folder, write_image


def test_image_folder_recipe(tmp_path):
    root = make_image_folder(tmp_path / "imgs")
    data = create_dataset(f"images:{root}")
    assert data.class_names == ["cls0", "cls1", "cls2"] and data.name == "images:imgs"
    assert data.class_counts.tolist() == [12, 8, 6]  # rho None: as it is
    assert np.bincount(data.val.y).tolist() == [1, 1, 1] and len(data.test) == 27
    assert data.train.x.shape[1:] == (3, 32, 32) and data.preset == "images"
    lt = create_dataset(f"images:{root}", rho=3.0, size=16, augment=False)
    assert lt.class_counts.tolist() == [6, 3, 2]  # N_1 = 6 (smallest class), int(6 * 3^(-k/2))
    assert lt.train.x.shape[1:] == (3, 16, 16) and lt.augment == {}
    # first files by name: G = 5 * file index
    assert lt.train.x[lt.train.y == 0][:, 1, 0, 0].tolist() == [0, 5, 10, 15, 20, 25]


def test_image_folder_errors(tmp_path):
    root = make_image_folder(tmp_path / "a")
    shutil.rmtree(root / "test")
    with pytest.raises(M2mError, match=r"missing folder .*test; expected train/<class>/<image> and test/<class>/<image>"):
        create_dataset(f"images:{root}")
    root = make_image_folder(tmp_path / "b")
    write_image(root / "test" / "stranger" / "x.png", (4, 4))
    with pytest.raises(M2mError, match=r"class folder\(s\) \['stranger'\] have no train/ folder"):
        create_dataset(f"images:{root}")
    root = make_image_folder(tmp_path / "c")
    (root / "train" / "cls9").mkdir()
    with pytest.raises(M2mError, match=r"train/cls9 holds no image files"):
        create_dataset(f"images:{root}")
