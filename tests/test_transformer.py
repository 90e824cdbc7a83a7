"""TransformerNet: exact output size for any input, gradients reach every parameter, never VGG."""

import pytest
import torch

from fastnst.perceptual import LossConfig, PerceptualLoss
from fastnst.transformer import TransformerNet
from fastnst.vgg import VGGFeatures


@pytest.mark.parametrize("h, w", [(1, 1), (3, 5), (16, 16), (17, 31), (33, 18), (64, 64)])
def test_output_has_input_size(h, w):
    net = TransformerNet(width=8).eval()
    y = net(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.min() >= 0 and y.max() <= 1  # eval mode clamps to the pixel range


def test_train_mode_output_is_unclamped():
    # Clamping in training would zero the gradient of out-of-range pixels.
    net = TransformerNet(width=8).train()
    with torch.no_grad():
        net.decoder[-1][1].bias.fill_(5.0)
    assert net(torch.rand(1, 3, 16, 16)).min() > 1


def test_width_scales_channels():
    slim, full = TransformerNet(width=8), TransformerNet(width=16)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert 3.5 < n(full) / n(slim) < 4.5  # convs dominate: parameters grow with width squared


def test_residual_blocks_run_at_a_quarter_size_and_four_times_the_width():
    x = torch.rand(1, 3, 64, 48)
    net = TransformerNet(width=8).eval()
    h = net.encoder(x)
    assert h.shape == (1, 32, 16, 12)
    assert net.residuals(h).shape == h.shape
    for bad in (1, 3):  # model files name downsamples; only the paper's 2 is built
        with pytest.raises(ValueError, match="downsamples"):
            TransformerNet(width=8, downsamples=bad)


def test_no_transposed_convolutions_and_reflection_padding():
    net = TransformerNet(width=8)
    kinds = {type(m).__name__ for m in net.modules()}
    assert "ConvTranspose2d" not in kinds
    assert {"ReflectionPad2d", "InstanceNorm2d", "Upsample"} <= kinds
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) and m.affine for m in net.modules()) > 0


def test_gradients_reach_every_transformer_parameter_and_never_vgg():
    torch.manual_seed(0)
    cfg = LossConfig()
    vgg = VGGFeatures(cfg.layers)
    loss = PerceptualLoss(vgg, torch.rand(1, 3, 32, 32), cfg)
    net = TransformerNet(width=8).train()
    x = torch.rand(2, 3, 32, 32)
    loss(net(x), loss.content_targets(x))["total"].backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None and not p.requires_grad for p in vgg.parameters())
