"""Image I/O: every PIL mode to RGB, EXIF orientation, resizing, bad files, atomic saves.

All image files are generated here in tmp_path; nothing binary is committed.
"""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from fastnst.errors import FastNSTError
from fastnst.image import check_output_path, from_tensor, load_image, open_image, resize_max_side, save_image, to_tensor

# Four flat quadrants of distinct colours (flat areas survive JPEG almost exactly).
QUAD_COLOURS = ((200, 30, 40), (20, 180, 60), (30, 60, 210), (240, 220, 50))


def quadrants(h: int = 16, w: int = 24) -> np.ndarray:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[: h // 2, : w // 2] = QUAD_COLOURS[0]
    rgb[: h // 2, w // 2 :] = QUAD_COLOURS[1]
    rgb[h // 2 :, : w // 2] = QUAD_COLOURS[2]
    rgb[h // 2 :, w // 2 :] = QUAD_COLOURS[3]
    return rgb


def check_array(a: np.ndarray, h: int, w: int) -> None:
    assert a.shape == (h, w, 3)
    assert a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0


# ---------------------------------------------------------------------------------------------
# modes


def test_rgb_jpeg(tmp_path):
    rgb = quadrants()
    p = tmp_path / "photo.jpg"
    Image.fromarray(rgb).save(p, quality=95)
    a = load_image(p)
    check_array(a, 16, 24)
    # Quadrant centres keep their colour (JPEG error is a few levels at most there).
    for (y, x), colour in zip([(3, 5), (3, 18), (12, 5), (12, 18)], QUAD_COLOURS):
        np.testing.assert_allclose(a[y, x] * 255, colour, atol=8)
    assert open_image(p).mode == "RGB"


def test_grayscale_png(tmp_path):
    gray = np.arange(0, 240, 10, dtype=np.uint8).reshape(4, 6)
    p = tmp_path / "gray.png"
    Image.fromarray(gray, "L").save(p)
    a = load_image(p)
    check_array(a, 4, 6)
    for ch in range(3):
        np.testing.assert_allclose(a[..., ch], gray / 255.0, atol=1e-6)


def test_la_png_transparent_becomes_white(tmp_path):
    la = np.zeros((4, 6, 2), np.uint8)
    la[..., 0] = 60
    la[:, :3, 1] = 255  # left half opaque
    la[:, 3:, 1] = 0  # right half fully transparent
    p = tmp_path / "la.png"
    Image.fromarray(la, "LA").save(p)
    a = load_image(p)
    check_array(a, 4, 6)
    np.testing.assert_allclose(a[:, :3], 60 / 255.0, atol=1e-6)
    np.testing.assert_allclose(a[:, 3:], 1.0, atol=1e-6)


def test_rgba_png_composited_on_white(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., :3] = (0, 0, 0)  # black everywhere, alpha decides
    rgba[:, :2, 3] = 255  # opaque black
    rgba[:, 2:4, 3] = 0  # transparent -> white
    rgba[:, 4:, 3] = 128  # half -> mid gray
    rgba[0, 0, :3] = (10, 200, 30)
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, "RGBA").save(p)
    a = load_image(p)
    check_array(a, 4, 6)
    np.testing.assert_allclose(a[1:, :2], 0.0, atol=1e-6)
    np.testing.assert_allclose(a[0, 0] * 255, (10, 200, 30), atol=0.5)
    np.testing.assert_allclose(a[:, 2:4], 1.0, atol=1e-6)
    np.testing.assert_allclose(a[:, 4:], 127 / 255.0, atol=2 / 255.0)


def _palette_image() -> Image.Image:
    im = Image.new("P", (6, 4))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0, 0, 0] * 253)
    idx = np.zeros((4, 6), np.uint8)
    idx[:, 2:4] = 1
    idx[:, 4:] = 2
    im.putdata(idx.flatten().tolist())
    return im


def test_palette_png(tmp_path):
    p = tmp_path / "palette.png"
    _palette_image().save(p)
    assert Image.open(p).mode == "P"
    a = load_image(p)
    check_array(a, 4, 6)
    np.testing.assert_allclose(a[:, :2], np.broadcast_to([1, 0, 0], (4, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(a[:, 2:4], np.broadcast_to([0, 1, 0], (4, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(a[:, 4:], np.broadcast_to([0, 0, 1], (4, 2, 3)), atol=1e-6)


def test_palette_png_with_transparency(tmp_path):
    p = tmp_path / "palette_t.png"
    _palette_image().save(p, transparency=2)  # blue index is transparent
    with Image.open(p) as im:
        assert im.mode == "P" and "transparency" in im.info
    a = load_image(p)
    check_array(a, 4, 6)
    np.testing.assert_allclose(a[:, :2], np.broadcast_to([1, 0, 0], (4, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(a[:, 4:], 1.0, atol=1e-6)  # transparent -> white, not blue or black


def test_16bit_png_is_rescaled_not_clipped(tmp_path):
    w = 65
    ramp = np.round(np.linspace(0, 65535, w)).astype(np.uint16)
    arr = np.tile(ramp, (3, 1))
    p = tmp_path / "deep.png"
    Image.fromarray(arr).save(p)
    with Image.open(p) as im:
        assert im.mode.startswith("I")  # really a 16-bit file
    a = load_image(p)
    check_array(a, 3, w)
    row = a[1, :, 0]
    assert row[0] == pytest.approx(0.0, abs=1 / 255)
    assert row[-1] == pytest.approx(1.0, abs=1 / 255)
    assert row[w // 2] == pytest.approx(0.5, abs=2 / 255)
    assert np.all(np.diff(row) >= 0)  # still a gradient
    assert (row < 0.99).sum() > w // 2  # not all white


def test_cmyk_jpeg_colours(tmp_path):
    rgb = quadrants()
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(p, quality=95)
    with Image.open(p) as im:
        assert im.mode == "CMYK"
    a = load_image(p)
    check_array(a, 16, 24)
    for (y, x), colour in zip([(3, 5), (3, 18), (12, 5), (12, 18)], QUAD_COLOURS):
        np.testing.assert_allclose(a[y, x] * 255, colour, atol=12)


@pytest.mark.parametrize("orientation, rot", [(6, -1), (8, 1), (3, 2)])
def test_exif_orientation_applied(tmp_path, orientation, rot):
    # Stored 30 wide x 20 tall, blue, with a red marker in the stored top-left corner.
    stored = np.zeros((20, 30, 3), np.uint8)
    stored[...] = (0, 0, 255)
    stored[:6, :6] = (255, 0, 0)
    p = tmp_path / f"rotated{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(p, exif=exif, quality=95)
    a = load_image(p)
    # Orientation 6: display = stored turned 90° clockwise; 8: counter-clockwise; 3: 180°.
    expected = np.rot90(stored, rot)
    assert a.shape == expected.shape
    if orientation in (6, 8):
        assert a.shape[:2] == (30, 20)  # transposed
    red = (expected[..., 0] == 255)
    ys, xs = np.nonzero(red)
    corner = a[ys.min() + 2 : ys.max() - 1, xs.min() + 2 : xs.max() - 1]
    assert corner[..., 0].min() > 0.8 and corner[..., 2].max() < 0.2
    # and the opposite region is blue
    assert a[~red][:, 2].mean() > 0.9


# ---------------------------------------------------------------------------------------------
# resize


def test_resize_max_side():
    land = Image.new("RGB", (40, 20))
    port = Image.new("RGB", (20, 40))
    assert resize_max_side(land, 10).size == (10, 5)
    assert resize_max_side(port, 10).size == (5, 10)
    assert resize_max_side(land, 100).size == (40, 20)  # no upscale by default
    assert resize_max_side(land, 100, upscale=True).size == (100, 50)
    assert resize_max_side(land, 40).size == (40, 20)
    assert resize_max_side(land, None).size == (40, 20)
    assert resize_max_side(Image.new("RGB", (400, 2)), 10).size == (10, 1)  # never 0 px
    with pytest.raises(FastNSTError):
        resize_max_side(land, 0)


def test_load_image_size(tmp_path):
    p = tmp_path / "big.png"
    Image.fromarray(quadrants(30, 60)).save(p)
    assert load_image(p, 20).shape == (10, 20, 3)
    assert load_image(p, 120).shape == (30, 60, 3)
    assert load_image(p, 120, upscale=True).shape == (60, 120, 3)


# ---------------------------------------------------------------------------------------------
# bad inputs: always a FastNSTError naming the path


def _jpeg_bytes() -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated", "directory"])
def test_bad_input_is_user_error_naming_path(tmp_path, kind):
    p = tmp_path / "x.jpg"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not a picture\n" * 20)
    elif kind == "truncated":
        data = _jpeg_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif kind == "directory":
        p.mkdir()
    with pytest.raises(FastNSTError) as err:
        load_image(p)
    assert str(p) in str(err.value)


def test_unicode_and_spaces_in_path(tmp_path):
    folder = tmp_path / "my phötos ✓"
    folder.mkdir()
    p = folder / "café au lait 猫.png"
    Image.fromarray(quadrants()).save(p)
    a = load_image(p)
    check_array(a, 16, 24)
    out = folder / "résultat final.jpg"
    save_image(a, out)
    assert load_image(out).shape == (16, 24, 3)


# ---------------------------------------------------------------------------------------------
# save


def test_save_png_roundtrip_exact(tmp_path):
    rgb = quadrants()
    p = tmp_path / "sub" / "dir" / "out.png"  # parent folders are created
    save_image(rgb.astype(np.float32) / 255.0, p)
    with Image.open(p) as im:
        assert im.format == "PNG"
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), rgb)
    save_image(rgb, tmp_path / "u8.png")  # uint8 passes through unchanged
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "u8.png")), rgb)


def test_save_clips_out_of_range(tmp_path):
    a = np.full((2, 2, 3), 0.5, np.float32)
    a[0, 0] = (-1.0, 2.0, 0.5)
    save_image(a, tmp_path / "clip.png")
    out = np.asarray(Image.open(tmp_path / "clip.png"))
    np.testing.assert_array_equal(out[0, 0], (0, 255, 128))


@pytest.mark.parametrize("name, fmt", [("out.jpg", "JPEG"), ("out.jpeg", "JPEG"), ("OUT.PNG", "PNG"),
                                       ("out.png", "PNG"), ("out.webp", "WEBP")])
def test_extension_picks_format(tmp_path, name, fmt):
    p = tmp_path / name
    save_image(quadrants().astype(np.float32) / 255.0, p)
    with Image.open(p) as im:
        assert im.format == fmt
    assert load_image(p).shape == (16, 24, 3)


@pytest.mark.parametrize("name", ["out.xyz", "out", "out.txt"])
def test_unknown_extension_refused(tmp_path, name):
    p = tmp_path / name
    with pytest.raises(FastNSTError) as err:
        save_image(quadrants(), p)
    assert str(p) in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, why", [("out.xbm", "cannot write"), ("out.msp", "cannot write"),
                                       ("out.h5", "cannot write"), ("out.gif", "256 colours"), ("out.ico", "icon"),
                                       ("out.icns", "icon")])
def test_formats_that_cannot_hold_the_image_are_refused_before_writing(tmp_path, name, why):
    """XBM/MSP take 1-bit images only, HDF5 needs a plug-in: Pillow lists them as writable but fails
    once it has the pixels. GIF (256 colours), ICO and ICNS (resized icons) would lose the image."""
    with pytest.raises(FastNSTError, match=why):
        check_output_path(tmp_path / name)
    with pytest.raises(FastNSTError):
        save_image(quadrants(), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "result.png"
    Image.fromarray(quadrants()).save(target)
    old = target.read_bytes()

    def broken_save(self, fp, format=None, **params):
        fp.write(b"\x89PNG\r\n\x1a\n partial data")  # something reached the disk
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="No space"):
        save_image(np.zeros((16, 24, 3), np.float32), target)
    monkeypatch.undo()
    assert target.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["result.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(target)), quadrants())


def test_failed_save_of_new_file_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, format=None, **params):
        fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_image(quadrants(), tmp_path / "new.jpg")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_tensor_roundtrip():
    a = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    t = to_tensor(a)
    assert tuple(t.shape) == (1, 3, 5, 7)
    assert t[0, 2, 1, 3].item() == pytest.approx(a[1, 3, 2])
    np.testing.assert_allclose(from_tensor(t), a)
    np.testing.assert_allclose(from_tensor(t[0] * 3 - 1), np.clip(a * 3 - 1, 0, 1), atol=1e-6)
