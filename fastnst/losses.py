"""The perceptual loss terms as small functions: content, Gram matrix, style, total variation.

Normalization, for one layer with activations a of shape [C, H, W]:

- content:  mean((a_C - a_G)²); Gatys et al. 2015's L_content = ½·Σ(F − P)² is ours · (C·H·W)/2.
- gram:     G = F·Fᵀ / (C·H·W), F = a reshaped to [C, H·W] (Johnson et al. 2016); Gatys divides by nothing.
- style:    mean over the C×C entries of (G_S − G_G)²; Gatys' E_l = 1/(4·C²·(H·W)²)·Σ(Graw_S − Graw_G)²
            is ours · C²/4. PerceptualLoss divides each layer's term by its target's size anyway.
- tv:       mean squared difference of vertical and horizontal neighbours (Mahendran & Vedaldi 2015;
            Johnson's smoothness term), per pixel rather than summed.

Everything squared and summed over a feature map is computed in fp32, even under autocast: bf16
Grams lose the small style differences the optimizer needs (8-bit mantissa). Every function
reduces over the batch by mean, so losses do not grow with batch size.
"""

from __future__ import annotations

import torch


def _fp32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype != torch.float32 else t


def gram(features: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, C] Gram matrix F·Fᵀ / (C·H·W), always fp32."""
    b, c, h, w = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        f = _fp32(features).reshape(b, c, h * w)
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between activations [B, C, H, W] (see module doc for the scale)."""
    with torch.autocast(device_type=features.device.type, enabled=False):
        return torch.mean((_fp32(features) - _fp32(target)) ** 2)


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Mean squared error between gram(features) [B, C, C] and a target Gram [1 or B, C, C]."""
    with torch.autocast(device_type=features.device.type, enabled=False):
        return torch.mean((gram(features) - _fp32(target_gram)) ** 2)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation of [B, C, H, W]: mean squared difference of neighbouring pixels (dy and dx)."""
    with torch.autocast(device_type=image.device.type, enabled=False):
        x = _fp32(image)
        dy = x[..., 1:, :] - x[..., :-1, :]
        dx = x[..., :, 1:] - x[..., :, :-1]
        return torch.mean(dy**2) + torch.mean(dx**2)


# The layer the structure metric compares: the deepest our VGG file holds (relu3_4, receptive field
# ~40 px), where a photo's objects and edges show and colour and texture matter less than at relu1_x.
STRUCTURE_LAYER = "relu3_4"


def structure(photo: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """How much of the photo's layout an output keeps: mean over batch and locations of the cosine
    similarity of the feature vectors [C] of ``photo`` and ``output`` ([B, C, H, W] activations,
    normally at STRUCTURE_LAYER). A metric, not a training loss: 1 is the photo itself, and nets
    that have painted the subject away score low (bench/score.py; BENCHMARKS.md). It does not see
    blobs stamped on a dim but faithful copy of the photo: look at the outputs too."""
    with torch.autocast(device_type=photo.device.type, enabled=False):
        return torch.nn.functional.cosine_similarity(_fp32(photo), _fp32(output), dim=1, eps=1e-8).mean()
