"""Small real pools and prepared datasets for the integrity tests (issue 20), made with the tiny
fixtures, and the two edits the tests make: flipping one bit of a file, and rewriting a pool's
attributes the way another writer would (re-sealed, so the schema, not the hash, must refuse them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import zarr

from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import TranslationConfig
from m2m_pipeline.pools import generate as gen
from m2m_pipeline.store.integrity import ATTRS_HASH, attrs_digest, file_digests, file_manifest

from tests.tiny import tiny_images, tiny_mlp


def make_pool(out: Path, *, epoch: int = 1, data=None):
    """A real pool of tiny 3x4x4 images: 9 attempts in 2 row shards of 8, x_delta 4-D, plan, classes."""
    d = data or tiny_images()
    plan = make_plan(d.train.y, d.class_counts, seed=0, epoch=epoch, order="balanced", attempts=True,
                     augment=d.augment, batch_size=8)
    cfg = TranslationConfig(steps=2, step_size=0.5, beta=0.9, gamma=0.0, batch_size=8, rows_per_shard=8)
    gen.generate_pool(g=tiny_mlp(d, seed=1), f=tiny_mlp(d, seed=2), data=d, plan=plan, cfg=cfg, seed=0, out=out,
                      provenance={"run": "M2m", "f_epoch": epoch})
    return d


def flip_bit(path: Path, byte: int | None = None, bit: int = 0) -> None:
    """Flip one bit of ``path`` (byte ``byte``, default the middle one)."""
    raw = bytearray(path.read_bytes())
    byte = len(raw) // 2 if byte is None else byte
    raw[byte] ^= 1 << bit
    path.write_bytes(bytes(raw))


def root_doc(path: Path) -> dict:
    return json.loads((path / "zarr.json").read_text())


def rewrite_attrs(path: Path, edit, *, reseal: bool = True) -> None:
    """Apply ``edit(attrs)`` to the group's attributes in zarr.json; with ``reseal`` the attributes'
    hash is recomputed, as a foreign or buggy writer's file would be consistent with itself."""
    doc = root_doc(path)
    edit(doc["attributes"])
    if reseal:
        doc["attributes"][ATTRS_HASH] = attrs_digest(doc["attributes"])
    (path / "zarr.json").write_text(json.dumps(doc))


def copy_arrays(src: zarr.Group, out: zarr.Group, names, extra=lambda arr: {}) -> None:
    """Copy the arrays ``names`` of ``src`` into ``out`` through zarr itself, each with its shape,
    dtype, chunks, shards, fill value, dimension names and attributes, and ``extra(arr)`` (more
    ``create_array`` arguments: codecs, other chunks) over them."""
    for name in names:
        arr = src[name]
        parent = out
        for part in name.split("/")[:-1]:
            parent = parent.require_group(part)
        dims = list(arr.metadata.dimension_names) if arr.metadata.dimension_names else None
        kw = {"shape": arr.shape, "dimension_names": dims, "attributes": dict(arr.attrs)}
        if arr.dtype.kind in "OUT":
            kw["dtype"] = str
        else:
            kw.update(dtype=arr.dtype, chunks=arr.chunks, shards=arr.shards, fill_value=arr.fill_value)
        kw.update(extra(arr))
        parent.create_array(name.split("/")[-1], **kw)[...] = arr[...]


def downgrade(path: Path, version: int) -> None:
    """Rewrite the group at ``path`` as the writers before issue 20 left it: the same values, zstd
    without crc32c in every array, ``format_version`` ``version``, the manifest with sizes and
    sha256, no attributes hash."""
    src = zarr.open_group(str(path), mode="r")
    attrs = dict(src.attrs)
    tmp = path.with_name(path.name + ".old")
    out = zarr.open_group(str(tmp), mode="w")
    copy_arrays(src, out, attrs["manifest"]["arrays"])
    old = {k: v for k, v in attrs.items() if k not in ("manifest", "complete", ATTRS_HASH)}
    old["format_version"] = version
    out.attrs.update({**old, "manifest": {**file_manifest(tmp), "sha256": file_digests(tmp)}})
    out.attrs["complete"] = True
    shutil.rmtree(path)
    tmp.rename(path)


def all_values(pool) -> dict[str, tuple[str, tuple, bytes]]:
    """Every array of a pool, as (dtype, shape, bytes): what a reader gets."""
    out = {}
    for name in pool.attrs["manifest"]["arrays"]:
        v = np.asarray(pool.array(name))
        out[name] = (str(v.dtype), v.shape, v.tobytes() if v.dtype.kind not in "OUT" else "\x00".join(v.tolist()).encode())
    return out
