"""Make the style picker's thumbnails, web/thumbs/<style>.jpg, from the paintings the models learned.

    python web/make_thumbnails.py            # from ../shared/data/style, for every exported/*.onnx

Each model's metadata names its style image and that image's sha256 (fastnst.style_name,
fastnst.style_sha256), so the thumbnail is made from exactly the file the model was trained on and
a mismatch is refused. Thumbnails are 160 px on the longer side (the page shows them at 96 CSS px),
JPEG quality 75: a few KB each.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fastnst.runtime import OnnxStylizer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--styles", type=Path, default=REPO.parent / "shared" / "data" / "style")
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--out", type=Path, default=REPO / "web" / "thumbs")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for model in sorted((REPO / "exported").glob("*.onnx")):
        meta = OnnxStylizer(model, threads=1).meta
        src = args.styles / f"{meta['style_name']}.jpg"
        if hashlib.sha256(src.read_bytes()).hexdigest() != meta["style_sha256"]:
            raise SystemExit(f"{src} is not the image {model.name} was trained on")
        image = Image.open(src).convert("RGB")
        image.thumbnail((args.size, args.size), Image.LANCZOS)
        dst = args.out / f"{model.stem}.jpg"
        image.save(dst, quality=75, optimize=True)
        print(f"{dst.relative_to(REPO)}: {image.size[0]}x{image.size[1]}, {dst.stat().st_size} bytes, from {src.name}")


if __name__ == "__main__":
    main()
