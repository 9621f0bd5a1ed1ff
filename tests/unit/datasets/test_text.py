"""The text recipes (datasets/text.py): Reuters R52 and text:<dir> as bags of words, exactly, their
bad-input errors, and the real Reuters data (skipped where ../shared/datasets is missing)."""

from __future__ import annotations

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.datasets.text import STOP_WORDS
from m2m_pipeline.utils import M2mError

from tests.unit.datasets.fixtures import _shared, make_r52, write_lines


def test_stop_words_are_nltk_english():
    assert len(STOP_WORDS) == 179
    assert {"the", "of", "and", "don't", "wouldn't", "ourselves", "ain"} <= STOP_WORDS
    assert "oil" not in STOP_WORDS


def test_reuters_recipe_on_fixture(tmp_path):
    data = create_dataset("reuters", data_root=make_r52(tmp_path))
    assert data.class_names == ["acq", "earn", "tin"]  # sorted; jet (2 test docs) dropped
    assert data.meta["dropped_classes"] == {"jet": {"train": 3, "test": 2}}
    assert data.meta["n_train_before_holdout"] == 46
    assert data.meta["train_counts_before_holdout"] == [12, 30, 4]
    # 10% of each class held out (at least one): 1 + 3 + 1.
    assert np.bincount(data.val.y).tolist() == [1, 3, 1]
    assert data.class_counts.tolist() == [11, 27, 3]
    assert len(data.test) == 19
    assert data.input_shape == (1000,) and data.preset == "reuters"
    assert set(np.unique(data.train.x)) <= {0.0, 1.0}
    assert not set(data.meta["vocabulary"]) & STOP_WORDS


def test_bag_of_words_exact(tmp_path):
    root = tmp_path / "tiny"
    write_lines(root / "train.txt", ["a\tThe cat sat on the mat cat", "a\tcat dog",
                                     "b\tdog dog bird fish", "b\tthe fish"])
    write_lines(root / "test.txt", ["a\tcat zebra", "b\tthe on", "b\tFish DOG"])
    data = create_dataset(f"text:{root}", min_test_docs=1, vocab_size=4)
    # counts: cat 3, dog 3, fish 2, bird/mat/sat 1; ties alphabetical -> cat, dog, fish; 3 = unknown
    assert data.meta["vocabulary"] == ["cat", "dog", "fish"]
    assert data.preset == "text" and data.name == "text:tiny"
    assert data.test.x.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 1, 0]]
    assert data.test.y.tolist() == [0, 1, 1]
    rows = sorted(map(tuple, np.concatenate([data.train.x, data.val.x]).tolist()))
    assert rows == sorted([(1, 0, 0, 1), (1, 1, 0, 0), (0, 1, 1, 1), (0, 0, 1, 0)])
    assert len(data.val) == 2 and data.meta["n_train_before_holdout"] == 4


def test_line_separators_inside_text_do_not_split_documents(tmp_path):
    root = tmp_path / "seps"
    write_lines(root / "train.txt", ["a\tcat\u2028dog\x0bfish", "b\tbird\r", "b\tbird"])
    write_lines(root / "test.txt", ["a\tcat", "b\tbird"])
    data = create_dataset(f"text:{root}", min_test_docs=1, vocab_size=5)
    assert data.meta["n_train_before_holdout"] == 3
    assert data.meta["vocabulary"] == ["bird", "cat", "dog", "fish"]


def test_text_errors(tmp_path):
    root = make_r52(tmp_path / "r")
    (root / "r52-test.txt").unlink()
    with pytest.raises(M2mError, match=r"missing file .*r52-test\.txt; expected .*TOPIC<TAB>words"):
        create_dataset("reuters", data_root=root)

    root = make_r52(tmp_path / "trunc")
    with open(root / "r52-train.txt", "a", encoding="utf-8") as fh:
        fh.write("ear")  # a file cut in the middle of a label
    with pytest.raises(M2mError, match=r"r52-train\.txt line 50: no TAB"):
        create_dataset("reuters", data_root=root)

    root = make_r52(tmp_path / "unseen")
    with open(root / "r52-test.txt", "a", encoding="utf-8") as fh:
        fh.write("cocoa\tcocoa beans\n")
    with pytest.raises(M2mError, match=r"r52-test\.txt: label\(s\) \['cocoa'\] never occur"):
        create_dataset("reuters", data_root=root)

    root = make_r52(tmp_path / "bytes")
    (root / "r52-train.txt").write_bytes(b"earn\t\xff\xfe oil\n")
    with pytest.raises(M2mError, match=r"r52-train\.txt is not UTF-8"):
        create_dataset("reuters", data_root=root)

    empty = tmp_path / "emptydir"
    empty.mkdir()
    with pytest.raises(M2mError, match=r"missing file .*train\.txt; expected .*LABEL<TAB>text"):
        create_dataset(f"text:{empty}")
    with pytest.raises(M2mError, match=r"data root .* does not exist"):
        create_dataset("reuters", data_root=tmp_path / "nowhere")
    with pytest.raises(M2mError, match=r"does not exist"):
        create_dataset(f"text:{tmp_path / 'nowhere'}")


@pytest.mark.realdata
def test_real_reuters():
    data = create_dataset("reuters", data_root=_shared("reuters-r52"))
    assert data.num_classes == 36
    assert data.meta["n_train_before_holdout"] == 6436
    before = data.meta["train_counts_before_holdout"]
    assert (max(before), min(before)) == (2840, 4)
    assert len(data.test) == 2530
    assert len(data.train) + len(data.val) == 6436
    assert data.input_shape == (1000,)
    for split in (data.train, data.val, data.test):
        assert set(np.unique(split.x)) <= {0.0, 1.0}
