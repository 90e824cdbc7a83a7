"""Run an image-to-image function over overlapping tiles and feather them together without seams.

Torch-free (numpy only). Each tile's output is weighted by a window that ramps linearly from ~0 to
1 over the overlap on every side that borders another tile (image borders keep weight 1), and the
weighted outputs are averaged. Pixels near a tile edge, where the network saw reflection padding
instead of the real neighbours, thus get almost no weight wherever another tile covers them.

Memory: tiles are visited row by row and the running weighted sums are kept only for one row of
tiles (a strip of ``tile`` x W pixels: 4 float32 channels, 16·tile·W bytes, 0.2 GB for tile 1024
on a 12000 px wide image). Rows that no later tile touches are normalised and written into the
output, which has the input's dtype (uint8 for big photos: 3 bytes/px). So beyond the input and
output images, peak memory is bounded by the tile size, not by the image size.

Known limitation: the transformer uses instance norm, whose statistics are computed per tile, so a
tile of sky and a tile of forest are normalised differently and the result can differ from running
the whole image at once (tone, not seams). Bigger tiles are closer to the whole-image result.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from fastnst.image import to_float, to_uint8

MIN_OVERLAP = 16  # px; more than the blur of any seam we saw, and cheap
MIN_TILE = 64  # px; below this the overlap would be most of the tile


def default_overlap(tile: int) -> int:
    """Overlap between neighbouring tiles, px: 1/8 of the tile, at least MIN_OVERLAP."""
    return max(MIN_OVERLAP, tile // 8)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of ``tile`` px covering ``length`` px, neighbours overlapping by >= ``overlap``.

    The first tile starts at 0, the last ends at ``length``; the rest are spread evenly between.
    """
    if length <= tile:
        return [0]
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap}) must be smaller than the tile ({tile})")
    n = math.ceil((length - overlap) / (tile - overlap))  # >= 2, since length > tile
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


def ramp(n: int, fade_start: bool, fade_end: bool, overlap: int) -> np.ndarray:
    """1-D feather window [n] float32: linear ramps over ``overlap`` px on the faded sides, 1 elsewhere.

    Weights are sampled at pixel centres, (i + 0.5) / overlap, so they are never exactly 0 and every
    covered pixel has a positive total weight.
    """
    w = np.ones(n, dtype=np.float32)
    i = np.arange(n, dtype=np.float32) + 0.5
    if fade_start:
        w = np.minimum(w, i / overlap)
    if fade_end:
        w = np.minimum(w, (n - i) / overlap)
    return w


def _store(dst: np.ndarray, values: np.ndarray) -> None:
    """Clip float [h, W, 3] to [0, 1] and write it into ``dst`` (float32, or uint8 as x·255)."""
    np.clip(values, 0.0, 1.0, out=values)
    if dst.dtype == np.uint8:
        dst[...] = to_uint8(values)
    else:
        dst[...] = values


def stylize_tiled(process: Callable[[np.ndarray], np.ndarray], image: np.ndarray, tile: int,
                  overlap: int | None = None, on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Apply ``process`` to overlapping tiles of ``image`` and feather the results together.

    ``image``: [H, W, 3], float32 in [0, 1] or uint8 (x/255). ``process``: float32 [h, w, 3] in
    [0, 1] -> float32 [h, w, 3] (h, w <= tile; unclipped output is fine). Returns [H, W, 3] in
    ``image``'s dtype, clipped to [0, 1]. ``on_tile(done, total)`` is called after each tile.
    """
    if tile < MIN_TILE:
        raise ValueError(f"tile must be at least {MIN_TILE} px, got {tile}")
    height, width = image.shape[:2]
    overlap = default_overlap(tile) if overlap is None else overlap
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    th, tw = min(tile, height), min(tile, width)
    col_windows = [ramp(tw, x > 0, x + tw < width, overlap) for x in xs]
    out = np.empty(image.shape, dtype=image.dtype)
    # Running sums for one row of tiles: acc [th, W, 3] weighted outputs, weight [th, W, 1].
    # acc[0] is image row ``base``; rows above ``base`` are final and already in ``out``.
    acc = np.zeros((th, width, 3), dtype=np.float32)
    weight = np.zeros((th, width, 1), dtype=np.float32)
    base, done, total = 0, 0, len(ys) * len(xs)
    for y in ys:
        if y > base:  # rows [base, y) get no more tiles: finish them and shift the strip up
            k = y - base  # < th, since neighbouring tiles overlap
            _store(out[base:y], acc[:k] / weight[:k])
            acc[: th - k] = acc[k:]
            acc[th - k:] = 0
            weight[: th - k] = weight[k:]
            weight[th - k:] = 0
            base = y
        row_window = ramp(th, y > 0, y + th < height, overlap)
        for x, col_window in zip(xs, col_windows):
            crop = image[y:y + th, x:x + tw]
            crop = to_float(crop)
            window = row_window[:, None, None] * col_window[None, :, None]  # [th, tw, 1]
            acc[:, x:x + tw] += process(crop) * window
            weight[:, x:x + tw] += window
            done += 1
            if on_tile is not None:
                on_tile(done, total)
    _store(out[base:height], acc[: height - base] / weight[: height - base])
    return out
