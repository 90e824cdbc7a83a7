"""The training objective's own terms on any model's outputs: where does it rank them?

    python -m bench.balance --style ../shared/data/style/wave_lengstrom.jpg \\
        exported/wave.onnx ../shared/peers/wave.onnx --limit 4

For each model, the relative per-layer terms that training minimizes (perceptual.PerceptualLoss:
content error / mean(target²), Gram error / mean(G_style²)) on held-out photos at 512 px with the
style image at 512 px, averaged over photos. Comparing two models' rows tells which style weight
makes the training loss prefer one over the other: a diagnostic of the loss balance, not a score.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bench.score import HOLDOUT, REPO, SIZE, onnx_model
from fastnst.image import load_image, to_tensor
from fastnst.perceptual import LossConfig, PerceptualLoss
from fastnst.train_config import read_holdout
from fastnst.vgg import load_vgg

CONTENT_LAYERS = ("relu2_2", "relu3_3")
STYLE_LAYERS = LossConfig().style_layers


@torch.no_grad()
def balance(runners: dict, style: Path, content_dir: Path, photos: list[str],
            vgg_weights: str | None = None) -> dict[str, dict[str, float]]:
    """runners: {label: callable float32 [1, 3, H, W] numpy -> same}.

    -> {label: {"content_<layer>": ..., "style_<layer>": ..., "style_sum": ...}} incl. "photo"."""
    cfg = LossConfig(content_layers=CONTENT_LAYERS, style_layers=STYLE_LAYERS)
    loss = PerceptualLoss(load_vgg(cfg.layers, weights=vgg_weights),
                          to_tensor(load_image(style, SIZE, upscale=True)), cfg)
    rows: dict[str, dict[str, list[float]]] = {}
    for name in photos:
        x = to_tensor(load_image(content_dir / name, SIZE, upscale=True))
        targets = loss.content_targets(x)
        for label, run in ({"photo": lambda a: a} | runners).items():
            y = torch.from_numpy(np.clip(run(x.numpy()), 0.0, 1.0))
            for k, v in loss.layer_terms(y, targets).items():
                rows.setdefault(label, {}).setdefault(k, []).append(float(v))
    out = {label: {k: float(np.mean(v)) for k, v in r.items()} for label, r in rows.items()}
    for r in out.values():
        r["style_sum"] = sum(v for k, v in r.items() if k.startswith("style_"))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path, help="ONNX files with fastnst's contract")
    p.add_argument("--style", type=Path, required=True, help="the style image")
    p.add_argument("--content-dir", type=Path, default=REPO.parent / "shared" / "data" / "content")
    p.add_argument("--limit", type=int, default=4, help="first N held-out photos (default 4)")
    p.add_argument("--vgg-weights", default=None)
    args = p.parse_args(argv)
    rows = balance({str(m): onnx_model(m) for m in args.models}, args.style, args.content_dir,
                   read_holdout(HOLDOUT)[: args.limit], args.vgg_weights)
    keys = [f"content_{k}" for k in CONTENT_LAYERS] + [f"style_{k}" for k in STYLE_LAYERS] + ["style_sum"]
    print("| output | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for label, r in rows.items():
        print(f"| {label} | " + " | ".join(f"{r[k]:.3f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
