"""The Gatys path: pixel optimization with L-BFGS and Adam, initializations, callback, median filter."""

from __future__ import annotations

import pytest
import torch

from fastnst import gatys
from fastnst.errors import FastNSTError
from fastnst.gatys import SGD_LR, initial_image, median_filter, step_schedule, stylize
from fastnst.image import load_image, to_tensor
from fastnst.losses import tv_loss
from fastnst.perceptual import LossConfig, PerceptualLoss
from fastnst.vgg import VGGFeatures, load_vgg

pytestmark = pytest.mark.usefixtures("seeded")

SIZE = 32


@pytest.fixture(scope="module")
def setup():
    """A random-init VGG19 (to relu3_4) perceptual loss and a 32x32 content image."""
    torch.manual_seed(0)
    cfg = LossConfig()
    vgg = VGGFeatures(cfg.layers)
    g = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, SIZE, SIZE, generator=g)
    style = torch.rand(1, 3, SIZE, SIZE, generator=g) ** 2
    return content, PerceptualLoss(vgg, style, cfg)


def check_result(image, history, content, iterations):
    assert image.shape == content.shape
    assert image.dtype == torch.float32
    assert not image.requires_grad
    assert image.min() >= 0 and image.max() <= 1
    assert len(history) == iterations
    for record in history:
        assert set(record) == {"content", "style", "tv", "total"}
        assert all(isinstance(v, float) for v in record.values())
        assert record["total"] == pytest.approx(record["content"] + record["style"] + record["tv"], rel=1e-5)
    assert history[-1]["total"] < history[0]["total"]


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "sgd"])
def test_stylize_reduces_loss(setup, optimizer):
    content, loss = setup
    image, history = stylize(content, loss, iterations=6, optimizer=optimizer)
    check_result(image, history, content, 6)
    assert not torch.equal(image, content)
    # The returned image really is better than the content photo it started from.
    targets = loss.content_targets(content)
    with torch.no_grad():
        assert loss(image, targets)["total"] < loss(content, targets)["total"]


@pytest.mark.parametrize("init", ["content", "noise", "smooth-noise"])
def test_inits(setup, init):
    content, loss = setup
    image, history = stylize(content, loss, iterations=3, init=init, optimizer="adam", lr=0.05)
    check_result(image, history, content, 3)


def test_initial_images():
    content = torch.rand(1, 3, 16, 16)
    start = initial_image(content, "content", torch.Generator().manual_seed(0))
    torch.testing.assert_close(start, content)
    assert start.data_ptr() != content.data_ptr()  # a copy: optimizing it never touches the input

    noise = initial_image(content, "noise", torch.Generator().manual_seed(0))
    again = initial_image(content, "noise", torch.Generator().manual_seed(0))
    other = initial_image(content, "noise", torch.Generator().manual_seed(1))
    torch.testing.assert_close(noise, again)
    assert not torch.equal(noise, other)
    assert noise.shape == content.shape and noise.min() >= 0 and noise.max() <= 1

    smooth = initial_image(content, "smooth-noise", torch.Generator().manual_seed(0))
    assert smooth.shape == content.shape and smooth.min() >= 0 and smooth.max() <= 1
    assert tv_loss(smooth) < 0.5 * tv_loss(noise)  # the median removes high frequencies

    with pytest.raises(FastNSTError, match="init"):
        initial_image(content, "zeros", torch.Generator())


def test_seed_makes_noise_runs_reproducible(setup):
    content, loss = setup
    a, _ = stylize(content, loss, iterations=2, init="noise", optimizer="adam", seed=3)
    b, _ = stylize(content, loss, iterations=2, init="noise", optimizer="adam", seed=3)
    c, _ = stylize(content, loss, iterations=2, init="noise", optimizer="adam", seed=4)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)


def test_zero_iterations_refused(setup):
    content, loss = setup
    for n in (0, -1):
        with pytest.raises(FastNSTError, match="iterations"):
            stylize(content, loss, iterations=n)


def test_unknown_optimizer_refused(setup):
    content, loss = setup
    with pytest.raises(FastNSTError, match="lbfgs, adam or sgd"):
        stylize(content, loss, iterations=2, optimizer="rmsprop")


def test_unknown_init_refused(setup):
    content, loss = setup
    with pytest.raises(FastNSTError, match="zeros"):
        stylize(content, loss, iterations=2, init="zeros")


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "sgd"])
def test_callback_once_per_iteration(setup, optimizer):
    content, loss = setup
    calls = []

    def callback(step, terms, image):
        assert image.shape == content.shape and not image.requires_grad
        calls.append((step, dict(terms), image.clone()))

    _, history = stylize(content, loss, iterations=5, optimizer=optimizer, lr=0.1 if optimizer == "adam" else None,
                         callback=callback)
    assert [c[0] for c in calls] == [1, 2, 3, 4, 5]
    assert [c[1] for c in calls] == history
    # The image handed over is a snapshot, not the live tensor being optimized.
    assert not torch.equal(calls[0][2], calls[-1][2])
    if optimizer != "lbfgs":  # Adam's and SGD's pixels are kept in [0, 1] after every step
        assert all(c[2].min() >= 0 and c[2].max() <= 1 for c in calls)


def test_lr_sets_adam_step_size(setup):
    content, loss = setup
    _, h1 = stylize(content, loss, iterations=2, optimizer="adam", lr=1e-4)
    _, h2 = stylize(content, loss, iterations=2, optimizer="adam", lr=5e-2)
    # Adam's first step moves each pixel by ~lr: a larger lr reduces the loss more in one step.
    assert h2[1]["total"] < h1[1]["total"]


def test_sgd_step_scales_with_pixels_and_decays_by_0_96_per_100_steps():
    first, gamma = step_schedule("sgd", None, 128 * 128)
    assert first == pytest.approx(SGD_LR * 128 * 128)
    assert step_schedule("sgd", None, 256 * 256)[0] == pytest.approx(4 * first)
    assert step_schedule("sgd", 1e-3, 100)[0] == pytest.approx(0.1)
    assert gamma**100 == pytest.approx(0.96)
    assert step_schedule("adam", None, 10_000) == (0.02, 1.0)


def test_stylize_does_not_modify_content(setup):
    content, loss = setup
    before = content.clone()
    stylize(content, loss, iterations=2, optimizer="lbfgs")
    torch.testing.assert_close(content, before)


def test_median_filter_removes_isolated_spike():
    x = torch.zeros(1, 3, 9, 9)
    x[0, 1, 4, 4] = 1.0
    x[0, 0, 0, 0] = 1.0  # a corner spike too (reflect padding)
    assert median_filter(x).abs().max() == 0


def test_median_filter_keeps_flat_and_edges():
    flat = torch.full((2, 3, 8, 8), 0.25)
    torch.testing.assert_close(median_filter(flat), flat)
    edge = torch.zeros(1, 1, 10, 10)
    edge[..., 5:] = 1.0
    torch.testing.assert_close(median_filter(edge), edge)
    assert median_filter(torch.rand(2, 3, 7, 11), k=3).shape == (2, 3, 7, 11)


# ---------------------------------------------------------------------------------------------
# real weights and data (skipped without ../shared and $FASTNST_VGG_WEIGHTS)

REAL_ITERATIONS = 50  # ~9 s on one core; style falls >20x by iteration 20


@pytest.mark.weights
def test_real_starry_night_style_drops(shared_dir, real_vgg_weights):
    content_dir = shared_dir / "data" / "content"
    style_path = shared_dir / "data" / "style" / "starry_night.jpg"
    photos = sorted(p for p in content_dir.iterdir() if p.is_file()) if content_dir.is_dir() else []
    if not photos or not style_path.is_file():
        pytest.skip("shared content photos or starry_night.jpg missing")
    content = to_tensor(load_image(photos[0], 128, upscale=True))
    style = to_tensor(load_image(style_path, 128, upscale=True))
    assert max(content.shape[-2:]) == 128 and max(style.shape[-2:]) == 128

    cfg = LossConfig()
    loss = PerceptualLoss(load_vgg(cfg.layers, weights=real_vgg_weights), style, cfg)
    targets = loss.content_targets(content)
    with torch.no_grad():
        start = loss(content, targets)["style"].item()
    image, history = gatys.stylize(content, loss, iterations=REAL_ITERATIONS, optimizer="lbfgs")
    assert len(history) == REAL_ITERATIONS
    with torch.no_grad():
        end = loss(image, targets)  # the returned (clamped) image, not the optimizer's last record
    assert end["style"].item() * 5 <= start
    assert end["content"].item() > 0  # it moved away from the photo ...
    assert end["total"].item() < start  # ... and is better overall than the photo itself


class TurnsNaN:
    """``loss`` whose total becomes NaN from its ``after``-th evaluation on (as a diverging run's does)."""

    def __init__(self, loss, after: int):
        self.loss, self.after, self.calls = loss, after, 0

    def content_targets(self, content):
        return self.loss.content_targets(content)

    def __call__(self, image, targets):
        self.calls += 1
        terms = self.loss(image, targets)
        if self.calls >= self.after:
            terms["total"] = terms["total"] * float("nan")
        return terms


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_a_non_finite_loss_stops_with_an_error_and_the_last_finite_image(setup, optimizer):
    content, loss = setup
    seen = []
    with pytest.raises(gatys.NonFiniteLoss, match="nan") as err:
        # L-BFGS evaluates the loss several times per iteration (its line search).
        stylize(content, TurnsNaN(loss, after=4 if optimizer == "adam" else 15), iterations=20, optimizer=optimizer,
                callback=lambda step, terms, image: seen.append((step, terms["total"], image)))
    assert isinstance(err.value, FastNSTError)  # a one-line error in the CLI
    assert seen and all(torch.isfinite(image).all() and total == total for _, total, image in seen)
    assert err.value.iteration == len(seen) + 1


@pytest.mark.parametrize("lr", [0.0, -1.0, float("nan"), float("inf")])
def test_lr_must_be_finite_and_positive(setup, lr):
    content, loss = setup
    with pytest.raises(FastNSTError, match="lr"):
        stylize(content, loss, iterations=2, optimizer="adam", lr=lr)


def test_lbfgs_with_the_palette_term_sees_one_function_and_moves_toward_the_paintings_colours(setup):
    content, loss = setup
    painting = torch.stack([torch.full((SIZE, SIZE), v) for v in (0.9, 0.3, 0.1)])[None]  # orange
    loss = PerceptualLoss(loss.vgg, painting, LossConfig(style_weight=0.0, tv_weight=0.0, palette_weight=10.0))
    _, history = stylize(content, loss, iterations=15)
    assert history[-1]["palette"] < 0.5 * history[0]["palette"]
    assert loss.training  # the mode stylize switched off for the run is back
