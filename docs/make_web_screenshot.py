"""Take the README's screenshot of the web app: the bundled photo stylized in headless Chromium.

    python docs/make_web_screenshot.py            # -> docs/web.png
    python docs/make_web_screenshot.py --style wave --photo my.jpg

Needs what tests/test_web.py needs (Chromium, playwright, web/node_modules). The page is shot at
--width CSS px and saved as a 256-colour PNG, which keeps it small for the repository.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.browser import chromium, missing, open_app, served, upload  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="starry_night")
    p.add_argument("--photo", type=Path, default=REPO / "fastnst" / "assets" / "sample_photo.jpg")
    p.add_argument("--width", type=int, default=960, help="viewport width, CSS px")
    p.add_argument("-o", "--output", type=Path, default=REPO / "docs" / "web.png")
    args = p.parse_args()
    reason = missing()
    if reason:
        raise SystemExit(reason)
    with served() as url, chromium() as browser:
        page = open_app(browser, url, viewport=(args.width, 800))
        page.click(f"#styles button[data-style='{args.style}']")
        if upload(page, args.photo) != "done":
            raise SystemExit(f"the page failed: {page.inner_text('#error')}")
        png = page.screenshot(full_page=True)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.output, optimize=True)
    print(f"wrote {args.output} ({image.size[0]}x{image.size[1]}, {args.output.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
