"""Checkpoints (training/checkpoint.py): a missing, corrupt or mismatched checkpoint is a one-line error."""

import pytest

from m2m_pipeline.training import load_checkpoint, model_from_checkpoint, save_checkpoint
from m2m_pipeline.utils import M2mError


def test_missing_corrupt_and_mismatched_checkpoints(tmp_path, trained, digits):
    with pytest.raises(M2mError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(M2mError, match="corrupt"):
        load_checkpoint(bad)
    ckpt = load_checkpoint(trained / "g" / "last.pt")
    ckpt["config"]["num_classes"] = 7
    model = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt"))
    save_checkpoint(tmp_path / "seven.pt", model=model, optimizer=None, config=ckpt["config"], params={},
                    epoch=1, dataset_fingerprint=digits.fingerprint)
    with pytest.raises(M2mError, match="7 classes"):
        load_checkpoint(tmp_path / "seven.pt", data=digits)
