"""The validation curves of a dataset's runs, as one JSON list for DVC's plot overlay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

from ..layout import parse_run_name

CURVE_KEYS = ("method", "seed", "epoch", "val_bacc", "val_gm", "train_loss")


def write_curves(history_files: Iterable[str | Path], out: str | Path) -> Path:
    """The validation curves of a dataset's runs as ONE JSON list for DVC's plot overlay: a row per
    (run, epoch) with exactly the keys ``CURVE_KEYS`` (``method`` and ``seed`` from the file name
    ``<method>-seed<s>.json``). Every row has the same keys: DVC drops rows whose keys differ
    from the others', which is how M2m's curve (its rows carry pool counts) went missing."""
    rows = []
    for path in sorted(Path(p) for p in history_files):
        method, seed = parse_run_name(path.stem)
        seed = -1 if seed is None else seed
        for r in json.loads(path.read_text()):
            if not all(k in r for k in CURVE_KEYS[2:]):
                continue
            rows.append({"method": method, "seed": seed, **{k: r[k] for k in CURVE_KEYS[2:]}})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    return out


__all__ = ["CURVE_KEYS", "write_curves"]
