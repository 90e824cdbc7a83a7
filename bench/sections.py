"""Generated sections of a Markdown file (BENCHMARKS.md, README.md), between two marker comments.

Each harness owns its section; rerunning it replaces that section and leaves the rest of the file,
hand-written text included, as it was.
"""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, begin: str, end: str, body: str, heading: str = "") -> None:
    """Replace what lies between ``begin`` and ``end`` in ``path`` with ``body`` (ending in a newline);
    without the markers, append them (after ``heading``, if given) with the body between."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + begin + "\n" + body + text[text.index(end):]
    else:
        text = text.rstrip() + f"\n\n{heading}{begin}\n{body}{end}\n"
    path.write_text(text)
