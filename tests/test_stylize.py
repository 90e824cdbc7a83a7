"""The PyTorch stylizer, tiling with feathered overlaps, post-processing and the memory estimate."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from tiny_models import photo, tiny_models

from fastnst.errors import FastNSTError
from fastnst.memory import bytes_per_pixel, check_forward_fits, largest_tile
from fastnst.postprocess import blend, luminance, transfer_luminance
from fastnst.runtime import StylizeOptions, stylize_image
from fastnst.stylize import TorchStylizer, load_torch_stylizer
from fastnst.tiling import default_overlap, ramp, stylize_tiled, tile_starts


@pytest.mark.parametrize("which", ["pt", "ckpt"])
def test_torch_stylizer_loads_both_formats_and_runs_the_net(which):
    models = tiny_models()
    model = load_torch_stylizer(getattr(models, which))
    x = np.random.default_rng(0).random((2, 3, 21, 34), dtype=np.float32)
    with torch.inference_mode():
        want = models.net(torch.from_numpy(x)).numpy()
    got = model(x)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    assert model.meta["style_name"] == "tiny-test-style"
    assert model.bytes_per_pixel == bytes_per_pixel(8)


def test_bad_checkpoint_is_a_fastnst_error(tmp_path):
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(tiny_models().ckpt.read_bytes()[:1000])
    with pytest.raises(FastNSTError, match="not a readable PyTorch model file"):
        load_torch_stylizer(bad)


# --- tiling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [64, 65, 100, 127, 128, 129, 500, 1000, 12000])
@pytest.mark.parametrize("tile", [64, 96, 256, 1024])
def test_tiles_cover_everything_with_at_least_the_overlap(length, tile):
    overlap = default_overlap(tile)
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    for a, b in zip(starts, starts[1:]):
        assert a < b and a + size - b >= overlap - 1  # -1: starts are rounded to whole pixels


def test_ramp_is_positive_and_flat_where_not_faded():
    w = ramp(40, True, False, 16)
    assert w.min() > 0 and w[0] < 0.05 and np.all(w[16:] == 1) and np.all(np.diff(w) >= 0)
    assert np.array_equal(ramp(10, False, False, 16), np.ones(10, np.float32))


def test_tiled_pointwise_function_is_exact_everywhere_including_seams():
    image = photo(150, 211)
    out = stylize_tiled(lambda t: t * t, image, tile=64)
    assert np.abs(out - image * image).max() < 1e-6  # feather weights are normalised exactly


def _box_blur(image: np.ndarray, radius: int) -> np.ndarray:
    """A local operator with reflection padding at its borders, like the network's convolutions."""
    padded = np.pad(image, ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    h, w = image.shape[:2]
    return sum(padded[dy:dy + h, dx:dx + w] for dy in range(2 * radius + 1) for dx in range(2 * radius + 1)) / (
        2 * radius + 1) ** 2


def _distance_to_seams(height: int, width: int, tile: int) -> np.ndarray:
    """[H, W] distance (px) to the nearest tile edge that lies inside the image."""
    overlap = default_overlap(tile)
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    edges_y = [e for y in ys for e in (y, y + tile) if 0 < e < height]
    edges_x = [e for x in xs for e in (x, x + tile) if 0 < e < width]
    dy = np.abs(np.arange(height)[:, None] - np.array(edges_y)[None]).min(1)
    dx = np.abs(np.arange(width)[:, None] - np.array(edges_x)[None]).min(1)
    return np.minimum(dy[:, None], dx[None, :])


def test_tiled_local_operator_matches_whole_image_away_from_seams():
    radius, tile = 5, 64
    image = photo(150, 211)
    whole = np.clip(_box_blur(image, radius), 0, 1)
    tiled = stylize_tiled(lambda t: _box_blur(t, radius), image, tile=tile)
    away = _distance_to_seams(*image.shape[:2], tile) > radius  # an end edge is the first pixel outside
    assert 0.3 < away.mean() < 1
    assert np.abs(tiled - whole)[away].max() < 1e-5
    assert np.abs(tiled - whole)[~away].max() > 1e-3  # the seam zones really are different: the mask matters


def test_tiled_network_matches_whole_image_away_from_seams():
    """With the real net, tiles also differ by their instance-norm statistics (see tiling.py): close, not
    equal. A statistically uniform image keeps that difference small, so what is left is the seams."""
    model = TorchStylizer(tiny_models().net)
    image = np.random.default_rng(0).random((256, 384, 3), dtype=np.float32)
    whole = stylize_image(model, image)
    tiled = stylize_image(model, image, StylizeOptions(tile=192))
    diff = np.abs(tiled - whole).max(-1)
    away = _distance_to_seams(256, 384, 192) >= 48  # the net's receptive field radius is ~54 px
    assert away.mean() > 0.05
    assert diff[away].mean() < 0.015 and diff[away].max() < 0.1
    assert np.abs(whole - image).mean() > 0.1  # the net changes the image a lot more than tiling does


def test_no_seams_show():
    """Across each seam the tiled image changes no more than it does elsewhere."""
    model = TorchStylizer(tiny_models().net)
    image = photo(200, 300)
    tiled = stylize_image(model, image, StylizeOptions(tile=128))
    step = np.abs(np.diff(tiled, axis=1)).mean(axis=(0, 2))  # [W - 1] mean jump between columns x, x+1
    overlap = default_overlap(128)
    seams = [e - 1 for x in tile_starts(300, 128, overlap) for e in (x, x + 128) if 0 < e < 300]
    assert step[seams].max() < 2 * np.median(step)


def test_tiled_uint8_matches_tiled_float():
    model = TorchStylizer(tiny_models().net)
    pixels = (photo(100, 170) * 255 + 0.5).astype(np.uint8)
    as_float = stylize_image(model, pixels / np.float32(255), StylizeOptions(tile=64))
    as_uint8 = stylize_image(model, pixels, StylizeOptions(tile=64))
    assert as_uint8.dtype == np.uint8
    assert np.abs(as_uint8 / 255.0 - as_float).max() <= 0.5 / 255 + 1e-6  # only the output rounding differs


def test_postprocessing_per_tile_equals_postprocessing_the_whole():
    """Colour preservation and strength are affine in the stylized pixels, so they commute with the tile blend."""
    image = photo(130, 170, lo=0.2, hi=0.8)
    fake_net = lambda t: np.clip(t[..., ::-1] * 0.8 + 0.1, 0, 1)  # noqa: E731 (pointwise, so tiling is exact)
    options = dict(preserve_color=True, strength=0.6)
    whole = np.clip(blend(transfer_luminance(fake_net(image), image), image, 0.6), 0, 1)

    def process(t):
        return blend(transfer_luminance(fake_net(t), t), t, options["strength"])

    assert np.abs(stylize_tiled(process, image, tile=64) - whole).max() < 1e-5


# --- post-processing --------------------------------------------------------------------------


def test_transfer_luminance_takes_y_from_stylized_and_chroma_from_original():
    rng = np.random.default_rng(0)
    original, stylized = rng.random((2, 20, 30, 3), dtype=np.float32)
    out = transfer_luminance(stylized, original)
    assert np.abs(luminance(out) - luminance(stylized)).max() < 1e-5
    # Cb and Cr are fixed linear combinations of B - Y and R - Y.
    for c in (0, 2):
        assert np.abs((out[..., c] - luminance(out)) - (original[..., c] - luminance(original))).max() < 1e-5


def test_blend_ends_are_exact():
    rng = np.random.default_rng(1)
    original, stylized = rng.random((2, 8, 9, 3), dtype=np.float32)
    assert np.array_equal(blend(stylized, original, 0.0), original)
    assert np.array_equal(blend(stylized, original, 1.0), stylized)


# --- memory estimate --------------------------------------------------------------------------


def test_memory_check_refuses_above_budget_and_suggests_a_tile_that_fits():
    per_pixel = bytes_per_pixel(32)
    budget = 2**30
    check_forward_fits(500, 500, per_pixel, budget, tiled=False)
    with pytest.raises(FastNSTError, match=r"--tile (\d+)") as info:
        check_forward_fits(9000, 12000, per_pixel, budget, tiled=False)
    tile = int(re.search(r"--tile (\d+)", str(info.value)).group(1))
    assert tile == largest_tile(per_pixel, budget)
    check_forward_fits(tile, tile, per_pixel, budget, tiled=True)  # the suggestion really fits
    with pytest.raises(FastNSTError):
        check_forward_fits(tile + 64, tile + 64, per_pixel, budget, tiled=True)
