"""The training preset (training/schedule.py): the bounds of every field on the valid and the invalid side,
and its round trip through params. The learning rate at every boundary epoch of every preset is a
paper rule: tests/rules/test_paper_rules.py."""

import pytest

from m2m_pipeline.training import Preset
from m2m_pipeline.utils import M2mError

pytestmark = pytest.mark.mutation   # the mutation run (benchmarks/mutation.py) selects these


def test_preset_boundaries():
    # one epoch is a valid schedule; zero is not
    assert Preset(model="mlp", epochs=1, batch_size=8).epochs == 1
    with pytest.raises(M2mError, match="epochs must be >= 1"):
        Preset(model="mlp", epochs=0, batch_size=8)
    # the deferred epoch may be 0 or the last+1 (= epochs), not outside 0..epochs
    assert Preset(model="mlp", epochs=3, batch_size=8, deferred_epoch=0).deferred_epoch == 0
    assert Preset(model="mlp", epochs=3, batch_size=8, deferred_epoch=3).deferred_epoch == 3
    for bad in (-1, 4):
        with pytest.raises(M2mError, match="deferred_epoch"):
            Preset(model="mlp", epochs=3, batch_size=8, deferred_epoch=bad)
    # milestones: increasing (equal ones allowed: the factor applies twice), stored as ints
    p = Preset(model="mlp", epochs=9, batch_size=8, milestones=[2.0, 2, 5])
    assert p.milestones == (2, 2, 5) and all(type(m) is int for m in p.milestones)
    with pytest.raises(M2mError, match="increasing"):
        Preset(model="mlp", epochs=9, batch_size=8, milestones=(5, 2))
    d = p.to_dict()
    assert d["milestones"] == [2, 2, 5] and d["epochs"] == 9 and d["lr"] == 0.1 and d["warmup_epochs"] == 5
    assert Preset.from_params(d, "x") == p
    with pytest.raises(M2mError, match=r"preset 'x': unknown key\(s\) \['bogus'\]"):
        Preset.from_params({**d, "bogus": 1}, "x")
    with pytest.raises(M2mError, match="preset '': unknown key"):   # no name given
        Preset.from_params({**d, "bogus": 1})
