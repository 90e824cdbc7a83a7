"""The bad-input corpus, generated here (never committed), fed to all three tools.

For each file: stylize.py, gatys.py and the training data loader either handle it correctly (right
orientation, colours, size) or refuse it in one line with a non-zero exit when the user named that
file; the loader skips it with a counted warning. Never a traceback.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error
from PIL import Image

from fastnst.cli.gatys import gatys_main
from fastnst.cli.stylize import stylize_main
from fastnst.train_config import TrainConfig
from fastnst.data import StyleDataModule
from tiny_models import tiny_models

# name -> (expected: "ok" or "refuse", the (height, width) a correct load must have, or None)
GOOD = {
    "alpha.png": (20, 30), "palette.png": (20, 30), "gray16.png": (20, 30), "gray.jpg": (20, 30),
    "cmyk.jpg": (20, 30), "exif_rotated.jpg": (30, 20), "one_pixel.png": (1, 1), "three_by_five.png": (3, 5),
    "with space é ü.jpg": (20, 30),
}
BAD = ["zero_bytes.jpg", "truncated.jpg", "text.jpg", "folder.jpg", "postscript.jpg"]
# A PostScript file under a photo's name: Pillow's EPS plug-in would run Ghostscript on it.
POSTSCRIPT = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\n"
              b"newpath 0 0 moveto 8 8 lineto stroke\nshowpage\n%%EOF\n")


def make_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8))
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 30, dtype=np.uint8), (20, 1))))
    rgba.save(folder / "alpha.png")
    rgb.quantize(16).save(folder / "palette.png")
    Image.fromarray(np.tile(np.linspace(0, 65535, 30).astype(np.uint16), (20, 1))).save(folder / "gray16.png")
    rgb.convert("L").save(folder / "gray.jpg")
    rgb.convert("CMYK").save(folder / "cmyk.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display: a 30x20 (WxH) file shows as 20x30
    rgb.save(folder / "exif_rotated.jpg", exif=exif)
    rgb.resize((1, 1)).save(folder / "one_pixel.png")
    rgb.resize((5, 3)).save(folder / "three_by_five.png")
    rgb.save(folder / "with space é ü.jpg")
    (folder / "zero_bytes.jpg").write_bytes(b"")
    rgb.save(folder / "full.jpg")
    (folder / "truncated.jpg").write_bytes((folder / "full.jpg").read_bytes()[:200])
    (folder / "full.jpg").unlink()
    (folder / "text.jpg").write_text("this is a text file\n")
    (folder / "folder.jpg").mkdir()
    (folder / "postscript.jpg").write_bytes(POSTSCRIPT)
    return folder


@pytest.fixture
def no_eps_plugin(monkeypatch) -> list:
    """Records every file handed to Pillow's EPS plug-in (and stops it there); the list must stay empty."""
    from PIL import EpsImagePlugin

    handed = []

    def refuse(self):
        handed.append(self.fp)
        raise SyntaxError("the EPS plug-in was asked to parse this file")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", refuse)
    return handed


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus") / "bad inputs")


@pytest.mark.parametrize("name", sorted(GOOD))
def test_stylize_handles_unusual_but_valid_images(corpus, tmp_path, name, capsys):
    out = tmp_path / "out.png"
    assert stylize_main([str(tiny_models().pt), str(corpus / name), "-o", str(out)]) == 0, capsys.readouterr().err
    assert np.asarray(Image.open(out)).shape[:2] == GOOD[name]  # upright, original size


@pytest.mark.parametrize("name", BAD)
def test_stylize_refuses_bad_files_named_explicitly(corpus, tmp_path, name, capsys):
    assert stylize_main([str(tiny_models().pt), str(corpus / name), "-o", str(tmp_path / "o.png")]) == 2
    one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "o.png").exists()


def test_stylize_folder_skips_bad_files_and_does_the_rest(corpus, tmp_path, capsys):
    code = stylize_main([str(tiny_models().pt), str(corpus), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code == 0, err
    # the valid images come out (extensions Pillow can write are kept)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(GOOD)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_gatys_handles_unusual_but_valid_images(corpus, tmp_path, vgg_file, name, capsys):
    out = tmp_path / "g.png"
    args = ["--content", str(corpus / name), "--style", str(corpus / "alpha.png"), "--size", "24",
            "--iterations", "1", "--vgg-weights", str(vgg_file), "-o", str(out)]
    assert gatys_main(args) == 0, capsys.readouterr().err
    h, w = GOOD[name]
    got = np.asarray(Image.open(out)).shape[:2]
    assert max(got) == 24 and (got[0] >= got[1]) == (h >= w)  # resized to --size, orientation kept


@pytest.mark.parametrize("name", BAD)
@pytest.mark.parametrize("role", ["--content", "--style"])
def test_gatys_refuses_bad_files(corpus, tmp_path, vgg_file, name, role, capsys):
    files = {"--content": str(corpus / "alpha.png"), "--style": str(corpus / "alpha.png"), role: str(corpus / name)}
    args = [x for kv in files.items() for x in kv] + ["--size", "24", "--iterations", "1",
                                                      "--vgg-weights", str(vgg_file), "-o", str(tmp_path / "g.png")]
    assert gatys_main(args) == 2
    one_line_error(capsys.readouterr().err)


def test_training_loader_skips_bad_files_and_survives_a_symlink_loop(corpus, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for p in corpus.iterdir():
        (data / p.name).symlink_to(p)
    (data / "loop").symlink_to(data)
    dm = StyleDataModule(TrainConfig(data=str(data), image_size=16, batch_size=3, val_size=1, num_workers=0,
                                     early_steps=0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
        batches = list(dm.train_dataloader())
    names = {p.name for p in dm.train_files + dm.val_files}
    assert not names & {"zero_bytes.jpg", "text.jpg", "folder.jpg", "postscript.jpg"}
    skipped = [w for w in caught if "skipped" in str(w.message)]
    # zero-byte and text files fail the header check; the truncated JPEG fails it or, if its header
    # survived, is replaced by another photo when it fails to decode
    n_skipped = 3 + ("truncated.jpg" not in names)
    assert len(skipped) == 1 and f"skipped {n_skipped} " in str(skipped[0].message)
    assert sum(len(b) for b in batches) == len(dm.train_files) // 3 * 3  # full batches (drop_last)
    assert all(b.shape[1:] == (3, 16, 16) and 0 <= b.min() and b.max() <= 1 for b in batches)


def test_a_postscript_file_named_jpg_never_reaches_the_eps_plugin(corpus, tmp_path, capsys, no_eps_plugin):
    """Formats are decided by content, and only the raster ones we mean to read are tried."""
    from fastnst.data import readable_images

    postscript = corpus / "postscript.jpg"
    assert stylize_main([str(tiny_models().onnx), str(postscript), "-o", str(tmp_path / "o.png")]) == 2
    assert "not an image in a format fastnst reads" in one_line_error(capsys.readouterr().err)
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "x.jpg").write_bytes(POSTSCRIPT)
    (folder / "ok.png").symlink_to(corpus / "alpha.png")
    assert stylize_main([str(tiny_models().onnx), str(folder), "-o", str(tmp_path / "out")]) == 0
    assert "x.jpg: not an image" in capsys.readouterr().err
    assert readable_images([postscript, corpus / "alpha.png"]) == ([corpus / "alpha.png"], [postscript])
    assert no_eps_plugin == []


@pytest.mark.slow
def test_huge_image_gatys_is_refused_early_or_resized(tmp_path, vgg_file, capsys):
    """12000x9000 through gatys: loaded (Pillow's bomb limit raised) and resized to --size."""
    big = tmp_path / "big.jpg"
    Image.new("RGB", (12000, 9000), (120, 60, 30)).save(big, quality=50)
    args = ["--content", str(big), "--style", str(big), "--size", "32", "--iterations", "1",
            "--vgg-weights", str(vgg_file), "-o", str(tmp_path / "g.png")]
    assert gatys_main(args) == 0, capsys.readouterr().err
