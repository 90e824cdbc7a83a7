"""INPUT arguments (files, folders, globs) -> the image files to stylize, and where each result goes.

Torch-free. Policy, shared by the CLI and runtime.stylize_folder:

- a file named explicitly is *explicit*: if it is missing, not an image or unreadable, that is an
  error (exit status 2);
- files found in a folder (not recursive; dotfiles ignored) or by a glob are *found*: ones that
  are not readable images are skipped with a one-line warning each and counted; a folder that
  holds only subfolders is an error that says so;
- OUT is a folder when it already is one, ends with a slash, or has no file extension; results
  keep the input's file name (and extension, or .png where Pillow cannot write it, or would lose
  colours or size writing it: GIF, ICO; a video's, or .mp4: video_files.py), except a single photo
  named explicitly, whose result is ``<photo>_<style>.<ext>`` there (so a second style can go into
  the same folder). Otherwise OUT is the output file, which takes exactly one explicitly named input;
- without OUT, photos named explicitly give ``<photo>_<style>.<ext>``: in the current folder for
  one photo, beside each photo for several (styled_name).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.image import check_output_path
from fastnst.video_files import check_video_output, is_video, video_output_name

FALLBACK_SUFFIX = ".png"


@dataclass(frozen=True)
class InputImage:
    path: Path
    explicit: bool  # named on the command line: problems are errors, not skip-with-warning


def list_folder(folder: Path) -> list[Path]:
    """The files directly in ``folder``, sorted; dotfiles (e.g. our own temp files) left out."""
    return [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]


def expand_inputs(args: Sequence[str | os.PathLike]) -> list[InputImage]:
    """Files, folders and glob patterns -> input files in argument order (folders and globs sorted), deduplicated."""
    found: list[InputImage] = []
    only_subfolders: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            files = list_folder(path)
            if not files and any(p.is_dir() and not p.name.startswith(".") for p in path.iterdir()):
                only_subfolders.append(path)
            found += [InputImage(p, False) for p in files]
        elif path.exists() or not glob.has_magic(str(arg)):
            found.append(InputImage(path, True))  # a missing explicit file is reported when it is checked
        else:
            matches = sorted(Path(m) for m in glob.glob(str(arg)))
            if not matches:
                raise FastNSTError(f"{arg}: pattern matches no files")
            found += [InputImage(p, False) for p in matches if p.is_file()]
    seen: set[Path] = set()
    unique = []
    for item in found:
        key = item.path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(item)
    if not unique and only_subfolders:
        folder = only_subfolders[0]
        raise FastNSTError(f"{folder}: holds only subfolders, no files (folders are not searched recursively: "
                           f"name the subfolders, or quote a glob such as '{folder / '*' / '*.jpg'}')")
    if not unique:
        raise FastNSTError("no input files (the folders given are empty)")
    return unique


def output_is_folder(output: str | os.PathLike) -> bool:
    """Whether OUT names a folder: it is one, ends with a slash, or has no file extension."""
    return Path(output).is_dir() or str(output).endswith(("/", os.sep)) or not Path(output).suffix


def output_name(path: Path) -> str:
    """The result's file name in an output folder: the input's, with .png if Pillow cannot write its format
    or would lose colours or size writing it (image.LOSSY_FORMATS: GIF, ICO, ICNS); a video's as
    video_files.video_output_name says (.mp4 where we cannot write its container)."""
    if is_video(path):
        return video_output_name(path)
    try:
        check_output_path(path)
        return path.name
    except FastNSTError:
        return path.stem + FALLBACK_SUFFIX


def styled_name(path: Path, style: str) -> str:
    """``<photo>_<style>.<ext>``: the result's name where it is not given (.png as in output_name)."""
    name = Path(output_name(path))
    return f"{name.stem}_{style}{name.suffix}"


def _distinct(inputs: Sequence[InputImage], outputs: list[Path]) -> list[Path]:
    """``outputs``, after refusing two inputs mapped to the same output."""
    seen: dict[Path, Path] = {}
    for i, out in zip(inputs, outputs):
        if out in seen:
            raise FastNSTError(f"{seen[out]} and {i.path} would both be written to {out}")
        seen[out] = i.path
    return outputs


def plan_outputs(inputs: Sequence[InputImage], output: Path, folder: bool) -> list[Path]:
    """One output path per input; refuses two inputs mapped to the same output."""
    if not folder:
        if len(inputs) != 1 or not inputs[0].explicit:
            raise FastNSTError(f"{output}: several inputs (or a folder or glob) need an output folder, not a file")
        if is_video(inputs[0].path):
            check_video_output(output)
        else:
            check_output_path(output)
        return [output]
    if output.exists() and not output.is_dir():
        raise FastNSTError(f"{output}: exists and is not a folder")
    return _distinct(inputs, [output / output_name(i.path) for i in inputs])


def plan_styled_outputs(inputs: Sequence[InputImage], style: str, folder: Path | None) -> list[Path]:
    """``<photo>_<style>.<ext>`` for each photo named explicitly: in ``folder``, or beside the photo
    (None). Files found in a folder or by a glob need an output folder: refused."""
    if not all(i.explicit for i in inputs):
        raise FastNSTError("a folder or glob as input needs an output folder: give -o FOLDER")
    if folder is not None and folder.exists() and not folder.is_dir():
        raise FastNSTError(f"{folder}: exists and is not a folder")
    return _distinct(inputs, [(i.path.parent if folder is None else folder) / styled_name(i.path, style)
                              for i in inputs])
