#!/usr/bin/env python3
"""Thin entry point: `fastnst export` from a checkout (see fastnst/cli/export.py; `python scripts/export.py --help`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fastnst.cli.export import export_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(export_main())
