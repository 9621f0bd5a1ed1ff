"""Issue 20 acceptance: random bit flips (fixed seed, bounded count) in every file of a small real
pool and of a small real checkpoint. Each flip is either refused with a one-line M2mError, or
provably harmless: what the reader returns is byte-identical to what it returns for the good file."""

import json
import warnings
from pathlib import Path

import numpy as np

from m2m_pipeline.store import open_pool
from m2m_pipeline.training import load_checkpoint
from m2m_pipeline.utils import M2mError

from tests.unit.store.pool_fixtures import all_values, make_pool
from tests.unit.training.test_checkpoint_integrity import _identical, _small_checkpoint

FLIPS = 200


def _flips(files: list[Path], n: int, seed: int) -> list[tuple[Path, int]]:
    """(file, bit): one flip in every file first, then uniform over all the bits of all the files."""
    rng = np.random.default_rng(seed)
    sizes = np.array([f.stat().st_size for f in files])
    out = [(f, int(rng.integers(size * 8))) for f, size in zip(files, sizes)]
    cum = np.cumsum(sizes * 8)
    for bit in rng.integers(cum[-1], size=max(0, n - len(out))):
        i = int(np.searchsorted(cum, bit, side="right"))
        out.append((files[i], int(bit - (cum[i - 1] if i else 0))))
    return out[:max(n, len(files))]


def _fuzz(files: list[Path], read, good, n: int, seed: int) -> dict[str, int]:
    """Flip each (file, bit) in place, read, restore; assert refused-in-one-line or identical."""
    seen = {"refused": 0, "harmless": 0}
    for path, bit in _flips(files, n, seed):
        raw = path.read_bytes()
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")   # torch warns of a flipped pickle protocol byte
                got = read()
        except M2mError as exc:
            assert "\n" not in str(exc), (path, bit, str(exc))
            seen["refused"] += 1
        else:
            assert got == good, f"bit {bit} of {path} changed what the reader returns, silently"
            seen["harmless"] += 1
        finally:
            path.write_bytes(raw)
    return seen


def test_fuzz_random_bit_flips_in_every_file_of_a_small_pool(tmp_path):
    pool = tmp_path / "pools" / "tiny-img" / "M2m-seed0" / "epoch_1"
    make_pool(pool)

    def read():
        p = open_pool(pool)
        return json.dumps(p.attrs, sort_keys=True), all_values(p)
    good = read()
    files = sorted(p for p in pool.rglob("*") if p.is_file())
    assert len(files) > 40 and {"zarr.json", "x_delta/c/0/0/0/0", "slot/c/0", "target/c/0"} <= \
        {f.relative_to(pool).as_posix() for f in files}
    seen = _fuzz(files, read, good, FLIPS, seed=20)
    assert sum(seen.values()) == FLIPS and seen["refused"] > FLIPS // 2, seen
    assert read() == good   # every flip was undone


def test_fuzz_random_bit_flips_in_a_small_checkpoint(tmp_path):
    path = _small_checkpoint(tmp_path / "ck.pt")

    def read():
        ckpt = load_checkpoint(path)
        return _Identical(ckpt)
    good = read()
    seen = _fuzz([path], read, good, FLIPS, seed=21)
    assert sum(seen.values()) == FLIPS and seen["refused"] > FLIPS // 4 and seen["harmless"] > 0, seen


class _Identical:
    """A loaded checkpoint compared deeply: types, dict order, tensors by dtype, shape and bytes."""

    def __init__(self, ckpt):
        self.ckpt = ckpt

    def __eq__(self, other) -> bool:
        return isinstance(other, _Identical) and _identical(self.ckpt, other.ckpt)

    __hash__ = None
