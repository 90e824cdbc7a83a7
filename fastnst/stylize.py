"""The PyTorch path: a ``transformer.pt`` or training ``.ckpt`` as a numpy -> numpy stylizer.

Everything around the forward pass (tiling, colour preservation, strength, file handling) is the
torch-free code in runtime.py (models.open_model picks this class for .pt/.ckpt files), so both model kinds give the same results for the same options.

This path also has the fastest CPU variant we ship: bf16 autocast, channels-last. On a CPU with
native bf16 (AVX-512 BF16 or AMX) its forward pass beats onnxruntime fp32, which has no bf16
convolutions on CPU (BENCHMARKS.md, "Speed"). Instance norm and the output stay fp32 under
autocast; bench/quality.py scores the bf16 outputs against fp32.
"""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
import torch

from fastnst.checkpoint import load_transformer, model_info
from fastnst.errors import FastNSTError
from fastnst.memory import bytes_per_pixel
from fastnst.models import META_KEYS
from fastnst.transformer import TransformerNet

Precision = Literal["fp32", "bf16"]


def pick_device(name: str) -> torch.device:
    """"auto" (CUDA if there is one, else CPU), "cpu", "cuda", "cuda:N" or "mps" -> a device that exists."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise FastNSTError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise FastNSTError(f"--device {name}: not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FastNSTError(f"--device {name}: no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FastNSTError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise FastNSTError(f"--device {name}: MPS is not available on this machine")
    return device


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes bf16 in hardware (where it does not, bf16 is emulated and slower than fp32)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # private but long-standing helpers; absent in a build -> assume no
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


class TorchStylizer:
    """A TransformerNet as a stylizer: float32 [N, 3, H, W] numpy in [0, 1] -> the same shape, in [0, 1]."""

    def __init__(self, net: TransformerNet, meta: dict | None = None, *, device: str | torch.device = "cpu",
                 precision: Precision = "fp32"):
        if precision not in ("fp32", "bf16"):
            raise FastNSTError(f"precision must be fp32 or bf16, got {precision!r}")
        self.device = torch.device(device)
        self.precision = precision
        self.net = net.to(self.device).eval()  # eval: clamps the output to [0, 1]
        if precision == "bf16":
            self.net = self.net.to(memory_format=torch.channels_last)  # oneDNN's native bf16 layout
        meta = {**(meta or {}), "model": model_info(net)}
        self.meta = {key: meta.get(key) for key in META_KEYS}  # models.META_KEYS: the layout every stylizer has
        self.bytes_per_pixel = bytes_per_pixel(net.width)  # the fp32 estimate: an upper bound for bf16

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        if self.precision == "fp32":
            return self.net(x).float().cpu().numpy()
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            y = self.net(x.contiguous(memory_format=torch.channels_last))
        return y.float().contiguous().cpu().numpy()


def load_torch_stylizer(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                        precision: Precision = "fp32") -> TorchStylizer:
    """Load a ``transformer.pt`` / ``.ckpt`` (checkpoint.load_transformer; FastNSTError if it is not one)."""
    net, meta = load_transformer(path)
    return TorchStylizer(net, meta, device=device, precision=precision)
