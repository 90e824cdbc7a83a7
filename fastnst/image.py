"""Image I/O in one place: read any PIL mode as RGB, apply EXIF orientation, resize, write atomically.

Arrays here are numpy float32 [H, W, 3] RGB in [0, 1] (the project's pixel convention); ``to_tensor``
/ ``from_tensor`` convert to and from torch's [1, 3, H, W]. This file imports torch only for those
two helpers, lazily, so the torch-free runtime can use the rest.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fastnst.errors import FastNSTError
from fastnst.files import atomic_write

# Pillow refuses images over ~179 MP as possible decompression bombs. Real photos can be large
# (a 12000x9000 panorama is 108 MP), so allow up to 300 MP; beyond that we still refuse.
MAX_PIXELS = 300_000_000
# The raster formats we read, decided by the file's content (Pillow's plug-in names; the JPEG one
# also opens cameras' multi-picture JPEGs, MPO). Anything else is refused before a plug-in parses
# it: Pillow opens ~40 formats, PostScript among them, whose plug-in runs Ghostscript on load.
READ_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
READ_FORMATS_TEXT = "JPEG, PNG, WebP, BMP, TIFF or GIF"


def is_image_name(path: str | os.PathLike) -> bool:
    """Whether ``path``'s extension is one of a format we read (.jpg, .png, ...): by name only, no I/O."""
    return Image.registered_extensions().get(Path(path).suffix.lower()) in READ_FORMATS


@contextmanager
def _pillow_open(path: str | os.PathLike) -> Iterator[Image.Image]:
    """Image.open with our pixel limit, every failure turned into a one-line FastNSTError."""
    path = Path(path)
    if not path.exists():
        raise FastNSTError(f"{path}: no such file")
    if not path.is_file():
        raise FastNSTError(f"{path}: is a directory, not an image" if path.is_dir() else f"{path}: not a regular file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_PIXELS // 2  # error at 2x this
            try:
                with Image.open(path, formats=READ_FORMATS) as im:
                    yield im
            finally:
                Image.MAX_IMAGE_PIXELS = old
    except UnidentifiedImageError:
        raise FastNSTError(f"{path}: not an image in a format fastnst reads ({READ_FORMATS_TEXT})") from None
    except Image.DecompressionBombError as e:
        raise FastNSTError(f"{path}: image too large ({e})".splitlines()[0]) from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated/corrupt data, permission denied
        raise FastNSTError(f"{path}: cannot read image ({e})") from None


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode ``path`` as an RGB PIL image, upright per EXIF. Errors are FastNSTError."""
    with _pillow_open(path) as im:
        im.load()  # decode now, so truncation is reported here and not later
        return to_rgb(ImageOps.exif_transpose(im))


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB. Transparency is composited on white; 16/32-bit gray is rescaled, not clipped."""
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # PIL's convert("RGB") clips these to 0..255 instead of scaling, turning a 16-bit photo white.
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        if im.mode == "F" and a.max() <= 1.0:
            hi = 1.0
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if im.mode == "P" or im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "La", "RGBa"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    return im.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def resize_max_side(im: Image.Image, size: int | None, upscale: bool = False) -> Image.Image:
    """Scale so the longer side is ``size`` (aspect kept). Without ``upscale``, only ever shrink."""
    if size is None:
        return im
    if size < 1:
        raise FastNSTError(f"image size must be positive, got {size}")
    w, h = im.size
    scale = size / max(w, h)
    if scale == 1 or (scale > 1 and not upscale):
        return im
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return im.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def to_float(array: np.ndarray) -> np.ndarray:
    """uint8 pixels (x·255) -> float32 in [0, 1]; float input comes back as float32, not copied if it is one.

    The one uint8 -> float conversion of the project (files are 8-bit, the models take [0, 1]).
    """
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return array.astype(np.float32, copy=False)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Float pixels -> uint8, clipped to [0, 1] and rounded to nearest; the inverse of to_float."""
    return (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def load_image(path: str | os.PathLike, size: int | None = None, upscale: bool = False) -> np.ndarray:
    """Read ``path`` -> float32 [H, W, 3] RGB in [0, 1], longer side resized to ``size`` if given."""
    im = resize_max_side(open_image(path), size, upscale)
    return to_float(np.asarray(im, dtype=np.uint8))


def read_image(path: str | os.PathLike, max_size: int | None = None) -> np.ndarray:
    """Decode ``path`` -> uint8 [H, W, 3] RGB (3 bytes/px, for big photos), longer side shrunk to ``max_size``."""
    im = resize_max_side(open_image(path), max_size)
    array = np.asarray(im, dtype=np.uint8)
    im.close()
    return array


# Formats Pillow writes, but not as the image we computed: GIF keeps 256 colours and one frame,
# ICO shrinks to at most 256 px (measured: 40x30 -> 24x18), ICNS resizes to 1024x1024 squares.
# Refused as outputs (an output folder writes those inputs' results as .png, see inputs.output_name).
LOSSY_FORMATS = {"GIF": "keeps only 256 colours", "ICO": "shrinks the image to an icon",
                 "ICNS": "resizes the image to a 1024 px square icon"}
# Image.Image.save as imported: the probe below must test Pillow itself, also where a test patches save.
_pillow_save = Image.Image.save


@functools.cache
def _pillow_cannot_write(fmt: str) -> str | None:
    """Why Pillow cannot write an RGB image as ``fmt`` (e.g. XBM/MSP take only 1-bit images, HDF5
    and WMF need a plug-in), or None if it can. Found by writing a tiny image to memory, once."""
    try:
        _pillow_save(Image.new("RGB", (16, 16)), io.BytesIO(), format=fmt, **_save_options(fmt))
    except Exception as e:  # Pillow raises OSError, ValueError, KeyError... per plug-in
        return str(e).splitlines()[0] if str(e) else type(e).__name__
    return None


def _save_options(fmt: str, quality: int = 95) -> dict:
    return {"quality": quality} if fmt in ("JPEG", "WEBP") else {}


def check_output_path(path: str | os.PathLike) -> str:
    """Raise unless ``path`` has an image extension Pillow can write an RGB image as, without
    losing colours or size; return its Pillow format name. Cheap after the first call per format."""
    ext = Path(path).suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise FastNSTError(f"{path}: unknown output image format {ext!r}; use .jpg, .png or .webp")
    if fmt in LOSSY_FORMATS:
        raise FastNSTError(f"{path}: {fmt} {LOSSY_FORMATS[fmt]}; write .png (lossless) or .jpg instead")
    reason = _pillow_cannot_write(fmt)
    if reason is not None:
        raise FastNSTError(f"{path}: Pillow cannot write RGB images as {fmt} ({reason}); use .jpg, .png or .webp")
    return fmt


# The longest side each format can hold (measured with Pillow 13: a 16384 px WebP and a 65501 px
# JPEG fail only when written, after the pass). Other formats we write take 2^31 px and more.
MAX_SIDE = {"WEBP": 16383, "JPEG": 65500}


def check_output_size(path: str | os.PathLike, width: int, height: int) -> None:
    """Raise FastNSTError if ``path``'s format cannot hold a ``width`` x ``height`` image: before the pass."""
    fmt = check_output_path(path)
    limit = MAX_SIDE.get(fmt)
    if limit is not None and max(width, height) > limit:
        raise FastNSTError(f"{path}: {fmt} images are at most {limit} px on a side, this one would be "
                           f"{width}x{height}; write .png, or shrink it with --max-size {limit}")


def save_image(array: np.ndarray, path: str | os.PathLike, quality: int = 95, *, replace: bool = True) -> None:
    """Write float [H, W, 3] in [0, 1] (or uint8) to ``path`` atomically: temp file, then rename.

    A crash mid-write leaves either the old file or none, never a truncated image. With
    ``replace=False`` a file found at ``path`` when the image is complete (another process wrote it
    meanwhile) is kept and FileExistsError raised.
    """
    fmt = check_output_path(path)
    if array.dtype != np.uint8:
        array = to_uint8(array)
    with atomic_write(path, replace=replace) as f:
        Image.fromarray(array, "RGB").save(f, format=fmt, **_save_options(fmt, quality))


def to_tensor(array: np.ndarray):
    """[H, W, 3] float -> torch [1, 3, H, W] float32."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).unsqueeze(0).float()


def from_tensor(tensor) -> np.ndarray:
    """torch [1, 3, H, W] or [3, H, W] -> float32 [H, W, 3] numpy, clamped to [0, 1]."""
    t = tensor.detach().float().clamp(0, 1).cpu()
    if t.dim() == 4:
        t = t[0]
    return t.permute(1, 2, 0).numpy()


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the file header only: cheap, for checks before any decoding.

    EXIF orientation is ignored, so width and height may come swapped; the pixel count is right.
    Raises FastNSTError for missing files and files Pillow does not recognise as images.
    """
    with _pillow_open(path) as im:
        return im.size
