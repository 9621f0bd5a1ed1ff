"""The paper's numbers, transcribed as data (Kim, Jeong, Shin, CVPR 2020).

Row by row from Table 1 (CIFAR-LT-10/100 at rho = 100 and 10), Table 2 (CelebA-5, SUN397, Twitter,
Reuters), Table 6 (ImageNet-LT, Appendix C) and, for Major/Minor, Table 4 (CIFAR-LT-10, rho = 100);
and the ablation rows of Tables 3-5 (CIFAR-LT-10 at rho = 100, ResNet-32). Each value is
"mean±std" over the paper's three trials, in percent. A row is named by our method name (the
paper's "Loss | Re-balancing": ERM|- = ERM, ERM|DRS = DRS, ERM|M2m = M2m, LDAM|DRW = LDAM-DRW,
LDAM|M2m = LDAM-M2m, ...); the paper has no ERM+DRW row, so DRW has no paper number.
"""

from __future__ import annotations

_TABLE1_COLUMNS = ("cifar10-lt-r100", "cifar10-lt-r10", "cifar100-lt-r100", "cifar100-lt-r10")
_TABLE1 = """
ERM       68.7±1.43 66.4±1.69 86.0±0.69 85.8±0.50 37.2±1.12 21.5±1.66 56.2±0.69 51.8±0.63
RS        70.4±1.15 69.0±1.36 86.6±0.37 86.4±0.37 31.6±1.26 17.7±1.33 54.8±0.47 50.3±0.68
SMOTE     71.5±0.57 70.2±0.93 85.7±0.25 85.5±0.26 34.0±0.33 19.6±0.36 53.8±0.93 49.4±1.15
RW        72.8±0.33 72.0±0.29 86.6±0.18 86.5±0.16 30.1±0.59 17.6±0.85 56.0±0.35 52.0±0.51
CB-RW     71.2±1.14 70.0±1.28 86.8±0.49 86.6±0.53 38.6±0.46 22.5±0.49 55.9±0.24 52.0±0.42
DRS       75.2±0.26 73.9±0.17 87.1±0.26 87.0±0.29 41.5±0.21 31.0±0.21 57.7±0.40 54.8±0.33
M2m       78.3±0.16 77.8±0.16 87.9±0.21 87.5±0.15 42.9±0.16 33.0±0.11 58.2±0.08 55.3±0.05
Focal     68.3±1.19 65.5±1.71 85.3±0.47 85.1±0.47 37.7±1.38 22.1±1.49 55.3±0.42 50.7±0.43
LDAM      72.8±0.37 70.8±0.65 86.2±0.12 86.0±0.15 39.5±0.69 20.8±0.49 54.7±0.16 44.1±0.53
LDAM-DRW  77.1±0.49 76.7±0.59 87.1±0.28 86.9±0.28 42.1±0.09 29.2±0.27 56.9±0.15 50.4±0.29
LDAM-M2m  79.1±0.19 78.6±0.19 87.5±0.15 87.4±0.19 43.5±0.22 34.2±0.62 57.6±0.14 51.8±0.38
"""

_TABLE2_COLUMNS = ("celeba5", "sun397", "twitter", "reuters")
_TABLE2 = """
ERM       72.7±1.24 69.4±0.97 31.5±0.07 20.2±0.74 74.7±0.46 65.2±1.10 59.8±1.17 53.8±1.75
RS        72.5±0.93 70.4±1.37 28.4±0.19 19.8±1.10 75.8±0.30 70.4±1.67 63.3±0.90 57.4±1.03
SMOTE     72.8±1.07 70.7±0.84 23.7±0.09 14.8±0.39 75.8±0.38 69.5±0.30 62.5±1.30 56.8±1.69
RW        74.5±0.50 73.4±0.87 31.3±0.20 25.3±0.12 76.2±0.95 73.5±1.46 65.0±1.08 59.2±1.84
CB-RW     74.2±0.59 72.3±0.50 31.7±0.13 25.1±0.51 77.5±0.40 73.6±0.79 64.8±0.45 57.6±1.62
DRS       73.1±0.68 71.2±0.62 30.7±0.34 24.2±0.40 77.8±0.85 74.3±1.48 62.4±0.39 56.0±1.34
M2m       75.6±0.16 74.6±0.34 32.4±0.17 25.8±0.29 78.2±0.35 74.8±0.78 66.3±0.42 60.5±0.52
Focal     72.7±0.57 69.7±1.42 31.2±0.14 21.3±0.71 74.2±2.35 70.4±4.03 59.4±0.42 53.0±0.74
LDAM      73.0±1.14 68.0±2.19 30.2±0.10 14.4±0.83 74.6±0.40 66.1±2.28 63.0±1.36 57.6±0.50
LDAM-DRW  74.4±0.33 72.3±0.82 31.6±0.10 23.6±0.36 78.0±0.87 74.4±1.28 64.1±0.31 56.9±1.08
LDAM-M2m  75.9±1.09 75.0±0.94 33.3±0.20 24.9±0.76 78.8±0.21 76.0±0.23 70.0±0.68 63.9±0.49
"""

_TABLE6_COLUMNS = ("imagenet-lt",)
_TABLE6 = """
ERM       38.6±0.75 26.9±0.78
DRS       40.8±0.67 31.6±1.05
M2m       42.2±0.51 33.1±0.64
LDAM      41.0±0.07 28.5±0.11
LDAM-DRW  43.0±0.17 34.5±0.17
LDAM-M2m  43.7±0.26 35.1±0.35
"""

# Table 4 (CIFAR-LT-10, rho = 100): Major (2 classes) and Minor (8 classes) for ERM-RS and M2m.
_TABLE4_MAJOR_MINOR = {"cifar10-lt-r100": {"RS": ((92.8, 1.50), (64.8, 1.18)), "M2m": ((93.3, 0.85), (74.6, 0.34))}}

TABLE_OF = {**{c: "Table 1" for c in _TABLE1_COLUMNS}, **{c: "Table 2" for c in _TABLE2_COLUMNS},
            **{c: "Table 6" for c in _TABLE6_COLUMNS}}


def _parse(block: str, columns: tuple[str, ...]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {c: {} for c in columns}
    for line in block.strip().splitlines():
        method, *cells = line.split()
        if len(cells) != 2 * len(columns):
            raise ValueError(f"paper row {method!r}: {len(cells)} cells for {len(columns)} columns")
        for i, col in enumerate(columns):
            (b, bs), (g, gs) = (tuple(float(v) for v in cells[2 * i + j].split("±")) for j in (0, 1))
            out[col][method] = {"bacc": b, "bacc_std": bs, "gm": g, "gm_std": gs}
    return out


PAPER: dict[str, dict[str, dict[str, float]]] = {
    **_parse(_TABLE1, _TABLE1_COLUMNS), **_parse(_TABLE2, _TABLE2_COLUMNS), **_parse(_TABLE6, _TABLE6_COLUMNS)}
for _col, _rows in _TABLE4_MAJOR_MINOR.items():
    for _m, ((_ma, _mas), (_mi, _mis)) in _rows.items():
        PAPER[_col][_m].update(major=_ma, major_std=_mas, minor=_mi, minor_std=_mis)


def paper_key(dataset: str, rho: float | None = None) -> str | None:
    """The paper's column for a dataset name of the registry: ``cifar10-lt`` / ``cifar100-lt`` by
    ``rho`` (100, the recipe's default, or 10), the others by name; None where the paper has no
    column (``digits``, ``text:<dir>``, ``images:<dir>``, or a CIFAR-LT rho other than 10/100)."""
    if dataset in ("cifar10-lt", "cifar100-lt"):
        r = 100.0 if rho is None else float(rho)
        if r not in (10.0, 100.0):
            return None
        return f"{dataset}-r{int(r)}"
    return dataset if dataset in PAPER else None


def paper_numbers(dataset: str, rho: float | None = None) -> dict[str, dict[str, float]]:
    """{method: {"bacc", "bacc_std", "gm", "gm_std"[, "major", "minor", ...]}} of the paper, or {}."""
    key = paper_key(dataset, rho)
    return {m: dict(v) for m, v in PAPER[key].items()} if key else {}


# -- ablations (Sec. 3.4 and Appendix B: Tables 3-5, CIFAR-LT-10 at rho = 100, ResNet-32) -------------

# The paper's ablation rows, "mean±std" in percent: (Major, Minor, bACC, GM); None where the table
# has no such column. Our names: "M2m (lambda = 0)" = M2m-Lambda0; ERM-RS = RS; ERM-DRS = DRS; Table 5's
# "M2m (gamma = 0)", the threshold switched off under the release's probability rule (the text's
# gamma = infinity under the loss rule), = M2m-No-Gamma; Table 3's "# Seeds" n = M2m-Seeds<n>.
_ABLATIONS_CIFAR10_R100 = """
M2m            93.3±0.85 74.6±0.34 78.3±0.16 77.8±0.16
M2m-Lambda0    92.8±0.97 73.0±0.10 76.9±0.15 76.5±0.11
M2m-Clean      78.4±2.45 72.7±0.60 73.5±0.81 73.0±0.93
RS             92.8±1.50 64.8±1.18 70.4±1.15 69.0±1.36
M2m-RS         92.9±2.99 69.4±0.84 74.1±0.10 73.1±0.14
M2m-RS-Rand    93.6±2.34 66.1±1.04 71.6±0.36 70.3±0.80
DRS            -         -         75.2±0.26 73.9±0.32
M2m-Self       -         -         75.9±0.27 74.9±0.32
M2m-No-Reject  -         -         77.4±0.33 76.8±0.40
M2m-No-Gamma   -         -         76.9±0.19 76.4±0.20
M2m-Ensemble   -         -         78.5±0.20 78.0±0.22
M2m-Seeds10    -         -         74.9±0.29 73.7±0.33
M2m-Seeds50    -         -         76.2±0.30 75.3±0.29
M2m-Seeds100   -         -         76.5±0.34 75.6±0.41
M2m-Seeds200   -         -         76.7±0.51 75.9±0.59
M2m-Seeds500   -         -         77.4±0.38 76.8±0.31
"""


def _parse_ablations(block: str) -> dict[str, dict[str, tuple[float, float]]]:
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for line in block.strip().splitlines():
        method, *cells = line.split()
        row = {}
        for key, cell in zip(("major", "minor", "bacc", "gm"), cells):
            if cell != "-":
                mean, std = (float(v) for v in cell.split("±"))
                row[key] = (mean, std)
        out[method] = row
    return out


PAPER_ABLATIONS = {"cifar10-lt-r100": _parse_ablations(_ABLATIONS_CIFAR10_R100)}


__all__ = ["PAPER", "PAPER_ABLATIONS", "TABLE_OF", "paper_key", "paper_numbers"]
