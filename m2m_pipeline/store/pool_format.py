"""Translation pools in the zarr store: the pool schema, the resumable sharded writer
(:class:`PoolWriter`, :func:`write_pool_shard`) and the read-only view (:class:`Pool`, :func:`open_pool`).

A pool is a zarr v3 group built in ``<name>.partial`` and renamed into place, with the attribute
``complete: true`` written last, so a crash never leaves something that reads as done. Pool arrays
carry dimension names, so ``xarray.open_zarr`` and ``dask.array.from_zarr`` read them.
"""

from __future__ import annotations

import functools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from ..utils import M2mError, atomic_write_bytes, check_free_space, replace_dir
from .migration import migrate_group
from .schema import AnyJSON, Bool, Const, DictOf, Fields, Int, ListOf, Nullable, Num, Str
from .zarr_io import (check_digests, check_sealed_attrs, create_array, create_small_array, dims_for, open_complete,
                      read_array, read_arrays, seal, shard_key, write_together)

POOL_ROW_ARRAYS = ("slot", "target", "seed_class", "seed_index", "seed_aug", "x_delta", "x_exp", "loss_g",
                   "prob_g", "u_beta", "accepted", "reason")
# Pools since format 2 store x* compactly as (x_delta, x_exp) against x0 (m2m_pipeline/pools/codec.py,
# the one place that encodes and decodes it); format 1 stored float32 ``x``. Format 3 (issue 20)
# adds a crc32c checksum to every chunk and shard index, the attributes' own sha256
# (``attrs_sha256``) and the sha256 of every array's metadata, all checked on every open and read;
# older pools are refused with a one-line error naming ``m2m-pipeline pools migrate``.
POOL_FORMAT_VERSION = 3
MIGRATE_COMMAND = "m2m-pipeline pools migrate"

# What each pool array holds, stored as its ``long_name`` so ``xarray.open_zarr`` prints it.
POOL_ARRAY_DOCS = {
    "slot": "position in the epoch's plan",
    "target": "k: the class index the slot holds and x* is translated to (see coordinate `class`)",
    "seed_class": "k0: class index of the seed x0 (-1: no seed)",
    "seed_index": "row of the prepared training split used as x0 (-1: no seed)",
    "seed_aug": "(dy, dx, flip) applied to that row: x0 is rebuilt exactly",
    "x_delta": "x* - x0 on the row's power-of-two grid: x* = x0 + x_delta * 2**x_exp (pools/codec.py)",
    "x_exp": "the row's grid exponent (-128: x* not finite)",
    "loss_g": "cross-entropy of g at x* for the target class",
    "prob_g": "softmax probability of the target class under g at x*",
    "u_beta": "uniform draw of the beta test, eq. (3): pass if u < 1 - beta^((N_k0 - N_k)^+)",
    "accepted": "all tests passed: x* replaces the slot's real sample",
    "reason": "why the attempt ended as it did (flag_values / flag_meanings)",
}


# The seed scopes of pools/config.py (store sits below pools; tests/unit/store checks the two agree).
SEED_SCOPES = ("batch", "dataset")
_HASH16 = Str()   # state_hash gives 16 hex digits; any string compares the same way

# The one schema of a pool's attributes (pools/generate.pool_attrs, PoolWriter.finish, the jobs'
# provenance), checked on every open and by `pools ls`; cross-field rules in _check_pool_consistency.
POOL_SCHEMA = Fields(
    required={
        "kind": Const("m2m-pool"), "format_version": Int(1), "complete": Const(True), "n_rows": Int(0),
        "dataset": Str(), "dataset_fingerprint": Str(), "class_counts": ListOf(Int(0), min_len=1),
        "g_hash": _HASH16, "f_hash": _HASH16, "epoch": Int(0), "seed": Int(0),
        "params": Fields(
            required={"steps": Int(0), "step_size": Num(0), "lam": Num(0), "gamma": Num(0),
                      "beta": Num(0, 1, hi_open=True)},
            optional={"gamma_on": Str(("prob", "loss")), "seed_scope": Str(SEED_SCOPES), "noise_radius": Num(0),
                      "batch_size": Int(1), "rows_per_shard": Int(1), "max_non_finite": Num(0, 1),
                      "refresh_batches": Int(0)}),
        "train_batch_size": Int(1),
        "reason_codes": DictOf(Int(0, 255)),
        "summary": Fields(required={"n_slots": Int(0), "n_attempts": Int(0), "n_accepted": Int(0),
                                    "reasons": DictOf(Int(0))}),
        "package_version": Str(),
        "manifest": Fields(required={"arrays": ListOf(Str()), "files": DictOf(Int(0)),
                                     "sha256": DictOf(Str(hex_len=64))}),
        "attrs_sha256": Str(hex_len=64),
    },
    optional={"job_hash": _HASH16, "run": Str(), "method": Str(), "warm_hash": Nullable(_HASH16),
              "f_epoch": Int(0), "seed_subset": Nullable(Int(1)), "online": Bool(), "refresh_batches": Int(0),
              "g_checkpoint": Str(), "f_checkpoint": Str(), "migrated_from": Int(1)},
    extra=AnyJSON(),   # further provenance a job records
)


def _check_pool_consistency(path: Path, a: dict[str, Any]) -> None:
    """The rules between a pool's attributes that no single type says."""
    s = a["summary"]
    problems = []
    if s["n_attempts"] != a["n_rows"]:
        problems.append(f"summary.n_attempts {s['n_attempts']} is not n_rows {a['n_rows']}")
    if s["n_accepted"] > s["n_attempts"] or s["n_attempts"] > s["n_slots"]:
        problems.append(f"summary has {s['n_accepted']} accepted of {s['n_attempts']} attempts in "
                        f"{s['n_slots']} slots")
    if sum(s["reasons"].values()) != s["n_attempts"]:
        problems.append(f"summary.reasons sum to {sum(s['reasons'].values())}, not the {s['n_attempts']} attempts")
    if sum(a["class_counts"]) < 1:
        problems.append("class_counts hold no training sample")
    if problems:
        raise M2mError(f"pool {path} has bad attributes: {problems[0]}; it is damaged or was written by "
                       f"something else: delete it and write it again")


def check_pool_attrs(path: str | Path, attrs: dict[str, Any]) -> None:
    """Every check of a pool's attributes alone (no array opened): complete, kind, format,
    the attributes' hash, :data:`POOL_SCHEMA` and the rules between them; one-line M2mError."""
    path = Path(path)
    check_sealed_attrs(path, attrs, "pool", kind="m2m-pool", version=POOL_FORMAT_VERSION,
                       migrate=f"{MIGRATE_COMMAND} {path}", schema=POOL_SCHEMA)
    _check_pool_consistency(path, attrs)


def _reason_flags() -> dict[str, Any]:
    """CF flag attributes of ``reason`` (CF conventions, section 3.5), from acceptance.REASONS."""
    from ..acceptance import REASONS

    codes = sorted(REASONS.items(), key=lambda kv: kv[1])
    return {"flag_values": [int(code) for _, code in codes],
            "flag_meanings": " ".join(name for name, _ in codes)}


# bytes a pool row takes besides x_delta: slot 8, target 4, seed_class 4, seed_index 8, seed_aug 3x2,
# x_exp 1, loss_g 4, prob_g 4, u_beta 8, accepted 1, reason 1 (uncompressed)
POOL_ROW_BYTES = 53


def estimate_pool_bytes(n_rows: int, input_shape: tuple[int, ...]) -> int:
    """Uncompressed bytes of a pool of ``n_rows`` attempts (x_delta: int16 per input value), plus
    1 MiB for the plan and metadata: an upper bound of what :class:`PoolWriter` puts on disk
    (zstd only makes it smaller)."""
    return int(n_rows) * (2 * int(np.prod(input_shape)) + POOL_ROW_BYTES) + (1 << 20)


def _clean_stale_tmp(folder: Path, prefix: str = "") -> None:
    """Remove ``<prefix>.tmp-*`` leftovers of killed writers in ``folder`` (atomic_dir's and ours)."""
    if not folder.is_dir():
        return
    for p in folder.glob(f"{prefix}.tmp-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


@functools.lru_cache(maxsize=4)
def _pool_arrays(work: str, resume_key: str) -> dict[str, zarr.Array]:
    """The row arrays of the pool being built in ``work``, opened once per process and build
    (``resume_key`` tells two builds in the same folder apart): each open reads metadata."""
    root = zarr.open_group(work, mode="r+")
    return {name: root[name] for name in POOL_ROW_ARRAYS}


RESUME_FILE = ".resume.json"   # in a pool being built: what it is being built from
SHARD_RECORDS = ".shards"      # in a pool being built: one commit record per finished row shard


def write_pool_shard(work: str | Path, index: int, rows: dict[str, np.ndarray],
                     reasons: dict[str, int] | None = None) -> None:
    """Write row shard ``index`` of the pool being built in ``work`` and commit it.

    Callable from any process that sees ``work`` (a dask worker): a shard's files belong to it
    alone, so tasks never write the same file. Its old files (a killed attempt's) are removed
    first, so nothing is read-modify-written; the commit record ``.shards/<index>.json`` is
    written last and atomically, so a shard counts as done only once all its arrays are.
    """
    work = Path(work)
    key = (work / RESUME_FILE).read_text()
    job = json.loads(key)
    shard_rows, n_rows = int(job["shard_rows"]), int(job["n_rows"])
    start = int(index) * shard_rows
    n = len(rows["slot"])
    if start + n != min(start + shard_rows, n_rows):
        raise ValueError(f"shard {index} holds rows {start}..{min(start + shard_rows, n_rows)}, got {n} rows")
    missing = set(POOL_ROW_ARRAYS) - set(rows)
    if missing:
        raise ValueError(f"pool rows miss arrays {sorted(missing)}")
    arrays = _pool_arrays(str(work), key)
    for name in POOL_ROW_ARRAYS:
        (work / name / shard_key(index, arrays[name].ndim)).unlink(missing_ok=True)
    write_together({name: (arrays[name], slice(start, start + n), rows[name]) for name in POOL_ROW_ARRAYS})
    record = json.dumps({"rows": n, "reasons": reasons or {}}).encode()
    atomic_write_bytes(work / SHARD_RECORDS / f"{int(index)}.json", record)


class PoolWriter:
    """Writes one epoch's pool: every translation attempt, one shard per translation task.

    Use as a context manager; each row shard is written and committed on its own
    (:meth:`write_shard`, or :func:`write_pool_shard` from another process), and :meth:`finish`
    adds the attributes and the completion marker, then moves the pool into place.

    The pool is built in ``<name>.partial`` beside ``path``. With a ``job`` key (what the rows are
    computed from), a writer killed at any point (SIGKILL included) and started again with the
    same key finds that folder and keeps its committed shards (:meth:`done_shards`); with another
    key it starts over. Leftover ``.tmp-`` files and folders of killed writers are removed.
    Leaving the block with an error removes the partial pool; an interruption (Ctrl-C, or
    SystemExit) keeps it for the next run.
    """

    def __init__(self, path: str | Path, *, n_rows: int, input_shape: tuple[int, ...], input_kind: str,
                 rows_per_shard: int, rows_per_chunk: int = 256, class_names: list[str] | None = None,
                 job: dict[str, Any] | None = None):
        self.path = Path(path)
        self.work = self.path.with_name(f"{self.path.name}.partial")
        self.job = job
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        self.n_rows = int(n_rows)
        self.input_shape = tuple(input_shape)
        self.input_kind = input_kind
        self.rows_per_shard = max(1, int(rows_per_shard))
        self.rows_per_chunk = max(1, min(int(rows_per_chunk), self.rows_per_shard))
        # Shards hold a whole number of chunks (see zarr_io.create_array): the task size is the actual shard.
        self.shard_rows = max(self.rows_per_chunk, self.rows_per_shard - self.rows_per_shard % self.rows_per_chunk)
        self._finished = False

    @property
    def n_shards(self) -> int:
        return -(-max(self.n_rows, 0) // self.shard_rows)

    def done_shards(self) -> dict[int, dict[str, Any]]:
        """{shard index: its commit record} of the shards already written."""
        records = {}
        for p in (self.work / SHARD_RECORDS).glob("*.json"):
            if p.stem.isdigit():
                records[int(p.stem)] = json.loads(p.read_text())
        return records

    def _resume_key(self) -> dict[str, Any]:
        return json.loads(json.dumps({
            "job": self.job, "n_rows": self.n_rows, "input_shape": list(self.input_shape),
            "input_kind": self.input_kind, "shard_rows": self.shard_rows, "rows_per_chunk": self.rows_per_chunk,
            "format_version": POOL_FORMAT_VERSION}, default=str))

    def _resume(self, key: dict[str, Any]) -> bool:
        """Reopen the partial pool of an earlier run with the same key, if there is one."""
        if self.job is None or not (self.work / RESUME_FILE).is_file() or not (self.work / "zarr.json").is_file():
            return False
        try:
            if json.loads((self.work / RESUME_FILE).read_text()) != key:
                return False
        except ValueError:  # unreadable: start over
            return False
        _clean_stale_tmp(self.work)
        _clean_stale_tmp(self.work / SHARD_RECORDS)
        self.root = zarr.open_group(str(self.work), mode="r+")
        self.arrays = {name: self.root[name] for name in POOL_ROW_ARRAYS}
        return True

    def __enter__(self) -> "PoolWriter":
        # refuse up front rather than fill the disk half-way (the estimate is uncompressed: an upper bound)
        check_free_space(self.path.parent, estimate_pool_bytes(self.n_rows, self.input_shape), f"pool {self.path}")
        _clean_stale_tmp(self.path.parent, self.path.name)
        key = self._resume_key()
        if self._resume(key):
            return self
        if self.work.exists():
            shutil.rmtree(self.work)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.root = zarr.open_group(str(self.work), mode="w")
        n = max(self.n_rows, 0)
        spec = {
            "slot": ((n,), np.int64), "target": ((n,), np.int32), "seed_class": ((n,), np.int32),
            "seed_index": ((n,), np.int64), "seed_aug": ((n, 3), np.int16),
            "x_delta": ((n, *self.input_shape), np.int16), "x_exp": ((n,), np.int8),
            "loss_g": ((n,), np.float32), "prob_g": ((n,), np.float32), "u_beta": ((n,), np.float64),
            "accepted": ((n,), np.bool_), "reason": ((n,), np.uint8),
        }
        self.arrays = {}
        for name, (shape, dtype) in spec.items():
            dims = dims_for(self.input_kind, len(shape)) if name == "x_delta" else (
                ["sample", "aug_param"] if name == "seed_aug" else ["sample"])
            # attributes at creation: one metadata write per array (each later update is another)
            attributes = {"long_name": POOL_ARRAY_DOCS[name], **(_reason_flags() if name == "reason" else {})}
            self.arrays[name] = create_array(self.root, name, shape, dtype, rows_per_chunk=self.rows_per_chunk,
                                             rows_per_shard=self.rows_per_shard, dims=dims, attributes=attributes)
        (self.work / SHARD_RECORDS).mkdir()
        # Written last: only a fully created pool can be resumed.
        atomic_write_bytes(self.work / RESUME_FILE, json.dumps(key).encode())
        return self

    def _write_classes(self, attrs: dict[str, Any]) -> None:
        """The class axis as xarray coordinates: ``class`` (names, a dimension coordinate, so
        ``ds["class"][ds.target]`` names every row's target) and ``class_count`` (training size)."""
        counts = attrs.get("class_counts")
        names = self.class_names or attrs.get("class_names")
        if names is None and counts is not None:
            names = [str(i) for i in range(len(counts))]
        if names is None:
            return
        names = [str(n) for n in names]
        create_small_array(self.root, "class", np.asarray(names, dtype=str), dims=["class"],
                           attributes={"long_name": "class name (index = target / seed_class value)"})
        if counts is not None and len(counts) == len(names):
            create_small_array(self.root, "class_count", np.asarray(counts, dtype=np.int64), dims=["class"],
                               attributes={"long_name": "training samples of the class (N_k of eq. 3)"})

    def write_plan(self, order: np.ndarray, attempt: np.ndarray, aug: np.ndarray) -> None:
        """Store the epoch's plan beside the rows: the plan is data, and training reads it back.
        A resumed pool already holds it (the resume key covers the plan) and keeps it."""
        if (self.work / "plan" / ".written").is_file():
            return
        grp = self.root.create_group("plan", overwrite=True)
        n = len(order)
        for name, arr, dims in (("order", order.astype(np.int64), ["slot"]),
                                ("attempt", attempt.astype(np.bool_), ["slot"]),
                                ("aug", aug.astype(np.int16), ["slot", "aug_param"])):
            long_name = {"order": "training-set row of each slot", "attempt": "slot is a translation attempt",
                         "aug": "(dy, dx, flip) of each slot"}[name]
            a = create_array(grp, name, arr.shape, arr.dtype, rows_per_chunk=max(1, min(n, 65536)),
                             rows_per_shard=max(1, n), dims=dims, attributes={"long_name": long_name})
            a[...] = arr
        atomic_write_bytes(self.work / "plan" / ".written", b"")

    def write_shard(self, index: int, rows: dict[str, np.ndarray], reasons: dict[str, int] | None = None) -> None:
        """Write and commit row shard ``index`` (rows ``index * shard_rows`` on); see :func:`write_pool_shard`."""
        write_pool_shard(self.work, index, rows, reasons)

    def write_rows(self, start: int, rows: dict[str, np.ndarray]) -> None:
        """Write rows from ``start`` on, shard by shard (``start`` must begin a shard)."""
        if start % self.shard_rows:
            raise ValueError(f"rows must start at a shard boundary (multiple of {self.shard_rows}), got {start}")
        n = len(rows["slot"])
        for s in range(0, n, self.shard_rows):
            self.write_shard((start + s) // self.shard_rows, {k: v[s:s + self.shard_rows] for k, v in rows.items()})

    def finish(self, attrs: dict[str, Any]) -> None:
        missing = sorted(set(range(self.n_shards)) - set(self.done_shards()))
        if missing:
            raise RuntimeError(f"pool {self.path}: row shards {missing[:10]} were not written")
        # The bookkeeping of the build goes before the manifest: a complete pool holds only data.
        shutil.rmtree(self.work / SHARD_RECORDS, ignore_errors=True)
        (self.work / RESUME_FILE).unlink(missing_ok=True)
        (self.work / "plan" / ".written").unlink(missing_ok=True)
        self._write_classes(attrs)
        # One last write: the attributes with the manifest (sizes checked on open, sha256 of every file:
        # the metadata's checked on open, all by `pools verify`), the completion marker and their own hash.
        seal(self.root, {**attrs, "kind": "m2m-pool", "format_version": POOL_FORMAT_VERSION, "n_rows": self.n_rows})
        open_pool(self.work)   # a writer never leaves a pool its readers refuse (the error discards it)
        self._finished = True

    def discard(self) -> None:
        """Remove the pool being built (its rows can never make a valid pool, e.g. non-finite)."""
        shutil.rmtree(self.work, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None and not self._finished:
            self.discard()
            raise RuntimeError("PoolWriter left without finish()")
        if exc_type is None:
            replace_dir(self.work, self.path)
        elif issubclass(exc_type, Exception):
            self.discard()
        return False


@dataclass
class Pool:
    """A read-only view of a complete pool, checked when opened (:func:`open_pool`); arrays load
    on access, each chunk verified against its crc32c, and the index arrays (``target``,
    ``seed_class``, ``slot``, ``seed_index``, ``reason``, ``plan/order``) checked to be in range."""

    path: Path
    group: zarr.Group
    checked_attrs: dict[str, Any] | None = None

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.checked_attrs if self.checked_attrs is not None else self.group.attrs)

    def __len__(self) -> int:
        return int(self.attrs["n_rows"])

    def has_array(self, name: str) -> bool:
        return (self.path / name / "zarr.json").is_file()

    def _ranges(self) -> dict[str, tuple[int, int, str]]:
        """{array: (lo, hi, what)}: the values an index array may hold (inclusive)."""
        a = self.attrs
        k, n_train, n_slots = len(a["class_counts"]), sum(a["class_counts"]), a["summary"]["n_slots"]
        codes = sorted(set(a["reason_codes"].values())) or [0]
        return {"target": (0, k - 1, f"the pool's {k} classes"),
                "seed_class": (-1, k - 1, f"-1 or the pool's {k} classes"),
                "slot": (0, n_slots - 1, f"the epoch's {n_slots} slots"),
                "seed_index": (-1, n_train - 1, f"-1 or the {n_train} training rows"),
                "plan/order": (0, n_train - 1, f"the {n_train} training rows"),
                "reason": (min(codes), max(codes), "the pool's reason codes")}

    def _checked(self, name: str, values: np.ndarray) -> np.ndarray:
        bounds = self._ranges().get(name)
        if bounds is not None and values.size:
            lo, hi, what = bounds
            bad = np.flatnonzero((values < lo) | (values > hi))
            if len(bad):
                raise M2mError(f"pool {self.path} is damaged: array {name!r} holds {int(values.reshape(-1)[bad[0]])}, "
                               f"outside {lo}..{hi} ({what}); delete it and write it again")
        return values

    def array(self, name: str, sel: Any = ...) -> np.ndarray:
        if name == "x" and not self.has_array("x"):
            raise M2mError(f"pool {self.path} stores x* compactly (x_delta, x_exp); read it decoded with "
                           f"m2m_pipeline.pools.codec.read_x(pool, data, rows)")
        return self._checked(name, read_array(self.path, self.group, name, sel))

    def plan_arrays(self) -> dict[str, np.ndarray]:
        return {k: self._checked(f"plan/{k}", read_array(self.path, self.group, f"plan/{k}"))
                for k in ("order", "attempt", "aug")}

    def rows(self, names: tuple[str, ...] = POOL_ROW_ARRAYS, sel: Any = ...) -> dict[str, np.ndarray]:
        """Several arrays at once (rows ``sel``: all, a slice, or an array of row indices), read
        concurrently in one round trip to zarr's event loop rather than one blocking call each."""
        return {k: self._checked(k, v) for k, v in read_arrays(self.path, self.group, tuple(names), sel).items()}


# The arrays every format-3 pool holds, and their dtypes (PoolWriter.__enter__, write_plan, _write_classes).
POOL_ARRAY_DTYPES = {"slot": "int64", "target": "int32", "seed_class": "int32", "seed_index": "int64",
                     "seed_aug": "int16", "x_delta": "int16", "x_exp": "int8", "loss_g": "float32",
                     "prob_g": "float32", "u_beta": "float64", "accepted": "bool", "reason": "uint8",
                     "plan/order": "int64", "plan/attempt": "bool", "plan/aug": "int16"}


def _check_pool_arrays(path: Path, attrs: dict[str, Any], metas: dict[str, dict[str, Any]]) -> None:
    """Every row array a pool holds is there, and each array (the plan's too, when written) is of
    its dtype with as many rows as the attributes say (rows: ``n_rows``; plan: ``summary.n_slots``;
    class axis: ``len(class_counts)``)."""
    n_rows, n_slots, k = attrs["n_rows"], attrs["summary"]["n_slots"], len(attrs["class_counts"])
    for name, dtype in POOL_ARRAY_DTYPES.items():
        meta = metas.get(name)
        if meta is None and name.startswith("plan/"):
            continue   # a pool written without its plan (rows only): reading the plan says it is missing
        if meta is None:
            raise M2mError(f"pool {path} is damaged: array {name!r} is missing; delete it and write it again")
        shape, got = meta.get("shape"), meta.get("data_type")
        rows = n_slots if name.startswith("plan/") else n_rows
        if not isinstance(shape, list) or not shape or shape[0] != rows or got != dtype:
            raise M2mError(f"pool {path} is damaged: array {name!r} is {got} of shape {shape}, expected {dtype} with "
                           f"{rows} rows; delete it and write it again")
    for name in ("class", "class_count"):
        shape = (metas.get(name) or {}).get("shape")
        if name in metas and shape != [k]:
            raise M2mError(f"pool {path} has bad attributes: class_counts has {k} classes but array {name!r} has "
                           f"shape {shape}; it is damaged or was written by something else: delete it and write it again")


def open_pool(path: str | Path) -> Pool:
    """The pool at ``path``, refused with a one-line M2mError unless it is complete, of this
    format, with attributes at their recorded hash and fitting :data:`POOL_SCHEMA`, every array's
    metadata at its recorded sha256 (crc32c in its codecs, its shape as the attributes say) and
    every recorded file at its size. Chunks are checked against their crc32c when read."""
    path = Path(path)
    group, attrs, metas = open_complete(path, "pool", kind="m2m-pool", version=POOL_FORMAT_VERSION,
                                        migrate=f"{MIGRATE_COMMAND} {path}", schema=POOL_SCHEMA)
    _check_pool_consistency(path, attrs)
    _check_pool_arrays(path, attrs, metas)
    return Pool(path, group, attrs)


def migrate_pool(path: str | Path) -> bool:
    """Rewrite the pool at ``path`` in the current format (``m2m-pipeline pools migrate``): every
    array copied with crc32c on each chunk, the attributes sealed with their hash; False when it is
    already current. A damaged pool is refused, never sealed, and an interrupted migration leaves
    the old pool as it was (:func:`migration.migrate_group`). Format 1 (float32 x) cannot be migrated."""
    return migrate_group(path, "pool", kind="m2m-pool", version=POOL_FORMAT_VERSION, reopen=open_pool, oldest=2,
                         kind_name="an M2m pool",
                         too_old=" (float32 x, before the compact x_delta/x_exp); it cannot be migrated: "
                                 "delete it and generate it again")


def verify_pool(path: str | Path, *, block_bytes: int = 64 << 20) -> dict[str, int]:
    """Every check a pool can take (``m2m-pipeline pools verify``): complete, with the recorded
    files at their recorded sizes (as on every open), each file's recorded sha256 recomputed, and
    every array read in full, block by block (every chunk decoded through its codecs). Raises the
    one-line M2mError of the first failure, naming the pool folder (``.../epoch_<e>``) and the
    file or array; returns ``{"arrays", "files", "digests", "bytes"}`` of what was checked
    (``digests`` 0: a pool written before digests were recorded; sizes and decoding still checked)."""
    pool = open_pool(path)
    manifest = pool.attrs.get("manifest") or {}
    digests = check_digests(pool.path, pool.group, "pool")
    arrays = list(manifest.get("arrays") or POOL_ROW_ARRAYS)
    for name in arrays:
        try:
            arr = pool.group[name]
        except KeyError:
            raise M2mError(f"pool {pool.path} is damaged: array {name!r} is missing") from None
        if not arr.ndim:
            read_array(pool.path, pool.group, name)
            continue
        n = int(arr.shape[0])
        itemsize = int(getattr(arr.dtype, "itemsize", 0) or 8)   # variable-length strings (`class`): a guess
        row_bytes = max(1, int(np.prod(arr.shape[1:], dtype=np.int64)) * itemsize)
        step = max(int(arr.chunks[0]), block_bytes // row_bytes)
        for start in range(0, n, step):
            read_array(pool.path, pool.group, name, slice(start, min(n, start + step)))
    files = manifest.get("files") or {}
    return {"arrays": len(arrays), "files": len(files), "digests": digests, "bytes": int(sum(files.values()))}


def pool_as_dask(path: str | Path) -> dict[str, Any]:
    """Every row array of a pool as a dask array (one dask chunk per zarr chunk)."""
    import dask.array as da

    open_pool(path)  # checks completeness and kind
    return {name: da.from_zarr(str(path), component=name) for name in POOL_ROW_ARRAYS}


__all__ = ["MIGRATE_COMMAND", "POOL_ARRAY_DOCS", "POOL_ARRAY_DTYPES", "POOL_FORMAT_VERSION", "POOL_ROW_ARRAYS",
           "POOL_ROW_BYTES", "POOL_SCHEMA", "RESUME_FILE", "SHARD_RECORDS", "Pool", "PoolWriter", "check_pool_attrs",
           "estimate_pool_bytes", "migrate_pool", "open_pool", "pool_as_dask", "verify_pool", "write_pool_shard"]
