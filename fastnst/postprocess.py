"""What happens to a stylized image after the network: keep the photo's colours, blend with the original.

Torch-free (numpy only): the ONNX runtime and the PyTorch path share it. Arrays are float32
[H, W, 3] RGB in [0, 1]. Both operations are affine in the stylized pixels for a fixed original,
so applying them per tile before the feathered tile blend (tiling.py) gives the same result as
applying them to the whole stylized image; that is why nothing here clips: the caller clips once,
at the end.
"""

from __future__ import annotations

import numpy as np

# BT.601 luma weights: the Y of YCbCr (JPEG) and of YIQ.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] RGB -> [...] BT.601 luma Y."""
    return rgb @ LUMA_WEIGHTS


def transfer_luminance(stylized: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The stylized image's luminance with the original's chrominance (Gatys et al. 2016, "luminance-only").

    In YCbCr (and YIQ) the inverse transform maps a change of Y with Cb, Cr held fixed to the same
    change on R, G and B, so replacing Y is ``original + (Y_stylized - Y_original)`` per pixel:
    no colour-space round trip needed. [H, W, 3] x2 -> [H, W, 3], unclipped (out-of-gamut pixels
    are clipped by the caller, which shifts their chroma slightly).
    """
    return original + (luminance(stylized) - luminance(original))[..., None]


def blend(stylized: np.ndarray, original: np.ndarray, strength: float) -> np.ndarray:
    """``strength`` of the stylization: 0 -> exactly the original, 1 -> exactly the stylized image."""
    if strength == 1.0:
        return stylized
    if strength == 0.0:
        return original.astype(np.float32, copy=True)
    return stylized * np.float32(strength) + original * np.float32(1.0 - strength)


def postprocess(stylized: np.ndarray, original: np.ndarray, *, preserve_color: bool, strength: float) -> np.ndarray:
    """Colour preservation, then the strength blend. [H, W, 3] float32 x2 -> [H, W, 3], unclipped."""
    if preserve_color:
        stylized = transfer_luminance(stylized, original)
    return blend(stylized, original, strength)
