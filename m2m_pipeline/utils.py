"""Small shared helpers: errors, seeded random streams, hashing, atomic output folders.

Nothing here imports another module of the package; everything else may import this.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

# Stream names keep the random draws of different purposes independent: changing how many
# numbers one purpose draws never shifts another purpose's numbers.
STREAMS = {
    "plan": 1,
    "attempt": 2,
    "augment": 3,
    "seed": 4,
    "noise": 5,
    "beta": 6,
    "init": 7,
    "split": 8,
    "shuffle": 9,
    "smote": 10,
}


class M2mError(Exception):
    """An error the user can act on; the CLI prints its message on one line and exits non-zero."""


def rng_for(seed: int, stream: str, *keys: int) -> np.random.Generator:
    """A numpy Generator that is a pure function of (seed, stream, *keys).

    Pools derive every draw of a row from (seed, epoch, slot) through this, so a pool does not
    depend on the translation batch size or on how the work was split across workers.
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; known: {sorted(STREAMS)}")
    entropy = [int(seed), STREAMS[stream], *[int(k) for k in keys]]
    if any(e < 0 for e in entropy):
        raise ValueError(f"random keys must be non-negative, got {entropy}")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def torch_generator(seed: int, stream: str, *keys: int) -> torch.Generator:
    """A CPU torch.Generator seeded from :func:`rng_for`."""
    g = torch.Generator()
    g.manual_seed(int(rng_for(seed, stream, *keys).integers(0, 2**63 - 1)))
    return g


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def state_hash(state_dict: dict) -> str:
    """A content hash of a model's weights, independent of the checkpoint's file format.

    Pools record the hashes of g and of the f snapshot they were translated with, so a pool can be
    checked against the models it is used with.
    """
    h = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name]
        h.update(name.encode())
        if isinstance(tensor, torch.Tensor):
            t = tensor.detach().cpu().contiguous()
            h.update(str(t.dtype).encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(tensor).encode())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Write a folder under a temporary name and move it into place only when the block succeeds.

    A crash or an error leaves no half-written folder at ``final``: either the old content stays or
    the new one replaces it whole.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f"{final.name}.tmp-old-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def default_device() -> torch.device:
    """CUDA when available, else CPU; nothing in the package assumes a GPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_torch_threads() -> None:
    """Use every core for intra-op work, unless the user pinned a number."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
