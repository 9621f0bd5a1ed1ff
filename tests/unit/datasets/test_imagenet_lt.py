"""The ImageNet-LT recipe (datasets/imagenet_lt.py) on a fixture tree, and its bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.utils import M2mError

from tests.unit.datasets.fixtures import WNIDS, make_imagenet_lt


def test_imagenet_lt_recipe_on_fixture(tmp_path):
    root = make_imagenet_lt(tmp_path / "in")
    data = create_dataset("imagenet-lt", data_root=root)
    assert data.class_names == WNIDS
    assert data.class_counts.tolist() == [5, 3, 2]
    assert np.bincount(data.val.y).tolist() == [2, 2, 2] and len(data.test) == 6
    assert data.train.x.shape == (10, 3, 128, 128) and data.preset == "imagenet-lt"
    assert data.augment == {"random_resized_crop": 128, "flip": True}
    assert data.meta["val_source"] == "ImageNet_LT_val.txt"

    root = make_imagenet_lt(tmp_path / "nolist", with_val_list=False, extra_per_class=1)
    data = create_dataset("imagenet-lt", data_root=root, n_val=3, size=16)
    assert np.bincount(data.val.y).tolist() == [3, 3, 3] and data.train.x.shape[1:] == (3, 16, 16)
    assert "from the ImageNet training folders" in data.meta["val_source"]
    # every class folder holds n + 3 files, n of them in the LT list: only 3 can be validation
    with pytest.raises(M2mError, match=r"has 3 images outside the LT training list, 4 are needed"):
        create_dataset("imagenet-lt", data_root=root, n_val=4, size=16)


def test_imagenet_lt_errors(tmp_path):
    root = make_imagenet_lt(tmp_path / "a")
    (root / "ImageNet_LT_test.txt").unlink()
    with pytest.raises(M2mError, match=r"missing list file .*ImageNet_LT_test\.txt; expected .*PATH LABEL"):
        create_dataset("imagenet-lt", data_root=root)
    root = make_imagenet_lt(tmp_path / "b")
    with open(root / "ImageNet_LT_train.txt", "a") as fh:
        fh.write("train/n01440764/n01440764_9")
    with pytest.raises(M2mError, match=r"ImageNet_LT_train\.txt line 11: .*not 'PATH LABEL'"):
        create_dataset("imagenet-lt", data_root=root)
    root = make_imagenet_lt(tmp_path / "c")
    with open(root / "ImageNet_LT_test.txt", "a") as fh:
        fh.write("val/n09999999/ILSVRC2012_val_00000099.JPEG 7\n")
    with pytest.raises(M2mError, match=r"label\(s\) \[7\] that never occur in ImageNet_LT_train\.txt"):
        create_dataset("imagenet-lt", data_root=root)
    root = make_imagenet_lt(tmp_path / "d")
    (root / "val" / WNIDS[1] / "ILSVRC2012_val_00000003.JPEG").unlink()
    with pytest.raises(M2mError, match=r"cannot decode image .*ILSVRC2012_val_00000003\.JPEG"):
        create_dataset("imagenet-lt", data_root=root, size=16)
