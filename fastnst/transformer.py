"""The feed-forward image transformation network (Johnson et al. 2016), as the field settled on it.

Departures from the paper, all standard since: reflection padding instead of zero padding
(no border artifacts), instance norm instead of batch norm (Ulyanov et al. 2016: better stylization,
batch-size independent), nearest-neighbour upsample + conv instead of transposed convolution
(Odena et al. 2016: no checkerboard), and pixels in [0, 1] in and out instead of 0..255 with a
scaled tanh: the last conv predicts pixels directly. In training mode the output is left
unclamped (a clamp would zero the gradient of every out-of-range pixel); in eval mode it is
clamped to [0, 1], which is what inference and the ONNX export see.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastnst.onnx_contract import DOWNSAMPLES, MIN_SIZE


class ConvLayer(nn.Sequential):
    """Reflection pad + conv (+ instance norm + ReLU): 'same' size at stride 1, halves at stride 2."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, norm_relu: bool = True):
        layers: list[nn.Module] = [nn.ReflectionPad2d(kernel // 2), nn.Conv2d(c_in, c_out, kernel, stride)]
        if norm_relu:
            layers += [nn.InstanceNorm2d(c_out, affine=True), nn.ReLU(inplace=True)]
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    """Two 3x3 convs with instance norm; identity skip (Johnson's variant without the final ReLU)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvLayer(channels, channels, 3),
            nn.ReflectionPad2d(1),
            nn.Conv2d(channels, channels, 3),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleConv(nn.Sequential):
    """2x nearest upsample then a stride-1 conv block: the checkerboard-free replacement for ConvTranspose."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvLayer(c_in, c_out, kernel))


# Departure from the paper (32): half the width, a quarter of the FLOPs, for the same losses at the
# same training budget (BENCHMARKS.md, "Recipe decisions"). Width 32 is one flag away (--width 32).
DEFAULT_WIDTH = 16


class TransformerNet(nn.Module):
    """[B, 3, H, W] RGB in [0, 1] -> stylized [B, 3, H, W] RGB, for any H, W >= 1.

    ``width`` is the channel count of the first layer (32 in the paper); each of the two stride-2
    convs doubles it (width -> 2·width -> 4·width) and the ``n_residual`` blocks run at 4·width
    channels, H/4 x W/4. Model files name ``downsamples`` too; it is always DOWNSAMPLES.
    """

    def __init__(self, width: int = DEFAULT_WIDTH, n_residual: int = 5, downsamples: int = DOWNSAMPLES):
        super().__init__()
        if downsamples != DOWNSAMPLES:
            raise ValueError(f"downsamples must be {DOWNSAMPLES}, got {downsamples}")
        self.width = width
        self.n_residual = n_residual
        self.downsamples = downsamples
        ws = [width * 2**i for i in range(downsamples + 1)]  # channels at each scale, full size first
        self.encoder = nn.Sequential(ConvLayer(3, ws[0], 9),
                                     *[ConvLayer(a, b, 3, stride=2) for a, b in zip(ws, ws[1:])])
        self.residuals = nn.Sequential(*[ResidualBlock(ws[-1]) for _ in range(n_residual)])
        self.decoder = nn.Sequential(*[UpsampleConv(b, a) for a, b in reversed(list(zip(ws, ws[1:])))],
                                     ConvLayer(ws[0], 3, 9, norm_relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            # The 9x9 reflection pads need more than 4 px at every scale: edge-pad tiny inputs to
            # MIN_SIZE, the rule the stylizers apply too (onnx_contract.py), then crop below.
            x = F.pad(x, (0, max(0, MIN_SIZE - w), 0, max(0, MIN_SIZE - h)), mode="replicate")
        # d stride-2 convs and d 2x upsamples map H to 2^d·ceil(...ceil(H/2).../2): pad bottom/right
        # to a multiple of 2^d so the output lines up with the input, then crop. Always padding
        # (often by 0) keeps the graph free of shape-dependent branches for the ONNX export.
        m = 2**self.downsamples
        x = F.pad(x, (0, -x.shape[-1] % m, 0, -x.shape[-2] % m), mode="reflect")
        y = self.decoder(self.residuals(self.encoder(x)))[..., :h, :w]
        return y if self.training else y.clamp(0, 1)
