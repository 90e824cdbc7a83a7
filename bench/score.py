"""A fixed scorer for any ONNX style model with our contract, whoever trained it.

    python -m bench.score --style ../shared/data/style/wave_lengstrom.jpg \
        exported/wave.onnx ../shared/peers/wave.onnx --sheet out/wave_sheet.png

The contract it needs is only the graph's: input ``image`` float32 [N, 3, H, W] RGB in [0, 1],
output ``stylized`` of the same shape (``../shared/peers/*.onnx`` qualify; no fastnst metadata is
read). Every model is scored the same way, on the held-out photos (``configs/holdout.txt``, never
trained on), each scaled to 512 px on its longer side, against the style image scaled to 512 px:

- style: Johnson et al.'s Gram MSE, G = F·Fᵀ/(C·H·W), mean over the C×C entries, summed over
  relu1_1, relu2_1, relu3_1 (``losses.style_loss``); lower is more of the painting's texture;
- content: MSE of relu2_2 activations between photo and output (``losses.content_loss``);
- structure: cosine similarity of the relu3_4 feature vectors [C] of photo and output, averaged over
  the H/4 x W/4 locations; 1 = the photo's structure, published nets score 0.59-0.69, blobs <= 0.58;
- palette: the sliced Wasserstein distance of the output's colours to the painting's in CIELAB,
  over the same for the photo (bench/palette.py); 1 = no move toward the painting's colours.

These are raw terms on the shared VGG19 file (the loss we train with divides each term by its
target's size; this one does not, so numbers compare across any loss configuration). The scorer
also writes a contact sheet, photo | model 1 | model 2 ..., one row per photo, to look at before
believing any number.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from fastnst.image import load_image, to_tensor
from fastnst.losses import STRUCTURE_LAYER, content_loss, gram, structure, style_loss
from fastnst.train_config import read_holdout
from fastnst.vgg import load_vgg

from bench.palette import colour_quantiles, sliced_wasserstein

REPO = Path(__file__).resolve().parents[1]

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
CONTENT_LAYER = "relu2_2"
SIZE = 512
HOLDOUT = REPO / "configs" / "holdout.txt"


class Scorer:
    """VGG features of the style image and of each photo, computed once; ``__call__`` scores one output."""

    def __init__(self, style_image: torch.Tensor, vgg_weights: str | None = None):
        """style_image: [1, 3, H, W] in [0, 1], already at the scoring size."""
        self.vgg = load_vgg(STYLE_LAYERS + (CONTENT_LAYER, STRUCTURE_LAYER), weights=vgg_weights)
        with torch.no_grad():
            feats = self.vgg(style_image, STYLE_LAYERS)
        self.grams = {k: gram(feats[k]) for k in STYLE_LAYERS}

    @torch.no_grad()
    def features(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.vgg(image)

    @torch.no_grad()
    def __call__(self, photo_feats: dict[str, torch.Tensor], output: torch.Tensor) -> dict[str, float]:
        f = self.vgg(output)
        return {"style": float(sum(style_loss(f[k], self.grams[k]) for k in STYLE_LAYERS)),
                "content": float(content_loss(f[CONTENT_LAYER], photo_feats[CONTENT_LAYER])),
                "structure": float(structure(photo_feats[STRUCTURE_LAYER], f[STRUCTURE_LAYER]))}


def onnx_model(path: Path):
    """A callable float32 [1, 3, H, W] -> [1, 3, H, W] for any ONNX file with the contract's names."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(["stylized"], {"image": np.ascontiguousarray(x, dtype=np.float32)})[0]


def score_models(runners: dict, style: Path, content_dir: Path, photos: list[str],
                 vgg_weights: str | None = None, size: int = SIZE, keep: int = 0) -> tuple[dict, dict]:
    """runners: {label: callable float32 [1, 3, H, W] numpy -> same} (e.g. ``onnx_model(path)``).

    -> ({label: {photo: {style, content, structure}}} incl. "photo" for the unstylized photo,
    {photo: [photo image, output of each model]} for the first ``keep`` photos ([H, W, 3] float)."""
    painting = load_image(style, size, upscale=True)
    scorer = Scorer(to_tensor(painting), vgg_weights)
    painting_colours = colour_quantiles(painting)  # load_image: float [H, W, 3] in [0, 1]
    scores: dict[str, dict] = {"photo": {}} | {k: {} for k in runners}
    images: dict[str, list[np.ndarray]] = {}
    for i, name in enumerate(photos):
        photo = load_image(content_dir / name, size, upscale=True)
        x = to_tensor(photo)
        feats = scorer.features(x)
        photo_far = sliced_wasserstein(colour_quantiles(x[0].permute(1, 2, 0).numpy()), painting_colours)
        scores["photo"][name] = scorer(feats, x) | {"palette": 1.0}
        outs = [photo]
        for key, run in runners.items():
            y = np.clip(run(x.numpy()), 0.0, 1.0)
            rgb = y[0].transpose(1, 2, 0)
            far = sliced_wasserstein(colour_quantiles(rgb), painting_colours)
            scores[key][name] = scorer(feats, torch.from_numpy(y)) | {"palette": far / max(photo_far, 1e-9)}
            outs.append(rgb)
        if i < keep:
            images[name] = outs
        print(name, {k: {m: round(v, 4) for m, v in s[name].items()} for k, s in scores.items()}, flush=True)
    return scores, images


def means(per_photo: dict[str, dict[str, float]]) -> dict[str, float]:
    vals = list(per_photo.values())
    return {k: statistics.mean(v[k] for v in vals) for k in vals[0]}


def contact_sheet(images: dict[str, list[np.ndarray]], labels: list[str], height: int = 192) -> "Image.Image":
    """One row per photo: photo | each model's output, each scaled to ``height`` px; labels on top."""
    from PIL import Image, ImageDraw

    rows = []
    for outs in images.values():
        tiles = [Image.fromarray((o * 255 + 0.5).astype(np.uint8)) for o in outs]
        tiles = [t.resize((round(t.width * height / t.height), height), Image.Resampling.LANCZOS) for t in tiles]
        rows.append(tiles)
    col_w = [max(r[j].width for r in rows) for j in range(len(labels))]
    header, gap = 16, 4
    sheet = Image.new("RGB", (sum(col_w) + gap * (len(col_w) - 1), header + len(rows) * (height + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for j, label in enumerate(labels):
        draw.text((x + 2, 2), label[: col_w[j] // 6], fill="black")
        for i, row in enumerate(rows):
            sheet.paste(row[j], (x, header + i * (height + gap)))
        x += col_w[j] + gap
    return sheet


def table(scores: dict[str, dict]) -> str:
    out = ("| model | photos | style | content (relu2_2) | structure (relu3_4 cos) | palette |\n"
           "|---|---|---|---|---|---|\n")
    for key, per_photo in scores.items():
        m = means(per_photo)
        out += (f"| {key} | {len(per_photo)} | {m['style']:.1f} | {m['content']:.4g} | {m['structure']:.3f} "
                f"| {m['palette']:.3f} |\n")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, help="ONNX files with the contract's input/output names")
    p.add_argument("--style", type=Path, required=True, help="the painting the models are meant to paint")
    p.add_argument("--content", type=Path, default=REPO.parent / "shared" / "data" / "content")
    p.add_argument("--holdout", type=Path, default=HOLDOUT, help="file of photo names, one a line")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--vgg-weights", default=None, help="torchvision-layout VGG19 file (else $FASTNST_VGG_WEIGHTS)")
    p.add_argument("--sheet", type=Path, default=None, help="write a contact sheet PNG here")
    p.add_argument("--sheet-photos", type=int, default=6)
    p.add_argument("--json", type=Path, default=None, help="write per-photo numbers here")
    args = p.parse_args(argv)
    for m in [*args.models, args.style]:
        if not m.is_file():
            raise SystemExit(f"error: {m}: no such file")
    torch.set_grad_enabled(False)
    photos = read_holdout(args.holdout)[: args.limit]
    scores, images = score_models({str(m): onnx_model(m) for m in args.models}, args.style, args.content, photos, args.vgg_weights,
                                  keep=args.sheet_photos if args.sheet else 0)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"style": str(args.style), "means": {k: means(v) for k, v in scores.items()},
                                         "per_photo": scores}, indent=1))
    if args.sheet:
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        contact_sheet(images, ["photo"] + [m.parent.name + "/" + m.name for m in args.models]).save(args.sheet)
    print(table(scores))


if __name__ == "__main__":
    main()
