"""A virtual camera for the flicker benchmark: a photo filmed with a known, slow, sub-pixel pan and
zoom, fresh sensor noise and JPEG compression per frame. Torch-free (numpy and Pillow).

Coordinates are continuous with pixel centres at +0.5 (Pillow's transform convention). A map is
Pillow's AFFINE data (a, b, c, d, e, f): a point (x, y) of the *output* image shows the point
(a·x + b·y + c, d·x + e·y + f) of the *input* image; here only scale and shift (b = d = 0, a = e).
``film`` returns, with the frames, the map from frame t+1 to frame t, so
``warp(S(frame[t]), motion[t])`` is what an ideal stylization S shows at t+1.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

Affine = tuple[float, float, float, float, float, float]  # Pillow's AFFINE data


@dataclass(frozen=True)
class Camera:
    """A hand-held phone, slowed down: defaults move the picture well under a pixel per frame."""

    pan: tuple[float, float] = (0.37, 0.23)  # px per frame, in the photo's pixels
    zoom: float = 1.004  # magnification per frame (>1: zooming in)
    field: float = 0.9  # the first frame shows this fraction of the photo's width (room to pan and zoom)
    noise: float = 2.0 / 255  # Gaussian sensor noise, per frame, std in [0, 1] units
    jpeg: int | None = 85  # per-frame JPEG quality, as a phone's encoder leaves it; None: no compression


def camera_to_photo(t: int, frame_size: tuple[int, int], photo_size: tuple[int, int], camera: Camera) -> Affine:
    """Frame t's point -> the photo's point it films (frame centre on the photo's centre plus the pan)."""
    (w, h), (pw, ph) = frame_size, photo_size
    scale = camera.field * pw / w / camera.zoom ** t  # photo px per frame px
    cx, cy = pw / 2 + camera.pan[0] * t, ph / 2 + camera.pan[1] * t
    return (scale, 0.0, cx - scale * w / 2, 0.0, scale, cy - scale * h / 2)


def between(later: Affine, earlier: Affine) -> Affine:
    """Frame t+1's point -> frame t's point showing the same spot: earlier⁻¹ ∘ later (both scale + shift)."""
    s1, _, c1, _, _, f1 = later
    s0, _, c0, _, _, f0 = earlier
    return (s1 / s0, 0.0, (c1 - c0) / s0, 0.0, s1 / s0, (f1 - f0) / s0)


def warp(image: np.ndarray, motion: Affine, margin: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """float32 [H, W, C] -> (the image as seen through ``motion``, bool [H, W] valid mask).

    Bicubic, per channel in Pillow's float mode. Valid: the source point lies inside the image by
    ``margin`` px, so all of bicubic's 4x4 taps are real pixels.
    """
    h, w = image.shape[:2]
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c], dtype=np.float32), "F")
                           .transform((w, h), Image.Transform.AFFINE, motion, Image.Resampling.BICUBIC))
                for c in range(image.shape[2])]
    a, _, c, _, e, f = motion
    xs = a * (np.arange(w) + 0.5) + c
    ys = e * (np.arange(h) + 0.5) + f
    valid = ((ys >= margin) & (ys <= h - margin))[:, None] & ((xs >= margin) & (xs <= w - margin))[None, :]
    return np.stack(channels, axis=-1), valid


def film(photo: Image.Image, frames: int, size: int, camera: Camera = Camera(),
         seed: int = 0) -> tuple[list[np.ndarray], list[Affine]]:
    """``frames`` float32 [H, W, 3] frames in [0, 1] (longer side ``size``, the photo's aspect) and the
    ``frames - 1`` motions from frame t+1 to frame t."""
    rng = np.random.default_rng(seed)
    photo = photo.convert("RGB")
    scale = size / max(photo.size)
    frame_size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    # The photo at ~1.25x the frame's pixels: the camera films it slightly minified, as a sensor does.
    source = photo.resize((round(frame_size[0] * 1.25), round(frame_size[1] * 1.25)), Image.Resampling.LANCZOS)
    maps = [camera_to_photo(t, frame_size, source.size, camera) for t in range(frames)]
    out = []
    for m in maps:
        frame = np.asarray(source.transform(frame_size, Image.Transform.AFFINE, m, Image.Resampling.BICUBIC),
                           dtype=np.float32) / 255
        if camera.noise:
            frame = frame + rng.normal(0.0, camera.noise, frame.shape).astype(np.float32)
        frame = np.clip(frame, 0.0, 1.0)
        if camera.jpeg is not None:
            buffer = io.BytesIO()
            Image.fromarray((frame * 255 + 0.5).astype(np.uint8)).save(buffer, "JPEG", quality=camera.jpeg)
            frame = np.asarray(Image.open(buffer), dtype=np.float32) / 255
        out.append(frame.astype(np.float32))
    return out, [between(maps[t + 1], maps[t]) for t in range(frames - 1)]
