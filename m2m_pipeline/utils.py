"""Small shared helpers: seeded random streams, hashing, atomic output folders, locks, threads.

It imports only ``errors`` of the package (re-exporting M2mError, os_error_message and
user_os_errors from there); everything else may import this.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .errors import M2mError, os_error_message, user_os_errors  # noqa: F401  (re-exported)

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
    "rand_label": 11,
    "seed_subset": 12,
    "cmo_sampler": 13,   # CMO (training/cmo.py): the minority-weighted rows of an epoch,
    "cmo_augment": 14,   # their crops and flips,
    "cmo_mix": 15,       # and each batch's CutMix draw
}


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


def replace_dir(src: Path, final: Path) -> None:
    """Rename the finished folder ``src`` to ``final``; a folder already at ``final`` is replaced
    whole (moved aside first, removed after), so readers see the old or the new one, never a mix."""
    if final.exists():
        old = final.with_name(f"{final.name}.tmp-old-{uuid.uuid4().hex[:8]}")
        os.replace(final, old)
        os.replace(src, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, final)


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
        replace_dir(tmp, final)
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


def figure_formats() -> tuple[str, ...]:
    """The file extensions matplotlib writes figures as (``.png``, ``.pdf``, ``.svg``, ...)."""
    from matplotlib.backend_bases import FigureCanvasBase

    return tuple(f".{ext}" for ext in sorted(FigureCanvasBase.get_supported_filetypes()))


def save_figure(fig, out: str | Path, *, dpi: int = 110, metadata: dict | None = None) -> Path:
    """Write a matplotlib figure to ``out`` (its folder created) and close it. The format is
    ``out``'s extension (another is a one-line M2mError listing those matplotlib writes); the file
    is written under a temporary name and renamed into place, so a full disk leaves the old file,
    never a truncated or empty one."""
    import matplotlib.pyplot as plt

    out = Path(out)
    try:
        fmt = out.suffix[1:].lower()
        if f".{fmt}" not in figure_formats():
            raise M2mError(f"cannot write a figure as {out}: {out.suffix or 'no extension'!r} is not an image "
                           f"format; use one of {', '.join(figure_formats())}")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            fig.savefig(tmp, dpi=dpi, format=fmt, metadata=metadata)
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        plt.close(fig)
    return out


def progress_bar(*, total: int | None = None, desc: str = "", enabled: bool = True, leave: bool = False,
                 unit: str = "it", iterable=None):
    """A tqdm bar with a total that redraws at most every 5 s when stderr is a log file (DVC, CI)
    rather than a terminal."""
    import sys

    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=leave, unit=unit,
                dynamic_ncols=True, mininterval=0.1 if sys.stderr.isatty() else 5.0)


# -- guarding outputs ------------------------------------------------------------------------------

def _lock_path(path: Path) -> Path:
    # beside the output, not inside it: the output folder itself is replaced by an atomic rename
    return path.with_name(f".{path.name}.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # alive, owned by another user
        return True
    return True


@contextlib.contextmanager
def output_lock(path: str | Path) -> Iterator[Path]:
    """Hold the write lock of the output ``path`` (a pool, a prepared dataset, a run folder).

    The lock is the file ``.<name>.lock`` beside ``path``, holding the writer's PID (first line),
    host and command line (second line) under an exclusive ``flock``. A second writer gets a
    one-line M2mError naming the holder (PID, host, command) instead of silently overwriting (the
    last writer used to win). The kernel drops a dead process's flock, so the lock of a killed
    writer (SIGKILL, a lost machine) is simply taken over. Folders made for the lock file that are
    still empty when the lock is released are removed again (a refused command leaves nothing).
    """
    path = Path(path)
    lock = _lock_path(path)
    made = [p for p in [lock.parent, *lock.parent.parents] if not p.exists()]
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = _take_lock(path, lock)
    except BaseException:
        _remove_empty(made)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder_record().encode(), 0)
        yield lock
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)   # before unlocking: whoever locks next sees a fresh file
        os.close(fd)
        _remove_empty(made)


def _holder_record() -> str:
    """What a lock file says of its holder: the PID, then the host and the command line."""
    import socket
    import sys

    command = " ".join(sys.argv) or "python"
    command = " ".join(command.split())[:300]
    return f"{os.getpid()}\n{socket.gethostname()} {command}\n"


def _describe_holder(raw: str) -> str:
    lines = raw.splitlines()
    pid = lines[0].strip() if lines else ""
    if not pid:
        return "unknown"
    text = pid
    if pid.isdigit() and not _pid_alive(int(pid)):
        # a dead PID under a held flock: the lock file was inherited by a child; wait it out
        text += " (exited; a child process of it still holds the lock)"
    if len(lines) > 1 and lines[1].strip():
        host, _, command = lines[1].strip().partition(" ")
        text += f" on {host}" + (f" ({command})" if command else "")
    return text


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:   # deepest first
        try:
            folder.rmdir()
        except OSError:
            return


def _take_lock(path: Path, lock: Path) -> int:
    import fcntl

    for _ in range(10):
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(os.pread(fd, 4096, 0).decode(errors="replace"))
            os.close(fd)
            raise M2mError(f"{path} is being written by process {holder} (lock {lock}); wait for it to "
                           f"finish, or stop it") from None
        # The holder before us may have unlinked the file between our open and our flock: then we
        # hold a lock nobody else sees, so start again on the file now at that path.
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
    raise M2mError(f"could not take the lock {lock} of {path}: it keeps being replaced")


# The deepest nesting a metadata file (zarr.json, a pool's or a prepared dataset's attributes) may
# have: what the package writes stays under 10 levels; a hostile file 200,000 levels deep would be a
# RecursionError in json.loads and in every walk over its values.
JSON_MAX_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


class JSONTooDeep(ValueError):
    """JSON nested deeper than :data:`JSON_MAX_DEPTH` (a ValueError, as json.JSONDecodeError is)."""


def json_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in JSON ``text`` (strings skipped), found without
    recursion, so any depth is measured in linear time."""
    code = np.frombuffer(_JSON_STRING.sub('""', text).encode("utf-8", "surrogatepass"), dtype=np.uint8)
    step = np.zeros(len(code), dtype=np.int32)
    step[(code == ord("[")) | (code == ord("{"))] = 1
    step[(code == ord("]")) | (code == ord("}"))] = -1
    return int(np.cumsum(step).max(initial=0))


def load_json(text: str | bytes, *, max_depth: int = JSON_MAX_DEPTH):
    """``json.loads(text)``, refusing (JSONTooDeep, a ValueError) text nested deeper than
    ``max_depth`` before parsing it, so no metadata file is a RecursionError."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    # text with at most max_depth opening brackets cannot nest deeper (the scan is skipped: a pool
    # opens about 20 small metadata files)
    if text.count("[") + text.count("{") > max_depth:
        depth = json_depth(text)
        if depth > max_depth:
            raise JSONTooDeep(f"nested {depth} levels deep (at most {max_depth})")
    return json.loads(text)


def read_json(path: str | Path, *, max_depth: int = JSON_MAX_DEPTH):
    """:func:`load_json` of the file ``path`` (OSError, UnicodeDecodeError or ValueError when it
    cannot be read or parsed)."""
    return load_json(Path(path).read_bytes(), max_depth=max_depth)


def zarr_kind(path: Path) -> str | None:
    """The ``kind`` attribute of a zarr v3 group at ``path`` (read as plain JSON), or None."""
    try:
        meta = read_json(path / "zarr.json")
    except (OSError, ValueError):
        return None
    attrs = meta.get("attributes") if isinstance(meta, dict) else None
    return attrs.get("kind") if isinstance(attrs, dict) else None


def check_output_dir(path: str | Path, kind: str, *, is_kind: Callable[[Path], bool] | None = None) -> None:
    """Refuse to write an output of ``kind`` over a folder that holds something else.

    Writing replaces the folder whole, so pointing ``--out`` at a folder of the user's own files
    would delete them. Allowed: a missing path, an empty folder, or a folder that is already this
    kind of artefact (by default: a zarr group whose ``kind`` attribute is ``kind``; ``is_kind``
    overrides the test, e.g. for run folders).
    """
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise M2mError(f"output {path} is a file, not a folder; pass another --out")
    if not any(path.iterdir()):
        return
    same = is_kind(path) if is_kind is not None else zarr_kind(path) == kind
    if not same:
        raise M2mError(f"output folder {path} is not empty and does not hold a {kind}; writing there would "
                       f"delete its files: pass an empty or new folder as --out")


def check_free_space(path: str | Path, need_bytes: int, what: str) -> None:
    """Refuse before writing ``need_bytes`` at ``path`` when its file system has less free space,
    rather than fail half-way with a full disk."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need_bytes > free:
        raise M2mError(f"{what} needs about {need_bytes / 2**20:.1f} MiB but {probe} has only "
                       f"{free / 2**20:.1f} MiB free; free some space or pass another --out")


def lazy_exports(package: str, exports: dict[str, str]):
    """A module ``__getattr__`` for ``package`` that imports ``package.<exports[name]>`` only when
    ``name`` is first asked for, so importing one sub-module does not load its siblings.
    (``stages/deps.py`` reads the same ``_EXPORTS`` table to follow such imports.)"""
    import importlib

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__


def default_device() -> torch.device:
    """CUDA when available, else CPU; nothing in the package assumes a GPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_torch_threads() -> None:
    """Use every core for intra-op work, unless the user pinned a number."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
