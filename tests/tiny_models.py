"""A tiny TransformerNet saved in every model format, built once per test session and shared.

Exporting takes several seconds (torch.export + parity check), so the export/runtime/stylize
tests share one export instead of each making their own. The files are read-only by convention:
tests that need to damage a model copy it first.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fastnst.checkpoint import model_info, save_transformer
from fastnst.export import ExportReport, export_onnx
from fastnst.transformer import TransformerNet

META = {
    "style_name": "tiny-test-style",
    "style_sha256": "0123456789abcdef" * 4,
    "image_size": 256,
    "style_size": 384,
    "loss": {"content_layers": ["relu2_2"], "style_layers": ["relu1_1", "relu2_1"], "content_weight": 1.0,
             "style_weight": 10.0, "tv_weight": 1.0, "vgg_arch": "vgg19"},
    "fastnst_version": "0.1.0",
}


def make_net(seed: int = 0, width: int = 8) -> TransformerNet:
    """A random TransformerNet(width) in eval mode whose output sits inside (0, 1), like a trained one.

    A freshly initialised net saturates ~60% of its pixels at the clamp, which would make parity
    and colour tests vacuous there; scaling the last conv down and centring its bias fixes that.
    """
    torch.manual_seed(seed)
    net = TransformerNet(width=width)
    last = net.decoder[-1][1]  # ConvLayer(w1, 3, 9, norm_relu=False) = [ReflectionPad2d, Conv2d]
    with torch.no_grad():
        last.weight.mul_(0.25)
        last.bias.fill_(0.5)
    return net.eval()


@dataclass(frozen=True)
class TinyModels:
    folder: Path
    net: TransformerNet
    pt: Path  # transformer.pt
    ckpt: Path  # a Lightning-style checkpoint with the same weights
    onnx: Path  # export of the same weights
    report: ExportReport


@functools.cache
def tiny_models() -> TinyModels:
    folder = Path(tempfile.mkdtemp(prefix="fastnst-test-models-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    net = make_net()
    pt = folder / "transformer.pt"
    save_transformer(net, pt, META)
    ckpt = folder / "last.ckpt"
    torch.save({"state_dict": {"net." + k: v for k, v in net.state_dict().items()},
                "fastnst": {"model": model_info(net), "meta": META}, "epoch": 1}, ckpt)
    onnx_path = folder / "tiny.onnx"
    report = export_onnx(net, onnx_path, META)
    return TinyModels(folder, net, pt, ckpt, onnx_path, report)


def photo(height: int, width: int, seed: int = 0, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """A smooth colourful float32 [H, W, 3] test image in [lo, hi] with some noise (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([np.sin(xx / 17.0 + seed), np.cos(yy / 23.0), np.sin((xx + yy) / 31.0)], axis=-1)
    img = 0.5 + 0.4 * base + 0.1 * rng.standard_normal((height, width, 3), dtype=np.float32)
    return (lo + (hi - lo) * np.clip(img, 0, 1)).astype(np.float32)


def write_photo(path: Path, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Save photo(...) as an image file; return the uint8 pixels written."""
    pixels = (photo(height, width, seed) * 255 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels
