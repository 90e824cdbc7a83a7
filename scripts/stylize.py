#!/usr/bin/env python3
"""Thin entry point: `fastnst stylize` from a checkout (see fastnst/cli/stylize.py; `python scripts/stylize.py --help`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fastnst.cli.stylize import stylize_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(stylize_main())
