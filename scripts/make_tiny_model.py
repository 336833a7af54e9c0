#!/usr/bin/env python3
"""Build the tiny NLLB models the tests and the demo use.

    python scripts/make_tiny_model.py DIR             # random weights (a second)
    python scripts/make_tiny_model.py --trained DIR   # trained on the CPU (minutes)

DIR then loads like any checkpoint: nllb-pipeline translate ... --model DIR

The trained one (models/trained.py: eng_Latn -> an invented "fra_Latn")
is committed in models/data/trained-tiny; after a change to its recipe,
regenerate it there with --trained models/data/trained-tiny (the suite
fails until the committed weights match the recipe).
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
    parser.add_argument("--trained", action="store_true",
                        help="train the translating test model (models/trained.py)")
    parser.add_argument("--seed", type=int, default=0, help="with --trained (default 0)")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.trained:
        from models.trained import build_trained_model

        path = build_trained_model(args.directory, seed=args.seed)
        print(f"trained tiny NLLB model written to {path} in "
              f"{time.perf_counter() - start:.1f} s")
        return 0
    path = build_tiny_model(args.directory, d_model=args.d_model, layers=args.layers)
    print(f"tiny NLLB model written to {path} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
