"""The perceptual loss terms as small functions: content, Gram matrix, style, total variation.

Normalization, for one layer with activations a of shape [C, H, W]:

- content:  mean((a_C - a_G)²); Gatys et al. 2015's L_content = ½·Σ(F − P)² is ours · (C·H·W)/2.
- gram:     G = F·Fᵀ / (C·H·W), F = a reshaped to [C, H·W] (Johnson et al. 2016); Gatys divides by nothing.
- style:    mean over the C×C entries of (G_S − G_G)²; Gatys' E_l = 1/(4·C²·(H·W)²)·Σ(Graw_S − Graw_G)²
            is ours · C²/4. PerceptualLoss divides each layer's term by its target's size anyway.
- tv:       mean squared difference of vertical and horizontal neighbours (Mahendran & Vedaldi 2015;
            Johnson's smoothness term), per pixel rather than summed.
- palette:  squared sliced Wasserstein-2 distance between the output's pixel colours and the
            painting's in CIELAB over random directions (Bonneel et al. 2015; as a loss, Heitz et al.
            2021), divided by the painting's colour variance. Not in Gatys or Johnson.

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


def rgb_to_lab(image: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] sRGB in [0, 1] -> [B, 3, H, W] CIELAB (L in 0..100, D65 white), fp32, differentiable
    (bench/palette.py is the numpy twin the scorer uses)."""
    with torch.autocast(device_type=image.device.type, enabled=False):
        rgb = _fp32(image).clamp(0, 1)
        linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
        m = rgb.new_tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]]) / rgb.new_tensor([[0.95047], [1.0], [1.08883]])
        xyz = torch.einsum("ij,bjhw->bihw", m, linear)
        eps = 216 / 24389
        # clamp_min: the cube root's branch must not see 0, whose infinite slope would NaN the gradient.
        f = torch.where(xyz > eps, xyz.clamp_min(eps) ** (1 / 3), (24389 / 27 * xyz + 16) / 116)
        return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def colour_quantiles(lab: torch.Tensor, directions: torch.Tensor, levels: int) -> torch.Tensor:
    """[N, 3] colours (CIELAB) projected on each of [D, 3] unit directions -> [D, levels] evenly
    spaced quantiles (at the midpoints of ``levels`` equal bins)."""
    q = (torch.arange(levels, dtype=lab.dtype, device=lab.device) + 0.5) / levels
    return torch.quantile(directions @ lab.T, q, dim=1).T.contiguous()


def palette_loss(image: torch.Tensor, directions: torch.Tensor, target: torch.Tensor,
                 variance: torch.Tensor | float) -> torch.Tensor:
    """Squared sliced Wasserstein-2 distance from each image's colours to the painting's, over the
    painting's colour variance (0: the painting's colour distribution; ~1: a photo's).

    image: [B, 3, H, W] sRGB in [0, 1]; directions: [D, 3] unit vectors; target: [D, Q] the
    painting's colour_quantiles on them; variance: the mean variance of the painting's projections."""
    with torch.autocast(device_type=image.device.type, enabled=False):
        ours = (_fp32(directions) @ rgb_to_lab(image).flatten(2)).sort(dim=-1).values  # [B, D, P]
        # The painting's quantile at the midpoint of each of our P ranks, interpolated between its Q.
        p, q = ours.shape[-1], target.shape[-1]
        at = ((torch.arange(p, device=image.device) + 0.5) * q / p - 0.5).clamp(0, q - 1)
        low = at.floor().long()
        high = (low + 1).clamp(max=q - 1)
        theirs = torch.lerp(target[:, low], target[:, high], (at - low).to(target.dtype))  # [D, P]
        return torch.mean((ours - theirs) ** 2) / variance


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
