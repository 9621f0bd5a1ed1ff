"""What every stage script shares: the params file and the one-line error exit."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

from m2m_pipeline.params import load_params
from m2m_pipeline.utils import M2mError


def run_stage(description: str, add_args: Callable[[argparse.ArgumentParser], None],
              work: Callable[[argparse.Namespace, dict], None]) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="params file")
    add_args(parser)
    args = parser.parse_args()
    try:
        work(args, load_params(args.params))
    except M2mError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
