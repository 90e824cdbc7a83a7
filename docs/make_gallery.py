"""Build the README gallery: each shipped style on a few held-out photos, as small JPEGs.

    python docs/make_gallery.py exported/*.onnx

Writes docs/gallery/<style>.jpg (the style image), docs/gallery/photo_<i>.jpg and
docs/gallery/<style>_<i>.jpg, and the table between the gallery markers in README.md. The photos
are the first --photos names of the models' one evaluation list (configs/holdout.txt), so
none of them was trained on. Everything is stylized at --size px and saved at --thumb px, JPEG
quality 80: the whole gallery stays well under the 3 MB the README budget allows.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench.quality import find_style  # noqa: E402
from bench.sections import write_section  # noqa: E402
from fastnst.runtime import StylizeOptions, open_model, stylize_file  # noqa: E402
from fastnst.train_config import read_holdout  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MARK_BEGIN, MARK_END = "<!-- gallery begin -->", "<!-- gallery end -->"


def thumb(src: Path, dst: Path, size: int) -> None:
    image = Image.open(src).convert("RGB")
    image.thumbnail((size, size), Image.LANCZOS)
    image.save(dst, quality=80, optimize=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--content", type=Path, default=REPO.parent / "shared" / "data" / "content")
    p.add_argument("--styles", type=Path, default=REPO.parent / "shared" / "data" / "style")
    p.add_argument("--photos", nargs="*", default=None, help="held-out photo names (default: the first --count)")
    p.add_argument("--count", type=int, default=3)
    p.add_argument("--size", type=int, default=512, help="stylize at this longer side, px")
    p.add_argument("--thumb", type=int, default=320, help="saved longer side, px")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "gallery")
    p.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    models = sorted(args.models)
    photos = args.photos or read_holdout(REPO / "configs" / "holdout.txt")[: args.count]

    rel = Path(os.path.relpath(args.out.resolve(), args.readme.resolve().parent)).as_posix()  # links from the README
    header = "| style | " + " | ".join(f"![photo {i + 1}]({rel}/photo_{i + 1}.jpg)" for i in range(len(photos))) + " |\n"
    header += "|---" * (len(photos) + 1) + "|\n"
    for i, name in enumerate(photos):
        thumb(args.content / name, args.out / f"photo_{i + 1}.jpg", args.thumb)
    lines = ""
    for model_path in models:
        model = open_model(model_path)
        style = model_path.stem
        style_file = find_style(args.styles, model.meta["style_name"], model.meta["style_sha256"], model_path)
        thumb(style_file, args.out / f"{style}.jpg", args.thumb // 2)
        cells = [f"**{style}**<br>![{style}]({rel}/{style}.jpg)"]
        for i, name in enumerate(photos):
            out = args.out / f"{style}_{i + 1}.jpg"
            # The user's path (runtime.stylize_file); a regenerated gallery replaces the old images.
            stylize_file(model, args.content / name, out, StylizeOptions(max_size=args.size), existing="replace")
            thumb(out, out, args.thumb)
            cells.append(f"![{style} {i + 1}]({rel}/{style}_{i + 1}.jpg)")
        lines += "| " + " | ".join(cells) + " |\n"
        print(f"{style}: done", flush=True)
    total = sum(f.stat().st_size for f in args.out.glob("*.jpg"))
    body = (f"Held-out photos ({', '.join(photos)}; never trained on), stylized at {args.size} px by the "
            f"shipped models. Regenerate: `python docs/make_gallery.py {' '.join(sys.argv[1:])}`\n\n" + header + lines)
    write_section(args.readme, MARK_BEGIN, MARK_END, body, heading="## Gallery\n\n")
    print(f"wrote {args.readme} and {len(list(args.out.glob('*.jpg')))} images, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
