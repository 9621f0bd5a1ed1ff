"""The contract every registered dataset recipe keeps (datasets/registry.py), checked on a tiny
fixture tree in each dataset's real published layout: splits, dtypes, ranges, statistics, a
deterministic fingerprint that changes with the data and with the hold-out seed."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset, list_datasets, registry
from m2m_pipeline.datasets.info import describe_dataset, format_dataset_info
from m2m_pipeline.errors import M2mError

from tests.unit.datasets.fixtures import WNIDS, make_celeba, make_cifar_imagefolder, make_cifar_pickles, make_image_folder, make_imagenet_lt, make_r52, make_sun397, make_table_csv, make_text_dir, make_tweets, recolour, replace_in


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


def _fx_table(tmp: Path):
    path = make_table_csv(tmp / "tab" / "rows.csv")
    return f"table:{path}", None, {}, lambda: replace_in(path, ",red,c0", ",blue,c0")


FIXTURES: dict[str, Callable] = {
    "digits": _fx_digits, "reuters": _fx_reuters, "text": _fx_text, "twitter": _fx_twitter,
    "cifar10-lt": _fx_cifar10, "cifar100-lt": _fx_cifar100, "sun397": _fx_sun397,
    "celeba5": _fx_celeba5, "imagenet-lt": _fx_imagenet_lt, "images": _fx_images, "table": _fx_table,
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


@pytest.mark.parametrize("key", ["reuters", "cifar10-lt", "sun397", "celeba5", "images", "table"])
def test_seed_changes_the_hold_out(key, tmp_path):
    name, root, opts, _ = FIXTURES[key](tmp_path)
    a = create_dataset(name, data_root=root, seed=0, **opts)
    b = create_dataset(name, data_root=root, seed=1, **opts)
    assert a.fingerprint != b.fingerprint
    assert len(a.val) == len(b.val)


# -- the registry is lazy: names, presets and errors without importing a recipe ----------------------

def _recipes_loaded_after(code: str) -> list[str]:
    """The recipe modules imported once ``code`` ran in a fresh interpreter."""
    probe = (f"import sys\n{code}\n"
             "from m2m_pipeline.datasets.registry import RECIPES\n"
             "mods = {'m2m_pipeline.datasets.' + s['module'] for s in RECIPES.values()}\n"
             "print(sorted(m for m in mods if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    return eval(out.stdout.strip())


def test_importing_datasets_imports_no_recipe():
    assert _recipes_loaded_after("import m2m_pipeline.datasets as d; d.list_datasets(); "
                                 "d.dataset_preset('cifar10-lt'); d.resolve_dataset('text:/x')") == []


def test_building_a_dataset_imports_its_recipe_only():
    loaded = _recipes_loaded_after("from m2m_pipeline.datasets import create_dataset; create_dataset('digits')")
    assert loaded == ["m2m_pipeline.datasets.digits"]


def test_names_and_presets_come_from_the_table():
    names = registry.list_datasets()
    assert "digits" in names and "text:<dir>" in names and "images:<dir>" in names
    assert registry.dataset_preset("reuters") == "reuters" and registry.dataset_preset("images:/a/b") == "images"
    entry, root = registry.resolve_dataset("digits")
    assert entry.module == "m2m_pipeline.datasets.digits" and root is None


def test_unknown_names_are_one_line_errors():
    with pytest.raises(M2mError, match="unknown dataset 'nosuch'"):
        registry.create_dataset("nosuch")
    with pytest.raises(M2mError, match="unknown dataset 'digits:x'"):
        registry.resolve_dataset("digits:x")            # not a folder family
    with pytest.raises(M2mError, match="needs a folder after the colon"):
        registry.resolve_dataset("text:")


def test_a_duplicate_name_is_refused_and_an_outside_recipe_can_register(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    registry.create_dataset("digits")                   # registers the digits recipe
    with pytest.raises(ValueError, match="'digits' is already registered"):
        registry.register_dataset("digits")(lambda **kw: None)
    with pytest.raises(ValueError, match="'celeba5' is already registered"):   # a table name, another module
        registry.register_dataset("celeba5")(lambda root, **kw: None)

    @registry.register_dataset("toy-outside", needs_root=False, preset="digits")
    def build_toy(**kw):
        from m2m_pipeline.datasets import create_dataset

        return create_dataset("digits")

    assert "toy-outside" in registry.list_datasets() and registry.dataset_preset("toy-outside") == "digits"
    assert registry.create_dataset("toy-outside").name == "digits"
    with pytest.raises(ValueError, match="already registered"):
        registry.register_dataset("toy-outside")(build_toy)
