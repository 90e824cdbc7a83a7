"""``fastnst stylize`` (scripts/stylize.py): stylize photos with a trained model in one pass.

Parsing and reporting only: the work is runtime.stylize_files, the library's one loop. Torch-free
unless the model is a .pt/.ckpt file; tqdm draws the bars where it is installed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from fastnst.cli.common import base_parser, output_path, positive_float, run_main
from fastnst.errors import FastNSTError
from fastnst.models import MODEL_SUFFIXES, open_model, resolve_model, shipped_styles
from fastnst.runtime import Progress, StylizeOptions, StylizeReport, check_new_output, stylize_files


def stylize_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = base_parser("Stylize photos with a trained model in one pass.", prog)
    p.epilog = ("Files named on the command line must be readable images (else: error, exit status 2; one that "
                "fails only while decoding is reported after the others are done). Files found in a folder or by "
                "a glob that are not readable images are skipped with a warning. Every image's size is checked "
                "first: one too big to run whole stops the run before any work and names a --tile that fits. "
                "Inputs are never overwritten; outputs are written atomically, and an existing output is "
                "replaced only with --overwrite, even one another process writes meanwhile. Interrupted "
                "(Ctrl-C, SIGTERM), it says how many images it wrote; rerun with --skip-existing to do the rest.")
    p.add_argument("model", type=Path,
                   help="a shipped style's name (" + ", ".join(shipped_styles()) + "), a training run's folder "
                        "(its <style>.onnx or transformer.pt), or a model file: exported .onnx, training .ckpt "
                        "or transformer.pt")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image or video files, folders (the images and videos directly in them) or quoted glob "
                        "patterns; videos need the [video] extra")
    p.add_argument("-o", "--output", type=output_path, default=None,
                   help="output image (one input) or folder (a path ending in / or without an extension): "
                        "missing folders are created. In a folder, one photo's result is <photo>_<style>.<ext>; "
                        "a folder's or several photos' keep the input file names (as .png where that format "
                        "cannot be written or would lose colours: GIF, ICO). Unset: <photo>_<style>.<ext>, in "
                        "the current folder for one photo, beside each photo for several")
    p.add_argument("--max-size", type=int, default=StylizeOptions.max_size, metavar="PX",
                   help="shrink so the longer side is at most this; unset: keep the size")
    p.add_argument("--preserve-color", action="store_true", default=StylizeOptions.preserve_color,
                   help="keep the photo's colours: take only the luminance from the stylized image")
    p.add_argument("--strength", type=float, default=StylizeOptions.strength,
                   help="0..1: blend of the stylized image with the original (0 = original)")
    p.add_argument("--tile", type=int, default=StylizeOptions.tile, metavar="PX",
                   help="run images bigger than this in overlapping, feathered tiles of this size (e.g. 1024): "
                        "memory is then bounded by the tile, not the image; unset: run whole")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing output files")
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave existing output files as they are and stylize only the others "
                               "(e.g. to finish an interrupted folder run)")
    p.add_argument("--device", default="auto",
                   help="auto, cpu, cuda or cuda:N: for .ckpt/.pt models (.onnx runs on CPU); naming a GPU runs a "
                        "shipped style's (or a run's) .pt twin there")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: a shipped style (or a run's folder) runs its .onnx through onnxruntime, the fastest "
                        "per call on a CPU (importing PyTorch alone takes longer than the pass); .pt/.ckpt models "
                        "run in bf16 where the hardware has native bf16, else fp32. bf16: the .pt twin in bf16. "
                        ".onnx is fp32 only")
    p.add_argument("--max-memory", type=positive_float, default=None, metavar="GIB",
                   help="memory one forward pass may use; bigger images need --tile "
                        "(unset: fastnst.memory.MEMORY_FRACTION of the available memory)")
    return p


class BarProgress(Progress):
    """tqdm bars (one per run, one per tiled image) and warnings that do not break them; plain
    warnings where tqdm is not installed (the light install)."""

    def __init__(self):
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        self.tqdm, self.bar, self.tiles, self.tiled = tqdm, None, None, None

    def warn(self, message: str) -> None:
        write = self.tqdm.write if self.tqdm else print
        write(f"warning: {message}", file=sys.stderr)

    def start(self, total: int) -> None:
        if self.tqdm and total >= 2:
            self.bar = self.tqdm(total=total, desc="stylize", unit="img", dynamic_ncols=True)

    def tile(self, path: Path, done: int, total: int) -> None:
        if not self.tqdm:
            return
        if self.tiled != path:
            self.close_tiles()
            self.tiled, self.tiles = path, self.tqdm(total=total, desc=path.name, unit="tile", leave=False,
                                                     dynamic_ncols=True)
        self.tiles.update(1)

    def image_done(self) -> None:
        self.close_tiles()
        if self.bar is not None:
            self.bar.update(1)

    def close_tiles(self) -> None:
        if self.tiles is not None:
            self.tiles.close()
        self.tiles = self.tiled = None

    def close(self) -> None:
        self.close_tiles()
        if self.bar is not None:
            self.bar.close()


def check_model_first(model: Path, inputs: Sequence[str]) -> None:
    """Refuse an image given as the model (arguments swapped: ``stylize photo.jpg mosaic``), with the
    command meant where an input names a model."""
    from fastnst.image import is_image_name

    if not is_image_name(model):
        return
    styles = [i for i in inputs if i in shipped_styles() or Path(i).suffix.lower() in MODEL_SUFFIXES]
    photos = [i for i in inputs if i not in styles] + [str(model)]
    hint = (f"; did you mean `fastnst stylize {styles[0]} {' '.join(photos)}`?" if len(styles) == 1
            else " (a shipped style's name, a run's folder or a model file)")
    raise FastNSTError(f"{model}: is an image; the first argument is the style/model{hint}")


def plan(args: argparse.Namespace, inputs: list, style: str) -> list[Path]:
    """The output path of each input (inputs.py's policy): -o FILE, -o FOLDER, or none given."""
    from fastnst.inputs import output_is_folder, plan_outputs, plan_styled_outputs

    if args.output is None:
        return plan_styled_outputs(inputs, style, Path(".") if len(inputs) == 1 else None)
    folder = output_is_folder(args.output)
    if folder and len(inputs) == 1 and inputs[0].explicit:
        return plan_styled_outputs(inputs, style, args.output)
    return plan_outputs(inputs, args.output, folder)


def stylize_command(args: argparse.Namespace) -> int:
    from fastnst.cli.video import has_videos, stylize_with_videos
    from fastnst.inputs import expand_inputs, output_is_folder
    from fastnst.memory import TILE_STEP, default_budget, largest_tile

    # Everything cheap first: options, inputs, outputs, then the model; stylize_files checks every
    # image's size before it stylizes the first.
    options = StylizeOptions(max_size=args.max_size, preserve_color=args.preserve_color, strength=args.strength,
                             tile=args.tile)
    existing = "replace" if args.overwrite else "skip" if args.skip_existing else "refuse"
    budget = default_budget() if args.max_memory is None else int(args.max_memory * 2**30)
    check_model_first(args.model, args.inputs)
    model_path = resolve_model(args.model, args.precision, args.device)
    inputs = expand_inputs(args.inputs)
    outputs = plan(args, inputs, model_path.stem)
    several = len(outputs) > 1
    where = (f" to {outputs[0]}" if not several else f" to {args.output}" if args.output is not None
             else " beside their photos")
    for out in outputs:
        check_new_output(out, [i.path for i in inputs] + [model_path], existing)
    model = open_model(model_path, device=args.device, precision=args.precision)
    if args.max_memory is not None and largest_tile(model.bytes_per_pixel, budget) is None:
        raise FastNSTError(f"--max-memory {args.max_memory:g} GiB is too small: even a {TILE_STEP} px tile needs "
                           f"about {TILE_STEP**2 * model.bytes_per_pixel / 2**20:.1f} MiB with this model")

    if has_videos(inputs):  # videos stream through fastnst.video frame by frame: cli/video.py
        return stylize_with_videos(model, inputs, outputs, options, existing=existing, budget=budget,
                                   protect=[model_path], output=args.output,
                                   folder=args.output is not None and output_is_folder(args.output))

    report, progress = StylizeReport(), BarProgress()
    try:
        stylize_files(model, inputs, outputs, options, existing=existing, budget=budget, protect=[model_path],
                      progress=progress, report=report)
    except KeyboardInterrupt:
        # atomic_write has removed the image being written; say what is done and how to finish.
        written = len(report.written)
        raise KeyboardInterrupt(f"interrupted: wrote {written} of {report.total} image(s)"
                                + (where if written else "")
                                + ("; rerun with --skip-existing to do the rest" if several else "")) from None
    finally:
        progress.close()

    return report_outcome(report, f"wrote {len(report.written)} image(s)" + (where if report.written else ""),
                          "readable images", "images")


def report_outcome(report: StylizeReport, message: str, readable: str, files: str) -> int:
    """Print ``message`` with what was kept and skipped (files that are not ``readable``); one
    FastNSTError for what failed (``files`` names them), else exit status 0."""
    if report.kept:
        message += f"; kept {len(report.kept)} existing output(s)"
    if report.skipped:
        message += f"; skipped {len(report.skipped)} file(s) that are not {readable}"
    print(message)
    if len(report.failed) == 1:
        raise FastNSTError(report.failed[0])
    if report.failed:
        raise FastNSTError(f"{len(report.failed)} {files} failed: " + "; ".join(report.failed))
    return 0


def stylize_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    return run_main(stylize_command, stylize_parser(prog), argv)
