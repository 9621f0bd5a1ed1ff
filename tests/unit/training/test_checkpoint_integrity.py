"""Issue 20 item 3: a flipped bit in a checkpoint is refused at load. load_checkpoint recomputes
the weights hash (and the content hash over optimizer state, config, params, epoch, extra) and
refuses a mismatch with a one-line M2mError naming the file; torch.load runs weights_only, so a
checkpoint cannot run code. The random-flip fuzz is tests/system/test_fuzz_integrity.py."""

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from m2m_pipeline.jobs.train import train_f
from m2m_pipeline.training import load_checkpoint, save_checkpoint
from m2m_pipeline.training.checkpoint import content_hash, model_config
from m2m_pipeline.utils import M2mError, state_hash

from tests.tiny import tiny_mlp, tiny_vectors


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg, msg
    return msg


def _small_checkpoint(path: Path) -> Path:
    """A real checkpoint of the tiny MLP with SGD momentum state after one step."""
    data = tiny_vectors()
    model = tiny_mlp(data)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.as_tensor(data.train.x)).sum().backward()
    opt.step()
    save_checkpoint(path, model=model, optimizer=opt, config=model_config(data, "mlp", {"hidden": 8}, False),
                    params={"seed": 0, "lr": 0.1, "role": "f"}, epoch=2, dataset_fingerprint=data.fingerprint,
                    extra={"note": "tiny"})
    return path


def _entry_offset(path: Path, suffix: str) -> tuple[int, int]:
    """(offset, size) in ``path`` of the stored (uncompressed) zip entry whose name ends in ``suffix``."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(suffix))
        assert info.compress_type == zipfile.ZIP_STORED
    raw = path.read_bytes()
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.file_size


def _flip(path: Path, byte: int, bit: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[byte] ^= 1 << bit
    path.write_bytes(bytes(raw))


def _storage_of(path: Path, key: str) -> str:
    """The zip record (``data/<n>``) that holds the model_state tensor ``key``."""
    with zipfile.ZipFile(path) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        names = [n for n in z.namelist() if "/data/" in n]
    ckpt = torch.load(path, weights_only=True)
    target = ckpt["model_state"][key]
    for n in names:   # the record whose bytes are the tensor's
        offset, size = _entry_offset(path, n)
        if size == target.numel() * target.element_size() and \
                path.read_bytes()[offset:offset + size] == target.contiguous().view(torch.uint8).numpy().tobytes():
            return n
    raise AssertionError(f"no record holds {key} ({pkl})")


def test_exponent_bit_flip_in_a_real_warm_checkpoint_is_refused(tmp_path, trained, digits, tiny_preset):
    """The issue's reproduction: one exponent bit of a weight of warm-ce's last.pt. torch.load reads
    the huge value silently; load_checkpoint, and so a deferred method on that warm run, refuses it."""
    warm = tmp_path / "warm"
    shutil.copytree(trained / "warm", warm)
    last = warm / "last.pt"
    good = torch.load(last, weights_only=True)
    key = next(k for k, v in good["model_state"].items() if v.dtype == torch.float32 and v.dim() >= 2)
    offset, _ = _entry_offset(last, _storage_of(last, key))
    _flip(last, offset + 3, 6)   # float32 little-endian: byte 3 bit 6 is the exponent's top bit
    bad = torch.load(last, weights_only=True)["model_state"][key]
    assert abs(float(bad.reshape(-1)[0])) > 1e30 and abs(float(good["model_state"][key].reshape(-1)[0])) < 10
    with pytest.raises(M2mError, match=r"checkpoint .*warm/last.pt is damaged: its weights hash to [0-9a-f]{16}, "
                                       r"not the recorded [0-9a-f]{16}") as err:
        load_checkpoint(last, data=digits)
    _one_line(err)
    out = tmp_path / "drw"
    with pytest.raises(M2mError, match="warm/last.pt is damaged") as err:
        train_f(digits, tiny_preset, method="DRW", seed=0, out_dir=out, warm_dir=warm, progress=False)
    _one_line(err)


def test_changed_optimizer_state_config_or_params_are_refused(tmp_path):
    path = _small_checkpoint(tmp_path / "ck.pt")
    assert load_checkpoint(path)["epoch"] == 2

    def resaved(edit, name):
        ckpt = torch.load(path, weights_only=True)
        edit(ckpt)
        torch.save(ckpt, tmp_path / name)   # hashes as recorded: what a flipped bit leaves
        return tmp_path / name

    def momentum(c):
        buf = next(iter(c["optimizer_state"]["state"].values()))["momentum_buffer"]
        buf.view(torch.int32).reshape(-1)[0] ^= 1 << 30
    for edit, name in ((momentum, "momentum.pt"),
                       (lambda c: c["config"].update(hidden=9), "config.pt"),
                       (lambda c: c["params"].update(lr=0.2), "params.pt"),
                       (lambda c: c.update(epoch=3), "epoch.pt"),
                       (lambda c: c["extra"].update(note="tinz"), "extra.pt"),
                       (lambda c: c["optimizer_state"]["param_groups"][0].update(momentum=0.8), "groups.pt")):
        with pytest.raises(M2mError, match=rf"checkpoint .*{name} is damaged: its optimizer state, config or "
                                           rf"params hash to [0-9a-f]{{16}}, not the recorded") as err:
            load_checkpoint(resaved(edit, name))
        _one_line(err)
    with pytest.raises(M2mError, match="hash.pt is damaged: its weights hash to"):
        load_checkpoint(resaved(lambda c: c.update(weights_hash="0" * 16), "hash.pt"))
    with pytest.raises(M2mError, match=r"has unknown keys \['cmntent_hash'\]"):
        load_checkpoint(resaved(lambda c: c.update(cmntent_hash=c.pop("content_hash")), "key.pt"))
    with pytest.raises(M2mError, match=r"misses \['weights_hash'\]"):
        load_checkpoint(resaved(lambda c: c.pop("weights_hash"), "nohash.pt"))


def test_checkpoint_from_before_the_content_hash_loads_with_its_weights_checked(tmp_path):
    """Files written before issue 20 have no content_hash: they load, and their weights are still checked."""
    path = _small_checkpoint(tmp_path / "ck.pt")
    old = torch.load(path, weights_only=True)
    del old["content_hash"]
    torch.save(old, tmp_path / "old.pt")
    got = load_checkpoint(tmp_path / "old.pt")
    assert got["weights_hash"] == state_hash(got["model_state"]) and "content_hash" not in got
    key = next(iter(old["model_state"]))
    old["model_state"][key] = old["model_state"][key] + 1
    torch.save(old, tmp_path / "old_bad.pt")
    with pytest.raises(M2mError, match="old_bad.pt is damaged: its weights hash to"):
        load_checkpoint(tmp_path / "old_bad.pt")


def test_content_hash_sees_types_order_and_values_and_never_recurses():
    base = {"a": [1, 2.0, (3,)], "b": {"x": torch.ones(2)}, "c": None}
    h = content_hash(base)
    assert h == content_hash({"a": [1, 2.0, (3,)], "b": {"x": torch.ones(2)}, "c": None})
    for other in ({"a": [1, 2.0, [3]], "b": {"x": torch.ones(2)}, "c": None},      # tuple vs list
                  {"a": [1.0, 2.0, (3,)], "b": {"x": torch.ones(2)}, "c": None},   # int vs float
                  {"a": [True, 2.0, (3,)], "b": {"x": torch.ones(2)}, "c": None},  # bool vs int
                  {"a": [1, 2.0, (3,)], "b": {"x": torch.ones(2, dtype=torch.float64)}, "c": None},
                  {"a": [1, 2.0, (3,)], "b": {"x": torch.ones(1, 2)}, "c": None},
                  {"b": {"x": torch.ones(2)}, "a": [1, 2.0, (3,)], "c": None},     # key order
                  {"a": [1, 2.0, (3,)], "b": {"x": torch.ones(2)}, "c": "None"}):
        assert content_hash(other) != h
    # the weights and the hashes themselves are outside it
    assert content_hash({**base, "model_state": {"w": torch.zeros(3)}, "weights_hash": "x"}) == h
    deep: list = []
    for _ in range(200_000):
        deep = [deep]
    assert len(content_hash({"extra": deep})) == 16


def _identical(a, b) -> bool:
    """Deep equality, types and dict order included, tensors by dtype, shape and bytes."""
    if type(a) is not type(b):
        return False
    if isinstance(a, torch.Tensor):
        return (a.dtype == b.dtype and a.shape == b.shape
                and a.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                == b.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    if isinstance(a, dict):
        return list(a) == list(b) and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b))
    return repr(a) == repr(b)
