"""The CIFAR-LT recipes (datasets/cifar.py): the long-tailed subsets from an ImageFolder tree and from
the python pickles, exactly, their bad-input errors, the download path, and the real CIFAR-10-LT
(skipped where ../shared/datasets is missing)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.utils import M2mError

from tests.unit.datasets.fixtures import CIFAR10_NAMES, make_cifar_imagefolder, make_cifar_pickles, unpacked_cifar10


def test_cifar10_lt_imagefolder_exact(tmp_path):
    data = create_dataset("cifar10-lt", data_root=make_cifar_imagefolder(tmp_path), rho=2.0)
    assert data.class_names == CIFAR10_NAMES
    # N_k = int(20 * 2^(-k/9)), k = 0..9
    assert data.class_counts.tolist() == [20, 18, 17, 15, 14, 13, 12, 11, 10, 10]
    assert np.bincount(data.val.y).tolist() == [1] * 10 and np.bincount(data.test.y).tolist() == [9] * 10
    assert data.train.x.shape[1:] == (3, 32, 32) and data.preset == "cifar10-lt"
    assert data.augment == {"crop_pad": 4, "flip": True}
    assert data.meta["source"]["layout"] == "imagefolder"
    # the first N_k files of each class (sorted by name): G = 10 * file index, R = 20 * class
    for c in range(10):
        px = data.train.x[data.train.y == c][:, :, 16, 16].astype(int)
        assert np.all(np.abs(px[:, 0] - 20 * c) <= 3)
        assert np.all(np.abs(px[:, 1] - 10 * np.arange(len(px))) <= 3)


def test_cifar_pickles_exact(tmp_path):
    root = make_cifar_pickles(tmp_path, 10, n_train=50, n_test=20)
    data = create_dataset("cifar10-lt", data_root=root, rho=10.0)
    assert data.meta["source"]["layout"] == "cifar-python"
    assert data.class_names == CIFAR10_NAMES
    counts = [int(50 * 10 ** (-k / 9)) for k in range(10)]
    assert data.class_counts.tolist() == counts
    assert len(data.val) == 20 and len(data.test) == 180
    # class 3's images are rows 3, 13, 23, ... of the batches in order: their first pixel is the
    # row index within its batch (10 images a class a batch, 10 classes -> 100 rows a batch)
    firsts = data.train.x[data.train.y == 3][:, 0, 0, 0].astype(int).tolist()
    expected = [(3 + 10 * j) % 100 for j in range(counts[3])]
    assert firsts == expected
    # the folder itself is also accepted as data root
    again = create_dataset("cifar10-lt", data_root=root / "cifar-10-batches-py", rho=10.0)
    assert again.fingerprint == data.fingerprint

    root100 = make_cifar_pickles(tmp_path / "c100", 100, n_train=6, n_test=10)
    d100 = create_dataset("cifar100-lt", data_root=root100, rho=2.0)
    assert d100.num_classes == 100 and d100.class_names[:2] == ["c000", "c001"]
    assert d100.class_counts[0] == 6 and d100.class_counts[-1] == 3
    assert len(d100.val) == 100 and len(d100.test) == 900


def test_cifar_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(M2mError, match=r"cifar10-lt: found no CIFAR data in .*cifar-10-batches-py.*ImageFolder"):
        create_dataset("cifar10-lt", data_root=empty)

    root = make_cifar_imagefolder(tmp_path / "bad", n_train=4, n_test=2)
    (root / "train" / "dog" / "0002.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(M2mError, match=r"cannot decode image .*train/dog/0002\.jpg"):
        create_dataset("cifar10-lt", data_root=root, rho=1.0)

    root = make_cifar_imagefolder(tmp_path / "nine", n_train=2, n_test=2)
    shutil.rmtree(root / "train" / "truck")
    shutil.rmtree(root / "test" / "truck")
    with pytest.raises(M2mError, match=r"has 9 classes, CIFAR-10 has 10"):
        create_dataset("cifar10-lt", data_root=root)

    root = make_cifar_imagefolder(tmp_path / "small", n_train=5, n_test=2)
    with pytest.raises(M2mError, match=r"rho=100.0 leaves class deer with no image"):
        create_dataset("cifar10-lt", data_root=root)

    root = make_cifar_pickles(tmp_path / "trunc", 10, n_train=10, n_test=2)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(M2mError, match=r"cannot read .*data_batch_3"):
        create_dataset("cifar10-lt", data_root=root)


@pytest.mark.realdata
def test_real_cifar10_lt():
    data = create_dataset("cifar10-lt", data_root=unpacked_cifar10(), rho=100.0)
    assert data.class_names == CIFAR10_NAMES
    assert data.class_counts.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert len(data.test) == 9000 and len(data.val) == 1000
    assert np.bincount(data.val.y).tolist() == [100] * 10
    assert data.train.x.shape[1:] == (3, 32, 32) and data.train.x.dtype == np.uint8


def test_cifar_download_on_a_missing_root_reaches_the_downloader(tmp_path, monkeypatch):
    """download=True must not stop at "data root does not exist": the downloader creates it."""
    import torchvision.datasets

    calls = []

    def fake_cifar10(root, train, download):
        calls.append(root)
        raise OSError("no network here")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", fake_cifar10)
    with pytest.raises(M2mError, match="downloading CIFAR-10 into .* failed: no network here"):
        create_dataset("cifar10-lt", data_root=tmp_path / "new", download=True)
    assert calls == [str(tmp_path / "new")]
