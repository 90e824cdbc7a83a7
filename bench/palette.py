"""Palette: how far an output's colours have moved toward the painting's, in CIELAB.

    palette = SW(output, painting) / SW(photo, painting)

SW is the sliced Wasserstein-2 distance (Bonneel et al. 2015) between two images' pixel colours
as point sets in CIELAB (D65): the root mean over fixed random unit directions of the squared
W2 distance between the two sets' projections, each projection summarized by QUANTILES evenly
spaced quantiles. 1: the output's colours are as far from the painting's as the photo's are;
0: the painting's colour distribution exactly. Numpy only.
"""

from __future__ import annotations

import numpy as np

DIRECTIONS = 64
QUANTILES = 256


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] sRGB in [0, 1] -> [..., 3] CIELAB (L in 0..100), D65 white."""
    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0.0, 1.0)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    eps = 216 / 24389
    f = np.where(xyz > eps, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _directions(n: int = DIRECTIONS, seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(n, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def colour_quantiles(rgb: np.ndarray) -> np.ndarray:
    """[H, W, 3] (or [N, 3]) sRGB in [0, 1] -> [DIRECTIONS, QUANTILES]: the image's Lab colours
    projected on each direction, summarized by evenly spaced quantiles (what SW compares)."""
    lab = srgb_to_lab(rgb).reshape(-1, 3)
    levels = (np.arange(QUANTILES) + 0.5) / QUANTILES
    return np.quantile(lab @ _directions().T, levels, axis=0).T


def sliced_wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """SW2 between two images' colours, given their ``colour_quantiles``."""
    return float(np.sqrt(np.mean((a - b) ** 2)))


def palette(output: np.ndarray, photo: np.ndarray, painting: np.ndarray) -> float:
    """SW(output, painting) / SW(photo, painting) for [H, W, 3] sRGB arrays in [0, 1]."""
    target = colour_quantiles(painting)
    return sliced_wasserstein(colour_quantiles(output), target) / max(
        sliced_wasserstein(colour_quantiles(photo), target), 1e-9)
