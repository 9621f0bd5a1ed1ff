"""The pool format: its arrays, their dtypes and per-row byte layout, and the schema of its
attributes (:data:`POOL_SCHEMA`, checked on every open by :func:`check_pool_attrs`).

Plain data and checks: no zarr call here. The writer is :mod:`.pool_writer`, the reader
:mod:`.pool_reader`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..utils import M2mError
from .schema import AnyJSON, Bool, Const, DictOf, Fields, Int, ListOf, Nullable, Num, Str
from .zarr_io import check_sealed_attrs

POOL_ROW_ARRAYS = ("slot", "target", "seed_class", "seed_index", "seed_aug", "x_delta", "x_exp", "loss_g",
                   "prob_g", "u_beta", "accepted", "reason")
# Pools since format 2 store x* compactly as (x_delta, x_exp) against x0 (m2m_pipeline/pools/codec.py,
# the one place that encodes and decodes it); format 1 stored float32 ``x``. Format 3 (issue 20)
# adds a crc32c checksum to every chunk and shard index, the attributes' own sha256
# (``attrs_sha256``) and the sha256 of every array's metadata, all checked on every open and read;
# older pools are refused with a one-line error naming ``m2m-pipeline pools migrate``. Format 4
# (issue 16): the same arrays, attributes and checksums, each row array one inner chunk per shard,
# its shard files written and read a whole file at a time by the store's own encoder
# (store/shard_file.py, the layout zarr reads and writes); format 3 pools are still read as they are
# (the reader decodes any number of chunks a shard), and `pools migrate` rewrites them as format 4.
POOL_FORMAT_VERSION = 4
POOL_READABLE_FROM = 3   # the oldest pool format this version reads without a migration
MIGRATE_COMMAND = "m2m-pipeline pools migrate"

# What each pool array holds, stored as its ``long_name`` so ``xarray.open_zarr`` prints it.
POOL_ARRAY_DOCS = {
    "slot": "position in the epoch's plan",
    "target": "k: the class index the slot holds and x* is translated to (see coordinate `class`)",
    "seed_class": "k0: class index of the seed x0 (-1: no seed)",
    "seed_index": "row of the prepared training split used as x0 (-1: no seed)",
    "seed_aug": "(dy, dx, flip) applied to that row: x0 is rebuilt exactly",
    "x_delta": "x* - x0 on the row's power-of-two grid: x* = x0 + x_delta * 2**x_exp (pools/codec.py)",
    "x_exp": "the row's grid exponent (-128: x* not finite, or not stored under pools.store: accepted)",
    "loss_g": "cross-entropy of g at x* for the target class",
    "prob_g": "softmax probability of the target class under g at x*",
    "u_beta": "uniform draw of the beta test, eq. (3): pass if u < 1 - beta^((N_k0 - N_k)^+)",
    "accepted": "all tests passed: x* replaces the slot's real sample",
    "reason": "why the attempt ended as it did (flag_values / flag_meanings)",
}


# The seed scopes of pools/config.py (store sits below pools; tests/unit/store checks the two agree).
SEED_SCOPES = ("batch", "dataset")
# What a pool stores (params.yaml ``pools.store``, pool attribute ``store``): ``all`` every attempt's
# x*; ``accepted`` only the accepted rows' x* (the other rows keep their small columns, their x_delta
# is all zero and their x_exp -128, pools/codec.NOT_STORED_EXP: they decode to NaN). No attribute: all.
POOL_STORES = ("all", "accepted")
_HASH16 = Str()   # state_hash gives 16 hex digits; any string compares the same way

# The one schema of a pool's attributes (pools/generate.pool_attrs, PoolWriter.finish, the jobs'
# provenance), checked on every open and by `pools ls`; cross-field rules in check_pool_consistency.
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
                      "refresh_batches": Int(0), "store": Str(POOL_STORES)}),
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
              "g_checkpoint": Str(), "f_checkpoint": Str(), "migrated_from": Int(1), "store": Str(POOL_STORES)},
    extra=AnyJSON(),   # further provenance a job records
)


def check_pool_consistency(path: Path, a: dict[str, Any]) -> None:
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
                       migrate=f"{MIGRATE_COMMAND} {path}", schema=POOL_SCHEMA, readable_from=POOL_READABLE_FROM)
    check_pool_consistency(path, attrs)


def reason_flags() -> dict[str, Any]:
    """CF flag attributes of ``reason`` (CF conventions, section 3.5), from acceptance.REASONS."""
    from ..acceptance import REASONS

    codes = sorted(REASONS.items(), key=lambda kv: kv[1])
    return {"flag_values": [int(code) for _, code in codes],
            "flag_meanings": " ".join(name for name, _ in codes)}


# The arrays every format-3 and format-4 pool holds, and their dtypes (PoolWriter.__enter__, write_plan, _write_classes).
POOL_ARRAY_DTYPES = {"slot": "int64", "target": "int32", "seed_class": "int32", "seed_index": "int64",
                     "seed_aug": "int16", "x_delta": "int16", "x_exp": "int8", "loss_g": "float32",
                     "prob_g": "float32", "u_beta": "float64", "accepted": "bool", "reason": "uint8",
                     "plan/order": "int64", "plan/attempt": "bool", "plan/aug": "int16"}
# Values a row holds in each row array besides its first axis; ``x_delta`` holds the input's shape.
POOL_ROW_SHAPES = {"seed_aug": (3,), "plan/aug": (3,)}


def pool_row_layout(input_shape: tuple[int, ...]) -> dict[str, int]:
    """Uncompressed bytes one attempt row takes in each row array (:data:`POOL_ROW_ARRAYS`), from
    :data:`POOL_ARRAY_DTYPES`: ``x_delta`` one int16 per input value, the rest a few bytes."""
    out = {}
    for name in POOL_ROW_ARRAYS:
        shape = tuple(input_shape) if name == "x_delta" else POOL_ROW_SHAPES.get(name, ())
        out[name] = int(np.dtype(POOL_ARRAY_DTYPES[name]).itemsize) * int(np.prod(shape, dtype=np.int64))
    return out


def plan_slot_bytes() -> int:
    """Uncompressed bytes one slot of the epoch's plan takes (``plan/order``, ``attempt``, ``aug``)."""
    return sum(int(np.dtype(POOL_ARRAY_DTYPES[k]).itemsize) * int(np.prod(POOL_ROW_SHAPES.get(k, ()), dtype=np.int64))
               for k in POOL_ARRAY_DTYPES if k.startswith("plan/"))


# bytes a pool row takes besides x_delta (uncompressed): slot 8, target 4, seed_class 4, seed_index 8,
# seed_aug 3x2, x_exp 1, loss_g 4, prob_g 4, u_beta 8, accepted 1, reason 1
POOL_ROW_BYTES = sum(b for name, b in pool_row_layout(()).items() if name != "x_delta")


def pool_bytes(n_attempts: int, input_shape: tuple[int, ...], *, n_slots: int = 0, n_accepted: int | None = None,
               store: str = "all") -> int:
    """Uncompressed bytes of one epoch's pool (rows and plan, no metadata): every attempt's small
    columns, x_delta of every attempt (``store="all"``) or of the ``n_accepted`` rows only
    (``store="accepted"``: the rest are zeros, which zstd reduces to almost nothing)."""
    if store not in POOL_STORES:
        raise ValueError(f"store must be one of {POOL_STORES}, got {store!r}")
    layout = pool_row_layout(input_shape)
    x_rows = int(n_attempts) if store == "all" else int(n_attempts if n_accepted is None else n_accepted)
    return int(n_attempts) * POOL_ROW_BYTES + x_rows * layout["x_delta"] + int(n_slots) * plan_slot_bytes()


def estimate_pool_bytes(n_rows: int, input_shape: tuple[int, ...]) -> int:
    """Uncompressed bytes of a pool of ``n_rows`` attempts (x_delta: int16 per input value), plus
    1 MiB for the plan and metadata: an upper bound of what :class:`PoolWriter` puts on disk
    (zstd only makes it smaller; an accepted-only pool is smaller still)."""
    return pool_bytes(n_rows, input_shape) + (1 << 20)


__all__ = ["MIGRATE_COMMAND", "POOL_ARRAY_DOCS", "POOL_ARRAY_DTYPES", "POOL_FORMAT_VERSION", "POOL_READABLE_FROM",
           "POOL_ROW_ARRAYS",
           "POOL_ROW_BYTES", "POOL_ROW_SHAPES", "POOL_SCHEMA", "POOL_STORES", "SEED_SCOPES", "check_pool_attrs",
           "check_pool_consistency", "estimate_pool_bytes", "plan_slot_bytes", "pool_bytes", "pool_row_layout",
           "reason_flags"]
