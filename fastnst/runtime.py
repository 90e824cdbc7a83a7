"""Stylize images with an exported fastnst ONNX model, using only numpy, Pillow and onnxruntime.

Importing this module never imports torch (a test checks it): this is the part other apps copy.
The ONNX contract (written by export.py, checked here when a model is opened):

- one input ``image``: float32 [N, 3, H, W], RGB in [0, 1], N, H and W dynamic, H, W >= 16;
- one output ``stylized``: float32, the input's shape, RGB in [0, 1];
- metadata_props ``fastnst.format`` = FORMAT, plus ``fastnst.style_name``, ``fastnst.style_sha256``,
  ``fastnst.image_size`` (training crop, px), ``fastnst.style_size`` (the style image's longer side in
  training, px), ``fastnst.loss`` (JSON), ``fastnst.model`` (JSON), ``fastnst.version``.

Typical use::

    model = OnnxStylizer("candy.onnx")
    stylize_file(model, "photo.jpg", "photo_candy.jpg", StylizeOptions(strength=0.8))

``stylize_image`` works with any *stylizer*: a callable float32 [N, 3, H, W] -> [N, 3, H, W] with a
``bytes_per_pixel`` attribute (memory.py), such as OnnxStylizer here or stylize.TorchStylizer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from fastnst.errors import FastNSTError
from fastnst.image import open_image, resize_max_side, save_image
from fastnst.inputs import list_folder, output_name
from fastnst.memory import bytes_per_pixel, check_forward_fits, default_budget
from fastnst.postprocess import postprocess
from fastnst.tiling import MIN_TILE, stylize_tiled

FORMAT = "fastnst-transformer/1"
INPUT_NAME = "image"
OUTPUT_NAME = "stylized"
MIN_SIZE = 16  # px: the smallest H, W the exported graph is guaranteed for; smaller inputs are edge-padded
METADATA_PREFIX = "fastnst."
DEFAULT_WIDTH = 32  # the memory estimate's guess when a model does not say its width: the paper's, the larger


class Stylizer(Protocol):
    bytes_per_pixel: int

    def __call__(self, batch: np.ndarray) -> np.ndarray:  # float32 [N, 3, H, W] -> [N, 3, H, W]
        ...


@dataclass(frozen=True)
class StylizeOptions:
    """How to stylize; the single definition of these defaults (the CLI mirrors them)."""

    max_size: int | None = None  # longer side of the output, px (only ever shrinks); None keeps the size
    preserve_color: bool = False  # keep the photo's colours: transfer the stylized luminance only
    strength: float = 1.0  # 0 = the original, 1 = fully stylized; linear blend between
    tile: int | None = None  # run in overlapping tiles of this size (px) instead of whole

    def __post_init__(self):
        if not 0.0 <= self.strength <= 1.0:
            raise FastNSTError(f"strength must be between 0 and 1, got {self.strength}")
        if self.tile is not None and self.tile < MIN_TILE:
            raise FastNSTError(f"tile must be at least {MIN_TILE} px, got {self.tile}")
        if self.max_size is not None and self.max_size < MIN_SIZE:
            raise FastNSTError(f"max size must be at least {MIN_SIZE} px, got {self.max_size}")


# ---------------------------------------------------------------------------------------------
# The ONNX model


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (os.sched_getaffinity).

    onnxruntime's default thread count looks at the whole machine, which oversubscribes inside
    containers and under taskset; and SMT siblings share one core's vector units, so convolution
    gains nothing from a second thread per core, only contention. Falls back to the logical CPU
    count where the topology is unknown.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            cores.add((package, (topology / "core_id").read_text().strip()))
        except OSError:
            return max(1, len(cpus))
    return max(1, len(cores))


def session_options(threads: int | None = None):
    """onnxruntime SessionOptions for CPU inference; ``threads`` defaults to physical_cores()."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Measured on the shipped width-16 net, 2-core CPU, median ms at 512² / 1024² (docs/onnx.md):
    # All graph optimisations (constant folding, conv fusions, the NCHWc layout): 215 ms; extended
    # 301, basic 260.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One thread per physical core: 2 threads 215 ms, 1 thread 356; ORT_PARALLEL execution 432.
    options.intra_op_num_threads = threads or physical_cores()
    # The CPU arena keeps the largest image's buffers for the next image instead of returning them
    # to the OS and faulting fresh pages in every run: 512² 215 -> ~190 ms, 1024² 1406 -> 779 ms,
    # for ~30% more peak memory (528 -> 694 MB RSS over a mix of 512..1024 px images), which
    # memory.bytes_per_pixel's estimate still covers. It is onnxruntime's default; kept explicit.
    options.enable_cpu_mem_arena = True
    options.log_severity_level = 3  # errors only: no warnings about initializers on every load
    return options


def read_metadata(props: dict[str, str]) -> dict:
    """ONNX metadata_props -> {"format", "style_name", "style_sha256", "image_size", "style_size",
    "loss", "model", "version"}; a missing or unparsable field is None."""

    def get(key: str, parse: Callable | None = None):
        value = props.get(METADATA_PREFIX + key)
        if value is None or parse is None:
            return value
        try:
            return parse(value)
        except (ValueError, TypeError):
            return None

    return {"format": get("format"), "style_name": get("style_name"), "style_sha256": get("style_sha256"),
            "image_size": get("image_size", int), "style_size": get("style_size", int),
            "loss": get("loss", json.loads), "model": get("model", json.loads), "version": get("version")}


class OnnxStylizer:
    """An exported fastnst model in an onnxruntime session: float32 [N, 3, H, W] -> [N, 3, H, W].

    Opening checks the file is a fastnst export (names, ranks, format key) and raises FastNSTError
    otherwise, so a wrong file fails before any image is read.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FastNSTError(f"{path}: no such model file")
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads),
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files
            reason = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
            raise FastNSTError(f"{path}: not a readable ONNX model ({reason})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        signature = [(t.name, t.type, len(t.shape or ())) for t in inputs + outputs]
        expected = [(INPUT_NAME, "tensor(float)", 4), (OUTPUT_NAME, "tensor(float)", 4)]
        if len(inputs) != 1 or len(outputs) != 1 or signature != expected:
            got = ", ".join(f"{n}: {t} rank {r}" for n, t, r in signature)
            raise FastNSTError(f"{path}: not a fastnst style model (expected input 'image' and output 'stylized', "
                               f"float32 [N, 3, H, W]; got {got})")
        self.meta = read_metadata(self.session.get_modelmeta().custom_metadata_map)
        if self.meta["format"] != FORMAT:
            raise FastNSTError(f"{path}: not a fastnst export (metadata fastnst.format is {self.meta['format']!r}, "
                               f"expected {FORMAT!r})")
        self.path = path
        width = (self.meta["model"] or {}).get("width", DEFAULT_WIDTH)
        self.bytes_per_pixel = bytes_per_pixel(width if isinstance(width, int) else DEFAULT_WIDTH)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})[0]


# ---------------------------------------------------------------------------------------------
# Images


def run_image(model: Stylizer, image: np.ndarray) -> np.ndarray:
    """One forward pass on float32 [H, W, 3] -> [H, W, 3]; images under MIN_SIZE are edge-padded, then cropped."""
    h, w = image.shape[:2]
    if h < MIN_SIZE or w < MIN_SIZE:
        image = np.pad(image, ((0, max(0, MIN_SIZE - h)), (0, max(0, MIN_SIZE - w)), (0, 0)), mode="edge")
    batch = np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32)  # [1, 3, H', W']
    out = model(batch)[0, :, :h, :w]
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
    """Stylize [H, W, 3] (float32 in [0, 1], or uint8 = x·255) -> the same shape and dtype, in [0, 1].

    ``options.max_size`` is not applied here (it is a resize on reading: see read_image). Raises
    FastNSTError before running if the pass (or one tile) would need more than ``budget`` bytes
    (default: memory.default_budget()); the message names a --tile that fits.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise FastNSTError(f"expected an [H, W, 3] RGB image, got shape {tuple(image.shape)}")
    h, w = image.shape[:2]
    tiled = check_memory(model, h, w, options, budget)

    def process(original: np.ndarray) -> np.ndarray:  # float32 [h, w, 3] -> postprocessed, unclipped
        return postprocess(run_image(model, original), original, preserve_color=options.preserve_color,
                           strength=options.strength)

    if tiled:
        return stylize_tiled(process, image, options.tile, on_tile=on_tile)
    original = image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32, copy=False)
    out = np.clip(process(original), 0.0, 1.0)
    return (out * 255.0 + 0.5).astype(np.uint8) if image.dtype == np.uint8 else out.astype(np.float32, copy=False)


def read_image(path: str | os.PathLike, max_size: int | None = None) -> np.ndarray:
    """Decode ``path`` -> uint8 [H, W, 3] RGB (3 bytes/px, for big photos), longer side shrunk to ``max_size``."""
    im = resize_max_side(open_image(path), max_size)
    array = np.asarray(im, dtype=np.uint8)
    im.close()
    return array


def stylize_file(model: Stylizer, src: str | os.PathLike, dst: str | os.PathLike,
                 options: StylizeOptions = StylizeOptions(), *, budget: int | None = None,
                 on_tile: Callable[[int, int], None] | None = None) -> None:
    """Read ``src``, stylize, write ``dst`` atomically (replacing it if it exists; ``dst == src`` is refused)."""
    if Path(src).resolve() == Path(dst).resolve():
        raise FastNSTError(f"{dst}: output would overwrite its input")
    result = stylize_image(model, read_image(src, options.max_size), options, budget=budget, on_tile=on_tile)
    try:
        save_image(result, dst)
    except OSError as e:
        raise FastNSTError(f"{dst}: cannot write ({e.strerror or e})") from None


@dataclass
class FolderReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why): not a readable image


def stylize_folder(model: Stylizer, src: str | os.PathLike, dst: str | os.PathLike,
                   options: StylizeOptions = StylizeOptions(), *, overwrite: bool = False,
                   budget: int | None = None) -> FolderReport:
    """Stylize every image directly in folder ``src`` into folder ``dst`` (same file names).

    Files that are not readable images are skipped and listed in the report; existing outputs are
    kept (and count as skipped) unless ``overwrite``. One image is in memory at a time.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FastNSTError(f"{src}: not a folder")
    if src.resolve() == dst.resolve():
        raise FastNSTError(f"{dst}: output folder must differ from the input folder")
    report = FolderReport()
    for path in list_folder(src):
        out = dst / output_name(path)
        if out.exists() and not overwrite:
            report.skipped.append((path, f"{out} exists"))
            continue
        try:
            image = read_image(path, options.max_size)
        except FastNSTError as e:
            report.skipped.append((path, str(e)))
            continue
        try:
            save_image(stylize_image(model, image, options, budget=budget), out, replace=overwrite)
        except FileExistsError:  # written by someone else since the check above: theirs is kept
            report.skipped.append((path, f"{out} exists"))
            continue
        report.written.append(out)
    return report

