#!/usr/bin/env python3
"""Thin entry point: `fastnst train` from a checkout (see fastnst/cli/train.py; `python scripts/train.py --help`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fastnst.cli.train import train_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(train_main())
