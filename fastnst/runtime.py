"""The one inference pipeline: stylize arrays, files and folders with any stylizer.

Importing this module never imports torch (a test checks it): this is the part other apps embed,
with numpy, Pillow and onnxruntime only. PyTorch is imported only when a .pt/.ckpt model is opened.

Typical use::

    model = open_model("mosaic")  # a shipped style, or a .onnx, transformer.pt or .ckpt file
    stylize_file(model, "photo.jpg", "photo_mosaic.jpg", StylizeOptions(strength=0.8))

A *stylizer* (models.open_model returns one) is a callable float32 [N, 3, H, W] -> [N, 3, H, W],
RGB in [0, 1], with ``bytes_per_pixel`` (memory.py) and ``meta`` (models.META_KEYS).

One policy for outputs that exist already, ``existing``: "refuse" (the default: an error before any
work), "skip" (keep them, stylize the others) or "replace". Inputs are never overwritten, and every
output is written atomically (files.atomic_write): an interrupted run leaves whole files or none.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from fastnst.errors import FastNSTError
from fastnst.files import name_max
from fastnst.image import check_output_size, image_size, read_image, save_image, to_float, to_uint8
from fastnst.inputs import InputImage, list_folder, plan_outputs
from fastnst.memory import check_forward_fits, default_budget
from fastnst.models import open_model, shipped_styles
from fastnst.onnx_contract import MIN_SIZE
from fastnst.onnx_stylizer import OnnxStylizer
from fastnst.postprocess import postprocess
from fastnst.tiling import MIN_TILE, stylize_tiled

__all__ = ["EXISTING", "OnnxStylizer", "Progress", "StylizeOptions", "StylizeReport", "Stylizer", "check_memory",
           "check_new_output", "open_model", "read_image", "shipped_styles", "stylize_file", "stylize_files",
           "stylize_folder", "stylize_image", "FrameProgress", "stylize_video"]

EXISTING = ("refuse", "skip", "replace")  # what to do with an output file that exists already


class Stylizer(Protocol):
    bytes_per_pixel: int
    meta: dict

    def __call__(self, batch: np.ndarray) -> np.ndarray:  # float32 [N, 3, H, W] -> [N, 3, H, W]
        ...


def check_type(name: str, value, kind: type, *, optional: bool = False) -> None:
    """FastNSTError unless ``value`` is a ``kind`` (None too where ``optional``); a bool is no number here."""
    if value is None and optional:
        return
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, (bool, np.bool_))):
        expected = {bool: "True or False", numbers.Real: "a number", numbers.Integral: "a whole number"}[kind]
        raise FastNSTError(f"{name} must be {expected}{' or None' if optional else ''}, "
                           f"got {type(value).__name__} {str(value)[:40]!r}")


def check_stylizer(model) -> None:
    """FastNSTError unless ``model`` looks like a stylizer (open_model's result): callable, with bytes_per_pixel."""
    if not callable(model) or not isinstance(getattr(model, "bytes_per_pixel", None), int):
        raise FastNSTError(f"model must be a stylizer (from fastnst.runtime.open_model), got {type(model).__name__}")


def check_image_array(image) -> None:
    """FastNSTError unless ``image`` is [H, W, 3] uint8, or float with every value in [0, 1] (float
    0..255 pixels would be clipped to a white image without a word)."""
    if not isinstance(image, np.ndarray):
        raise FastNSTError(f"image must be a numpy array [H, W, 3], got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise FastNSTError(f"expected an [H, W, 3] RGB image, got shape {tuple(image.shape)}")
    if image.dtype == np.uint8:
        return
    if not np.issubdtype(image.dtype, np.floating):
        raise FastNSTError(f"image must be uint8 (0..255) or float (0..1), got {image.dtype}")
    low, high = float(image.min()), float(image.max())  # NaN propagates into both
    if not (0.0 <= low and high <= 1.0):
        raise FastNSTError(f"a float image must be in [0, 1], this one spans [{low:g}, {high:g}] (0..255 pixels: "
                           f"pass them as uint8 or divide by 255; np.clip small overshoots)")


@dataclass(frozen=True)
class StylizeOptions:
    """How to stylize; the single definition of these defaults (the CLI mirrors them)."""

    max_size: int | None = None  # longer side of the output, px (only ever shrinks); None keeps the size
    preserve_color: bool = False  # keep the photo's colours: transfer the stylized luminance only
    strength: float = 1.0  # 0 = the original, 1 = fully stylized; linear blend between
    tile: int | None = None  # run in overlapping tiles of this size (px) instead of whole

    def __post_init__(self):
        check_type("strength", self.strength, numbers.Real)
        check_type("preserve_color", self.preserve_color, bool)
        check_type("tile", self.tile, numbers.Integral, optional=True)
        check_type("max_size", self.max_size, numbers.Integral, optional=True)
        if not 0.0 <= self.strength <= 1.0:
            raise FastNSTError(f"strength must be between 0 and 1, got {self.strength}")
        if self.tile is not None and self.tile < MIN_TILE:
            raise FastNSTError(f"tile must be at least {MIN_TILE} px, got {self.tile}")
        if self.max_size is not None and self.max_size < MIN_SIZE:
            raise FastNSTError(f"max size must be at least {MIN_SIZE} px, got {self.max_size}")


# ---------------------------------------------------------------------------------------------
# Arrays


def check_output_shape(out, shape: tuple[int, ...]) -> np.ndarray:
    """``out`` if it is an array of the input's ``shape`` (the contract: [1, 3, H, W] in, the same out);
    else FastNSTError: a model that returns another size would be written as a wrong image."""
    got = tuple(getattr(out, "shape", ()))
    if not isinstance(out, np.ndarray) or got != tuple(shape):
        raise FastNSTError(f"the model returned {list(got) if got else type(out).__name__} for an input of "
                           f"{list(shape)}: a style model must return its input's shape (N, 3, H, W); "
                           f"this one is not a fastnst style model")
    return out


def run_image(model: Stylizer, image: np.ndarray) -> np.ndarray:
    """One forward pass on float32 [H, W, 3] -> [H, W, 3]; images under MIN_SIZE are edge-padded, then
    cropped (onnx_contract.MIN_SIZE: the rule TransformerNet applies itself)."""
    h, w = image.shape[:2]
    if h < MIN_SIZE or w < MIN_SIZE:
        image = np.pad(image, ((0, max(0, MIN_SIZE - h)), (0, max(0, MIN_SIZE - w)), (0, 0)), mode="edge")
    batch = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)  # [1, 3, H', W']
    out = check_output_shape(model(batch), batch.shape)[0, :, :h, :w]
    if not np.isfinite(out).all():  # would be written as black pixels, and the run would "succeed"
        raise FastNSTError("the model's output is not finite (NaN or inf): its weights are broken "
                           "(a diverged training run?)")
    return out.transpose(1, 2, 0)


def is_tiled(height: int, width: int, options: StylizeOptions) -> bool:
    """Whether an image of this size runs in tiles (only when it is bigger than one tile)."""
    return options.tile is not None and max(height, width) > options.tile


def check_memory(model: Stylizer, height: int, width: int, options: StylizeOptions, budget: int | None = None) -> bool:
    """Raise FastNSTError if stylizing [height, width] needs more than ``budget`` bytes per forward pass.

    ``budget`` defaults to memory.default_budget(). Cheap: callers run it on header sizes before
    decoding anything. Returns is_tiled(...).
    """
    budget = default_budget() if budget is None else budget
    tiled = is_tiled(height, width, options)
    if tiled:
        check_forward_fits(min(height, options.tile), min(width, options.tile), model.bytes_per_pixel, budget,
                           tiled=True)
    else:
        check_forward_fits(height, width, model.bytes_per_pixel, budget, tiled=False)
    return tiled


def scaled_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(width, height) after read_image's shrink to ``max_size`` (as image.resize_max_side rounds it)."""
    scale = 1.0 if max_size is None else max_size / max(width, height)
    if scale >= 1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def stylize_image(model: Stylizer, image: np.ndarray, options: StylizeOptions = StylizeOptions(), *,
                  budget: int | None = None, on_tile: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Stylize [H, W, 3] (float in [0, 1], or uint8 = x·255) -> the same shape in [0, 1]: uint8 for
    uint8, float32 for any float.

    ``options.max_size`` is not applied here (it is a resize on reading: see image.read_image).
    Raises FastNSTError for anything else (check_image_array: float pixels outside [0, 1], bool or
    int arrays), and before running if the pass (or one tile) would need more than ``budget`` bytes
    (default: memory.default_budget()); the message names a --tile that fits.
    """
    check_stylizer(model)
    check_image_array(image)
    if not isinstance(options, StylizeOptions):
        raise FastNSTError(f"options must be a StylizeOptions, got {type(options).__name__}")
    if image.dtype != np.uint8:
        image = image.astype(np.float32, copy=False)  # float16/64 alike: the result is float32, tiled or not
    h, w = image.shape[:2]
    tiled = check_memory(model, h, w, options, budget)

    def process(original: np.ndarray) -> np.ndarray:  # float32 [h, w, 3] -> postprocessed, unclipped
        return postprocess(run_image(model, original), original, preserve_color=options.preserve_color,
                           strength=options.strength)

    if tiled:
        return stylize_tiled(process, image, options.tile, on_tile=on_tile)
    out = np.clip(process(to_float(image)), 0.0, 1.0)
    return to_uint8(out) if image.dtype == np.uint8 else out.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------
# Files


def check_output_folder(path: Path) -> None:
    """Refuse an output whose folder cannot be written: a file or a broken symlink where a folder
    should be, or a nearest existing folder this process may not write into (missing folders are
    created when the image is written). Cheap (stat and access calls): run before any work."""
    for folder in (path.parent, *path.parent.parents):
        if folder.is_dir():
            break
        if folder.is_symlink():
            raise FastNSTError(f"{path}: cannot write it: {folder} is a broken symbolic link, not a folder")
        if folder.exists():
            raise FastNSTError(f"{path}: cannot write it: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):  # also false on a read-only file system, even for root
        raise FastNSTError(f"{path}: cannot write it: no permission to write into {folder} (or it is read-only)")


def as_path(value, name: str) -> Path:
    """A str or os.PathLike argument as a Path; FastNSTError for anything else, and for "" (Path("") is ".")."""
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise FastNSTError(f"{name} must be a file path, got {type(value).__name__} {str(value)[:40]!r}")
    return Path(value)


def check_new_output(path: Path, inputs: Sequence[Path], existing: str = "refuse") -> None:
    """Refuse to write over an input, over a folder, and over an existing file where ``existing`` is
    "refuse"; refuse a file name longer than the file system takes, and a folder we cannot write
    into (check_output_folder). Cheap: run before any work."""
    if existing not in EXISTING:
        raise FastNSTError(f"existing must be one of {', '.join(EXISTING)}, got {existing!r}")
    path = Path(path)
    resolved = path.resolve()
    folder = next((p for p in resolved.parents if p.is_dir()), Path("/"))
    limit = name_max(folder)
    if len(os.fsencode(path.name)) > limit:  # first: even stat() fails on such a name
        raise FastNSTError(f"{path}: file name too long ({len(os.fsencode(path.name))} bytes; the file system "
                           f"takes at most {limit})")
    if any(resolved == Path(p).resolve() for p in inputs):
        raise FastNSTError(f"{path}: output would overwrite an input file")
    if path.is_dir():
        raise FastNSTError(f"{path}: is a directory")
    if path.exists() and existing == "refuse":
        raise FastNSTError(f"{path}: already exists (pass --overwrite to replace it)")
    check_output_folder(path)


class Progress:
    """What stylize_files tells its caller as it goes; this base class reports nothing (the CLI draws bars)."""

    def warn(self, message: str) -> None:  # a found file skipped, with why
        pass

    def start(self, total: int) -> None:  # the number of images about to be stylized
        pass

    def tile(self, path: Path, done: int, total: int) -> None:  # a tile of a big image is done
        pass

    def image_done(self) -> None:  # one image handled (written, kept or failed)
        pass


@dataclass
class StylizeReport:
    total: int = 0  # images to stylize once the outputs and sizes were checked
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # existing outputs left as they were (existing="skip")
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (found file, why): not a readable image
    failed: list[str] = field(default_factory=list)  # one line each: an input named explicitly that did not
    # decode, or an output another process wrote meanwhile; reported after the other images are done


def stylize_files(model: Stylizer, inputs: Sequence[InputImage], outputs: Sequence[Path],
                  options: StylizeOptions = StylizeOptions(), *, existing: str = "refuse",
                  budget: int | None = None, protect: Sequence[Path] = (), progress: Progress | None = None,
                  report: StylizeReport | None = None) -> StylizeReport:
    """Stylize ``inputs[i]`` into ``outputs[i]``; the loop behind stylize_file, stylize_folder and the CLI.

    Everything cheap comes first: every output (check_new_output; ``protect``: more files never to
    write over, e.g. the model) and every image's size against the memory ``budget``, from headers
    only; one too big stops the run before any work. Then one image at a time is in memory. An
    explicit input that is not a readable image is an error (raised before any work if its header
    is bad, else listed in ``failed``); a found one is skipped with a ``progress.warn``. Pass
    ``report`` to see how far a run got when it is interrupted (KeyboardInterrupt).
    """
    check_stylizer(model)
    progress = progress or Progress()
    report = StylizeReport() if report is None else report
    budget = default_budget() if budget is None else budget
    guarded = [i.path for i in inputs] + list(protect)
    planned = []
    for item, out in zip(inputs, outputs, strict=True):
        check_new_output(out, guarded, existing)
        if existing == "skip" and out.exists():
            report.kept.append(out)
        else:
            planned.append((item, out))
    todo = []
    for item, out in planned:
        try:
            width, height = image_size(item.path)  # header only
        except FastNSTError as e:
            if item.explicit:
                raise
            progress.warn(f"{e}; skipped")
            report.skipped.append((item.path, str(e)))
            continue
        width, height = scaled_size(width, height, options.max_size)
        check_output_size(out, width, height)  # fail now, not after the pass
        check_memory(model, height, width, options, budget)  # fail now, not after the other images
        todo.append((item, out))

    report.total = len(todo)
    progress.start(len(todo))
    for item, out in todo:
        try:
            image = read_image(item.path, options.max_size)  # uint8 [H, W, 3]: 3 bytes/px
        except FastNSTError as e:  # decodes badly although the header was fine (e.g. truncated)
            if item.explicit:
                report.failed.append(str(e))
            else:
                progress.warn(f"{e}; skipped")
                report.skipped.append((item.path, str(e)))
            progress.image_done()
            continue
        result = stylize_image(model, image, options, budget=budget,
                               on_tile=lambda done, total: progress.tile(item.path, done, total))
        del image  # one image in memory at a time: peak stays flat over a folder
        try:
            # Checked above, but another process may have written it since: never replace that
            # one unless existing="replace" (files.atomic_write's replace=False).
            save_image(result, out, replace=existing == "replace")
            report.written.append(out)
        except FileExistsError:
            if existing == "skip":
                report.kept.append(out)
            else:
                report.failed.append(f"{out}: appeared while stylizing (another process?); kept it, and did not "
                                     f"write ours (pass --overwrite to replace it, or --skip-existing)")
        except OSError as e:
            raise FastNSTError(f"{out}: cannot write ({e.strerror or e})") from None
        finally:
            del result
        progress.image_done()
    return report


def stylize_file(model: Stylizer, src: str | os.PathLike, dst: str | os.PathLike,
                 options: StylizeOptions = StylizeOptions(), *, existing: str = "refuse", budget: int | None = None,
                 progress: Progress | None = None) -> bool:
    """Read ``src``, stylize, write ``dst``; True if it was written (False: kept, existing="skip").

    FastNSTError if ``src`` is not a readable image, ``dst`` is ``src``, or ``dst`` exists and
    ``existing`` is "refuse" (the default).
    """
    report = stylize_files(model, [InputImage(as_path(src, "src"), True)], [as_path(dst, "dst")], options,
                           existing=existing, budget=budget, progress=progress)
    if report.failed:
        raise FastNSTError(report.failed[0])
    return bool(report.written)


def stylize_folder(model: Stylizer, src: str | os.PathLike, dst: str | os.PathLike,
                   options: StylizeOptions = StylizeOptions(), *, existing: str = "refuse",
                   budget: int | None = None, progress: Progress | None = None) -> StylizeReport:
    """Stylize every image directly in folder ``src`` into folder ``dst`` (same file names, .png where
    the input's format cannot be written faithfully: inputs.output_name).

    Files that are not readable images are skipped and listed in the report's ``skipped``.
    """
    src, dst = as_path(src, "src"), as_path(dst, "dst")
    if not src.is_dir():
        raise FastNSTError(f"{src}: not a folder")
    if src.resolve() == dst.resolve():
        raise FastNSTError(f"{dst}: output folder must differ from the input folder")
    inputs = [InputImage(p, False) for p in list_folder(src)]
    return stylize_files(model, inputs, plan_outputs(inputs, dst, True), options, existing=existing,
                         budget=budget, progress=progress)


# Videos: fastnst/video.py (PyAV, the [video] extra, imported only when a video is opened).
from fastnst.video import FrameProgress, stylize_video  # noqa: E402  (video.py imports this module's names lazily)
