"""Loss terms against the formulas in the seed notes (computed independently, with loops), and PerceptualLoss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastnst.errors import FastNSTError
from fastnst.losses import (STRUCTURE_LAYER, colour_quantiles, content_loss, gram, palette_loss, rgb_to_lab, structure,
                            style_loss, tv_loss)
from fastnst.perceptual import LossConfig, PerceptualLoss
from fastnst.vgg import VGGFeatures

pytestmark = pytest.mark.usefixtures("seeded")


def raw_gram_loops(a: np.ndarray) -> np.ndarray:
    """Course/Gatys Gram of one [C, H, W] activation: G_kk' = Σ_ij a_ijk · a_ijk' (no normalization)."""
    c, h, w = a.shape
    g = np.zeros((c, c), dtype=np.float64)
    for k in range(c):
        for k2 in range(c):
            s = 0.0
            for i in range(h):
                for j in range(w):
                    s += float(a[k, i, j]) * float(a[k2, i, j])
            g[k, k2] = s
    return g


def course_j_content(a_c: np.ndarray, a_g: np.ndarray) -> float:
    """J_content = 1/(4·nH·nW·nC) · Σ (a_C − a_G)²  for one [C, H, W] activation."""
    n_c, n_h, n_w = a_c.shape
    s = 0.0
    for k in range(n_c):
        for i in range(n_h):
            for j in range(n_w):
                s += (float(a_c[k, i, j]) - float(a_g[k, i, j])) ** 2
    return s / (4 * n_h * n_w * n_c)


def course_j_style_layer(a_s: np.ndarray, a_g: np.ndarray) -> float:
    """J_style^l = 1/(4·nC²·(nH·nW)²) · Σ_kk' (G_S − G_G)² with raw Grams."""
    n_c, n_h, n_w = a_s.shape
    gs, gg = raw_gram_loops(a_s), raw_gram_loops(a_g)
    s = 0.0
    for k in range(n_c):
        for k2 in range(n_c):
            s += (gs[k, k2] - gg[k, k2]) ** 2
    return s / (4 * n_c**2 * (n_h * n_w) ** 2)


def tv_loops(x: np.ndarray) -> float:
    """Mean squared vertical difference + mean squared horizontal difference, [B, C, H, W]."""
    b, c, h, w = x.shape
    sy = sx = 0.0
    for n in range(b):
        for k in range(c):
            for i in range(h):
                for j in range(w):
                    if i + 1 < h:
                        sy += (float(x[n, k, i + 1, j]) - float(x[n, k, i, j])) ** 2
                    if j + 1 < w:
                        sx += (float(x[n, k, i, j + 1]) - float(x[n, k, i, j])) ** 2
    return sy / (b * c * (h - 1) * w) + sx / (b * c * h * (w - 1))


# ---------------------------------------------------------------------------------------------
# formulas


def test_gram_is_feature_outer_product_over_chw():
    x = torch.randn(2, 3, 4, 5)
    g = gram(x)
    assert g.shape == (2, 3, 3) and g.dtype == torch.float32
    for b in range(2):
        expected = raw_gram_loops(x[b].numpy()) / (3 * 4 * 5)
        np.testing.assert_allclose(g[b].numpy(), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g, g.transpose(1, 2))


def test_content_loss_is_four_times_course_j_content():
    a_c, a_g = torch.randn(1, 4, 3, 5), torch.randn(1, 4, 3, 5)
    j = course_j_content(a_c[0].numpy(), a_g[0].numpy())
    assert content_loss(a_g, a_c).item() == pytest.approx(4 * j, rel=1e-5)
    assert content_loss(a_c, a_c).item() == 0.0


def test_style_loss_is_course_j_style_times_4_over_c2():
    c = 3
    a_s, a_g = torch.randn(1, c, 4, 3), torch.randn(1, c, 4, 3)
    j = course_j_style_layer(a_s[0].numpy(), a_g[0].numpy())
    ours = style_loss(a_g, gram(a_s)).item()
    assert ours == pytest.approx(j * 4 / c**2, rel=1e-4)
    assert style_loss(a_s, gram(a_s)).item() == pytest.approx(0.0, abs=1e-12)


def test_tv_loss_matches_loops():
    x = torch.rand(2, 3, 4, 6)
    assert tv_loss(x).item() == pytest.approx(tv_loops(x.numpy()), rel=1e-5)
    assert tv_loss(torch.full((1, 3, 5, 5), 0.3)).item() == 0.0


def test_tv_loss_of_checkerboard():
    # Every neighbour differs by 1 in both directions: mean dy² = mean dx² = 1.
    board = (torch.arange(6).view(6, 1) + torch.arange(7).view(1, 7)) % 2
    assert tv_loss(board.float().expand(1, 3, 6, 7)).item() == pytest.approx(2.0)


# ---------------------------------------------------------------------------------------------
# batches reduce by mean


def test_batch_reduces_by_mean():
    feats, target = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    per_item = [content_loss(feats[i : i + 1], target[i : i + 1]) for i in range(3)]
    assert content_loss(feats, target).item() == pytest.approx(torch.stack(per_item).mean().item(), rel=1e-6)

    g = gram(feats)
    for i in range(3):
        torch.testing.assert_close(g[i : i + 1], gram(feats[i : i + 1]))

    style = torch.randn(1, 4, 5, 5)
    target_gram = gram(style)  # [1, C, C] broadcast over the batch
    per_item = [style_loss(feats[i : i + 1], target_gram) for i in range(3)]
    assert style_loss(feats, target_gram).item() == pytest.approx(torch.stack(per_item).mean().item(), rel=1e-5)

    images = torch.rand(3, 3, 6, 6)
    per_item = [tv_loss(images[i : i + 1]) for i in range(3)]
    assert tv_loss(images).item() == pytest.approx(torch.stack(per_item).mean().item(), rel=1e-6)


def test_losses_do_not_grow_with_batch_size():
    feats, target = torch.randn(1, 4, 5, 5), torch.randn(1, 4, 5, 5)
    big_f, big_t = feats.expand(8, -1, -1, -1), target.expand(8, -1, -1, -1)
    assert content_loss(big_f, big_t).item() == pytest.approx(content_loss(feats, target).item(), rel=1e-6)
    assert style_loss(big_f, gram(target)).item() == pytest.approx(style_loss(feats, gram(target)).item(), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# precision and gradients


def test_fp32_under_bf16_autocast():
    feats = torch.randn(2, 8, 6, 6).bfloat16()
    target = torch.randn(2, 8, 6, 6).bfloat16()
    target_gram = gram(target.float())[:1]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        # Sanity: autocast is really on, a plain matmul comes out bf16.
        assert torch.mm(torch.randn(3, 3), torch.randn(3, 3)).dtype == torch.bfloat16
        g = gram(feats)
        s = style_loss(feats, target_gram)
        c = content_loss(feats, target)
        t = tv_loss(feats)
    for value in (g, s, c, t):
        assert value.dtype == torch.float32
    # Computed from the upcast inputs, not in bf16: equal to the fp32 computation on the same values.
    torch.testing.assert_close(g, gram(feats.float()), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(s, style_loss(feats.float(), target_gram), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(c, content_loss(feats.float(), target.float()), rtol=1e-6, atol=1e-9)


def test_gradients_flow():
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    t = torch.randn(1, 3, 4, 4)
    content_loss(x, t).backward()
    # d/dx mean((x − t)²) = 2(x − t)/N
    torch.testing.assert_close(x.grad, 2 * (x.detach() - t) / x.numel())

    x.grad = None
    style_loss(x, gram(t)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0

    img = torch.rand(1, 3, 5, 5, requires_grad=True)
    tv_loss(img).backward()
    assert img.grad.abs().sum() > 0


def test_style_gradient_matches_finite_difference():
    x = torch.randn(1, 2, 3, 3)
    target_gram = gram(torch.randn(1, 2, 3, 3))
    xg = x.clone().requires_grad_(True)
    style_loss(xg, target_gram).backward()
    eps = 1e-3
    for idx in [(0, 0, 0, 0), (0, 1, 2, 1), (0, 0, 1, 2)]:
        plus, minus = x.clone(), x.clone()
        plus[idx] += eps
        minus[idx] -= eps
        numeric = (style_loss(plus, target_gram) - style_loss(minus, target_gram)).item() / (2 * eps)
        assert xg.grad[idx].item() == pytest.approx(numeric, rel=2e-2, abs=1e-5)


def test_bf16_input_gets_gradient():
    x = torch.randn(1, 4, 4, 4).bfloat16().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = style_loss(x, gram(torch.randn(1, 4, 4, 4))) + content_loss(x, torch.zeros(1, 4, 4, 4))
    loss.backward()
    assert x.grad is not None and x.grad.dtype == torch.bfloat16 and x.grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# PerceptualLoss (random-init VGG)


SMALL = LossConfig(content_layers=("relu2_2",), style_layers=("relu1_1", "relu2_1", "relu3_1"))


@pytest.fixture
def vgg():
    torch.manual_seed(0)
    return VGGFeatures(SMALL.layers)


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    content = torch.rand(1, 3, 24, 24, generator=g)
    style = torch.rand(1, 3, 24, 24, generator=g) ** 2  # different statistics from the content
    return content, style


def test_style_grams_are_buffers(vgg, images):
    _, style = images
    loss = PerceptualLoss(vgg, style, SMALL)
    state = loss.state_dict()
    buffers = dict(loss.named_buffers())
    feats = vgg(style)
    for name in SMALL.style_layers:
        key = f"gram_{name}"
        assert key in state and key in buffers
        c = feats[name].shape[1]
        assert buffers[key].shape == (1, c, c) and buffers[key].dtype == torch.float32
        torch.testing.assert_close(buffers[key], gram(feats[name]))
    assert "gram_relu2_2" not in buffers  # a content-only layer has no Gram


def test_state_dict_restores_style(vgg, images):
    content, style = images
    a = PerceptualLoss(vgg, style, SMALL)
    b = PerceptualLoss(vgg, content, SMALL)  # a different style
    image = torch.rand(1, 3, 24, 24)
    targets = a.content_targets(content)
    assert a(image, targets)["style"].item() != pytest.approx(b(image, targets)["style"].item(), rel=1e-3)
    b.load_state_dict(a.state_dict())
    assert b(image, targets)["style"].item() == pytest.approx(a(image, targets)["style"].item(), rel=1e-6)


def test_terms_and_total(vgg, images):
    content, style = images
    loss = PerceptualLoss(vgg, style, SMALL)
    terms = loss(torch.rand(1, 3, 24, 24), loss.content_targets(content))
    assert set(terms) == {"content", "style", "tv", "total"}
    for v in terms.values():
        assert v.dim() == 0 and v.dtype == torch.float32 and torch.isfinite(v)
    assert terms["content"] > 0 and terms["style"] > 0 and terms["tv"] > 0
    assert terms["total"].item() == pytest.approx((terms["content"] + terms["style"] + terms["tv"]).item(), rel=1e-6)


def test_the_loss_reports_structure_only_when_its_targets_carry_the_photos_structure_layer(images):
    content, style = images
    vgg = VGGFeatures(SMALL.layers + (STRUCTURE_LAYER,))
    loss = PerceptualLoss(vgg, style, SMALL)
    image = torch.rand(1, 3, 24, 24)
    plain, targets = loss.content_targets(content), loss.content_targets(content, (STRUCTURE_LAYER,))
    assert set(plain) == {"relu2_2"} and set(targets) == {"relu2_2", STRUCTURE_LAYER}
    assert "structure" not in loss(image, plain)
    terms = loss(image, targets)
    expected = structure(vgg(content)[STRUCTURE_LAYER], vgg(image)[STRUCTURE_LAYER])
    assert terms["structure"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert loss(content, targets)["structure"].item() == pytest.approx(1.0, abs=1e-5), "the photo keeps all of itself"
    assert terms["total"].item() == pytest.approx(loss(image, plain)["total"].item(), rel=1e-6), "not in the loss"


def test_layer_terms_are_the_unweighted_parts_of_the_weighted_sums(vgg, images):
    content, style = images
    cfg = LossConfig(content_layers=SMALL.content_layers, style_layers=SMALL.style_layers,
                     content_weight=2.0, style_weight=5.0)
    loss = PerceptualLoss(vgg, style, cfg)
    image, targets = torch.rand(1, 3, 24, 24), loss.content_targets(content)
    layers, terms = loss.layer_terms(image, targets), loss(image, targets)
    assert set(layers) == {"content_relu2_2"} | {f"style_{k}" for k in SMALL.style_layers}
    assert layers["content_relu2_2"].item() == pytest.approx(
        (content_loss(vgg(image)["relu2_2"], targets["relu2_2"]) / targets["relu2_2"].pow(2).mean()).item(), rel=1e-5)
    style_sum = sum(v.item() for k, v in layers.items() if k.startswith("style_"))
    assert terms["style"].item() == pytest.approx(5.0 * style_sum, rel=1e-5)
    assert terms["content"].item() == pytest.approx(2.0 * layers["content_relu2_2"].item(), rel=1e-5)
    assert layers["style_relu1_1"].item() == pytest.approx(
        (style_loss(vgg(image)["relu1_1"], loss.gram_relu1_1) * loss.gram_scale_relu1_1).item(), rel=1e-5)


def test_content_term_zero_for_content_image(vgg, images):
    content, style = images
    loss = PerceptualLoss(vgg, style, SMALL)
    terms = loss(content, loss.content_targets(content))
    assert terms["content"].item() == pytest.approx(0.0, abs=1e-7)
    assert terms["style"].item() > 0


def test_style_term_zero_for_style_image(vgg, images):
    content, style = images
    cfg = LossConfig(content_layers=SMALL.content_layers, style_layers=SMALL.style_layers, content_weight=0.0)
    loss = PerceptualLoss(vgg, style, cfg)
    terms = loss(style, loss.content_targets(content))
    assert terms["style"].item() == pytest.approx(0.0, abs=1e-6)
    assert terms["content"].item() == 0.0  # weight 0, though image != content
    assert terms["total"].item() == pytest.approx(terms["tv"].item(), rel=1e-6)


def test_weights_scale_terms(vgg, images):
    content, style = images
    image = torch.rand(1, 3, 24, 24)
    base = PerceptualLoss(vgg, style, SMALL)
    doubled = PerceptualLoss(vgg, style, LossConfig(content_layers=SMALL.content_layers, style_layers=SMALL.style_layers,
                                                    content_weight=2 * SMALL.content_weight,
                                                    style_weight=3 * SMALL.style_weight, tv_weight=0.0))
    t1 = base(image, base.content_targets(content))
    t2 = doubled(image, doubled.content_targets(content))
    assert t2["content"].item() == pytest.approx(2 * t1["content"].item(), rel=1e-5)
    assert t2["style"].item() == pytest.approx(3 * t1["style"].item(), rel=1e-5)
    assert t2["tv"].item() == 0.0


def test_terms_are_relative_per_layer(images):
    """Each layer's term is divided by its target's size, so scaling every activation by s (a bias-free
    first conv with weights ×s) leaves the content and style terms unchanged."""
    content, style = images
    net = VGGFeatures(["relu1_1"])
    torch.nn.init.zeros_(net.features[0].bias)
    cfg = LossConfig(content_layers=("relu1_1",), style_layers=("relu1_1",))
    image = torch.rand(1, 3, 24, 24)
    t1 = PerceptualLoss(net, style, cfg)(image, PerceptualLoss(net, style, cfg).content_targets(content))
    with torch.no_grad():
        net.features[0].weight.mul_(50.0)
    loss2 = PerceptualLoss(net, style, cfg)
    t2 = loss2(image, loss2.content_targets(content))
    assert t2["content"].item() == pytest.approx(t1["content"].item(), rel=1e-4)
    assert t2["style"].item() == pytest.approx(t1["style"].item(), rel=1e-4)


def test_gradient_reaches_image_not_vgg(vgg, images):
    content, style = images
    loss = PerceptualLoss(vgg, style, SMALL)
    image = content.clone().requires_grad_(True)
    loss(image, loss.content_targets(content))["total"].backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_missing_layers_and_bad_config_are_user_errors(images):
    _, style = images
    with pytest.raises(FastNSTError, match="relu3_1"):
        PerceptualLoss(VGGFeatures(["relu1_1", "relu2_1", "relu2_2"]), style, SMALL)
    with pytest.raises(FastNSTError):
        LossConfig(style_layers=())
    with pytest.raises(FastNSTError, match="style_weight"):
        LossConfig(style_weight=-1.0)


def test_config_accepts_lists_and_is_hashable():
    cfg = LossConfig(content_layers=["relu2_2"], style_layers=["relu1_1", "relu2_2"])
    assert cfg.style_layers == ("relu1_1", "relu2_2")
    assert cfg.layers == ("relu2_2", "relu1_1")  # unique, content first
    hash(cfg)


def test_structure_is_the_mean_cosine_of_feature_vectors_per_location():
    photo = torch.rand(2, 8, 5, 7)
    assert float(structure(photo, photo)) == pytest.approx(1.0, abs=1e-6)
    # Each location's vector rescaled (brighter or darker texture, same layout): still 1.
    assert float(structure(photo, photo * torch.rand(2, 1, 5, 7).add(0.1))) == pytest.approx(1.0, abs=1e-6)
    # Features on disjoint channels at every location: orthogonal, 0.
    a, b = torch.zeros(1, 4, 3, 3), torch.zeros(1, 4, 3, 3)
    a[:, :2], b[:, 2:] = 1.0, 1.0
    assert float(structure(a, b)) == pytest.approx(0.0, abs=1e-6)
    # Against a loop over locations and the batch, in bf16 inputs too (computed in fp32).
    out = torch.rand(2, 8, 5, 7)
    cos = [float(np.dot(p, o) / (np.linalg.norm(p) * np.linalg.norm(o)))
           for n in range(2) for y in range(5) for x in range(7)
           for p, o in [(photo[n, :, y, x].numpy(), out[n, :, y, x].numpy())]]
    assert float(structure(photo, out)) == pytest.approx(np.mean(cos), rel=1e-5)
    low = structure(photo.bfloat16(), out.bfloat16())
    assert low.dtype == torch.float32 and float(low) == pytest.approx(np.mean(cos), abs=1e-2)


# ---------------------------------------------------------------------------------------------
# The palette term


def test_lab_matches_the_scorers_numpy_twin():
    from bench.palette import srgb_to_lab

    rgb = torch.rand(2, 3, 9, 7)
    rgb[0, :, 0, 0] = 0.0  # black and white, the ends of both branches
    rgb[0, :, 0, 1] = 1.0
    ours = rgb_to_lab(rgb).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, srgb_to_lab(rgb.permute(0, 2, 3, 1).numpy()), atol=1e-3)


def palette_target(painting: torch.Tensor, directions: int = 64):
    lab = rgb_to_lab(painting).flatten(2)[0].T
    d = torch.nn.functional.normalize(torch.randn(directions, 3), dim=1)
    return d, colour_quantiles(lab, d, 256), lab.var(dim=0).sum() / 3


def test_palette_loss_is_zero_for_the_paintings_colours_in_any_arrangement():
    painting = torch.rand(1, 3, 32, 32) ** 2
    d, q, var = palette_target(painting)
    shuffled = painting.flatten(2)[..., torch.randperm(32 * 32)].reshape(1, 3, 32, 32)
    assert palette_loss(shuffled, d, q, var).item() == pytest.approx(0.0, abs=2e-3)


def test_palette_loss_of_one_flat_colour_is_its_distance_plus_the_paintings_spread():
    # One colour c against colours X with mean m, over isotropic random directions d:
    # E[(d·(X − c))²] = trace(cov X)/3 + |m − c|²/3, so the loss is 1 + |m − c|² / trace(cov X).
    painting = torch.rand(1, 3, 64, 64)
    d, q, var = palette_target(painting, directions=4000)
    lab = rgb_to_lab(painting).flatten(2)[0].T
    for rgb in (painting.mean(dim=(2, 3)), torch.zeros(1, 3), torch.tensor([[0.9, 0.2, 0.1]])):
        flat = rgb[..., None, None].expand(1, 3, 8, 8)
        c = rgb_to_lab(flat)[0, :, 0, 0]
        expected = 1 + (lab.mean(0) - c).pow(2).sum() / (3 * var)
        assert palette_loss(flat, d, q, var).item() == pytest.approx(expected.item(), rel=0.05)


def test_palette_loss_gradient_moves_colours_toward_the_painting_and_is_finite_at_black():
    painting = torch.stack([torch.full((16, 16), 0.9), torch.full((16, 16), 0.3), torch.full((16, 16), 0.1)])[None]
    painting = (painting + 0.05 * torch.rand(1, 3, 16, 16)).clamp(0, 1)  # orange with some spread
    d, q, var = palette_target(painting)
    image = torch.zeros(1, 3, 16, 16, requires_grad=True)
    before = palette_loss(image, d, q, var)
    before.backward()
    assert torch.isfinite(image.grad).all()
    with torch.no_grad():
        image.sub_(0.05 * image.grad / image.grad.abs().max()).clamp_(0, 1)
    assert palette_loss(image, d, q, var).item() < before.item()
    assert image[0, 0].mean() > image[0, 2].mean()  # red rose more than blue


def test_the_palette_term_is_off_by_default_and_weighted_when_on(vgg, images):
    content, style = images
    image = torch.rand(1, 3, 24, 24)
    off = PerceptualLoss(vgg, style, SMALL)
    assert "palette" not in off(image, off.content_targets(content))
    assert not any(k.startswith("palette") for k in off.state_dict())
    on = PerceptualLoss(vgg, style, LossConfig(content_layers=SMALL.content_layers,
                                               style_layers=SMALL.style_layers, palette_weight=2.0))
    terms = on(image, on.content_targets(content))
    assert terms["palette"].item() > 0
    rest = terms["content"] + terms["style"] + terms["tv"]
    assert terms["total"].item() == pytest.approx((rest + terms["palette"]).item(), rel=1e-6)
    assert on(style, on.content_targets(content))["palette"].item() < 0.05 * terms["palette"].item()


def test_the_palette_terms_directions_are_fresh_in_training_and_fixed_in_eval(vgg, images):
    content, style = images
    loss = PerceptualLoss(vgg, style, LossConfig(content_layers=SMALL.content_layers,
                                                 style_layers=SMALL.style_layers, palette_weight=1.0))
    image, targets = torch.rand(1, 3, 24, 24), loss.content_targets(content)
    assert loss(image, targets)["palette"].item() != loss(image, targets)["palette"].item()
    loss.eval()
    assert loss(image, targets)["palette"].item() == loss(image, targets)["palette"].item()
