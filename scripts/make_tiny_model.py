#!/usr/bin/env python3
"""Build the tiny random-weight NLLB model used by the tests and the demo.

    python scripts/make_tiny_model.py DIR

DIR then loads like any checkpoint: nllb-pipeline translate ... --model DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.tiny import build_tiny_model  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    args = parser.parse_args()
    start = time.perf_counter()
    path = build_tiny_model(args.directory, d_model=args.d_model, layers=args.layers)
    print(f"tiny NLLB model written to {path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
