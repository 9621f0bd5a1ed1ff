"""Check a run's pools against what their writer recorded (``m2m-pipeline pools verify``).

A pool copied to another machine (``dvc pull``, rsync, a shared file system) may arrive damaged:
a chunk changed in transit, a pull cut short, an epoch missing. :func:`verify_pools` runs
:func:`m2m_pipeline.store.verify_pool` on every epoch's pool of a run folder (completion marker,
recorded files and sizes, recorded sha256 of every file, every chunk decoded) and looks for
epochs missing between the first and the last; each damaged pool is one line naming the pool
folder, its epoch and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import M2mError
from ..layout import epoch_name, parse_epoch_name
from ..utils import read_json
from ..store import verify_pool


@dataclass(frozen=True)
class PoolCheck:
    """The verdict on one epoch's pool (``problem`` None: it is what was written)."""

    path: Path
    epoch: int | None
    problem: str | None = None
    files: int = 0
    digests: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """``<pool folder> (epoch <e>): <what was checked>``, or ``epoch <e>: <what is wrong>`` (the
        store's message names the folder)."""
        where = f"{self.path} (epoch {self.epoch})" if self.epoch is not None else str(self.path)
        if self.problem is not None:   # the store's messages name the folder (.../epoch_<e>) already
            return f"epoch {self.epoch}: {self.problem}" if str(self.path) in self.problem else f"{where}: {self.problem}"
        how = f"{self.digests} sha256 checked" if self.digests else "no recorded sha256 (sizes and decoding only)"
        return f"{where}: {self.files} files, {self.bytes} bytes, {how}"

    def line(self) -> str:
        return f"{'ok' if self.ok else 'DAMAGED':<8} {self.describe()}"


def _is_pool(path: Path) -> bool:
    try:
        doc = read_json(path / "zarr.json")   # bounded depth: a hostile file is no RecursionError
    except (OSError, ValueError):
        return parse_epoch_name(path.name) is not None   # an epoch folder that lost its zarr.json
    return isinstance(doc, dict) and (doc.get("attributes") or {}).get("kind") == "m2m-pool"


def _pool_folders(root: Path) -> list[Path]:
    """``root`` itself when it is a pool, else every ``epoch_<e>`` pool folder under it."""
    if _is_pool(root):
        return [root]
    found = [p for p in root.rglob("epoch_*") if p.is_dir() and parse_epoch_name(p.name) is not None]
    return sorted(found, key=lambda p: (str(p.parent), parse_epoch_name(p.name)))


def verify_pools(root: str | Path) -> list[PoolCheck]:
    """The verdict on every pool under ``root`` (a run's pools folder such as
    ``pools/digits/M2m-seed0``, one ``epoch_<e>`` pool, or a folder of runs), in run and epoch
    order, with one more damaged verdict per run for each epoch missing between its first and
    last pool."""
    root = Path(root)
    if not root.is_dir():
        raise M2mError(f"pool folder {root} does not exist")
    folders = _pool_folders(root)
    if not folders:
        raise M2mError(f"no pools under {root} (expected epoch_<e> folders, e.g. pools/digits/M2m-seed0/epoch_40)")
    checks: list[PoolCheck] = []
    by_run: dict[Path, list[int]] = {}
    for path in folders:
        epoch = parse_epoch_name(path.name)
        if epoch is not None:
            by_run.setdefault(path.parent, []).append(epoch)
        try:
            seen = verify_pool(path)
        except M2mError as exc:
            checks.append(PoolCheck(path, epoch, str(exc).splitlines()[0]))
            continue
        checks.append(PoolCheck(path, epoch, None, seen["files"], seen["digests"], seen["bytes"]))
    for run, epochs in by_run.items():
        for e in sorted(set(range(min(epochs), max(epochs) + 1)) - set(epochs)):
            checks.append(PoolCheck(run / epoch_name(e), e, f"the run has pools of epochs {min(epochs)}.."
                                    f"{max(epochs)} but not of epoch {e} (a partial copy or pull?)"))
    return sorted(checks, key=lambda c: (str(c.path.parent), c.epoch if c.epoch is not None else -1))


__all__ = ["PoolCheck", "verify_pools"]
