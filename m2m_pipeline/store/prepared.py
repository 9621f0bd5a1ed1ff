"""Prepared datasets in the zarr store: one group with ``train``, ``val`` and ``test`` splits
(``x``, ``y``) and the dataset's metadata as attributes.

Written under a temporary name and renamed into place, with the attribute ``complete: true``
written last, so a crash never leaves something that reads as done.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import zarr

from ..datasets import PreparedData, Split
from ..utils import M2mError, atomic_dir
from .zarr_io import create_array, dims_for, file_manifest, open_complete, read_array

FORMAT_VERSION = 1


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
        root.attrs.update({
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
        })
        root.attrs["manifest"] = file_manifest(tmp)   # what check_integrity expects on open
        root.attrs["complete"] = True


def prepared_fingerprint(path: str | Path) -> str | None:
    """The fingerprint of a complete prepared dataset at ``path``, or None."""
    try:
        return str(open_complete(Path(path), "prepared dataset").attrs["fingerprint"])
    except M2mError:
        return None


def read_prepared(path: str | Path) -> PreparedData:
    path = Path(path)
    root = open_complete(path, "prepared dataset")
    a = dict(root.attrs)
    if a.get("kind") != "m2m-prepared-dataset":
        raise M2mError(f"{path} is a zarr group but not a prepared dataset (kind={a.get('kind')!r})")
    splits = {s: Split(read_array(path, root, f"{s}/x", what="prepared dataset"),
                       read_array(path, root, f"{s}/y", what="prepared dataset")) for s in ("train", "val", "test")}
    data = PreparedData(
        name=a["name"], class_names=list(a["class_names"]), input_kind=a["input_kind"],
        input_range=tuple(a["input_range"]) if a["input_range"] is not None else None,
        mean=list(a["mean"]), std=list(a["std"]), augment=dict(a["augment"]), preset=a["preset"],
        meta=dict(a["meta"]), fingerprint=a["fingerprint"], **splits)
    return data



__all__ = ["FORMAT_VERSION", "prepared_fingerprint", "read_prepared", "write_prepared"]
