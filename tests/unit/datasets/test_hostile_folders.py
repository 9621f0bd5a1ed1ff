"""Issue 20, item 11: hostile image folders. A symbolic link that does not resolve (a loop
``self.jpg -> self.jpg``, or a dangling link) is a one-line error naming the file (not a skip: the
dataset would silently miss files); a dataset of one class, or with a class of a single training
sample, is refused at prepare in one line, with nothing written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.jobs.prepare import MIN_TRAIN_PER_CLASS, check_trainable, prepare
from m2m_pipeline.utils import M2mError

from tests.conftest import ROOT
from tests.tiny import tiny_vectors
from tests.unit.datasets.fixtures import make_image_folder, write_image


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("target,why", [("self.jpg", "a loop of symbolic links"),
                                        ("nowhere.jpg", "a dangling symbolic link")])
@pytest.mark.parametrize("split", ["train", "test"])
def test_a_link_that_does_not_resolve_is_a_one_line_error_naming_it(tmp_path, target, why, split):
    root = make_image_folder(tmp_path / "imgs")
    link = root / split / "cls1" / "self.jpg"
    os.symlink(target, link)
    out = tmp_path / "prepared"
    with pytest.raises(M2mError) as err:
        prepare(f"images:{root}", out)
    assert str(err.value) == f"{link} is {why} (-> {target}); fix or remove it"
    assert not out.exists() and not (tmp_path / ".prepared.lock").exists()


def test_a_class_folder_link_loop_is_a_one_line_error(tmp_path):
    root = make_image_folder(tmp_path / "imgs")
    os.symlink("loop", root / "train" / "loop")
    with pytest.raises(M2mError, match=r"train/loop is a loop of symbolic links \(-> loop\)"):
        create_dataset(f"images:{root}")


def test_a_link_to_a_real_image_is_read(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=(4, 3))
    real = tmp_path / "elsewhere.png"
    write_image(real, (20, 20), (1, 2, 3))
    os.symlink(real, root / "train" / "cls1" / "linked.png")
    assert create_dataset(f"images:{root}").class_counts.tolist() == [4, 4]


def test_a_one_class_image_folder_is_refused_at_prepare_writing_nothing(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=(12,))
    out = tmp_path / "prepared"
    with pytest.raises(M2mError) as err:
        prepare(f"images:{root}", out)
    assert str(err.value).startswith("dataset images:imgs has 1 class ('cls0'): a classifier needs at least 2")
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]


def test_a_class_of_a_single_training_sample_is_refused_at_prepare(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=(12, 8, 1))
    out = tmp_path / "prepared"
    with pytest.raises(M2mError, match=r"^dataset images:imgs: class 'cls2' has 1 train sample, needs at least 2; "):
        prepare(f"images:{root}", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs"]


def test_check_trainable_boundaries():
    check_trainable(tiny_vectors(counts=(3, MIN_TRAIN_PER_CLASS)))          # 2 classes, 2 samples: fine
    with pytest.raises(M2mError, match=r"class 'c1' has 1 train sample, needs at least 2"):
        check_trainable(tiny_vectors(counts=(3, 1)))
    with pytest.raises(M2mError, match=r"has 1 class \('c0'\)"):
        check_trainable(tiny_vectors(counts=(5,)))
    data = tiny_vectors(counts=(4, 4))
    data.test.y[:] = 0                                                     # class 1 absent from test
    with pytest.raises(M2mError, match=r"class 'c1' has 0 test samples, needs at least 1"):
        check_trainable(data)


def test_cli_prepare_of_a_one_class_folder_is_one_line_exit_2(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=(6,))
    res = subprocess.run([sys.executable, "-m", "m2m_pipeline.cli", "prepare", "--dataset", f"images:{root}",
                          "--out", str(tmp_path / "out"), "--params", str(ROOT / "params.yaml")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.strip().splitlines() if not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error: dataset images:imgs has 1 class"), res.stderr
    assert not (tmp_path / "out").exists()
