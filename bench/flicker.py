"""Flicker benchmark: how much a style net's output changes by itself between video frames.

    python -m bench.flicker exported/*.onnx ../shared/peers/*.onnx --strip docs/flicker_strip.png

Each held-out photo (configs/holdout.txt) is filmed by a virtual camera (bench/camera.py): a slow
sub-pixel pan and zoom, fresh Gaussian sensor noise and JPEG compression on every frame. The motion
is known, so the ideal stylized frame t+1 is frame t's stylization moved by it:

    temporal error = mean |S(f[t+1]) - warp(S(f[t]))| over the valid pixels (their source inside
                     frame t), all channels, all consecutive pairs of all photos, in levels of 255;
    normalized     = that / the same for the input frames f (what the camera's noise, compression
                     and the bicubic warp leave): 1 is a net that adds no flicker of its own.

Any ONNX file with the contract's names runs (input ``image`` float32 [N, 3, H, W] in [0, 1], output
``stylized``); torch-free, deterministic (seeded), 25 photos x 8 frames at 384 px by default.
``--strip OUT.png`` writes consecutive frames of one photo, cropped where the nets flicker most:
one row for the input, one per net.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.camera import Affine, Camera, film, warp

REPO = Path(__file__).resolve().parents[1]
HOLDOUT = REPO / "configs" / "holdout.txt"
CONTENT = REPO.parent / "shared" / "data" / "content"

Model = Callable[[np.ndarray], np.ndarray]  # float32 [H, W, 3] in [0, 1] -> the same


@dataclass
class Tally:
    """Sums of |difference| and of valid samples over pairs: the mean is their ratio (every pixel
    counts the same, whichever photo it is in)."""

    total: float = 0.0
    count: int = 0
    per_photo: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, frames: Sequence[np.ndarray], motions: Sequence[Affine]) -> None:
        total, count = pair_error(frames, motions)
        self.total, self.count = self.total + total, self.count + count
        self.per_photo[name] = total / max(count, 1)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else float("nan")


def flicker_map(later: np.ndarray, earlier: np.ndarray, motion: Affine) -> tuple[np.ndarray, np.ndarray]:
    """|later - warp(earlier)| per pixel (mean over channels), and the valid mask."""
    moved, valid = warp(earlier, motion)
    return np.abs(later - moved).mean(axis=-1), valid


def pair_error(frames: Sequence[np.ndarray], motions: Sequence[Affine]) -> tuple[float, int]:
    """(sum of |f[t+1] - warp(f[t])| over valid pixels and channels, number of those samples)."""
    total, count = 0.0, 0
    for t, motion in enumerate(motions):
        diff, valid = flicker_map(frames[t + 1], frames[t], motion)
        total += float(diff[valid].sum()) * frames[t].shape[-1]
        count += int(valid.sum()) * frames[t].shape[-1]
    return total, count


def onnx_model(path: Path, threads: int | None = None) -> Model:
    """Any ONNX file with the contract's names, on CPU (the runtime's tuned session options)."""
    import onnxruntime as ort

    from fastnst.onnx_stylizer import session_options

    session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])

    def run(image: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)
        out = session.run(["stylized"], {"image": batch})[0][0].transpose(1, 2, 0)
        return np.clip(out, 0.0, 1.0)

    return run


def read_photos(holdout: Path, content: Path, limit: int | None = None) -> list[Path]:
    names = [line.strip() for line in holdout.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [content / name for name in names[:limit]]


@dataclass
class Result:
    tallies: dict[str, Tally]  # "input" first, then one per model
    strip: dict[str, list[np.ndarray]]  # the strip photo's frames: "input" and each model's
    strip_motions: list[Affine]


def score(models: dict[str, Model], photos: Sequence[Path], *, frames: int = 8, size: int = 384,
          camera: Camera = Camera(), seed: int = 0, strip_photo: int | None = None) -> Result:
    """Film every photo, stylize every frame with every model, tally the temporal errors."""
    tallies = {"input": Tally()} | {name: Tally() for name in models}
    strip: dict[str, list[np.ndarray]] = {}
    strip_motions: list[Affine] = []
    for i, path in enumerate(photos):
        with Image.open(path) as photo:
            clip, motions = film(photo, frames, size, camera, seed=seed + i)
        tallies["input"].add(path.name, clip, motions)
        if i == strip_photo:
            strip["input"], strip_motions = clip, motions
        for name, model in models.items():
            outs = [model(f) for f in clip]
            tallies[name].add(path.name, outs, motions)
            if i == strip_photo:
                strip[name] = outs
        print(f"{path.name}: " + ", ".join(f"{k} {255 * t.per_photo[path.name]:.2f}" for k, t in tallies.items()),
              flush=True)
    return Result(tallies, strip, strip_motions)


def table(tallies: dict[str, Tally]) -> str:
    base = tallies["input"].mean
    out = "| model | temporal error (levels of 255) | normalized (input frames = 1) |\n|---|---|---|\n"
    for name, tally in tallies.items():
        out += f"| {name} | {255 * tally.mean:.2f} | {tally.mean / base:.2f} |\n"
    return out


def worst_crop(frames: dict[str, list[np.ndarray]], motion: Affine, crop: int) -> tuple[int, int]:
    """(top, left) of the ``crop`` px square with the most flicker between the first two frames, summed over
    the models (the input's excluded), on a grid of crop/4 px steps."""
    h, w = frames["input"][0].shape[:2]
    crop = min(crop, h, w)
    total = np.zeros((h, w), np.float64)
    for name, clip in frames.items():
        if name != "input":
            diff, valid = flicker_map(clip[1], clip[0], motion)
            total += diff * valid
    step = max(1, crop // 4)
    best, where = -1.0, (0, 0)
    for top in range(0, h - crop + 1, step):
        for left in range(0, w - crop + 1, step):
            value = total[top:top + crop, left:left + crop].sum()
            if value > best:
                best, where = value, (top, left)
    return where


def strip_image(frames: dict[str, list[np.ndarray]], motion: Affine, *, crop: int = 128, count: int = 6,
                zoom: int = 2) -> Image.Image:
    """Rows: input, then each model; columns: ``count`` consecutive frames, the same ``crop`` px square
    (where they flicker most), scaled ``zoom``x (nearest) so single strokes are visible."""
    top, left = worst_crop(frames, motion, crop)
    label_w, gap, tile = 150, 2, crop * zoom
    rows = list(frames.items())
    count = min(count, len(rows[0][1]))
    sheet = Image.new("RGB", (label_w + count * (tile + gap), len(rows) * (tile + gap)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (name, clip) in enumerate(rows):
        draw.text((4, r * (tile + gap) + tile // 2 - 6), Path(name).parent.name + "/" + Path(name).name
                  if name != "input" else "input (camera)", fill="black")
        for c in range(count):
            patch = (clip[c][top:top + crop, left:left + crop] * 255 + 0.5).astype(np.uint8)
            sheet.paste(Image.fromarray(patch).resize((tile, tile), Image.Resampling.NEAREST),
                        (label_w + c * (tile + gap), r * (tile + gap)))
    return sheet


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, help="ONNX files with the contract's input/output names")
    p.add_argument("--content", type=Path, default=CONTENT, help="folder of the photos")
    p.add_argument("--holdout", type=Path, default=HOLDOUT, help="file of photo names, one a line")
    p.add_argument("--limit", type=int, default=None, help="only the first N photos")
    p.add_argument("--frames", type=int, default=8, help="frames per photo")
    p.add_argument("--size", type=int, default=384, help="longer side of the frames, px")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--strip", type=Path, default=None, help="write a PNG strip of consecutive frames here")
    p.add_argument("--strip-photo", type=int, default=0, help="which photo (index in the list) the strip shows")
    args = p.parse_args(argv)
    for m in args.models:
        if not m.is_file():
            raise SystemExit(f"error: {m}: no such file")
    photos = read_photos(args.holdout, args.content, args.limit)
    models = {str(m): onnx_model(m) for m in args.models}
    start = time.perf_counter()
    result = score(models, photos, frames=args.frames, size=args.size, seed=args.seed,
                   strip_photo=args.strip_photo if args.strip else None)
    print(f"\n{len(photos)} photos x {args.frames} frames at {args.size} px, {time.perf_counter() - start:.0f} s\n")
    print(table(result.tallies))
    if args.strip:
        args.strip.parent.mkdir(parents=True, exist_ok=True)
        strip_image(result.strip, result.strip_motions[0]).save(args.strip)
        print(f"strip: {args.strip}")


if __name__ == "__main__":
    main()
