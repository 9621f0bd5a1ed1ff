"""Finding pools: one :class:`PoolEntry` per pool folder (``pools ls``), read from each pool's
``zarr.json`` alone, so a listing opens no array and an incomplete pool still shows (as
incomplete); and the pool meant by a run folder and an epoch (``pools show/stats/report RUN``).
Folder names (``<method>-seed<s>``, ``epoch_<e>``) are read with ``layout``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ...layout import parse_epoch_name, parse_run_name
from ...utils import JSONTooDeep, M2mError, read_json


@dataclass
class PoolEntry:
    """One pool as ``pools ls`` lists it."""

    path: str
    dataset: str | None
    method: str | None
    seed: int | None
    epoch: int | None
    attempts: int | None
    accepted: int | None
    accept_rate: float | None
    reasons: dict[str, int] = field(default_factory=dict)
    size_bytes: int = 0
    created: str | None = None
    complete: bool = False
    g_hash: str | None = None
    f_hash: str | None = None
    problem: str | None = None   # why a complete pool fails the checks of its attributes (None: it passes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_group(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(attributes of the zarr v3 group at ``path``, None), or (None, why zarr.json is unreadable):
    parsed with bounded depth, so a hostile zarr.json is a reason, never a RecursionError."""
    meta = path / "zarr.json"
    try:
        doc = read_json(meta)
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:   # JSONDecodeError, JSONTooDeep, UnicodeDecodeError
        return None, f"unreadable zarr.json ({exc if isinstance(exc, JSONTooDeep) else type(exc).__name__})"
    if not isinstance(doc, dict) or doc.get("node_type") != "group":
        return None, None
    attrs = doc.get("attributes") or {}
    return (dict(attrs), None) if isinstance(attrs, dict) else (None, "attributes are not a mapping")


def _group_attrs(path: Path) -> dict[str, Any] | None:
    """The attributes of the zarr v3 group at ``path`` (read from zarr.json as JSON), or None."""
    return _read_group(path)[0]


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _looks_like_pool(path: Path, attrs: dict[str, Any] | None) -> bool:
    if attrs is not None and attrs.get("kind") == "m2m-pool":
        return True
    if attrs is None and parse_epoch_name(path.name) is not None and (path / "zarr.json").is_file() \
            and _read_group(path)[1] is not None:
        return True   # an epoch folder whose zarr.json cannot be read: listed, flagged
    # a pool that crashed before its attributes: an epoch_<e> folder holding the row arrays
    return parse_epoch_name(path.name) is not None and (path / "accepted").is_dir()


def pool_entry(path: str | Path) -> PoolEntry:
    """The :class:`PoolEntry` of one pool folder (complete or not). A complete pool whose
    attributes fail :func:`m2m_pipeline.store.check_pool_attrs` (hash, schema, format), or whose
    zarr.json cannot be read, is listed from its folder names with ``problem`` saying why."""
    from ...store import check_pool_attrs

    path = Path(path)
    attrs, problem = _read_group(path)
    attrs = attrs or {}
    run, run_seed = parse_run_name(path.parent.name)   # pools/<dataset>/<method>-seed<s>/epoch_<e>
    if problem is None and attrs.get("complete"):
        try:
            check_pool_attrs(path, attrs)
        except M2mError as exc:
            problem = str(exc).replace(f"pool {path} ", "", 1)
    if problem is not None:
        return PoolEntry(path=str(path), dataset=None, method=run if run_seed is not None else None, seed=run_seed,
                         epoch=parse_epoch_name(path.name), attempts=None, accepted=None, accept_rate=None,
                         size_bytes=_folder_bytes(path), complete=bool(attrs.get("complete")) is True,
                         problem=problem)
    summary = attrs.get("summary") or {}
    attempts = summary.get("n_attempts")
    accepted = summary.get("n_accepted")
    created = datetime.fromtimestamp((path / "zarr.json").stat().st_mtime, tz=timezone.utc) \
        if (path / "zarr.json").exists() else None
    return PoolEntry(
        path=str(path),
        dataset=attrs.get("dataset"),
        method=attrs.get("method") or (run if run_seed is not None else attrs.get("run")),
        seed=int(attrs["seed"]) if "seed" in attrs else run_seed,
        epoch=int(attrs["epoch"]) if "epoch" in attrs else parse_epoch_name(path.name),
        attempts=attempts, accepted=accepted,
        accept_rate=(accepted / attempts) if attempts else None,
        reasons={k: int(v) for k, v in (summary.get("reasons") or {}).items()},
        size_bytes=_folder_bytes(path),
        created=created.strftime("%Y-%m-%d %H:%M") if created else None,
        complete=bool(attrs.get("complete")),
        g_hash=(attrs.get("g_hash") or "")[:8] or None,
        f_hash=(attrs.get("f_hash") or "")[:8] or None,
    )


def list_pools(root: str | Path = "pools") -> list[PoolEntry]:
    """Every pool folder under ``root`` (or ``root`` itself), sorted by dataset, method, seed, epoch."""
    root = Path(root)
    if not root.exists():
        raise M2mError(f"pool folder {root} does not exist; pools are written by `m2m-pipeline train-f "
                       f"--method M2m` (or dvc repro) and `m2m-pipeline generate`")
    found = []
    candidates = [root] + [p.parent for p in root.rglob("zarr.json")] + [p for p in root.rglob("epoch_*")]
    seen: set[Path] = set()
    for path in candidates:
        if path in seen or not path.is_dir():
            continue
        seen.add(path)
        if _looks_like_pool(path, _group_attrs(path)):
            found.append(pool_entry(path))
    return sorted(found, key=lambda e: (e.dataset or "", e.method or "", e.seed if e.seed is not None else -1,
                                        e.epoch if e.epoch is not None else -1, e.path))


def format_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def run_epochs(run_dir: str | Path) -> dict[int, Path]:
    """{epoch: pool folder} of the ``epoch_<e>`` folders of a run folder."""
    out = {}
    for p in Path(run_dir).iterdir() if Path(run_dir).is_dir() else []:
        epoch = parse_epoch_name(p.name)
        if epoch is not None and p.is_dir():
            out[epoch] = p
    return dict(sorted(out.items()))


def resolve_pool(run: str | Path, epoch: int | None = None) -> Path:
    """The pool folder meant by ``run`` and ``epoch``: ``run`` itself when it is a pool, else its
    ``epoch_<epoch>`` folder (the last epoch when ``epoch`` is None)."""
    run = Path(run)
    if not run.exists():
        raise M2mError(f"{run} does not exist; give a pool folder (pools/digits/M2m-seed0/epoch_40) or a run "
                       f"folder of pools (pools/digits/M2m-seed0); `m2m-pipeline pools ls` lists them")
    if (run / "zarr.json").is_file() and _looks_like_pool(run, _group_attrs(run)):
        if epoch is not None and pool_entry(run).epoch not in (None, epoch):
            raise M2mError(f"{run} is the pool of epoch {pool_entry(run).epoch}, not {epoch}")
        return run
    epochs = run_epochs(run)
    if not epochs:
        raise M2mError(f"{run} holds no epoch_<e> pool folders")
    if epoch is None:
        return epochs[max(epochs)]
    if epoch not in epochs:
        raise M2mError(f"{run} has no pool of epoch {epoch}; epochs present: "
                       f"{', '.join(str(e) for e in epochs)}")
    return epochs[epoch]


__all__ = ["PoolEntry", "format_size", "list_pools", "pool_entry", "resolve_pool", "run_epochs"]
