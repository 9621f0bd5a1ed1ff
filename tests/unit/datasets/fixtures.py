"""Writers of tiny dataset trees in the real published layouts, shared by the dataset recipe tests,
and the way to the real data in ../shared/datasets (a test skips where it is missing)."""

from __future__ import annotations

import pickle
import shutil
import tarfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHARED = PROJECT_ROOT.parent / "shared" / "datasets"
CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


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


def make_table_csv(path: Path, counts=(30, 12, 6), with_split: bool = False, seed: int = 0) -> Path:
    """A ``table:<file>`` CSV: numeric columns f1, f2 (class-dependent), a categorical colour, a label."""
    rng = np.random.default_rng(seed)
    head = "f1,f2,colour,label" + (",split" if with_split else "")
    lines = [head]
    for k, n in enumerate(counts):
        for i in range(n):
            row = f"{k + rng.normal():.4f},{10 * k + 5 * rng.normal():.4f},{('red', 'blue')[i % 2]},c{k}"
            lines.append(row + ("," + ("test" if i % 4 == 3 else "train") if with_split else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


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


def _shared(sub: str) -> Path:
    path = SHARED / sub
    if not path.exists():
        pytest.skip(f"real data {path} is missing (a fresh clone has no ../shared/datasets)")
    return path


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
