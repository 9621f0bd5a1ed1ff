"""Image decoding (datasets/image_io.py): the parallel decode gives the serial one's arrays and names
a broken file."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.datasets import image_io as images_mod
from m2m_pipeline.utils import M2mError

from tests.unit.datasets.fixtures import write_image


def test_parallel_decode_matches_serial(tmp_path, monkeypatch):
    files = [write_image(tmp_path / f"{i}.png", (10, 6), (i, 2 * i, 3 * i)) for i in range(30)]
    serial = images_mod.load_images(files, 8, workers=1)
    monkeypatch.setattr(images_mod, "_PARALLEL_MIN", 1)
    monkeypatch.setattr(images_mod, "_CHUNK", 7)
    parallel = images_mod.load_images(files, 8, workers=2)
    assert parallel.shape == (30, 3, 8, 8) and np.array_equal(serial, parallel)
    (tmp_path / "17.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(M2mError, match=r"cannot decode image .*17\.png"):
        images_mod.load_images(files, 8, workers=2)
