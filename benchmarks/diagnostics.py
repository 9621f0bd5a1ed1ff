"""Diagnostic variants for the reproduction analysis (docs/results.md), never used to choose anything.

    python benchmarks/diagnostics.py --dataset reuters --data-root ../shared/datasets/reuters-r52 \
        --seeds 0 1 2 --out runs/diag/reuters-ldam-drs.json --methods LDAM-DRS LDAM-DRW LDAM-M2m
    python benchmarks/diagnostics.py ... --methods M2m LDAM-M2m --m2m gamma_on=loss

A thin wrapper over benchmarks/reproduce.py (same arguments; the scratch folder defaults to
runs/diag/<stem of --out>) that first registers ablation methods
which are not part of the paper's comparison:

- ``LDAM-DRS``: the LDAM loss with deferred class-balanced re-sampling and no translation, i.e.
  LDAM-M2m without its translations; it separates M2m's translation from its re-sampling.

Any result of these runs reads the test set only to report it; the chosen hyper-parameters stay
those of benchmarks/select_params.py (validation only).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from m2m_pipeline.training.methods import MethodSpec, list_methods, register_method  # noqa: E402

if "LDAM-DRS" not in list_methods():
    register_method(MethodSpec("LDAM-DRS", loss="ldam", warm="ldam", deferred_order="balanced",
                               description="ablation: LDAM + deferred re-sampling (LDAM-M2m without translation)"))

import reproduce  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--work-dir" not in argv and "--out" in argv:
        # its own scratch folder, so it never replaces the reproduction's runs/bench/<dataset>
        argv += ["--work-dir", str(Path("runs/diag") / Path(argv[argv.index("--out") + 1]).stem)]
    return reproduce.main(argv)


if __name__ == "__main__":
    sys.exit(main())
