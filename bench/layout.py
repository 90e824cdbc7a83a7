"""How well an output keeps the photo's large-scale light and dark: a diagnostic, not a score.

    python -m bench.layout exported/udnie.onnx ../shared/peers/udnie.onnx --pool 16

For each model and held-out photo (512 px): the luminance of photo and output, each averaged over
pool x pool pixel blocks, and the Pearson correlation of the two block maps (1: the output is
light where the photo is light, whatever its overall brightness and contrast; 0: unrelated).
It asks whether a net that loses a camouflaged subject the published net keeps (the fish of
configs/holdout.txt) has lost the subject's light and dark layout, the part of a photo that
relu4_2, the content layer our VGG file lacks, would hold and relu3_3 might not.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.score import HOLDOUT, REPO, SIZE, onnx_model
from fastnst.image import load_image, to_tensor
from fastnst.postprocess import LUMA_WEIGHTS
from fastnst.train_config import read_holdout


def layout_correlation(photo: torch.Tensor, output: torch.Tensor, pool: int) -> torch.Tensor:
    """[B, 3, H, W] photo and output in [0, 1] -> [B] correlation of their block-mean luminance maps."""
    w = torch.from_numpy(LUMA_WEIGHTS).view(1, 3, 1, 1)

    def blocks(x: torch.Tensor) -> torch.Tensor:  # [B, 3, H, W] -> [B, ceil(H/pool)·ceil(W/pool)], mean 0
        m = F.avg_pool2d((x.float() * w).sum(1, keepdim=True), pool, ceil_mode=True).flatten(1)
        return m - m.mean(1, keepdim=True)

    a, b = blocks(photo), blocks(output)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-8)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path, help="ONNX files with the contract's input/output names")
    p.add_argument("--pool", type=int, nargs="+", default=[16], help="block sizes in pixels at 512 px")
    p.add_argument("--content", type=Path, default=REPO.parent / "shared" / "data" / "content")
    p.add_argument("--holdout", type=Path, default=HOLDOUT, help="file of photo names, one a line")
    p.add_argument("--show", type=int, default=6, help="print each of the first N photos' values too")
    args = p.parse_args(argv)
    for m in args.models:
        if not m.is_file():
            raise SystemExit(f"error: {m}: no such file")
    torch.set_grad_enabled(False)
    photos = read_holdout(args.holdout)
    runners = {m: onnx_model(m) for m in args.models}
    values = {(m, q): [] for m in args.models for q in args.pool}
    for name in photos:
        x = to_tensor(load_image(args.content / name, SIZE, upscale=True))
        for m, run in runners.items():
            y = torch.from_numpy(np.clip(run(x.numpy()), 0.0, 1.0))
            for q in args.pool:
                values[m, q].append(float(layout_correlation(x, y, q)[0]))
    print(f"| model | pool | mean ({len(photos)} photos) | min | first {args.show} photos |\n|---|---|---|---|---|")
    for (m, q), v in values.items():
        print(f"| {m} | {q} | {np.mean(v):.3f} | {np.min(v):.3f} | {' '.join(f'{t:.2f}' for t in v[:args.show])} |")


if __name__ == "__main__":
    main()
