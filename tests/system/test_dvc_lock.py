"""Repository consistency (issue 20, item 15): the committed dvc.lock matches the committed code
and params.yaml, so a fresh clone's `make run` re-runs nothing it does not have to.

For every stage of dvc.lock:
- each dep that git tracks (the stage scripts, the package's modules, a folder of them) has the
  hash DVC computes now: the md5 of a file's bytes (dvc.lock's ``hash: md5``, DVC 3), and for a
  folder DVC's own ``.dir`` hash, built with dvc_data (``build``, honouring .dvcignore) exactly as
  `dvc status` does; deps that git does not track (prepared data, runs, pools: outputs of other
  stages) are DVC's to check, not this test's;
- each params value recorded in dvc.lock is the one params.yaml holds now (a dotted key such as
  ``prepare.digits`` whole; a nested record such as ``presets: {digits: {...}}`` key by key).

Not checked: whether the set of stages and each stage's list of deps match dvc.yaml (that needs
DVC's resolution of foreach/matrix; `dvc status` reports it). A failure names the stage and the
dep, and the fix is to run the pipeline (`make run`, or `dvc repro`) and commit dvc.lock.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.repo_consistency

FIX = "run `make run` (or `dvc repro`) and commit dvc.lock"


@lru_cache(maxsize=None)
def _yaml(path: Path):
    """Read as DVC reads it: ruamel's YAML 1.2, where dvc.lock's ``5e-05`` is a float (PyYAML's
    YAML 1.1 reads a float without a dot as a string, and would see a change where there is none)."""
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(path.read_text()) or {}


def _lock() -> dict:
    path = ROOT / "dvc.lock"
    if not path.is_file():
        pytest.skip("no dvc.lock in this checkout")
    return _yaml(path)


@lru_cache(maxsize=1)
def _tracked() -> tuple[frozenset[str], frozenset[str]]:
    """(files, folders) git tracks in the checkout."""
    res = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=120)
    if res.returncode != 0:
        pytest.skip("not a git checkout")
    files = frozenset(p for p in res.stdout.decode().split("\0") if p)
    folders = frozenset(str(parent) for f in files for parent in Path(f).parents if str(parent) != ".")
    return files, folders


def _file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_IGNORE = []


def _ignore_filter(fs):
    from dvc.ignore import DvcIgnoreFilter

    if not _IGNORE:
        _IGNORE.append(DvcIgnoreFilter(fs, os.fspath(ROOT)))
    return _IGNORE[0]


@lru_cache(maxsize=None)
def _dir_md5(path: Path) -> str:
    """DVC's ``.dir`` hash of a folder, computed by DVC's own code (dvc_data), with .dvcignore."""
    pytest.importorskip("dvc_data")
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem
    from dvc_objects.fs.memory import MemoryFileSystem

    fs = LocalFileSystem()
    _, _, obj = build(HashFileDB(MemoryFileSystem(), "/odb"), os.fspath(path), fs, "md5",
                      ignore=_ignore_filter(fs))
    return obj.hash_info.value


def _stale_deps(stage: dict) -> list[str]:
    files, folders = _tracked()
    stale = []
    for dep in stage.get("deps") or []:
        rel, locked = dep["path"], dep.get("md5")
        if rel not in files and rel not in folders:
            continue          # an output of another stage (or an untracked file): not the code's
        path = ROOT / rel
        if not path.exists():
            stale.append(f"dep {rel} is in dvc.lock but no longer exists")
            continue
        now = _dir_md5(path) if path.is_dir() else _file_md5(path)
        if now != locked:
            stale.append(f"dep {rel} hashes to {now} now, dvc.lock records {locked}")
    return stale


_MISSING = object()


def _get(params: dict, dotted: str):
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _param_diffs(recorded, current, where: str, *, whole: bool) -> list[str]:
    if current is _MISSING:
        return [f"param {where} is in dvc.lock but not in params.yaml"]
    if isinstance(recorded, dict) and isinstance(current, dict) and not whole:
        out = []
        for key, value in recorded.items():
            out += _param_diffs(value, current.get(key, _MISSING), f"{where}.{key}", whole="." in str(key))
        return out
    if recorded != current:
        return [f"param {where} is {current!r} in params.yaml, dvc.lock records {recorded!r}"]
    return []


def _stale_params(stage: dict) -> list[str]:
    out = []
    for file, recorded in (stage.get("params") or {}).items():
        current = _yaml(ROOT / file)
        for key, value in (recorded or {}).items():
            # a dotted key is a param tracked whole (`prepare.digits`); a nested record is DVC's
            # merge of several dotted keys (`presets.digits.model`, ...), compared key by key
            out += _param_diffs(value, _get(current, str(key)), f"{file}:{key}", whole="." in str(key))
    return out


def _stage_names() -> list[str]:
    path = ROOT / "dvc.lock"
    return sorted(_yaml(path).get("stages") or {}) if path.is_file() else []


@pytest.mark.parametrize("name", _stage_names())
def test_locked_code_deps_and_params_are_current(name):
    stage = _lock()["stages"][name]
    stale = _stale_deps(stage) + _stale_params(stage)
    shown = "; ".join(stale[:5]) + (f"; and {len(stale) - 5} more" if len(stale) > 5 else "")
    assert not stale, f"dvc.lock is stale for stage {name}: {shown}. {FIX}"


def test_the_dir_hash_is_dvcs():
    """The folder hash used above is DVC's .dir hash: the md5 of the JSON list of (md5, relpath) of
    the folder's files, sorted by path (DVC's tree object), here recomputed by hand for a tracked
    folder of the repository. (It was also checked once against dvc.lock's record of an unchanged
    output: data/prepared/digits, 0d5dac8ae2b0b1c45c0426fbcb2bd0e8.dir.)"""
    import json

    files, _ = _tracked()
    entries = sorted(f for f in files if f.startswith("stages/plots/"))
    assert entries, "stages/plots holds no tracked file"
    listing = [{"md5": _file_md5(ROOT / f), "relpath": str(Path(f).relative_to("stages/plots"))} for f in entries]
    by_hand = hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"
    assert _dir_md5(ROOT / "stages" / "plots") == by_hand


def test_locked_stages_are_stages_of_dvc_yaml():
    """A stage dvc.lock records that dvc.yaml no longer has (renamed, or turned into a foreach) is
    a stale lock too: `dvc repro` rewrites it."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stale = []
    for name in _stage_names():
        base, at, _ = name.partition("@")
        spec = stages.get(base)
        if spec is None:
            stale.append(f"{name} (dvc.yaml has no stage {base})")
        elif bool(at) != bool("foreach" in spec or "matrix" in spec):
            stale.append(f"{name} (dvc.yaml's {base} is {'a foreach/matrix' if not at else 'a single'} stage)")
    assert not stale, f"dvc.lock is stale: it records stages dvc.yaml does not define: {', '.join(stale)}. {FIX}"
