"""Dataset recipes (issue 3): contract tests over every registered dataset on tiny fixture trees in
the real published layouts, exact recipe tests, bad-input tests, and real-data tests that read
../shared/datasets (skipped where it is missing)."""

from __future__ import annotations

import json
import pickle
import shutil
import tarfile
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from m2m_pipeline.datasets import create_dataset, list_datasets
from m2m_pipeline.datasets import image_io as images_mod
from m2m_pipeline.datasets.info import describe_dataset, format_dataset_info
from m2m_pipeline.datasets.text import STOP_WORDS
from m2m_pipeline.datasets.twitter import EMBED_DIM, hashed_embedding
from m2m_pipeline.utils import M2mError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared" / "datasets"
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


# -- fixture writers (tiny trees in the real published layouts) ----------------------------------

def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_image(path: Path, size: tuple[int, int], colour=(0, 0, 0), pixels: np.ndarray | None = None) -> Path:
    """A JPEG/PNG file (by suffix) of one colour, or of ``pixels`` (H, W, 3 uint8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(pixels) if pixels is not None else Image.new("RGB", size, colour)
    img.save(path, quality=95) if path.suffix.lower() in (".jpg", ".jpeg") else img.save(path)
    return path


WORDS = ("oil price crude barrel opec output rise fall profit share stock net loss dividend "
         "quarter bank rate money gold tin metal grain wheat corn ship port trade deficit").split()


def _doc(rng: np.random.Generator, label_bias: int) -> str:
    picks = rng.integers(0, len(WORDS), size=8)
    words = [WORDS[(p + label_bias) % len(WORDS)] for p in picks] + ["the", "of", "and"]
    return " ".join(words)


def make_r52(root: Path) -> Path:
    """R52 layout: earn (30 train, 8 test), acq (12, 6), tin (4, 5) kept; jet (3, 2) dropped."""
    rng = np.random.default_rng(0)
    spec = {"earn": (30, 8), "acq": (12, 6), "tin": (4, 5), "jet": (3, 2)}
    train, test = [], []
    for i, (lab, (n_tr, n_te)) in enumerate(spec.items()):
        train += [f"{lab}\t{_doc(rng, 5 * i)}" for _ in range(n_tr)]
        test += [f"{lab}\t{_doc(rng, 5 * i)}" for _ in range(n_te)]
    write_lines(root / "r52-train.txt", train)
    write_lines(root / "r52-test.txt", test)
    return root


def make_text_dir(root: Path) -> Path:
    make_r52(root)
    (root / "r52-train.txt").rename(root / "train.txt")
    (root / "r52-test.txt").rename(root / "test.txt")
    return root


def make_tweets(root: Path) -> Path:
    """Twitter layout: tags N, V, ^ everywhere; M only in train (dropped); E only in dev."""
    train = ["i\tO", "love\tV", "cats\tN", "", "<@MENTION>\t@", "lol\t!", "",
             "paris\t^", "rocks\tV", "!\t,", "", "hmm\tM", "dogs\tN", "run\tV"]
    dev = ["birds\tN", "fly\tV", "", ":)\tE", "London\t^", "", "<@MENTION>\t@"]
    test = ["fish\tN", "swim\tV", "!\t,", "", "rome\t^", "wow\t!", "you\tO", "<@MENTION>\t@"]
    write_lines(root / "tweets-train.txt", train)
    write_lines(root / "tweets-dev.txt", dev)
    write_lines(root / "tweets-devtest.txt", test)
    return root


def make_cifar_imagefolder(root: Path, n_train: int = 20, n_test: int = 10, k: int = 10) -> Path:
    """``train/<class>/NNNN.jpg``, ``test/<class>/NNNN.jpg``; pixel (R, G) = (20 * class, 10 * index)."""
    names = CIFAR10_NAMES if k == 10 else [f"class{c:03d}" for c in range(k)]
    for split, n in (("train", n_train), ("test", n_test)):
        for c, name in enumerate(names):
            for i in range(n):
                write_image(root / split / name / f"{i:04d}.jpg", (32, 32), (20 * c, 10 * i, 128))
    return root


def make_cifar_pickles(root: Path, k: int, n_train: int, n_test: int) -> Path:
    """torchvision's python release: cifar-10-batches-py/ (5 data batches, test_batch,
    batches.meta) or cifar-100-python/ (train, test, meta). Pixel [0] of image = its index % 256."""
    rng = np.random.default_rng(k)

    def batch(n_per_class: int, offset: int) -> tuple[np.ndarray, list[int]]:
        y = np.tile(np.arange(k), n_per_class)
        x = rng.integers(0, 256, size=(len(y), 3072), dtype=np.uint8)
        x[:, 0] = (np.arange(len(y)) + offset) % 256
        return x, y.tolist()

    def dump(path: Path, obj: dict) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(obj, fh)

    if k == 10:
        folder = root / "cifar-10-batches-py"
        for b in range(1, 6):
            x, y = batch(n_train // 5, 0)
            dump(folder / f"data_batch_{b}", {b"data": x, b"labels": y})
        x, y = batch(n_test, 0)
        dump(folder / "test_batch", {b"data": x, b"labels": y})
        dump(folder / "batches.meta", {b"label_names": [n.encode() for n in CIFAR10_NAMES]})
    else:
        folder = root / "cifar-100-python"
        x, y = batch(n_train, 0)
        dump(folder / "train", {b"data": x, b"fine_labels": y, b"coarse_labels": [0] * len(y)})
        x, y = batch(n_test, 0)
        dump(folder / "test", {b"data": x, b"fine_labels": y, b"coarse_labels": [0] * len(y)})
        dump(folder / "meta", {b"fine_label_names": [f"c{c:03d}".encode() for c in range(k)]})
    return root


SUN_CLASSES = ["/a/abbey", "/a/apartment_building/outdoor", "/b/bakery/shop"]


def make_sun397(root: Path, per_class=(52, 55, 60)) -> Path:
    """torchvision SUN397 layout: SUN397/ClassName.txt and SUN397/a/abbey/sun_*.jpg. Images are
    60x40: a blue 40x40 centre (green = 4 * index) with red 10-pixel margins left and right."""
    base = root / "SUN397"
    write_lines(base / "ClassName.txt", SUN_CLASSES)
    px = np.zeros((40, 60, 3), dtype=np.uint8)
    px[:, :, 0] = 255
    for cls, n in zip(SUN_CLASSES, per_class):
        for i in range(n):
            px[:, 10:50] = (0, 4 * i, 255)
            write_image(base / cls.lstrip("/") / f"sun_{cls[3:6]}{i:05d}.jpg", (60, 40), pixels=px)
    return root


CELEBA_ATTRS = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips "
                "Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin "
                "Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open "
                "Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose Receding_Hairline "
                "Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
                "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()


def make_celeba(root: Path, counts=(40, 30, 14, 20, 12), n_none: int = 4, n_two: int = 3) -> Path:
    """torchvision CelebA layout: celeba/list_attr_celeba.txt (count, names, FILE and 40 values of
    -1/1 with CelebA's double spaces) and celeba/img_align_celeba/NNNNNN.jpg (24x30 images, green = 3 * row)."""
    base = root / "celeba"
    hair = ["Blond_Hair", "Black_Hair", "Bald", "Brown_Hair", "Gray_Hair"]
    rows = []
    n = 0
    def add(on: list[str]) -> None:
        nonlocal n
        n += 1
        fname = f"{n:06d}.jpg"
        vals = ["1" if a in on else "-1" for a in CELEBA_ATTRS]
        rows.append(fname + " " + " ".join(v.rjust(2) for v in vals))
        write_image(base / "img_align_celeba" / fname, (24, 30), (40 * len(on), (3 * n) % 256, 60))
    for k, c in enumerate(counts):
        for _ in range(c):
            add([hair[k], "Smiling"])
    for _ in range(n_none):
        add(["Smiling"])
    for _ in range(n_two):
        add(["Black_Hair", "Brown_Hair"])
    write_lines(base / "list_attr_celeba.txt", [str(n), " ".join(CELEBA_ATTRS)] + rows)
    return root


WNIDS = ["n01440764", "n01443537", "n01484850"]


def make_imagenet_lt(root: Path, with_val_list: bool = True, extra_per_class: int = 0) -> Path:
    """ImageNet root + list files: train/<wnid>/<wnid>_<i>.JPEG (5, 3, 2 listed), val/<wnid>/
    ILSVRC2012_val_*.JPEG (2 a class listed in the test list); ImageNet_LT_val.txt lists 2 more
    train images a class (or, without it, ``extra_per_class`` unlisted train images exist)."""
    lt_counts = (5, 3, 2)
    train, val, test = [], [], []
    v = 0
    for lab, (wnid, n) in enumerate(zip(WNIDS, lt_counts)):
        for i in range(n + 2 + extra_per_class):
            rel = f"train/{wnid}/{wnid}_{i}.JPEG"
            write_image(root / rel, (150, 140), (80 * lab, 20, 200))
            if i < n:
                train.append(f"{rel} {lab}")
            elif i < n + 2:
                val.append(f"{rel} {lab}")
        for _ in range(2):
            v += 1
            rel = f"val/{wnid}/ILSVRC2012_val_{v:08d}.JPEG"
            write_image(root / rel, (140, 160), (80 * lab, 20, 200))
            test.append(f"{rel} {lab}")
    write_lines(root / "ImageNet_LT_train.txt", train)
    write_lines(root / "ImageNet_LT_test.txt", test)
    if with_val_list:
        write_lines(root / "ImageNet_LT_val.txt", val)
    return root


def make_image_folder(root: Path, per_class=(12, 8, 6), n_test: int = 10, size=(20, 20)) -> Path:
    for split in ("train", "test"):
        for c, n in enumerate(per_class):
            for i in range(n if split == "train" else n_test):
                write_image(root / split / f"cls{c}" / f"img{i:03d}.png", size, (60 * c, 5 * i, 9))
    return root


def recolour(path: Path) -> None:
    """Change an image file's pixels (keeping its size and format)."""
    with Image.open(path) as img:
        size, fmt = img.size, img.format
    Image.new("RGB", size, (255, 255, 0)).save(path, format=fmt)


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# -- the contract, over every registered dataset -------------------------------------------------

def _fx_digits(tmp: Path):
    return "digits", None, {}, None


def _fx_reuters(tmp: Path):
    root = make_r52(tmp / "r52")
    return "reuters", root, {}, lambda: replace_in(root / "r52-train.txt", "earn\t", "acq\t")


def _fx_text(tmp: Path):
    root = make_text_dir(tmp / "corpus")
    return f"text:{root}", None, {}, lambda: replace_in(root / "test.txt", "tin\t", "acq\t")


def _fx_twitter(tmp: Path):
    root = make_tweets(tmp / "twitter")
    return "twitter", root, {}, lambda: replace_in(root / "tweets-train.txt", "cats\t", "kittens\t")


def _fx_cifar10(tmp: Path):
    root = make_cifar_imagefolder(tmp / "cifar10")
    return "cifar10-lt", root, {"rho": 2.0}, lambda: recolour(root / "train" / "cat" / "0000.jpg")


def _fx_cifar100(tmp: Path):
    root = make_cifar_pickles(tmp / "c100", 100, n_train=6, n_test=10)

    def mutate():
        path = root / "cifar-100-python" / "train"
        d = pickle.loads(path.read_bytes())
        d[b"data"][0, :] = 7
        path.write_bytes(pickle.dumps(d))
    return "cifar100-lt", root, {"rho": 2.0}, mutate


def _fx_sun397(tmp: Path):
    root = make_sun397(tmp / "sun")
    first = sorted((root / "SUN397" / "a" / "abbey").glob("*.jpg"))[0]
    return "sun397", root, {}, lambda: recolour(first)


def _fx_celeba5(tmp: Path):
    root = make_celeba(tmp / "celeba_root")
    opts = {"subsample": 2, "n_val": 2, "n_test": 3}
    return "celeba5", root, opts, lambda: [recolour(p) for p in (root / "celeba" / "img_align_celeba").glob("*.jpg")]


def _fx_imagenet_lt(tmp: Path):
    root = make_imagenet_lt(tmp / "imagenet")
    return ("imagenet-lt", root, {"size": 32},
            lambda: recolour(root / "train" / WNIDS[0] / f"{WNIDS[0]}_0.JPEG"))


def _fx_images(tmp: Path):
    root = make_image_folder(tmp / "myimages")
    return f"images:{root}", None, {}, lambda: recolour(root / "train" / "cls1" / "img000.png")


FIXTURES: dict[str, Callable] = {
    "digits": _fx_digits, "reuters": _fx_reuters, "text": _fx_text, "twitter": _fx_twitter,
    "cifar10-lt": _fx_cifar10, "cifar100-lt": _fx_cifar100, "sun397": _fx_sun397,
    "celeba5": _fx_celeba5, "imagenet-lt": _fx_imagenet_lt, "images": _fx_images,
}


def test_every_registered_dataset_has_a_fixture():
    registered = {n.split(":")[0] for n in list_datasets()}
    assert registered == set(FIXTURES)


@pytest.mark.parametrize("key", sorted(FIXTURES))
def test_contract(key, tmp_path):
    name, root, opts, mutate = FIXTURES[key](tmp_path)
    data = create_dataset(name, data_root=root, **opts)
    k = data.num_classes
    for split in (data.train, data.val, data.test):
        assert len(split) > 0
        assert split.y.dtype == np.int64
        assert 0 <= split.y.min() and split.y.max() < k
        assert split.x.shape[1:] == data.input_shape
        if data.input_kind == "image":
            assert split.x.dtype == np.uint8 and split.x.ndim == 4 and split.x.shape[1] in (1, 3)
        else:
            assert split.x.dtype == np.float32 and split.x.ndim == 2
            assert np.isfinite(split.x).all()
            if data.input_range is not None:
                lo, hi = data.input_range
                assert split.x.min() >= lo and split.x.max() <= hi
    assert data.input_kind == "vector" or data.input_range == (0.0, 1.0)
    assert len(data.mean) == len(data.std) == (data.input_shape[0] if data.input_kind == "image" else 1)
    assert all(s > 0 for s in data.std)
    assert data.preset
    assert (data.class_counts > 0).all()
    json.dumps(data.meta)  # recipe facts travel as JSON
    desc = describe_dataset(data)
    json.dumps(desc)
    assert desc["splits"]["train"] == len(data.train)
    assert format_dataset_info(data).startswith("dataset")

    again = create_dataset(name, data_root=root, **opts)
    assert again.fingerprint == data.fingerprint  # deterministic for one seed
    if mutate is not None:
        mutate()
        changed = create_dataset(name, data_root=root, **opts)
        assert changed.fingerprint != data.fingerprint


@pytest.mark.parametrize("key", ["reuters", "cifar10-lt", "sun397", "celeba5", "images"])
def test_seed_changes_the_hold_out(key, tmp_path):
    name, root, opts, _ = FIXTURES[key](tmp_path)
    a = create_dataset(name, data_root=root, seed=0, **opts)
    b = create_dataset(name, data_root=root, seed=1, **opts)
    assert a.fingerprint != b.fingerprint
    assert len(a.val) == len(b.val)


# -- text: reuters and text:<dir> --------------------------------------------------------------

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


# -- twitter -----------------------------------------------------------------------------------

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


# -- images: CIFAR-LT ------------------------------------------------------------------------

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


# -- images: SUN397, CelebA-5, ImageNet-LT, images:<dir> ---------------------------------------

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


# -- real data (../shared/datasets) ---------------------------------------------------------------

def _shared(sub: str) -> Path:
    path = SHARED / sub
    if not path.exists():
        pytest.skip(f"real data {path} is missing (a fresh clone has no ../shared/datasets)")
    return path


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


@pytest.mark.realdata
def test_real_twitter():
    data = create_dataset("twitter", data_root=_shared("twitter-pos"))
    assert data.num_classes == 23
    assert len(data.train) == 14614
    assert (data.class_counts.max(), data.class_counts.min()) == (2219, 15)
    assert data.meta["dropped_tags"] == {"M": 3, "Y": 2}


def unpacked_cifar10() -> Path:
    """The ImageFolder tree of ../shared/datasets/cifar10-jpg, unpacked once into the git-ignored
    data/raw/cifar10-jpg/ (atomically: a killed run leaves no half tree)."""
    tarball = _shared("cifar10-jpg") / "cifar10-jpg.tar.gz"
    target = PROJECT_ROOT / "data" / "raw" / "cifar10-jpg"
    done = target / "cifar10"
    if not (done / "train").is_dir() or not (done / "test").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".unpack-{uuid.uuid4().hex[:8]}"
        try:
            with tarfile.open(tarball) as tar:
                tar.extractall(tmp, filter="data")
            if done.exists():
                shutil.rmtree(done)
            (tmp / "cifar10").rename(done)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return done


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
