"""The CelebA-5 recipe (datasets/celeba.py) on a fixture tree, and its bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.utils import M2mError

from tests.unit.datasets.fixtures import make_celeba, replace_in


def test_celeba5_recipe_on_fixture(tmp_path):
    # Exactly-one images a class (40, 30, 14, 20, 12) plus 4 rows with Black_Hair and Brown_Hair
    # both set: the attribute counts A_k are (40, 34, 14, 24, 12). The release's rule, 1/subsample
    # of A_k, here subsample 4: floor(A_k / 4) = (10, 8, 3, 6, 3) training images a class (the
    # two-label rows count in A_k but are never used: 30 // 4 = 7 and 20 // 4 = 5 would be wrong).
    # Test (3) and validation (2) images are taken in addition, not out of those.
    root = make_celeba(tmp_path, n_two=4)
    data = create_dataset("celeba5", data_root=root, subsample=4, n_val=2, n_test=3)
    assert data.class_names == ["Blond_Hair", "Black_Hair", "Bald", "Brown_Hair", "Gray_Hair"]
    assert data.meta["attribute_counts"] == [40, 34, 14, 24, 12]
    assert data.meta["full_counts"] == [40, 30, 14, 20, 12]  # none-of and two-of rows excluded
    assert data.meta["n_excluded_not_exactly_one"] == 8
    assert data.class_counts.tolist() == [10, 8, 3, 6, 3]
    assert data.meta["train_counts_before_holdout"] == [10, 8, 3, 6, 3]
    assert np.bincount(data.test.y).tolist() == [3] * 5
    assert np.bincount(data.val.y).tolist() == [2] * 5
    assert data.train.x.shape[1:] == (3, 32, 32) and data.preset == "celeba5"
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 15)

    # the release's sizes for the real CelebA counts, and the explicit override
    from m2m_pipeline.datasets.celeba import celeba5_train_sizes
    assert celeba5_train_sizes([29983, 48472, 4547, 41572, 8499], 20) == [1499, 2423, 227, 2078, 424]
    data = create_dataset("celeba5", data_root=root, n_val=2, n_test=3, train_counts=[5, 4, 3, 2, 1])
    assert data.class_counts.tolist() == [5, 4, 3, 2, 1]
    with pytest.raises(M2mError, match=r"train_counts must be 5 positive sizes"):
        create_dataset("celeba5", data_root=root, train_counts=[5, 4])


def test_celeba5_errors(tmp_path):
    empty = tmp_path / "e"
    empty.mkdir()
    with pytest.raises(M2mError, match=r"celeba5: missing .*list_attr_celeba\.txt; expected .*torchvision CelebA layout"):
        create_dataset("celeba5", data_root=empty)
    root = make_celeba(tmp_path / "t")
    attr = root / "celeba" / "list_attr_celeba.txt"
    attr.write_text("\n".join(attr.read_text().splitlines()[:-5]) + "\n")
    with pytest.raises(M2mError, match=r"announces 123 images but lists 118 \(truncated\?\)"):
        create_dataset("celeba5", data_root=root)
    root = make_celeba(tmp_path / "v")
    attr = root / "celeba" / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[5] = lines[5].rsplit(" ", 3)[0]
    attr.write_text("\n".join(lines) + "\n")
    with pytest.raises(M2mError, match=r"line 6 has 37 values for 40 attributes"):
        create_dataset("celeba5", data_root=root)
    root = make_celeba(tmp_path / "h")
    attr = root / "celeba" / "list_attr_celeba.txt"
    replace_in(attr, "Gray_Hair", "Grey_Hair")
    with pytest.raises(M2mError, match=r"lacks attribute\(s\) \['Gray_Hair'\]"):
        create_dataset("celeba5", data_root=root)
    root = make_celeba(tmp_path / "m")
    (root / "celeba" / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.raises(M2mError, match=r"cannot decode image .*000001\.jpg"):
        create_dataset("celeba5", data_root=root, n_val=2, n_test=3, train_counts=[35, 1, 1, 1, 1])
    root = make_celeba(tmp_path / "s")
    with pytest.raises(M2mError, match=r"class Blond_Hair has 40 images with exactly one hair colour, "
                                       r"the recipe needs 2 training \+ 100 test \+ 50 validation = 152"):
        create_dataset("celeba5", data_root=root)
