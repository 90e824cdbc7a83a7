"""The baseline we race: pytorch/examples `fast_neural_style`, rewritten here (not imported).

Architecture (transformer_net.py) and training recipe (neural_style.py) as published there:
eager PyTorch fp32, pixels in 0..255, VGG16 features up to relu4_3 for both the content target
and the stylized image, content at relu2_2, style at relu1_2/relu2_2/relu3_3/relu4_3, Adam 1e-3,
batch 4 at 256². Kept faithful on purpose, including the work it does that we avoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fastnst.vgg import VGGFeatures


class ConvLayer(nn.Module):
    def __init__(self, c_in, c_out, kernel_size, stride):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(c_in, c_out, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(out)) + x


class UpsampleConvLayer(nn.Module):
    def __init__(self, c_in, c_out, kernel_size, stride, upsample=None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(c_in, c_out, kernel_size, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class ReferenceTransformerNet(nn.Module):
    """pytorch/examples TransformerNet: input and output in 0..255."""

    def __init__(self):
        super().__init__()
        self.conv1, self.in1 = ConvLayer(3, 32, 9, 1), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = ConvLayer(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = ConvLayer(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        self.res = nn.Sequential(*[ResidualBlock(128) for _ in range(5)])
        self.deconv1, self.in4 = UpsampleConvLayer(128, 64, 3, 1, upsample=2), nn.InstanceNorm2d(64, affine=True)
        self.deconv2, self.in5 = UpsampleConvLayer(64, 32, 3, 1, upsample=2), nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = ConvLayer(32, 3, 9, 1)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)


def gram_matrix(y):
    b, ch, h, w = y.size()
    features = y.view(b, ch, w * h)
    return features.bmm(features.transpose(1, 2)) / (ch * h * w)


class ReferenceTrainer:
    """One optimizer step of pytorch/examples' training loop (fp32, VGG16 to relu4_3)."""

    STYLE = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")

    def __init__(self, style: torch.Tensor, content_weight: float = 1e5, style_weight: float = 1e10):
        # style: [1, 3, H, W] in [0, 1]. Our VGGFeatures normalizes inside; the reference divides
        # 0..255 input by 255 then normalizes: the same arithmetic.
        self.net = ReferenceTransformerNet()
        self.vgg = VGGFeatures(self.STYLE, arch="vgg16")
        self.opt = torch.optim.Adam(self.net.parameters(), 1e-3)
        self.cw, self.sw = content_weight, style_weight
        with torch.no_grad():
            self.gram_style = [gram_matrix(f) for f in self.vgg(style).values()]

    def step(self, x: torch.Tensor) -> float:
        """x: [B, 3, H, W] in 0..255 (the reference's convention)."""
        self.opt.zero_grad()
        y = self.net(x)
        features_y = self.vgg(y / 255.0)
        features_x = self.vgg(x / 255.0)  # the reference runs the full VGG on x, to relu4_3
        content = self.cw * F.mse_loss(features_y["relu2_2"], features_x["relu2_2"])
        style = sum(F.mse_loss(gram_matrix(fy), gs[: len(x)].expand(len(x), -1, -1))
                    for fy, gs in zip(features_y.values(), self.gram_style))
        loss = content + self.sw * style
        loss.backward()
        self.opt.step()
        return float(loss.detach())
