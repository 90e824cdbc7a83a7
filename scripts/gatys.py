#!/usr/bin/env python3
"""Thin entry point: `fastnst gatys` from a checkout (see fastnst/cli/gatys.py; `python scripts/gatys.py --help`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fastnst.cli.gatys import gatys_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(gatys_main())
