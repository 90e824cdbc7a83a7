"""A stability term for video: the net's output for a slightly moved, noisier photo should be its
output for the photo, moved the same way (Gupta et al. 2017, "Characterizing and Improving
Stability in Neural Style Transfer"; without optical flow, unlike ReCoNet, Gao et al. 2018).

A per-frame net repaints its strokes on every frame; sensor noise, compression and sub-pixel
camera motion move them, and the video flickers. Training against random small affine motions
(sub-pixel shifts, ~1% zoom) plus pixel noise teaches it to move its strokes with the picture.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The perturbation: shifts up to MAX_SHIFT px, zoom within 1 ± MAX_ZOOM, Gaussian noise of NOISE
# (in [0, 1] pixel units: ~5/255, a phone camera's noise in dim light).
MAX_SHIFT = 2.0
MAX_ZOOM = 0.02
NOISE = 0.02


def random_motion(batch: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """[B, 2, 3] affine matrices (F.affine_grid's convention: output -> input coordinates in
    [-1, 1]) of a random shift up to MAX_SHIFT px and zoom within 1 ± MAX_ZOOM."""
    u = torch.rand(batch, 3, generator=generator) * 2 - 1
    zoom = 1 + MAX_ZOOM * u[:, 0]
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = zoom
    theta[:, 0, 2] = MAX_SHIFT * u[:, 1] * 2 / width  # px -> [-1, 1] units
    theta[:, 1, 2] = MAX_SHIFT * u[:, 2] * 2 / height
    return theta


def warp(images: torch.Tensor, theta: torch.Tensor, padding: str = "zeros") -> tuple[torch.Tensor, torch.Tensor]:
    """Move [B, C, H, W] images by ``theta`` (bilinear; ``padding`` as F.grid_sample's) -> (moved
    images, [B, 1, H, W] mask of the pixels whose source lies inside the image)."""
    theta = theta.to(images.device, torch.float32)
    grid = F.affine_grid(theta, [images.shape[0], 1, *images.shape[-2:]], align_corners=False)
    moved = F.grid_sample(images.float(), grid, mode="bilinear", padding_mode=padding, align_corners=False)
    inside = F.grid_sample(images.new_ones(images.shape[0], 1, *images.shape[-2:]).float(), grid,
                           mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved.to(images.dtype), (inside > 0.999).to(images.dtype)


def stability_loss(net: torch.nn.Module, photos: torch.Tensor, output: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean squared difference, over valid pixels, between net(moved photos + noise) and the
    moved ``output`` (net(photos), [B, 3, H, W]). The target is detached: the perceptual loss
    decides what a photo's stylization is; this term only makes the net repeat it."""
    b, _, h, w = photos.shape
    theta = random_motion(b, h, w, generator)
    # The moved photo is reflected at its edges (a photo, not a black band, for the net to see);
    # the comparison skips the pixels that came from outside.
    moved, _ = warp(photos, theta, "reflection")
    noise = torch.randn(photos.shape, generator=generator).to(photos.device, photos.dtype) * NOISE
    target, mask = warp(output.detach(), theta)
    err = (net((moved + noise).clamp(0, 1)).float() - target.float()) ** 2 * mask.float()
    return err.sum() / (mask.float().sum() * 3).clamp_min(1.0)
