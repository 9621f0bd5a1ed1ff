"""System tests: CLI, DVC, faults, README, browser, benchmarks. ``load_benchmark`` imports a script of
benchmarks/ (not a package) by file name, for the tests of the benchmarks."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
