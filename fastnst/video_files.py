"""Which files are videos, and what a stylized video is written as. No PyAV here: the light install
uses this to tell a video from a photo (and to name the extra it needs) without importing it.

A file is a video by its extension. A stylized video keeps its input's container where we can
write it (.mp4, .m4v, .mov, .mkv, .webm) and is written as .mp4 otherwise (as a GIF photo's
result is written as .png): in a folder run ``clip.avi`` -> ``clip.mp4``.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastnst.errors import FastNSTError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".flv", ".mpg", ".mpeg",
                              ".m2ts", ".mts", ".ts", ".3gp", ".ogv", ".vob"})
# Output extension -> FFmpeg muxer. The temporary file atomic_write writes has no such extension,
# so the muxer is named, not guessed.
MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
FALLBACK_SUFFIX = ".mp4"
EXTRA = 'pip install "fastnst[video]"'


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video file (by its extension; animated GIFs stay images)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def check_video_output(path: str | os.PathLike) -> str:
    """The FFmpeg muxer for writing a stylized video to ``path``; FastNSTError if we cannot write that."""
    muxer = MUXERS.get(Path(path).suffix.lower())
    if muxer is None:
        raise FastNSTError(f"{path}: a stylized video is written as {', '.join(MUXERS)}; "
                           f"not as {Path(path).suffix or 'a file without extension'}")
    return muxer


def video_output_name(path: Path) -> str:
    """The result's file name in an output folder: the input's, or its stem + .mp4 where we cannot
    write its container."""
    return path.name if path.suffix.lower() in MUXERS else path.stem + FALLBACK_SUFFIX


def import_av(path: str | os.PathLike | None = None):
    """``import av``, or FastNSTError naming the extra where PyAV is missing (the light install leaves
    it out) or broken."""
    try:
        import av
    except ImportError as e:
        where = f"{path}: " if path is not None else ""
        raise FastNSTError(f"{where}stylizing videos needs PyAV ({e}), which the light install leaves out: "
                           f"{EXTRA}") from None
    return av
