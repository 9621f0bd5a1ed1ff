"""The Twitter POS recipe (datasets/twitter.py): the fixture tweets, the hashed and the file
embeddings, its bad-input errors, and the real data (skipped where ../shared/datasets is missing)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.datasets.twitter import EMBED_DIM, hashed_embedding
from m2m_pipeline.utils import M2mError

from tests.unit.datasets.fixtures import _shared, make_tweets, write_lines


def test_twitter_recipe_on_fixture(tmp_path):
    data = create_dataset("twitter", data_root=make_tweets(tmp_path))
    # M has no test token: dropped; E occurs only in dev: those dev tokens are dropped.
    assert data.class_names == ["!", ",", "@", "N", "O", "V", "^"]
    assert data.meta["dropped_tags"] == {"M": 1}
    assert data.meta["val_dropped"] == {"E": 1}
    assert len(data.train) == 10 and len(data.val) == 4 and len(data.test) == 7
    assert data.class_counts.tolist() == [1, 1, 1, 2, 1, 3, 1]
    assert data.input_shape == (EMBED_DIM,) and data.input_range is None
    assert data.mean == [0.0] and data.std == [1.0] and data.preset == "twitter"
    assert np.allclose(np.linalg.norm(data.train.x, axis=1), 1.0, atol=1e-5)
    assert data.meta["embedding"]["kind"] == "hashed-char-ngrams"
    # the same token gets the same vector in every split
    mention = data.class_names.index("@")
    assert np.array_equal(data.train.x[data.train.y == mention][0], data.test.x[data.test.y == mention][0])


def test_hashed_embedding_is_fixed():
    v = hashed_embedding("cats")
    assert v.dtype == np.float32 and v.shape == (EMBED_DIM,)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    assert np.array_equal(v, hashed_embedding("cats"))
    # Pinned: a change of the documented embedding must be deliberate (docs/datasets.md).
    assert np.round(v[:3].astype(np.float64), 4).tolist() == PINNED_CATS
    near = float(v @ hashed_embedding("cat"))
    far = float(v @ hashed_embedding("<@MENTION>"))
    assert near > far


PINNED_CATS = [-0.2838, -0.1367, 0.078]


def test_twitter_embedding_file(tmp_path):
    root = make_tweets(tmp_path / "tw")
    table = {"cats": 1.0, "love": 2.0, "<unk>": -1.0, "london": 3.0}
    lines = ["4 50"] + [w + " " + " ".join([str(v)] * EMBED_DIM) for w, v in table.items()]
    emb = write_lines(tmp_path / "emb.txt", lines)
    data = create_dataset("twitter", data_root=root, embedding=str(emb))
    assert data.meta["embedding"]["kind"] == "file"
    n_idx = data.class_names.index("N")
    v_idx = data.class_names.index("V")
    train_n = data.train.x[data.train.y == n_idx]
    assert train_n[0].tolist() == [1.0] * EMBED_DIM  # "cats"
    assert train_n[1].tolist() == [-1.0] * EMBED_DIM  # "dogs": the file's <unk> vector
    assert data.train.x[data.train.y == v_idx][0].tolist() == [2.0] * EMBED_DIM  # "love"
    assert data.meta["embedding_oov"]["train"] == 8
    # "London" (dev) is found lower-cased
    assert data.val.x[data.val.y == data.class_names.index("^")][0].tolist() == [3.0] * EMBED_DIM
    # a relative path is also looked up in the data root
    shutil.copy(emb, root / "emb50.txt")
    again = create_dataset("twitter", data_root=root, embedding="emb50.txt")
    assert again.fingerprint == data.fingerprint


def test_twitter_errors(tmp_path):
    root = make_tweets(tmp_path / "a")
    (root / "tweets-dev.txt").unlink()
    with pytest.raises(M2mError, match=r"missing file .*tweets-dev\.txt; expected .*TOKEN<TAB>TAG"):
        create_dataset("twitter", data_root=root)

    root = make_tweets(tmp_path / "b")
    with open(root / "tweets-train.txt", "a", encoding="utf-8") as fh:
        fh.write("trunc")
    with pytest.raises(M2mError, match=r"tweets-train\.txt line 15: .*not TOKEN<TAB>TAG"):
        create_dataset("twitter", data_root=root)

    root = make_tweets(tmp_path / "c")
    with open(root / "tweets-devtest.txt", "a", encoding="utf-8") as fh:
        fh.write("\nyo\tY\n")
    with pytest.raises(M2mError, match=r"tweets-devtest\.txt: tag\(s\) \['Y'\] never occur"):
        create_dataset("twitter", data_root=root)

    root = make_tweets(tmp_path / "d")
    emb = write_lines(tmp_path / "emb300.txt", ["cats " + " ".join(["0.5"] * 300)])
    with pytest.raises(M2mError, match=r"emb300\.txt line 1: word 'cats' has 300 values, expected 50"):
        create_dataset("twitter", data_root=root, embedding=str(emb))
    bad = write_lines(tmp_path / "nan.txt", ["cats " + " ".join(["x"] * 50)])
    with pytest.raises(M2mError, match=r"nan\.txt line 1: a value is not a number"):
        create_dataset("twitter", data_root=root, embedding=str(bad))
    with pytest.raises(M2mError, match=r"embedding file .*missing\.txt does not exist"):
        create_dataset("twitter", data_root=root, embedding=str(tmp_path / "missing.txt"))


@pytest.mark.realdata
def test_real_twitter():
    data = create_dataset("twitter", data_root=_shared("twitter-pos"))
    assert data.num_classes == 23
    assert len(data.train) == 14614
    assert (data.class_counts.max(), data.class_counts.min()) == (2219, 15)
    assert data.meta["dropped_tags"] == {"M": 3, "Y": 2}
