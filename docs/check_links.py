"""Check that every relative link in the docs resolves: the file exists, and a #fragment into a
Markdown file names one of its headings (GitHub's heading ids). Standard library only.

    python docs/check_links.py                 # README.md, BENCHMARKS.md, docs/*.md
    python docs/check_links.py FILE.md ...

Prints each broken link as FILE:LINE: target, and exits 1 if there is any.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def slug(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]{2,}|`", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            base = slug(line.lstrip("#"))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken(path: Path) -> list[str]:
    bad = []
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
        if fenced or line.startswith("    "):
            continue
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file, _, fragment = target.partition("#")
            resolved = (path.parent / file).resolve() if file else path
            if not resolved.exists():
                bad.append(f"{path.relative_to(REPO)}:{number}: {target} (no such file)")
            elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
                bad.append(f"{path.relative_to(REPO)}:{number}: {target} (no such heading)")
    return bad


def main() -> None:
    files = [Path(f).resolve() for f in sys.argv[1:]] or \
        [REPO / "README.md", REPO / "BENCHMARKS.md", *sorted((REPO / "docs").glob("*.md"))]
    bad = [b for f in files for b in broken(f)]
    print("\n".join(bad) if bad else f"{len(files)} files: every relative link resolves")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
