"""scripts/gatys.py's command line, run in-process: user errors are one line and exit 2, a tiny run works."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, one_line_error, write_random_vgg
from PIL import Image

from fastnst.cli.gatys import gatys_main

pytestmark = pytest.mark.usefixtures("seeded")


@pytest.fixture
def images(tmp_path):
    rng = np.random.default_rng(0)
    content = tmp_path / "content photo.png"
    style = tmp_path / "style.jpg"
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(content)
    Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(style, quality=90)
    return content, style


@pytest.fixture
def random_weights(tmp_path, monkeypatch):
    """$FASTNST_VGG_WEIGHTS -> a file with a random-init VGG19 state dict covering the default layers."""
    path = write_random_vgg(tmp_path / "random-vgg19.pth")
    monkeypatch.setenv("FASTNST_VGG_WEIGHTS", str(path))
    return path


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Never download, and never write into the repository's out/ folder."""

    def no_download(*args, **kwargs):
        raise AssertionError("the CLI tried to download VGG weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.chdir(tmp_path)


def run(capsys, *argv):
    code = gatys_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_missing_content(capsys, images, tmp_path, random_weights):
    _, style = images
    missing = tmp_path / "no such photo.jpg"
    code, _, err = run(capsys, "--content", missing, "--style", style, "-o", tmp_path / "out.png")
    assert_one_line_error(code, err, str(missing))
    assert not (tmp_path / "out.png").exists()


def test_text_file_named_jpg(capsys, images, tmp_path, random_weights):
    _, style = images
    fake = tmp_path / "notes.jpg"
    fake.write_text("not an image at all\n")
    code, _, err = run(capsys, "--content", fake, "--style", style, "-o", tmp_path / "out.png", "--size", "32")
    assert_one_line_error(code, err, str(fake))


def test_unknown_output_extension(capsys, images, tmp_path, random_weights):
    content, style = images
    code, _, err = run(capsys, "--content", content, "--style", style, "-o", tmp_path / "out.xyz")
    assert_one_line_error(code, err, ".xyz")
    assert not (tmp_path / "out.xyz").exists()


def test_existing_output_needs_overwrite(capsys, images, tmp_path, random_weights):
    content, style = images
    out = tmp_path / "exists.png"
    out.write_bytes(b"precious")
    code, _, err = run(capsys, "--content", content, "--style", style, "-o", out, "--size", "32",
                       "--iterations", "1")
    assert_one_line_error(code, err, "--overwrite")
    assert out.read_bytes() == b"precious"


@pytest.mark.parametrize("which", ["content", "style"])
def test_output_equal_to_an_input_is_refused(capsys, images, random_weights, which):
    content, style = images
    target = content if which == "content" else style
    before = target.read_bytes()
    code, _, err = run(capsys, "--content", content, "--style", style, "-o", target, "--overwrite",
                       "--size", "32", "--iterations", "1")
    assert_one_line_error(code, err, "input")
    assert target.read_bytes() == before


def test_bad_numbers_are_user_errors(capsys, images, tmp_path, random_weights):
    content, style = images
    code, _, err = run(capsys, "--content", content, "--style", style, "-o", tmp_path / "o.png", "--iterations", "0")
    assert_one_line_error(code, err, "--iterations")
    code, _, err = run(capsys, "--content", content, "--style", style, "-o", tmp_path / "o.png",
                       "--style-weight", "-1")
    assert_one_line_error(code, err, "style_weight")


def test_missing_weights_file_is_user_error(capsys, images, tmp_path, random_weights):
    content, style = images
    missing = tmp_path / "no-weights.pth"
    code, _, err = run(capsys, "--content", content, "--style", style, "-o", tmp_path / "o.png", "--size", "32",
                       "--iterations", "1", "--vgg-weights", missing)
    assert_one_line_error(code, err, str(missing))


def test_layer_beyond_weights_is_user_error(capsys, images, tmp_path, random_weights):
    content, style = images
    code, _, err = run(capsys, "--content", content, "--style", style, "-o", tmp_path / "o.png", "--size", "32",
                       "--iterations", "1", "--content-layers", "relu4_2")
    assert_one_line_error(code, err, "conv4_1", "conv3_4")


def test_tiny_run_writes_output_and_snapshots(capsys, images, tmp_path, random_weights):
    content, style = images
    out = tmp_path / "result.png"
    code, stdout, err = run(capsys, "--content", content, "--style", style, "-o", out, "--size", "32",
                            "--iterations", "4", "--save-every", "2", "--device", "cpu")
    assert code == 0, err
    assert out.is_file()
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == (32, 24)  # 40x30 content, longer side 32
    snapshot = tmp_path / "result_00002.png"
    assert snapshot.is_file()
    with Image.open(snapshot) as im:
        assert im.size == (32, 24)
    for step in (1, 3, 4):  # only multiples of 2, and not the last step: that is the output itself
        assert not (tmp_path / f"result_{step:05d}.png").exists()
    assert "wrote" in stdout and str(out) in stdout
    assert "Traceback" not in err
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_default_output_path_and_overwrite(capsys, images, tmp_path, random_weights):
    content, style = images
    args = ["--content", content, "--style", style, "--size", "24", "--iterations", "1", "--optimizer", "adam"]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    default = tmp_path / "out" / f"{content.stem}_{style.stem}.jpg"  # relative to the working directory
    assert default.is_file()
    first = default.stat().st_mtime_ns
    code, _, err = run(capsys, *args)
    assert_one_line_error(code, err, "--overwrite")
    code, _, err = run(capsys, *args, "--overwrite", "--seed", "1", "--init", "noise")
    assert code == 0, err
    assert default.stat().st_mtime_ns >= first


def test_debug_shows_traceback_for_user_error(capsys, images, tmp_path, random_weights):
    _, style = images
    missing = tmp_path / "gone.jpg"
    code, _, err = run(capsys, "--debug", "--content", missing, "--style", style, "-o", tmp_path / "o.png")
    assert code == 2
    assert "Traceback" in err
    assert "FastNSTError" in err
    assert err.strip().splitlines()[-1].startswith("error:")


def test_internal_error_is_reported_briefly(capsys, images, tmp_path, random_weights, monkeypatch):
    content, style = images

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("fastnst.gatys.stylize", boom)
    argv = ["--content", content, "--style", style, "-o", tmp_path / "o.png", "--size", "24", "--iterations", "1"]
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert "simulated bug" in err and "--debug" in err and "Traceback" not in err
    with pytest.raises(RuntimeError, match="simulated bug"):
        gatys_main([str(a) for a in ["--debug", *argv]])


@pytest.mark.parametrize("option, fragment", [
    (["--lr", "nan"], "--lr"), (["--lr", "-1"], "--lr"), (["--lr", "0"], "--lr"), (["--lr", "inf"], "--lr"),
    (["--style-size", "0"], "--style-size"), (["--size", "-5"], "--size"), (["--device", "banana"], "banana"),
    (["--style-weight", "nan"], "style_weight"), (["--tv-weight", "inf"], "tv_weight"), (["-o", ""], "empty")])
def test_more_bad_options_are_one_line_errors_and_write_nothing(capsys, images, tmp_path, random_weights, option,
                                                                fragment):
    """--style-size 0 used to become the default silently; NaN weights optimized a NaN image, exit 0."""
    content, style = images
    argv = ["--content", content, "--style", style, "-o", tmp_path / "out" / "o.png", "--size", "24",
            "--iterations", "1", *option]
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "out").exists()


def test_a_loss_that_becomes_nan_stops_with_an_error_keeping_the_last_finite_image(capsys, images, tmp_path,
                                                                                  random_weights, monkeypatch):
    from fastnst.perceptual import PerceptualLoss

    real, calls = PerceptualLoss.forward, []

    def nan_from_the_third(self, image, targets):
        calls.append(1)
        terms = real(self, image, targets)
        if len(calls) >= 3:
            terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(PerceptualLoss, "forward", nan_from_the_third)
    content, style = images
    out = tmp_path / "o.png"
    code, _, err = run(capsys, "--content", content, "--style", style, "-o", out, "--size", "24",
                       "--iterations", "10", "--optimizer", "adam")
    line = one_line_error(err)
    assert code == 2 and "nan at iteration 3" in line and "wrote the image of iteration 2" in line
    with Image.open(out) as im:
        assert im.size == (24, 18)


def test_sigterm_keeps_the_latest_image_like_ctrl_c(capsys, images, tmp_path, random_weights, monkeypatch):
    import os
    import signal

    from fastnst.perceptual import PerceptualLoss

    real, calls = PerceptualLoss.forward, []

    def sigterm_on_the_third(self, image, targets):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, image, targets)

    def unhandled(signum, frame):  # what the default action (death) stands for inside pytest
        raise RuntimeError("SIGTERM was not handled")

    monkeypatch.setattr(PerceptualLoss, "forward", sigterm_on_the_third)
    content, style = images
    out = tmp_path / "o.png"
    old = signal.signal(signal.SIGTERM, unhandled)
    try:
        code, _, err = run(capsys, "--content", content, "--style", style, "-o", out, "--size", "24",
                           "--iterations", "10", "--optimizer", "adam")
    finally:
        signal.signal(signal.SIGTERM, old)
    assert code == 130 and "Traceback" not in err
    assert f"interrupted: wrote the image after 2 iterations to {out}" in err
    assert out.is_file() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_sgd_optimizer_runs_from_the_command_line(capsys, images, tmp_path, random_weights):
    content, style = images
    out = tmp_path / "sgd.png"
    code, _, err = run(capsys, "--content", content, "--style", style, "--size", "24", "--iterations", "3",
                       "--optimizer", "sgd", "-o", out)
    assert code == 0, err
    assert out.is_file()
