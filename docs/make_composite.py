"""Build the README's picture: the paintings across the top, photos down the left, each cell the
photo stylized by that painting's net. numpy, Pillow and onnxruntime only.

    python docs/make_composite.py \
        --models exported/{mosaic,starry_night,wave,udnie,the_scream}.onnx \
        --styles ../shared/data/style/{mosaic,starry_night,wave_lengstrom,udnie_lengstrom,the_scream_lengstrom}.jpg \
        --photos ../shared/data/content/bsds500_test_{108069,69000}.jpg ../shared/data/content/bsds500_val_299086.jpg \
        -o docs/composite.jpg

--models and --styles pair up in order. Each photo is stylized at --size px (longer side; 512 is the
scale BENCHMARKS.md scores at), then every cell is centre-cropped to --cell and saved as one JPEG.
Use held-out photos (configs/holdout.txt) so that no cell shows a photo the nets trained on.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """Scale to cover width x height, then centre-crop to it."""
    scale = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
    image = image.resize(size, Image.LANCZOS)
    left, top = (image.width - width) // 2, (image.height - height) // 2
    return image.crop((left, top, left + width, top + height))


def stylize(session: ort.InferenceSession, photo: Image.Image) -> Image.Image:
    """One forward pass of a fastnst ONNX net (docs/onnx.md): RGB [0, 1], [1, 3, H, W] in and out."""
    x = np.asarray(photo, dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
    (y,) = session.run(["stylized"], {"image": np.ascontiguousarray(x)})
    return Image.fromarray((np.clip(y[0].transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", type=Path, required=True, help="exported .onnx nets, one per column")
    p.add_argument("--styles", nargs="+", type=Path, required=True, help="their paintings, in the same order")
    p.add_argument("--photos", nargs="+", type=Path, required=True, help="photos, one per row")
    p.add_argument("-o", "--output", type=Path, default=Path("docs/composite.jpg"))
    p.add_argument("--size", type=int, default=512, help="stylize at this longer side, px")
    p.add_argument("--cell", type=int, nargs=2, default=(240, 160), metavar=("W", "H"), help="cell size, px")
    p.add_argument("--gap", type=int, default=4, help="white space between cells, px")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    args = p.parse_args()
    if len(args.models) != len(args.styles):
        p.error(f"{len(args.models)} models but {len(args.styles)} styles: give one painting per model")

    (w, h), gap = args.cell, args.gap
    sheet = Image.new("RGB", ((len(args.models) + 1) * (w + gap) - gap, (len(args.photos) + 1) * (h + gap) - gap),
                      "white")
    at = lambda col, row: (col * (w + gap), row * (h + gap))  # noqa: E731
    photos = []
    for row, path in enumerate(args.photos, start=1):
        photo = Image.open(path).convert("RGB")
        scale = args.size / max(photo.size)
        photos.append(photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS))
        sheet.paste(fit(photo, w, h), at(0, row))
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    for col, (model, style) in enumerate(zip(args.models, args.styles), start=1):
        sheet.paste(fit(Image.open(style).convert("RGB"), w, h), at(col, 0))
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        for row, photo in enumerate(photos, start=1):
            sheet.paste(fit(stylize(session, photo), w, h), at(col, row))
        print(f"{model.stem}: done", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output, quality=args.quality, optimize=True, progressive=True)
    print(f"wrote {args.output}: {sheet.width}x{sheet.height}, {args.output.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
