"""bench/camera.py and bench/flicker.py: the warp, the virtual camera's motion, and the temporal error
on models whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.camera import Camera, between, camera_to_photo, film, warp
from bench.flicker import Tally, pair_error, score, strip_image, table


@pytest.fixture(scope="module")
def picture_file(tmp_path_factory) -> Path:
    """A smooth 160x120 test photo on disk (``score`` reads its photos from files)."""
    yy, xx = np.mgrid[0:120, 0:160] / 40.0  # smooth: bicubic resampling is then nearly exact
    image = np.stack([np.sin(xx + 1), np.cos(yy * 1.3), np.sin(xx * 0.7 + yy)], axis=-1) * 0.4 + 0.5
    path = tmp_path_factory.mktemp("flicker") / "photo.png"
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def picture(picture_file) -> Image.Image:
    with Image.open(picture_file) as im:
        return im.convert("RGB")


def test_a_whole_pixel_shift_is_exact_and_the_mask_drops_what_came_from_outside():
    image = np.random.default_rng(0).random((20, 30, 3), dtype=np.float32)
    moved, valid = warp(image, (1, 0, 3, 0, 1, -2))  # output (x, y) shows input (x + 3, y - 2)
    assert np.array_equal(moved[2:, :-3], image[:-2, 3:])
    assert valid[4:-2, 2:-5].all() and not valid[:4].any() and not valid[:, -3:].any()


def test_between_composes_two_camera_maps(picture):
    size, source = (64, 48), picture.size
    later, earlier = (camera_to_photo(t, size, source, Camera()) for t in (5, 4))
    motion = between(later, earlier)
    for x, y in [(0.5, 0.5), (40.0, 17.25)]:  # frame 5's point -> frame 4's -> the photo == frame 5's -> the photo
        a, _, c, _, e, f = motion
        s0, _, c0, _, e0, f0 = earlier
        s1, _, c1, _, e1, f1 = later
        assert (s0 * (a * x + c) + c0, e0 * (e * y + f) + f0) == pytest.approx((s1 * x + c1, e1 * y + f1))


def test_the_known_motion_is_what_warp_undoes(picture):
    clip, motions = film(picture, 4, 96, Camera(pan=(2.5, 1.5), zoom=1.02, noise=0.0, jpeg=None))  # a fast camera
    known = pair_error(clip, motions)
    still = pair_error(clip, [(1, 0, 0, 0, 1, 0)] * len(motions))
    assert known[0] / known[1] < 0.1 * still[0] / still[1], "the right motion explains the change"
    assert known[0] / known[1] < 1.5 / 255, "what is left: 8-bit rounding and bicubic's error"


def test_a_per_pixel_model_on_a_still_clip_does_not_flicker(picture_file):
    still = Camera(pan=(0.0, 0.0), zoom=1.0, noise=0.0, jpeg=None)
    result = score({"gamma": lambda f: f ** 0.5}, [picture_file], frames=4, size=96, camera=still)
    assert result.tallies["gamma"].mean < 1e-6 and result.tallies["input"].mean < 1e-6


def test_identity_scores_1_and_fresh_noise_scores_high(picture_file):
    rng = np.random.default_rng(1)
    models = {"identity": lambda f: f, "noisy": lambda f: np.clip(f + rng.normal(0, 0.05, f.shape), 0, 1)}
    result = score(models, [picture_file], frames=5, size=96, strip_photo=0)
    base = result.tallies["input"].mean
    assert result.tallies["identity"].mean / base == pytest.approx(1.0, abs=1e-6)
    assert result.tallies["noisy"].mean / base > 3
    assert "| identity | " in table(result.tallies)
    strip = strip_image(result.strip, result.strip_motions[0], crop=32, count=4, zoom=2)
    assert strip.size == (150 + 4 * 66, 3 * 66)


def test_the_clip_is_deterministic(picture):
    a, _ = film(picture, 3, 64, seed=7)
    b, _ = film(picture, 3, 64, seed=7)
    c, _ = film(picture, 3, 64, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and not np.array_equal(a[1], c[1])


def test_tally_weights_every_valid_pixel_the_same():
    tally = Tally()
    frames = [np.zeros((8, 8, 3), np.float32), np.full((8, 8, 3), 0.5, np.float32)]
    tally.add("a", frames, [(1, 0, 0, 0, 1, 0)])
    assert tally.mean == pytest.approx(0.5) and tally.per_photo == {"a": pytest.approx(0.5)}
