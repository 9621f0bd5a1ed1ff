"""The pool browser (`m2m-pipeline pools ls/show/stats/report`), the pool schema as xarray sees it,
the offline HTML report in headless Chromium, the paper's figures and the flat results summary."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from m2m_pipeline import cli
from m2m_pipeline.cli import app
from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import generate_pool
from m2m_pipeline.pools import browse
from m2m_pipeline.store import PoolWriter, open_pool, write_prepared
from m2m_pipeline.training import load_checkpoint, model_from_checkpoint

from tests.conftest import ROOT
from tests.tiny import tiny_pool_attrs

runner = CliRunner()
EPOCHS = (2, 3)


@pytest.fixture(scope="session")
def pool_tree(tmp_path_factory, trained, digits, tiny_m2m):
    """A prepared digits dataset and a run folder of two epoch pools, laid out as the DAG writes them."""
    root = tmp_path_factory.mktemp("browse")
    write_prepared(root / "data" / "prepared" / "digits", digits)
    g = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt", data=digits))
    f = model_from_checkpoint(load_checkpoint(trained / "warm" / "last.pt", data=digits))
    run = root / "pools" / "digits" / "M2m-seed0"
    for e in EPOCHS:
        plan = make_plan(digits.train.y, digits.class_counts, seed=0, epoch=e, order="balanced", attempts=True,
                         augment=digits.augment, batch_size=64)
        generate_pool(g=g, f=f, data=digits, plan=plan, cfg=tiny_m2m, seed=0, out=run / f"epoch_{e}")
    return root


def _run_cli(args, capsys):
    """``m2m-pipeline ARGS`` in this process through cli.main: (exit code, stdout, stderr)."""
    old = sys.argv
    sys.argv = ["m2m-pipeline", *map(str, args)]
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return code, out.out, out.err


# -- schema ----------------------------------------------------------------------------------------

def test_pool_schema_speaks_for_itself_in_xarray(pool_tree, digits):
    import xarray as xr

    path = pool_tree / "pools" / "digits" / "M2m-seed0" / "epoch_2"
    ds = xr.open_zarr(str(path), consolidated=False)
    assert list(ds["class"].values) == digits.class_names and "class" in ds.coords
    assert list(ds["class_count"].values) == list(digits.class_counts)
    from m2m_pipeline.acceptance import REASONS

    flags = dict(zip(ds["reason"].attrs["flag_meanings"].split(), ds["reason"].attrs["flag_values"]))
    assert flags == REASONS and flags["accepted"] == 0 and flags["gamma"] == 2 and flags["no_seed"] == 4
    for name, var in ds.variables.items():
        assert not any(d.startswith("dim_") for d in var.dims), (name, var.dims)
        assert "long_name" in var.attrs, name
    plan = xr.open_zarr(str(path), group="plan", consolidated=False)
    assert plan["order"].dims == ("slot",) and plan["aug"].dims == ("slot", "aug_param")
    # the class of every row by name, through the coordinate
    names = ds["class"].values[ds["target"].values]
    assert list(names[:3]) == [digits.class_names[k] for k in ds["target"].values[:3]]


# -- ls --------------------------------------------------------------------------------------------

def test_pools_ls_rows_match_the_arrays(pool_tree, capsys):
    entries = browse.list_pools(pool_tree / "pools")
    assert [(e.method, e.seed, e.epoch) for e in entries] == [("M2m", 0, 2), ("M2m", 0, 3)]
    for e in entries:
        rows = open_pool(e.path).rows(("accepted", "reason"))
        assert e.attempts == len(rows["accepted"]) and e.accepted == int(rows["accepted"].sum())
        assert e.reasons["gamma"] == int((rows["reason"] == 2).sum()) and e.complete
        assert e.size_bytes > 0 and len(e.g_hash) == 8 and e.dataset == "digits"
    code, out, _ = _run_cli(["pools", "ls", pool_tree / "pools", "--json"], capsys)
    assert code == 0 and [r["epoch"] for r in json.loads(out)] == [2, 3]
    code, out, _ = _run_cli(["pools", "ls", pool_tree / "pools"], capsys)
    assert code == 0
    for col in ("dataset", "method", "attempts", "accepted", "rate %", "size", "complete", "M2m"):
        assert col in out
    # an incomplete pool is listed as such
    broken = pool_tree / "pools" / "digits" / "broken-seed1" / "epoch_9"
    shutil.copytree(pool_tree / "pools" / "digits" / "M2m-seed0" / "epoch_2", broken)
    meta = json.loads((broken / "zarr.json").read_text())
    meta["attributes"] = {}  # a writer that died before finish() wrote no attributes at all
    (broken / "zarr.json").write_text(json.dumps(meta))
    try:
        flagged = [e for e in browse.list_pools(pool_tree / "pools") if e.method == "broken"]
        assert len(flagged) == 1 and not flagged[0].complete and (flagged[0].epoch, flagged[0].seed) == (9, 1)
    finally:
        shutil.rmtree(broken.parent)


# -- show ------------------------------------------------------------------------------------------

def test_select_rows_is_stratified_over_targets():
    # targets of 9 rows: class 1 x5 first, then 2 x2, then 3 x2; a limit of 3 takes one of each
    rows = {"target": np.array([1, 1, 1, 1, 1, 2, 2, 3, 3]), "seed_class": np.zeros(9, int),
            "seed_index": np.arange(9), "accepted": np.array([1, 0, 1, 0, 1, 1, 0, 0, 1], bool)}
    assert browse.select_rows(rows, limit=3).tolist() == [0, 5, 7]
    assert browse.select_rows(rows, limit=5).tolist() == [0, 1, 5, 6, 7]
    assert browse.select_rows(rows, accepted=True, limit=9).tolist() == [0, 2, 4, 5, 8]
    assert browse.select_rows(rows, target=2, accepted=False, limit=9).tolist() == [6]


def test_pools_show_writes_a_grid(pool_tree, capsys, digits):
    out = pool_tree / "show.png"
    code, stdout, err = _run_cli(["pools", "show", pool_tree / "pools/digits/M2m-seed0", "--epoch", 2,
                                  "--accepted", "--limit", 6, "--out", out,
                                  "--prepared", pool_tree / "data/prepared/digits"], capsys)
    assert code == 0, err
    from PIL import Image

    assert out.is_file() and Image.open(out).size[0] > 400 and "image view of" in stdout
    code, _, err = _run_cli(["pools", "show", pool_tree / "pools/digits/M2m-seed0", "--target", "zebra",
                             "--out", out, "--prepared", pool_tree / "data/prepared/digits"], capsys)
    assert code == 2 and err.startswith("error: --target 'zebra'")
    code, _, err = _run_cli(["pools", "show", pool_tree / "pools/digits/M2m-seed0", "--epoch", 7, "--out", out,
                             "--prepared", pool_tree / "data/prepared/digits"], capsys)
    assert code == 2 and "no pool of epoch 7; epochs present: 2, 3" in err


def _encoded_x(x, seed_index, data):
    """x* in the pool's stored form (pools/codec.py), against x0 = the rows ``seed_index``."""
    from m2m_pipeline.pools.codec import encode_rows

    rows = encode_rows({"x": x, "seed_index": seed_index, "seed_aug": np.zeros((len(x), 3), np.int16)}, data)
    return {k: rows[k] for k in ("x_delta", "x_exp")}


def test_bag_of_words_view_ranks_switched_words(tmp_path, digits):
    """A hand-made vector pool over a 4-word vocabulary: x0 = row 0 of the training split."""
    from dataclasses import replace

    from m2m_pipeline.datasets import PreparedData, Split

    train = Split(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]], np.float32), np.array([0, 0, 1]))
    data = PreparedData(name="toy", class_names=["earn", "gold"], train=train, val=train, test=train,
                        input_kind="vector", input_range=(0.0, 1.0), mean=[0.0], std=[1.0], augment={}, preset="text",
                        meta={"vocabulary": ["oil", "gold", "price"]})
    data = replace(data, fingerprint=data.compute_fingerprint())
    with PoolWriter(tmp_path / "p", n_rows=1, input_shape=(4,), input_kind="vector", rows_per_shard=1) as w:
        w.write_rows(0, {"slot": np.array([0]), "target": np.array([1], np.int32),
                         "seed_class": np.array([0], np.int32), "seed_index": np.array([0]),
                         "seed_aug": np.zeros((1, 3), np.int16),
                         **_encoded_x(np.array([[0.2, 0.9, 1.0, 0.0]], np.float32), np.array([0]), data),
                         "loss_g": np.array([0.1], np.float32),
                         "prob_g": np.array([0.95], np.float32), "u_beta": np.array([0.0]),
                         "accepted": np.array([True]), "reason": np.array([0], np.uint8)})
        w.finish(tiny_pool_attrs({"slot": [0], "reason": [0], "accepted": [True]}, class_counts=[2, 1],
                                 dataset="toy", dataset_fingerprint=data.fingerprint, params={"beta": 0.5}))
    pool = open_pool(tmp_path / "p")
    [item] = browse.word_changes(pool, data, np.array([0]))
    # x* - x0 = [-0.8, +0.9, 0, 0]: "gold" switched on, "oil" off; the 4th column is the unknown slot
    assert item["switched_on"] == [("gold", pytest.approx(0.9, abs=1e-3))]  # stored on a grid (codec)
    assert item["switched_off"] == [("oil", pytest.approx(-0.8, abs=1e-3))]
    assert (item["seed_class"], item["target"], item["decision"]) == ("earn", "gold", "accepted")
    out, _ = browse.show_pool(tmp_path / "p", data, tmp_path / "words.md")
    assert "| 0 | earn → gold | 0.95 | accepted | gold (+0.90) | oil (-0.80) |" in out.read_text()


# -- stats -----------------------------------------------------------------------------------------

def _toy_pool(path):
    """Three classes of sizes 5, 3, 1 and beta 0.5; six attempts with hand-set outcomes."""
    t = np.array([2, 2, 2, 1, 1, 2], np.int32)
    s = np.array([0, 0, 0, 0, 0, 1], np.int32)
    acc = np.array([True, True, False, False, True, False])
    reason = np.array([0, 0, 1, 2, 0, 2], np.uint8)
    n = len(t)
    with PoolWriter(path, n_rows=n, input_shape=(2,), input_kind="vector", rows_per_shard=4,
                    class_names=["big", "mid", "small"]) as w:
        w.write_plan(np.arange(9), np.ones(9, bool), np.zeros((9, 3), np.int16))
        w.write_rows(0, {"slot": np.arange(n), "target": t, "seed_class": s, "seed_index": np.arange(n),
                         "seed_aug": np.zeros((n, 3), np.int16), "x_delta": np.zeros((n, 2), np.int16),
                         "x_exp": np.zeros(n, np.int8),
                         "loss_g": np.array([0.1, 0.3, 0.2, 2.0, 0.4, 1.0], np.float32),
                         "prob_g": np.full(n, 0.5, np.float32), "u_beta": np.zeros(n), "accepted": acc,
                         "reason": reason})
        w.finish(tiny_pool_attrs({"slot": t, "reason": reason, "accepted": acc}, class_counts=[5, 3, 1], n_slots=9,
                                 dataset="toy", epoch=4, params={"beta": 0.5, "gamma": 0.9, "gamma_on": "prob"}))
    return open_pool(path)


def test_pool_stats_by_hand(tmp_path):
    stats = browse.pool_stats(_toy_pool(tmp_path / "p"))
    pairs = {(p["seed_class"], p["target"]): p for p in stats["pairs"]}
    assert set(pairs) == {(0, 2), (0, 1), (1, 2)}
    # (0 -> 2): 3 attempts, 2 accepted; eq. (3): 1 - 0.5^(5-1) = 0.9375; beta failed once
    p = pairs[(0, 2)]
    assert (p["attempts"], p["accepted"]) == (3, 2) and p["accept_rate"] == pytest.approx(2 / 3)
    assert p["eq3_rate"] == pytest.approx(0.9375) and p["beta_pass_rate"] == pytest.approx(2 / 3)
    assert p["mean_loss_g"] == pytest.approx(0.2, abs=1e-6)
    # (0 -> 1): 1 - 0.5^(5-3) = 0.75; (1 -> 2): 1 - 0.5^(3-1) = 0.75
    assert pairs[(0, 1)]["eq3_rate"] == pytest.approx(0.75) and pairs[(0, 1)]["accept_rate"] == 0.5
    assert pairs[(1, 2)]["eq3_rate"] == pytest.approx(0.75) and pairs[(1, 2)]["accepted"] == 0
    c = {x["name"]: x for x in stats["classes"]}
    assert (c["small"]["attempts"], c["small"]["replaced"], c["small"]["class_size"]) == (4, 2, 1)
    assert (c["mid"]["attempts"], c["mid"]["replaced"]) == (2, 1)
    assert c["big"]["attempts"] == 0 and not c["big"]["no_accepted"] and stats["flagged"] == []
    att, rate = browse.acceptance_matrix(stats, 3)
    assert att.tolist() == [[0, 2, 3], [0, 0, 1], [0, 0, 0]] and np.isnan(rate[2, 0])
    # slots per class from the plan's order over training labels [0,0,0,0,0,1,1,1,2]
    stats = browse.add_slot_counts(stats, _toy_pool(tmp_path / "p"), np.array([0] * 5 + [1] * 3 + [2]))
    assert [x["slots"] for x in stats["classes"]] == [5, 3, 1]
    text = browse.format_stats(stats)
    assert "| big → small | 3 | 2 | 66.7 | 93.8 | 66.7 | 0.200 | 0.500 |" in text


def test_pools_stats_command(pool_tree, capsys, digits):
    out = pool_tree / "stats"
    code, stdout, err = _run_cli(["pools", "stats", pool_tree / "pools/digits/M2m-seed0", "--json", "--out", out,
                                  "--prepared", pool_tree / "data/prepared/digits"], capsys)
    assert code == 0, err
    stats = json.loads(stdout[: stdout.rindex("}") + 1])
    rows = open_pool(pool_tree / "pools/digits/M2m-seed0/epoch_3").rows()
    assert stats["epoch"] == 3 and stats["attempts"] == len(rows["target"])  # the last epoch by default
    has_seed = rows["seed_class"] >= 0
    assert sum(p["attempts"] for p in stats["pairs"]) == int(has_seed.sum())
    assert sum(p["accepted"] for p in stats["pairs"]) == int(rows["accepted"].sum())
    for c in stats["classes"]:
        assert c["attempts"] == int((rows["target"] == c["class"]).sum())
        assert c["class_size"] == int(digits.class_counts[c["class"]])
        assert c["no_accepted"] == (c["attempts"] > 0 and c["replaced"] == 0)
    assert sum(c["slots"] for c in stats["classes"]) == stats["n_plan_slots"]
    assert (out / "heatmap.png").is_file() and (out / "epochs.png").is_file()
    rates = browse.epoch_rates(pool_tree / "pools/digits/M2m-seed0")
    assert rates["epochs"] == list(EPOCHS) and rates["rates"].shape == (10, 2)
    code, stdout, _ = _run_cli(["pools", "stats", pool_tree / "pools/digits/M2m-seed0", "-e", 2, "--out", out,
                                "--prepared", pool_tree / "data/prepared/digits"], capsys)
    assert code == 0 and "| k0 → k | attempts | accepted | accept % | eq. (3) % |" in stdout


# -- report and Chromium ---------------------------------------------------------------------------

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium():
    """Debian's chromium; installed once with apt when missing and running as root, else a skip."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], env=env, capture_output=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired):
            pass
        exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("headless Chromium is not installed and could not be installed with `apt-get install chromium` "
                    "(needs root and the Debian archive)")
    return exe


def test_pools_report_is_self_contained(pool_tree, capsys):
    out = pool_tree / "report"
    code, stdout, err = _run_cli(["pools", "report", pool_tree / "pools/digits/M2m-seed0", "--epoch", 2,
                                  "--per-class", 3, "--out", out, "--prepared", pool_tree / "data/prepared/digits"],
                                 capsys)
    assert code == 0, err
    page = (out / "index.html").read_text()
    targets = sorted(set(open_pool(pool_tree / "pools/digits/M2m-seed0/epoch_2").array("target").tolist()))
    assert page.count('class="class-grid"') == len(targets)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    srcs = [chunk.split('"', 1)[0] for chunk in page.split('src="')[1:]]
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def test_pools_report_in_headless_chromium(pool_tree, chromium, tmp_path):
    out = pool_tree / "report-chromium"
    from m2m_pipeline.jobs.data import load_prepared
    from m2m_pipeline.pools.browse.report import build_pool_report

    page = build_pool_report(pool_tree / "pools/digits/M2m-seed0/epoch_3",
                             load_prepared(pool_tree / "data/prepared/digits"), out, per_class=2)
    # no network needed: copy the page alone into a fresh folder, as a user would mail it
    alone = tmp_path / "alone.html"
    shutil.copy(page, alone)
    proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                           "--enable-logging=stderr", "--v=0", "--dump-dom", alone.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    dom = proc.stdout
    from m2m_pipeline.pools.browse.selection import SHOW_ROW_ARRAYS
    from m2m_pipeline.pools.browse.report import class_rows

    rows = open_pool(pool_tree / "pools/digits/M2m-seed0/epoch_3").rows(SHOW_ROW_ARRAYS)
    targets = sorted(set(rows["target"].tolist()))
    assert dom.count('class="class-grid"') == len(targets) > 0
    for k in targets:  # each class's grid holds its chosen rows, accepted ones first
        section = dom.split(f'data-target="{k}"', 1)[1].split("</section>", 1)[0]
        assert section.count("<img") == len(class_rows(rows, k, 2)) > 0
    assert dom.count("<img") == sum(len(class_rows(rows, k, 2)) for k in targets) + 2  # + heatmap, epoch chart


# -- CLI items -------------------------------------------------------------------------------------

def test_version_does_not_import_torch():
    code = ("import sys; from typer.testing import CliRunner; from m2m_pipeline.cli import app; "
            "r = CliRunner().invoke(app, ['version']); print(r.output.strip(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.split() == ["0.1.0", "False"], out.stderr


def test_choices_and_missing_prerequisites(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run_cli(["table", "--which", "median", "--params", ROOT / "params.yaml"], capsys)
    assert code == 2 and "median" in err
    code, _, err = _run_cli(["warm-f", "--loss", "hinge", "--params", ROOT / "params.yaml"], capsys)
    assert code == 2 and "hinge" in err
    code, _, err = _run_cli(["evaluate", "--method", "NoSuch", "--params", ROOT / "params.yaml"], capsys)
    assert code == 2 and err.startswith("error: --method 'NoSuch' is not a method; choose one of: ERM,")
    code, _, err = _run_cli(["generate", "--dataset", "digits", "--seed", "0", "--params", ROOT / "params.yaml"],
                            capsys)
    assert code == 2 and err.count("\n") == 1 and "generate needs 3 missing inputs" in err
    for cmd in ("m2m-pipeline prepare --dataset digits", "m2m-pipeline pretrain-g --dataset digits --seed 0",
                "m2m-pipeline warm-f --dataset digits --seed 0"):
        assert cmd in err


def test_pools_info_and_no_legacy_pool_group(pool_tree, capsys):
    code, out, _ = _run_cli(["pools", "info", pool_tree / "pools/digits/M2m-seed0/epoch_2"], capsys)
    assert code == 0 and json.loads(out)["epoch"] == 2
    result = runner.invoke(app, ["--help"])
    listed = [line.split()[1] for line in result.output.splitlines() if line.startswith("│ ") and len(line.split()) > 1]
    assert "pools" in listed and "pool" not in listed
    gone = runner.invoke(app, ["pool", "info", str(pool_tree / "pools/digits/M2m-seed0/epoch_2")])
    assert gone.exit_code == 2 and "No such command 'pool'" in gone.output   # the legacy group is removed


# -- the paper's figures and the results summary -----------------------------------------------------

def _predictions(tmp_path, method, seed, y_pred):
    from m2m_pipeline.evaluation import balanced_subset

    y = np.array([0, 0, 0, 1, 1, 2])
    sub = balanced_subset(y, 2)
    path = tmp_path / f"{method}-seed{seed}.npz"
    np.savez(path, y_true=y, y_pred=np.asarray(y_pred), feature_index=sub,
             features=np.random.default_rng(seed).normal(size=(len(sub), 4)).astype(np.float32),
             class_counts=np.array([50, 20, 5]), class_names=np.array(["a", "b", "c"]), method=np.array(method),
             seed=np.array(seed), epoch=np.array(3), checkpoint=np.array("best"))
    return path


def test_false_positives_and_figures(tmp_path):
    from m2m_pipeline.reports.figures import false_positives_of, load_predictions, paper_figures, per_class_recall_of

    # truth 0 0 0 1 1 2; ERM predicts everything of 1 and 2 as 0: class 0 gets 3 false positives
    erm = _predictions(tmp_path, "ERM", 0, [0, 0, 0, 0, 0, 0])
    m2m = _predictions(tmp_path, "M2m", 0, [0, 1, 0, 1, 1, 2])
    d_erm, d_m2m = load_predictions([erm, m2m])
    assert false_positives_of(d_erm).tolist() == [3, 0, 0]
    assert false_positives_of(d_m2m).tolist() == [0, 1, 0]
    np.testing.assert_allclose(per_class_recall_of(d_m2m), [2 / 3, 1.0, 1.0])
    figs = paper_figures([erm, m2m], tmp_path / "fig", dataset="toy")
    assert sorted(figs) == ["confusion", "cumulative_fp", "recall_vs_size", "tsne"]
    assert all(p.is_file() and p.stat().st_size > 5000 for p in figs.values())


def test_penultimate_features_hook(trained, digits):
    import torch

    from m2m_pipeline.evaluation import balanced_subset, penultimate_features

    model = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt", data=digits))
    idx = balanced_subset(digits.test.y, 3)
    assert np.bincount(digits.test.y[idx]).tolist() == [3] * 10
    feats = penultimate_features(model, digits, digits.test.x[idx])
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert feats.shape == (30, last.in_features)
    with torch.no_grad():  # the last layer applied to the features gives the model's logits
        logits = model.eval()(digits.to_float(digits.test.x[idx]))
        np.testing.assert_allclose(last(torch.from_numpy(feats)).numpy(), logits.numpy(), rtol=1e-4, atol=1e-4)


def test_flat_summary_and_curves(tmp_path):
    from m2m_pipeline.reports import flat_summary, write_curves

    def res(method, seed, gm_corr=None):
        test = {"bacc": 70.0 + seed, "gm": 0.0, "major": 90.0, "minor": 60.0}
        if gm_corr is not None:
            test["gm_corrected"] = gm_corr
        return {"method": method, "seed": seed, "best_val": {"epoch": 41, "test": test, "val": test},
                "last": {"epoch": 59, "test": test, "val": test}}

    summary = flat_summary({"M2m": [res("M2m", 0, 12.5), res("M2m", 1)], "ERM": [res("ERM", 0, 3.0)]})
    assert list(summary) == ["ERM", "M2m"]
    assert summary["M2m"]["seed0"] == {"bacc": 70.0, "gm": 0.0, "gm_corrected": 12.5, "major": 90.0,
                                       "minor": 60.0, "epoch": 41}
    assert "gm_corrected" not in summary["M2m"]["seed1"]  # an old metrics file: left out, not a string

    def numbers_only(node):
        return all(numbers_only(v) for v in node.values()) if isinstance(node, dict) else isinstance(node, (int, float))

    assert numbers_only(summary)
    (tmp_path / "ERM-seed0.json").write_text(json.dumps([{"epoch": 0, "val_bacc": 50.0, "val_gm": 1.0,
                                                          "train_loss": 2.0, "lr": 0.1}]))
    (tmp_path / "M2m-seed0.json").write_text(json.dumps([{"epoch": 40, "val_bacc": 60.0, "val_gm": 2.0,
                                                          "train_loss": 1.0, "n_accepted": 7, "pool": "x"}]))
    rows = json.loads(write_curves(sorted(tmp_path.glob("*.json")), tmp_path / "curves.json").read_text())
    assert [r["method"] for r in rows] == ["ERM", "M2m"]
    assert all(set(r) == {"method", "seed", "epoch", "val_bacc", "val_gm", "train_loss"} for r in rows)


def test_write_predictions_round_trip(tmp_path, trained, digits):
    from m2m_pipeline.evaluation import write_predictions
    from m2m_pipeline.reports.figures import load_predictions
    from m2m_pipeline.training import predict

    path = write_predictions(trained / "g", digits, tmp_path / "ERM-seed0.npz", method="ERM", seed=0,
                             checkpoint="last", features_per_class=4)
    [d] = load_predictions([path])
    model = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt", data=digits))
    assert np.array_equal(d["y_pred"], predict(model, digits, digits.test))
    assert np.array_equal(d["y_true"], digits.test.y) and d["features"].shape[0] == 40
    assert (d["method"], d["seed"], d["class_names"]) == ("ERM", 0, digits.class_names)


@pytest.mark.realdata
def test_embedding_view_finds_the_tokens_on_real_twitter(tmp_path):
    """x0 and x* that are exactly training tokens' embeddings have a nearest token at cosine 1."""
    from m2m_pipeline.datasets import create_dataset

    from tests.conftest import SHARED_DATASETS

    root = SHARED_DATASETS / "twitter-pos"
    if not root.exists():
        pytest.skip(f"real data {root} is missing (a fresh clone has no ../shared/datasets)")
    data = create_dataset("twitter", data_root=root)
    assert browse.view_kind(data) == "embedding"
    x_star = data.train.x[[5, 7]]
    with PoolWriter(tmp_path / "p", n_rows=2, input_shape=data.input_shape, input_kind="vector", rows_per_shard=2) as w:
        w.write_rows(0, {"slot": np.arange(2), "target": data.train.y[[5, 7]].astype(np.int32),
                         "seed_class": data.train.y[[3, 4]].astype(np.int32), "seed_index": np.array([3, 4]),
                         "seed_aug": np.zeros((2, 3), np.int16), **_encoded_x(x_star, np.array([3, 4]), data),
                         "loss_g": np.zeros(2, np.float32), "prob_g": np.ones(2, np.float32), "u_beta": np.zeros(2),
                         "accepted": np.ones(2, bool), "reason": np.zeros(2, np.uint8)})
        w.finish(tiny_pool_attrs({"slot": [0, 1], "reason": [0, 0], "accepted": [True, True]},
                                 class_counts=data.class_counts, dataset="twitter",
                                 dataset_fingerprint=data.fingerprint, params={"beta": 0.9}))
    items = browse.nearest_tokens(open_pool(tmp_path / "p"), data, np.arange(2), top=3)
    for it in items:
        assert it["near_x0"][0][1] == pytest.approx(1.0, abs=1e-4)
        assert it["near_x_star"][0][1] == pytest.approx(1.0, abs=1e-3)  # x* is stored on a grid (codec)
    out, _ = browse.show_pool(tmp_path / "p", data, tmp_path / "tokens.md", limit=2)
    assert "| nearest to x0 | nearest to x* |" in out.read_text()


# -- hostile --out and hostile class names (issue 20, items 6 and 12) ------------------------------

def _one_line(code, err, *needles):
    assert code == 2 and err.startswith("error: ") and err.strip().count("\n") == 0, (code, err)
    for n in needles:
        assert n in err, (n, err)


def _tree(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_browser_out_refuses_foreign_folders_files_and_other_extensions(pool_tree, capsys, tmp_path):
    run = pool_tree / "pools/digits/M2m-seed0"
    prep = ["--prepared", pool_tree / "data/prepared/digits"]
    # a folder of the user's own files, holding the names the browser writes: refused, untouched
    for cmd, name in (("report", "index.html"), ("stats", "heatmap.png")):
        mine = tmp_path / f"mine-{cmd}"
        mine.mkdir()
        (mine / name).write_text("my own")
        code, _, err = _run_cli(["pools", cmd, run, "--out", mine, *prep], capsys)
        _one_line(code, err, str(mine), "not empty and does not hold a pool browser output")
        assert _tree(mine) == {name: b"my own"}
    # a file where the folder should be, or above it: one line, not a FileExistsError
    afile = tmp_path / "afile"
    afile.write_text("x")
    for cmd, out in (("report", afile), ("stats", afile / "sub"), ("show", afile / "rows.png")):
        code, _, err = _run_cli(["pools", cmd, run, "--out", out, *prep], capsys)
        _one_line(code, err, "is a file")
        assert afile.read_text() == "x"
    # an extension pools show does not write: one line listing those it does, before the pool is read
    code, _, err = _run_cli(["pools", "show", tmp_path / "no-such-run", "--out", tmp_path / "rows.bmpx"], capsys)
    _one_line(code, err, "'.bmpx'", ".png, .svg, .pdf, .md, .txt")
    code, _, err = _run_cli(["pools", "show", run, "--out", tmp_path / "rows.md", *prep], capsys)
    _one_line(code, err, "the image view of pools show writes .png, .svg, .pdf files, not '.md'")
    assert not (tmp_path / "rows.md").exists()
    # a folder, or a file pools show did not write: refused; its own file is replaced
    code, _, err = _run_cli(["pools", "show", run, "--out", tmp_path, *prep], capsys)
    _one_line(code, err, "is a folder")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG my photo")
    code, _, err = _run_cli(["pools", "show", run, "--out", tmp_path / "photo.png", *prep], capsys)
    _one_line(code, err, "was not written by pools show")
    assert (tmp_path / "photo.png").read_bytes() == b"\x89PNG my photo"
    for _ in range(2):
        code, _, err = _run_cli(["pools", "show", run, "--limit", 2, "--out", tmp_path / "grid.svg", *prep], capsys)
        assert code == 0, err
    # the browser's own folders are rewritten, by either command
    ours = tmp_path / "ours"
    for cmd in ("stats", "report", "report"):
        code, _, err = _run_cli(["pools", cmd, run, "--out", ours, *prep], capsys)
        assert code == 0, err
    assert {"index.html", "heatmap.png", "epochs.png", browse.BROWSER_MARKER} == set(_tree(ours))


def test_browser_writes_every_file_atomically_on_a_full_disk(pool_tree, capsys, monkeypatch, tmp_path):
    """ENOSPC half-way through each write: the old index.html, heatmap.png and show PNG stay whole,
    no temporary file is left, and the command ends in one line."""
    import errno
    import pathlib

    import matplotlib.figure

    run = pool_tree / "pools/digits/M2m-seed0"
    prep = ["--prepared", pool_tree / "data/prepared/digits"]
    out, grid = tmp_path / "report", tmp_path / "grid.png"
    assert _run_cli(["pools", "report", run, "--out", out, *prep], capsys)[0] == 0
    assert _run_cli(["pools", "show", run, "--limit", 2, "--out", grid, *prep], capsys)[0] == 0
    before, grid_before = _tree(out), grid.read_bytes()
    real_savefig, real_write_bytes = matplotlib.figure.Figure.savefig, pathlib.Path.write_bytes

    def full_disk(path, data):
        with open(path, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    def savefig_fills_the_disk(fig, fname, **kw):
        import io

        buf = io.BytesIO()
        real_savefig(fig, buf, **kw)
        full_disk(fname, buf.getvalue())

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig_fills_the_disk)
    code, _, err = _run_cli(["pools", "report", run, "--out", out, *prep], capsys)
    _one_line(code, err, "no space left on device")
    code, _, err = _run_cli(["pools", "show", run, "--limit", 2, "--out", grid, *prep], capsys)
    _one_line(code, err, "no space left on device")
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", real_savefig)

    def index_fills_the_disk(self, data):
        if self.name.startswith("index.html"):
            full_disk(self, data)
        return real_write_bytes(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", index_fills_the_disk)
    code, _, err = _run_cli(["pools", "report", run, "--out", out, *prep], capsys)
    _one_line(code, err, "no space left on device")
    assert set(_tree(out)) == set(before)                     # no temporary file left
    for name in ("index.html", "heatmap.png", "epochs.png"):  # the old files whole
        assert _tree(out)[name] == before[name], name
    assert grid.read_bytes() == grid_before and sorted(p.name for p in tmp_path.iterdir()) == ["grid.png", "report"]


def test_pools_show_markdown_escapes_class_names_and_words(tmp_path):
    """Class names and vocabulary come from the data: the markdown of pools show (and of pools
    stats) shows them as text, as the HTML report does, and a `|` does not split a cell."""
    from dataclasses import replace

    from m2m_pipeline.datasets import PreparedData, Split

    names = ["<script>alert(1)</script>", "a|b"]
    train = Split(np.array([[1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 1, 1]], np.float32), np.array([0, 0, 1]))
    data = PreparedData(name="toy", class_names=names, train=train, val=train, test=train, input_kind="vector",
                        input_range=(0.0, 1.0), mean=[0.0], std=[1.0], augment={}, preset="text",
                        meta={"vocabulary": ["<img src=x onerror=alert(1)>", "gold|x", "price"]})
    data = replace(data, fingerprint=data.compute_fingerprint())
    with PoolWriter(tmp_path / "p", n_rows=1, input_shape=(4,), input_kind="vector", rows_per_shard=1) as w:
        w.write_rows(0, {"slot": np.array([0]), "target": np.array([1], np.int32),
                         "seed_class": np.array([0], np.int32), "seed_index": np.array([0]),
                         "seed_aug": np.zeros((1, 3), np.int16),
                         **_encoded_x(np.array([[0.2, 0.9, 1.0, 0.0]], np.float32), np.array([0]), data),
                         "loss_g": np.array([0.1], np.float32), "prob_g": np.array([0.95], np.float32),
                         "u_beta": np.array([0.0]), "accepted": np.array([True]), "reason": np.array([0], np.uint8)})
        w.finish(tiny_pool_attrs({"slot": [0], "reason": [0], "accepted": [True]}, class_counts=[2, 1],
                                 dataset="toy", dataset_fingerprint=data.fingerprint, params={"beta": 0.5}))
    out, _ = browse.show_pool(tmp_path / "p", data, tmp_path / "words.md")
    text = out.read_text()
    assert "<script" not in text and "<img" not in text
    row = next(line for line in text.splitlines() if line.startswith("| 0 |"))
    assert row == ("| 0 | &lt;script&gt;alert(1)&lt;/script&gt; → a\\|b | 0.95 | accepted | gold\\|x (+0.90) | "
                   "&lt;img src=x onerror=alert(1)&gt; (-0.80) |")
    assert row.replace("\\|", "").count("|") == 7   # six cells, as the header
    stats = browse.format_stats(browse.pool_stats(open_pool(tmp_path / "p"), class_names=names))
    assert "<script" not in stats and "| &lt;script&gt;alert(1)&lt;/script&gt; → a\\|b | 1 |" in stats
