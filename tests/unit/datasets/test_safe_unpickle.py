"""Issue 20 item 1: no code runs from data. The CIFAR python release is read with a restricted
unpickler (datasets/cifar.py): the numpy arrays and plain containers of the real files load, and a
``__reduce__`` payload is refused with a one-line error naming the file before anything of it runs."""

import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from m2m_pipeline.datasets import create_dataset
from m2m_pipeline.datasets.cifar import safe_unpickle
from m2m_pipeline.utils import M2mError

from tests.conftest import ROOT
from tests.unit.datasets.fixtures import make_cifar_pickles


class _Payload:
    """Unpickling this runs ``fn(*args)``: what a hostile data root would ship."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def _touch_command(marker: Path) -> str:
    return f"{sys.executable} -c \"open({str(marker)!r}, 'w').write('ran')\""


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_payload_in_batches_meta_is_refused_before_it_runs(tmp_path, protocol):
    root = make_cifar_pickles(tmp_path / "c10", 10, n_train=10, n_test=2)
    marker = tmp_path / "ran.txt"
    meta = root / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps({b"label_names": _Payload(os.system, _touch_command(marker))},
                                  protocol=protocol))
    with pytest.raises(M2mError) as err:
        create_dataset("cifar10-lt", data_root=root)
    msg = str(err.value)
    assert "\n" not in msg and str(meta) in msg
    assert "refusing to read" in msg and "system" in msg
    assert not marker.exists()


@pytest.mark.parametrize("fn, args", [(eval, ("1+1",)), (exec, ("x = 1",)), (getattr, (_Payload(__import__, "os"), "system")),
                                      (subprocess.check_output, (["true"],)), (__import__, ("os",))])
def test_every_callable_outside_numpy_is_refused(tmp_path, fn, args):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": _Payload(fn, *args), b"labels": [0]}, protocol=2))
    with pytest.raises(M2mError, match=r"refusing to read .*data_batch_1: its pickle calls "):
        safe_unpickle(path, "a CIFAR batch")


def test_payload_inside_an_object_array_is_refused(tmp_path):
    """The items of an object array are unpickled by the same restricted unpickler."""
    marker = tmp_path / "ran.txt"
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = 1, _Payload(os.system, _touch_command(marker))
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": arr, b"labels": [0, 1]}, protocol=2))
    with pytest.raises(M2mError, match="refusing to read .*test_batch"):
        safe_unpickle(path, "a CIFAR batch")
    assert not marker.exists()


def test_release_pickles_load_under_every_protocol_and_numpy_name(tmp_path):
    """What the real files hold (py2 cPickle, protocol 2, ``numpy.core.multiarray._reconstruct``)
    and what numpy 2 writes (``numpy._core``, protocol 5 buffers) all load, values exact."""
    x = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    labels = np.array([3, 1], dtype=np.int64)
    obj = {b"batch_label": b"training batch 1 of 5", b"data": x, b"labels": [3, 1],
           b"np_labels": labels, b"first": labels[0], b"filenames": [b"a.png", b"b.png"]}
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        blob = pickle.dumps(obj, protocol=protocol)
        # numpy 1's names too (GLOBAL opcodes, newline-terminated, up to protocol 3)
        variants = [blob] + ([blob.replace(b"numpy._core", b"numpy.core")] if protocol <= 3 else [])
        for blob_v in variants:
            path = tmp_path / f"p{protocol}"
            path.write_bytes(blob_v)
            got = safe_unpickle(path, "a CIFAR batch")
            assert got.keys() == obj.keys()
            assert np.array_equal(got[b"data"], x) and got[b"data"].dtype == np.uint8
            assert np.array_equal(got[b"np_labels"], labels) and got[b"first"] == 3
            assert got[b"labels"] == [3, 1] and got[b"filenames"] == [b"a.png", b"b.png"]


def test_restricted_reader_gives_the_same_dataset(tmp_path):
    """The recipe's result is unchanged: same arrays as a plain pickle.load of the files."""
    root = make_cifar_pickles(tmp_path / "c10", 10, n_train=50, n_test=20)
    data = create_dataset("cifar10-lt", data_root=root, rho=2.0)
    folder = root / "cifar-10-batches-py"
    plain = [pickle.loads((folder / f"data_batch_{b}").read_bytes(), encoding="bytes") for b in range(1, 6)]
    x_all = np.concatenate([d[b"data"] for d in plain]).reshape(-1, 3, 32, 32)
    y_all = np.concatenate([np.asarray(d[b"labels"]) for d in plain])
    first = np.flatnonzero(y_all == 0)[:len(np.flatnonzero(data.train.y == 0))]
    assert np.array_equal(data.train.x[data.train.y == 0], x_all[first])


def test_data_info_on_a_hostile_root_runs_nothing(tmp_path):
    """The issue's reproduction: ``data info --dataset cifar10-lt --data-root DIR``."""
    root = make_cifar_pickles(tmp_path / "c10", 10, n_train=10, n_test=2)
    marker = tmp_path / "ran.txt"
    (root / "cifar-10-batches-py" / "batches.meta").write_bytes(
        pickle.dumps(_Payload(os.system, _touch_command(marker)), protocol=2))
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "m2m_pipeline.cli", "data", "info", "--dataset", "cifar10-lt",
                          "--data-root", str(root)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert res.returncode != 0 and not marker.exists()
    err = res.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert "refusing to read" in err and "batches.meta" in err
