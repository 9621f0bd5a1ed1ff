"""Prepared datasets in the zarr store: one group with ``train``, ``val`` and ``test`` splits
(``x``, ``y``) and the dataset's metadata as attributes.

Written under a temporary name and renamed into place, with the attribute ``complete: true``
written last, so a crash never leaves something that reads as done.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..datasets import PreparedData, Split
from ..utils import M2mError, atomic_dir
from .migration import migrate_group
from .schema import AnyJSON, Bool, Const, DictOf, Fields, Int, ListOf, Nullable, Num, Str
from .integrity import seal
from .zarr_io import create_array, dims_for, open_complete, read_array

# Format 2 (issue 20): crc32c on every chunk and shard index, the attributes' own sha256 and the
# sha256 of every file (the metadata's checked on open); format 1 is refused, naming the migration.
FORMAT_VERSION = 2
MIGRATE_COMMAND = "m2m-pipeline pools migrate"

# The one schema of a prepared dataset's attributes (write_prepared), checked on every open.
PREPARED_SCHEMA = Fields(
    required={
        "kind": Const("m2m-prepared-dataset"), "format_version": Int(1), "complete": Const(True),
        "name": Str(), "class_names": ListOf(Str(), min_len=1), "class_counts": ListOf(Int(0), min_len=1),
        "input_kind": Str(("image", "vector")), "input_range": Nullable(ListOf(Num(), min_len=2, max_len=2)),
        "mean": ListOf(Num(), min_len=1), "std": ListOf(Num(0, lo_open=True), min_len=1),
        "augment": Fields({}, {"crop_pad": Int(0), "flip": Bool()}, extra=AnyJSON()),
        "preset": Nullable(Str()), "meta": DictOf(AnyJSON()), "fingerprint": Str(),
        "manifest": Fields(required={"arrays": ListOf(Str()), "files": DictOf(Int(0)),
                                     "sha256": DictOf(Str(hex_len=64))}),
        "attrs_sha256": Str(hex_len=64),
    },
    optional={"migrated_from": Int(1)},
)

_SPLITS = ("train", "val", "test")


def _check_prepared(path: Path, a: dict[str, Any], metas: dict[str, dict[str, Any]]) -> None:
    """The rules between a prepared dataset's attributes and its arrays' metadata."""
    k = len(a["class_names"])
    problems = []
    if len(a["class_counts"]) != k:
        problems.append(f"class_counts has {len(a['class_counts'])} entries for {k} class_names")
    if a["input_range"] is not None and not a["input_range"][0] < a["input_range"][1]:
        problems.append(f"input_range {a['input_range']} is empty")
    if len(a["mean"]) != len(a["std"]):
        problems.append(f"mean has {len(a['mean'])} values, std {len(a['std'])}")
    dtype = {"image": "uint8", "vector": "float32"}[a["input_kind"]]
    width = None
    for split in _SPLITS:
        x, y = metas.get(f"{split}/x"), metas.get(f"{split}/y")
        if x is None or y is None:
            raise M2mError(f"prepared dataset {path} is damaged: array {split}/{'x' if x is None else 'y'} is "
                           f"missing; delete it and prepare it again")
        xs, ys = x.get("shape"), y.get("shape")
        if not (isinstance(xs, list) and len(xs) >= 2 and isinstance(ys, list) and len(ys) == 1 and xs[0] == ys[0]) \
                or x.get("data_type") != dtype or y.get("data_type") != "int64":
            problems.append(f"{split} arrays are x {x.get('data_type')} {xs}, y {y.get('data_type')} {ys}; "
                            f"expected {dtype} x and int64 y with one label a row")
            break
        width = xs[1] if width is None else width
    if not problems and width is not None and len(a["mean"]) not in (1, width):   # one value: broadcast
        problems.append(f"mean/std have {len(a['mean'])} values for inputs of {width} "
                        f"{'channels' if a['input_kind'] == 'image' else 'features'}")
    if problems:
        raise M2mError(f"prepared dataset {path} has bad attributes: {problems[0]}; it is damaged or was written by "
                       f"something else: delete it and prepare it again")


def _open(path: Path):
    group, attrs, metas = open_complete(path, "prepared dataset", kind="m2m-prepared-dataset",
                                        version=FORMAT_VERSION, migrate=f"{MIGRATE_COMMAND} {path}",
                                        schema=PREPARED_SCHEMA)
    _check_prepared(path, attrs, metas)
    return group, attrs


def write_prepared(path: str | Path, data: PreparedData, *, rows_per_shard: int = 8192) -> None:
    """Write ``data`` to ``path`` (replacing what is there only once the new one is complete)."""
    with atomic_dir(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        for split_name in ("train", "val", "test"):
            split: Split = getattr(data, split_name)
            grp = root.create_group(split_name)
            dims = dims_for(data.input_kind, split.x.ndim)
            x = create_array(grp, "x", split.x.shape, split.x.dtype, rows_per_chunk=1024,
                             rows_per_shard=rows_per_shard, dims=dims)
            x[...] = split.x
            y = create_array(grp, "y", split.y.shape, np.int64, rows_per_chunk=8192,
                             rows_per_shard=rows_per_shard, dims=["sample"])
            y[...] = split.y
        seal(root, {
            "kind": "m2m-prepared-dataset",
            "format_version": FORMAT_VERSION,
            "name": data.name,
            "class_names": list(data.class_names),
            "class_counts": [int(c) for c in data.class_counts],
            "input_kind": data.input_kind,
            "input_range": list(data.input_range) if data.input_range is not None else None,
            "mean": list(data.mean),
            "std": list(data.std),
            "augment": data.augment,
            "preset": data.preset,
            "meta": json.loads(json.dumps(data.meta, default=str)),
            "fingerprint": data.fingerprint,
        })   # with the manifest, the completion marker and the attributes' hash, in one last write


def prepared_fingerprint(path: str | Path) -> str | None:
    """The fingerprint of a complete prepared dataset at ``path``, or None."""
    try:
        return str(_open(Path(path))[1]["fingerprint"])
    except M2mError:
        return None


def prepared_summary(path: str | Path, why: str = "") -> dict[str, Any]:
    """``input_kind``, ``n_train`` (training samples), ``input_shape`` and ``num_classes`` of the
    complete prepared dataset at ``path``, from its attributes alone (no array is read). ``why``
    ends the one-line error of a missing one."""
    path = Path(path)
    if not path.exists():
        raise M2mError(f"no prepared dataset at {path}{'; ' + why if why else ''}")
    group, a = _open(path)
    shape = tuple(int(s) for s in group["train/x"].shape)
    return {"input_kind": a["input_kind"], "n_train": int(sum(a["class_counts"])), "input_shape": list(shape[1:]),
            "num_classes": len(a["class_names"])}


def read_prepared(path: str | Path) -> PreparedData:
    """The prepared dataset at ``path``, checked as :func:`~.zarr_io.open_complete` says and against
    :data:`PREPARED_SCHEMA`; every chunk verified against its crc32c, the labels in range and the
    training labels counted as ``class_counts`` records."""
    path = Path(path)
    root, a = _open(path)
    splits = {s: Split(read_array(path, root, f"{s}/x", what="prepared dataset"),
                       read_array(path, root, f"{s}/y", what="prepared dataset")) for s in _SPLITS}
    k = len(a["class_names"])
    for name, split in splits.items():
        bad = np.flatnonzero((split.y < 0) | (split.y >= k))
        if len(bad):
            raise M2mError(f"prepared dataset {path} is damaged: {name}/y holds label {int(split.y[bad[0]])} at row "
                           f"{int(bad[0])}, outside 0..{k - 1}; delete it and prepare it again")
    if np.bincount(splits["train"].y, minlength=k).tolist() != a["class_counts"]:
        raise M2mError(f"prepared dataset {path} is damaged: its training labels do not count as its class_counts; "
                       f"delete it and prepare it again")
    data = PreparedData(
        name=a["name"], class_names=list(a["class_names"]), input_kind=a["input_kind"],
        input_range=tuple(a["input_range"]) if a["input_range"] is not None else None,
        mean=list(a["mean"]), std=list(a["std"]), augment=dict(a["augment"]), preset=a["preset"],
        meta=dict(a["meta"]), fingerprint=a["fingerprint"], **splits)
    return data



def migrate_prepared(path: str | Path) -> bool:
    """Rewrite the prepared dataset at ``path`` in the current format (crc32c on every chunk, sealed
    attributes); False when it is already current (:func:`migration.migrate_group`)."""
    return migrate_group(path, "prepared dataset", kind="m2m-prepared-dataset", version=FORMAT_VERSION,
                         reopen=read_prepared)


__all__ = ["FORMAT_VERSION", "PREPARED_SCHEMA", "migrate_prepared", "prepared_fingerprint", "read_prepared",
           "write_prepared"]
