"""fastnst/stability.py: the motion, the warp and the stability term on cases with a known answer."""

import pytest
import torch

from fastnst.stability import MAX_SHIFT, MAX_ZOOM, NOISE, random_motion, stability_loss, warp


def test_the_identity_motion_changes_nothing_and_keeps_every_pixel():
    images = torch.rand(2, 3, 12, 16)
    theta = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3)
    moved, mask = warp(images, theta)
    assert torch.allclose(moved, images, atol=1e-5) and bool(mask.all())


def test_a_one_pixel_shift_moves_the_picture_by_a_pixel_and_masks_the_new_edge():
    images = torch.rand(1, 3, 8, 10)
    theta = torch.tensor([[[1.0, 0, 2 / 10], [0, 1.0, 0]]])  # sample one px to the right
    moved, mask = warp(images, theta)
    assert torch.allclose(moved[..., :-1], images[..., 1:], atol=1e-5)
    assert mask[0, 0, :, :-1].all() and not mask[0, 0, :, -1].any()


def test_random_motions_stay_within_their_bounds():
    theta = random_motion(1000, 64, 128, torch.Generator().manual_seed(0))
    zoom = theta[:, 0, 0]
    assert torch.equal(zoom, theta[:, 1, 1]) and (zoom - 1).abs().max() <= MAX_ZOOM
    assert (theta[:, 0, 2] * 128 / 2).abs().max() <= MAX_SHIFT + 1e-5
    assert (theta[:, 1, 2] * 64 / 2).abs().max() <= MAX_SHIFT + 1e-5
    assert (zoom - 1).abs().max() > MAX_ZOOM / 2, "they do move"


def test_a_net_that_moves_with_the_picture_scores_its_noise_and_a_flickering_one_far_more():
    photos = torch.rand(2, 3, 32, 32)
    g = torch.Generator().manual_seed(0)

    def halve(x):  # per pixel: moves exactly with the picture
        return 0.5 * x

    still = stability_loss(halve, photos, halve(photos), g).item()
    assert still == pytest.approx(0.25 * NOISE**2, rel=0.2), "only the added noise, halved, is left"

    def flicker(x):  # a fresh pattern every call, as a net that repaints its strokes
        return torch.rand_like(x)

    assert stability_loss(flicker, photos, flicker(photos), g).item() > 100 * still


def test_the_gradient_reaches_the_net_not_the_target():
    net = torch.nn.Conv2d(3, 3, 3, padding=1)
    photos = torch.rand(1, 3, 16, 16)
    output = net(photos)
    output.retain_grad()
    stability_loss(net, photos, output, torch.Generator().manual_seed(0)).backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0
    assert output.grad is None, "the photo's own stylization is the anchor, not pulled toward the moved one"
