"""bench/score.py, the fixed scorer: its three numbers on cases with a known answer."""

import numpy as np
import pytest
import torch
from PIL import Image

from bench import score
from fastnst.vgg import VGGFeatures


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (24, 40, 3), dtype=np.uint8)).save(root / f"p{i}.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / "style.png")
    torch.manual_seed(0)
    vgg = VGGFeatures(score.STYLE_LAYERS + (score.CONTENT_LAYER, score.STRUCTURE_LAYER))
    # Without biases a random VGG's features depend on the image alone (biases alone would make
    # every location's relu3_4 vector point the same way, whatever the picture).
    state = {k: torch.zeros_like(v) if k.endswith("bias") else v for k, v in vgg.state_dict().items()}
    torch.save(state, root / "vgg.pth")
    (root / "holdout.txt").write_text("# a comment\np0.png\n\np1.png  # trailing comment\n")
    return root


def test_holdout_file_ignores_comments_and_blank_lines(setup):
    assert score.read_holdout(setup / "holdout.txt") == ["p0.png", "p1.png"]


def test_identity_scores_as_the_photo_and_a_flat_image_loses_structure(setup):
    runners = {"identity": lambda x: x, "gray": lambda x: np.full_like(x, 0.5)}
    scores, images = score.score_models(runners, setup / "style.png", setup, ["p0.png", "p1.png"],
                                        str(setup / "vgg.pth"), size=40, keep=1)
    for name in ("p0.png", "p1.png"):
        assert scores["identity"][name] == pytest.approx(scores["photo"][name])
        assert scores["photo"][name]["content"] == 0.0
        assert scores["photo"][name]["structure"] == pytest.approx(1.0, abs=1e-5)
        assert scores["gray"][name]["content"] > 0
        assert scores["gray"][name]["structure"] < 0.9, scores["gray"][name]
    assert list(images) == ["p0.png"] and len(images["p0.png"]) == 3  # photo, identity, gray
    sheet = score.contact_sheet(images, ["photo", "identity", "gray"], height=24)
    assert sheet.height == 16 + 24 + 4 and sheet.width >= 3 * 40


def test_style_is_zero_for_the_style_image_itself(setup):
    style = torch.rand(1, 3, 32, 32)
    scorer = score.Scorer(style, str(setup / "vgg.pth"))
    result = scorer(scorer.features(style), style)
    assert result["style"] == pytest.approx(0.0, abs=1e-9)
    assert result["content"] == 0.0 and result["structure"] == pytest.approx(1.0, abs=1e-5)


def test_average_checkpoints_is_the_mean_of_their_trained_weights(tmp_path):
    from bench.average_checkpoints import average_checkpoints
    from fastnst.checkpoint import model_info
    from fastnst.transformer import TransformerNet

    nets = [TransformerNet(width=4, n_residual=1) for _ in range(3)]
    paths = []
    for i, net in enumerate(nets):
        state = {f"net.{k}": v for k, v in net.state_dict().items()}
        # A running average the checkpoint also holds is not what is averaged.
        state |= {f"net_average.module.{k}": torch.zeros_like(v) for k, v in net.state_dict().items()}
        paths.append(tmp_path / f"step{i}.ckpt")
        torch.save({"state_dict": state, "fastnst": {"model": model_info(net), "meta": {"style_name": f"s{i}"}}},
                   paths[-1])
    mean, meta = average_checkpoints(paths)
    for k, v in mean.state_dict().items():
        assert torch.allclose(v, sum(n.state_dict()[k] for n in nets) / 3), k
    assert meta["style_name"] == "s2"


def test_layout_correlation_ignores_brightness_and_contrast_and_sees_inversion():
    from bench.layout import layout_correlation

    torch.manual_seed(0)
    photo = torch.rand(2, 3, 32, 48)
    assert torch.allclose(layout_correlation(photo, photo, 8), torch.ones(2), atol=1e-5)
    assert torch.allclose(layout_correlation(photo, 0.3 * photo + 0.5, 8), torch.ones(2), atol=1e-5)
    assert torch.allclose(layout_correlation(photo, 1 - photo, 8), -torch.ones(2), atol=1e-5)
    assert torch.allclose(layout_correlation(photo, torch.full_like(photo, 0.4), 8), torch.zeros(2))
    # Detail inside a block does not count: a checkerboard finer than the blocks adds nothing.
    checker = (torch.arange(32).view(-1, 1) + torch.arange(48)).remainder(2).float().expand(2, 3, 32, 48)
    assert torch.allclose(layout_correlation(photo, photo + 0.2 * checker, 8), torch.ones(2), atol=1e-5)


def test_lab_conversion_matches_reference_colours():
    from bench.palette import srgb_to_lab

    # CIELAB of sRGB white, black, pure red (D65), as published in the sRGB / CIE references.
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(lab[0], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[1], [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[2], [53.24, 80.09, 67.20], atol=0.05)


def test_palette_is_one_for_the_photo_zero_for_the_paintings_colours_and_blind_to_layout():
    from bench.palette import palette

    rng = np.random.default_rng(0)
    photo = rng.uniform(0.0, 0.4, (32, 48, 3))  # dark, bluish-green-ish
    painting = np.concatenate([rng.uniform(0.6, 1.0, (32, 48, 2)), rng.uniform(0.0, 0.2, (32, 48, 1))], 2)
    assert palette(photo, photo, painting) == pytest.approx(1.0)
    # The painting's own pixels, shuffled into another layout: the same colour distribution.
    shuffled = rng.permutation(painting.reshape(-1, 3)).reshape(painting.shape)
    assert palette(shuffled, photo, painting) == pytest.approx(0.0, abs=1e-9)
    halfway = 0.5 * photo + 0.5 * painting
    assert 0.3 < palette(halfway, photo, painting) < 0.7
    assert palette(np.full_like(photo, 0.5), photo, painting) < 1.0 < palette(1 - painting, photo, painting)


def test_the_scorer_reports_palette_one_for_the_photo_and_near_zero_for_the_paintings_pixels(setup):
    from fastnst.image import load_image

    painting = load_image(setup / "style.png", 40, upscale=True).transpose(2, 0, 1)[None]  # [1, 3, 40, 40]

    def paint(x):  # the painting's own pixels, cropped to the photo's shape
        return painting[..., : x.shape[2], : x.shape[3]].copy()

    scores, _ = score.score_models({"identity": lambda x: x, "painting": paint}, setup / "style.png", setup,
                                   ["p0.png"], str(setup / "vgg.pth"), size=40)
    assert scores["photo"]["p0.png"]["palette"] == 1.0
    assert scores["identity"]["p0.png"]["palette"] == pytest.approx(1.0, abs=1e-6)
    assert scores["painting"]["p0.png"]["palette"] < 0.3
