"""The PyTorch path: a ``transformer.pt`` or training ``.ckpt`` as a numpy -> numpy stylizer.

Everything around the forward pass (tiling, colour preservation, strength, file handling) is the
torch-free code in runtime.py, so both model kinds give the same results for the same options.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from fastnst.checkpoint import load_transformer, model_info
from fastnst.memory import bytes_per_pixel
from fastnst.transformer import TransformerNet


class TorchStylizer:
    """A TransformerNet as a stylizer: float32 [N, 3, H, W] numpy in [0, 1] -> the same shape, in [0, 1]."""

    def __init__(self, net: TransformerNet, meta: dict | None = None, *, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()  # eval: clamps the output to [0, 1]
        self.meta = dict(meta or {})
        self.meta.setdefault("model", model_info(net))
        self.bytes_per_pixel = bytes_per_pixel(net.width)

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        return self.net(x).float().cpu().numpy()


def load_torch_stylizer(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> TorchStylizer:
    """Load a ``transformer.pt`` / ``.ckpt`` (checkpoint.load_transformer; FastNSTError if it is not one)."""
    net, meta = load_transformer(path)
    return TorchStylizer(net, meta, device=device)
