#!/usr/bin/env python3
"""Thin entry point: `fastnst web` from a checkout (see fastnst/cli/web.py; `python scripts/web.py --help`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from fastnst.cli.web import web_main  # noqa: E402

if __name__ == "__main__":
    sys.exit(web_main())
