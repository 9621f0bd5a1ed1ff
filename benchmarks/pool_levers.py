"""Each lever of pool format 4 (issue 16) measured on its own: the same epoch's stored rows written
and read back one way after another, in the same run, alternating, median of the repeats.

The rows are those of a real pool (``--pool``: any pool folder; default: one Reuters-style epoch
generated here as ``pool_overhead.py`` does, g and f trained a few epochs), already encoded
(x_delta, x_exp and the small columns), so what is timed is storage alone: creating the arrays,
writing the row shards, sealing (file manifest, sha256 of every file, the attributes' hash), and
reading every row array back. Writes, each adding one lever to the one before:

- ``w0_format3``: as format 3 wrote a pool: twelve ``create_array`` calls one after another,
  256-row chunks inside each shard, each shard's twelve arrays through zarr (one concurrent
  round trip a shard), the seal as ``group.attrs.update`` (zarr rewrites zarr.json once a key);
- ``w1_one_seal_write``: the seal in one ``update_attributes`` write;
- ``w2_whole_shard_chunks``: one inner chunk per shard (zarr encodes one chunk an array a shard);
- ``w3_concurrent_create``: the twelve arrays created in one round trip to zarr's event loop;
- ``w4_store_encodes``: the arrays' zarr.json written directly and every shard file encoded by the
  store (``store/shard_file.py``): no zarr call until the seal;
- ``w5_zarr_free_seal``: the seal without zarr too: the shard files' sha256 taken from the bytes
  just written instead of reading them again, and the group's zarr.json written directly (what
  ``PoolWriter`` does now, with the class arrays likewise).

Reads of every row array: ``r0_zarr_256`` (zarr's concurrent read, format 3's 256-row chunks),
``r1_zarr_whole`` (zarr, whole-shard chunks), ``r2_store_whole`` (the store's whole-shard reader
on format 4's layout, what ``Pool.rows`` does now) and ``r3_store_256`` (the same reader on format 3's
chunks). The last lever, handing M2m's accepted rows from the writer to training, is
``pool_overhead.py``'s ``ratio`` against ``ratio_read_back``.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python benchmarks/pool_levers.py --dataset reuters \\
        --data-root ../shared/datasets/reuters-r52 --threads 1 --json docs/results/bench/pool_levers.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import zarr

from m2m_pipeline.store import POOL_ROW_ARRAYS, open_pool
from m2m_pipeline.store.integrity import (ATTRS_HASH, attrs_digest, file_digests, file_manifest, seal, sealed_attrs,
                                          store_root)
from m2m_pipeline.store.pool_schema import POOL_ARRAY_DTYPES, POOL_ROW_SHAPES
from m2m_pipeline.store.shard_file import encode_shard, shard_layout, sharded_array_metadata
from m2m_pipeline.store.zarr_io import (create_array, create_arrays, dims_for, read_arrays, read_sharded, shard_key,
                                        write_group_attrs, write_group_files, write_together)

WRITES = ("w0_format3", "w1_one_seal_write", "w2_whole_shard_chunks", "w3_concurrent_create", "w4_store_encodes",
          "w5_zarr_free_seal")
READS = ("r0_zarr_256", "r1_zarr_whole", "r2_store_whole", "r3_store_256")


def _specs(rows: dict[str, np.ndarray], input_kind: str, chunk: int, shard: int) -> dict[str, dict[str, Any]]:
    n = len(rows["slot"])
    out = {}
    for name in POOL_ROW_ARRAYS:
        shape = (n, *rows[name].shape[1:])
        dims = dims_for(input_kind, len(shape)) if name == "x_delta" else (
            ["sample", "aug_param"] if name in POOL_ROW_SHAPES else ["sample"])
        out[name] = {"shape": shape, "dtype": np.dtype(POOL_ARRAY_DTYPES[name]), "dims": dims,
                     "rows_per_chunk": chunk, "rows_per_shard": shard, "attributes": {"long_name": name}}
    return out


def write_pool(out: Path, rows: dict[str, np.ndarray], attrs: dict[str, Any], input_kind: str, shard: int,
               way: str) -> None:
    """Write ``rows`` (a pool's stored row arrays) into a new group ``out`` the ``way`` of WRITES."""
    level = WRITES.index(way)
    n = len(rows["slot"])
    chunk = 256 if level < 2 else shard
    specs = _specs(rows, input_kind, chunk, shard)
    if level < 4:
        root = zarr.open_group(str(out), mode="w")
        if level < 3:
            arrays = {name: create_array(root, name, **{k: v for k, v in spec.items() if k != "shape" and k != "dtype"},
                                         shape=spec["shape"], dtype=spec["dtype"]) for name, spec in specs.items()}
        else:
            arrays = create_arrays(root, specs)
        for start in range(0, n, shard):
            sel = slice(start, min(n, start + shard))
            write_together({name: (arrays[name], sel, rows[name][sel]) for name in POOL_ROW_ARRAYS})
    else:
        metas = {name: sharded_array_metadata(spec["shape"], spec["dtype"], chunk_rows=shard, shard_rows=shard,
                                              dims=spec["dims"], attributes=spec["attributes"])
                 for name, spec in specs.items()}
        write_group_files(out, metas)
        known = {}
        for name, meta in metas.items():
            layout = shard_layout(meta)
            for index in range(layout.n_shards):
                lo, hi = layout.shard_range(index)
                rel = f"{name}/{shard_key(index, len(layout.shape))}"
                raw = encode_shard(rows[name][lo:hi], layout, index)
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).write_bytes(raw)
                known[rel] = (len(raw), hashlib.sha256(raw).hexdigest())
        if level == 5:
            write_group_attrs(out, sealed_attrs(out, dict(attrs), known))
            return
        root = zarr.open_group(str(out), mode="r+")
    if level == 0:
        seal_per_key(root, dict(attrs))
    else:
        seal(root, dict(attrs))


def seal_per_key(root: Any, attrs: dict[str, Any]) -> None:
    """:func:`~m2m_pipeline.store.integrity.seal` as format 3 wrote it: the same attributes, through
    ``group.attrs.update``, which has zarr rewrite zarr.json once for every key."""
    base = store_root(root)
    sealed = json.loads(json.dumps({**attrs, "manifest": {**file_manifest(base), "sha256": file_digests(base)},
                                    "complete": True}, default=str))
    sealed[ATTRS_HASH] = attrs_digest(sealed)
    root.attrs.update(sealed)


def read_pool(path: Path, way: str) -> dict[str, np.ndarray]:
    """Every row array of the pool at ``path``, read the ``way`` of READS."""
    if way.startswith("r0") or way.startswith("r1"):
        group = zarr.open_group(str(path), mode="r")
        return read_arrays(path, group, POOL_ROW_ARRAYS)
    out = {}
    for name in POOL_ROW_ARRAYS:
        meta = json.loads((path / name / "zarr.json").read_text())
        out[name] = read_sharded(path, name, shard_layout(meta), ...)
    return out


def source_pool(args, work: Path) -> Path:
    """``--pool``, or one epoch's pool made here as benchmarks/pool_overhead.py makes its epochs."""
    if args.pool:
        return Path(args.pool)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pool_overhead import trained_models   # noqa: E402

    from m2m_pipeline.datasets import create_dataset
    from m2m_pipeline.plan import make_plan
    from m2m_pipeline.pools import TranslationConfig, generate_pool

    data = create_dataset(args.dataset, data_root=args.data_root)
    g, f, cfg, batch = trained_models(data, work)
    plan = make_plan(data.train.y, data.class_counts, seed=0, epoch=3, order="balanced", attempts=True,
                     augment=data.augment, batch_size=batch)
    generate_pool(g=g, f=f, data=data, plan=plan, cfg=cfg, seed=0, out=work / "source")
    return work / "source"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", help="a pool folder whose rows to write and read (default: one made here)")
    ap.add_argument("--dataset", default="reuters")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="m2m-pool-levers-"))
    try:
        src = open_pool(source_pool(args, work))
        rows = src.rows(POOL_ROW_ARRAYS)
        attrs = {k: v for k, v in src.attrs.items() if k not in ("manifest", "complete", "attrs_sha256")}
        shard = int(src.layout("slot").shard_rows) if src.layout("slot") else 1024
        kind = "image" if rows["x_delta"].ndim == 4 else "vector"
        times: dict[str, list[float]] = {k: [] for k in WRITES + READS}
        for rep in range(args.repeats + 1):   # the first round warms caches and is not counted
            order = WRITES[rep % len(WRITES):] + WRITES[:rep % len(WRITES)]
            for way in order:
                out = work / f"{way}-{rep}"
                t0 = time.perf_counter()
                write_pool(out, rows, attrs, kind, shard, way)
                if rep:
                    times[way].append(time.perf_counter() - t0)
            for way in READS[rep % len(READS):] + READS[:rep % len(READS)]:
                path = work / f"{'w0_format3' if way in ('r0_zarr_256', 'r3_store_256') else 'w5_zarr_free_seal'}-{rep}"
                t0 = time.perf_counter()
                back = read_pool(path, way)
                if rep:
                    times[way].append(time.perf_counter() - t0)
                for name in POOL_ROW_ARRAYS:   # every way reads the same values
                    assert np.array_equal(back[name], rows[name], equal_nan=rows[name].dtype.kind == "f"), (way, name)
            for way in order:
                shutil.rmtree(work / f"{way}-{rep}", ignore_errors=True)
        median = {k: statistics.median(v) for k, v in times.items()}
        size = sum(p.stat().st_size for p in Path(src.path).rglob("*") if p.is_file())
        result = {"seconds": median, "times": times, "rows": int(len(rows["slot"])), "rows_per_shard": shard,
                  "pool_bytes": size, "source": str(src.path), "dataset": src.attrs.get("dataset"),
                  "repeats": args.repeats, "threads": args.threads, "load_avg": os.getloadavg(),
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
                  "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  "command": " ".join(["python", *sys.argv])}
        print(f"{result['dataset']}: {result['rows']} rows, {shard} a shard, {size / 1e6:.2f} MB on disk; "
              f"median of {args.repeats} (ms):")
        for k in WRITES + READS:
            print(f"  {k:24s} {1e3 * median[k]:8.1f}")
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
