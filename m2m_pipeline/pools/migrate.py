"""Rewrite pools (and prepared datasets) of an older format in the current one
(``m2m-pipeline pools migrate``).

Pool format 3 and prepared-data format 2 (issue 20) carry a crc32c checksum in every chunk and
shard index, the attributes' own sha256 and the sha256 of every array's metadata; readers refuse
older folders with a one-line error naming this command. A migration checks what the old folder
recorded (sizes; the sha256 of every file where it has them), reads every chunk, writes the new
folder beside the old one and renames it into place under the folder's write lock, so an
interrupted migration leaves the old folder as it was, and a damaged one is refused, never sealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import M2mError
from ..utils import output_lock, zarr_kind
from .verify import _pool_folders


@dataclass(frozen=True)
class Migration:
    """What happened to one folder: ``migrated`` (rewritten), or current already, or ``problem``."""

    path: Path
    migrated: bool = False
    problem: str | None = None

    def line(self) -> str:
        if self.problem is not None:
            return f"{'FAILED':<9} {self.path}: {self.problem}"
        return f"{'migrated' if self.migrated else 'current':<9} {self.path}"


def migrate(root: str | Path) -> list[Migration]:
    """Migrate every pool under ``root`` (one pool, a run's pools folder, a folder of runs), or the
    prepared dataset ``root``; one :class:`Migration` each, in run and epoch order."""
    from ..store import migrate_pool
    from ..store.prepared import migrate_prepared

    root = Path(root)
    if not root.is_dir():
        raise M2mError(f"{root} does not exist or is not a folder; give a pool folder, a run folder of pools "
                       f"(pools/digits/M2m-seed0) or a prepared dataset (data/prepared/digits)")
    if zarr_kind(root) == "m2m-prepared-dataset":
        targets, fn = [root], migrate_prepared
    else:
        targets, fn = _pool_folders(root), migrate_pool
        if not targets:
            raise M2mError(f"no pools under {root} (expected epoch_<e> folders, e.g. pools/digits/M2m-seed0/epoch_40)")
    out = []
    for path in targets:
        try:
            with output_lock(path):
                out.append(Migration(path, migrated=fn(path)))
        except M2mError as exc:
            out.append(Migration(path, problem=str(exc).splitlines()[0]))
    return out


__all__ = ["Migration", "migrate"]
