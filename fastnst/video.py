"""Stylize a video file with PyAV (the [video] extra): decode, stylize, encode one frame at a time,
the sound copied packet for packet. Torch-free; PyAV is imported only when a video is opened.

    from fastnst.runtime import StylizeOptions, open_model, stylize_video
    stylize_video(open_model("mosaic"), "clip.mp4", "clip_mosaic.mp4", StylizeOptions(max_size=720))

What the output keeps: every frame's timestamp and duration (so the frame rate, a variable one
included, and the length), the rotation a phone records (the display matrix), the colour tags, and
every audio stream as it was (remuxed, not re-encoded). What it changes: the picture is H.264
(VP9 in .webm), 8-bit 4:2:0, which needs an even width and height: an odd one loses its last
row or column (said through ``progress.warn``); alpha is composited on white, as for photos.
Subtitle and data streams are left out (said too). The net sees each frame upright, as a player
shows it (a phone stores a portrait clip sideways; strokes have a direction), and its result is
turned back under the kept display matrix. Memory stays flat over the clip's length: one
decoded frame at a time, plus what the encoder looks ahead and the muxer holds to interleave.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fastnst.errors import FastNSTError
from fastnst.files import atomic_write
from fastnst.video_files import check_video_output, import_av

if TYPE_CHECKING:
    from fastnst.runtime import StylizeOptions, Stylizer

# Muxer -> (encoder, its options). x264 at CRF 18 is near-transparent and costs a few ms per 720p
# frame against hundreds for the net, so quality is cheap here; WebM takes VP9 only.
ENCODERS = {"webm": ("libvpx-vp9", {"crf": "31", "b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"})}
DEFAULT_ENCODER = ("libx264", {"crf": "18", "preset": "medium"})
PIX_FMT = "yuv420p"  # what every player decodes; chroma at half resolution, so even sizes only
FALLBACK_RATE = Fraction(25)  # for a stream that states no frame rate (timestamps still rule)


class FrameProgress:
    """What stylize_video tells its caller as it goes; this base class reports nothing."""

    def warn(self, message: str) -> None:  # something about the output the user should know
        pass

    def start(self, path: Path, frames: int | None) -> None:  # frames: estimated, None if unknown
        pass

    def frame(self) -> None:  # one frame stylized and handed to the encoder
        pass


@dataclass(frozen=True)
class VideoInfo:
    """What probe_video reads: the header, and the first frame (size, rotation, pixel format)."""

    width: int  # stored frame size; a player turns it by ``rotation``
    height: int
    frames: int | None  # from the header, else duration x rate; None where neither is known
    rotation: int  # degrees counter-clockwise a player turns the stored frames: 0, 90, 180 or 270
    display_matrix: tuple[int, ...] | None  # the 9 ints FFmpeg reads from the container, kept as they are
    alpha: bool
    pix_fmt: str
    colors: tuple[int, int, int]  # FFmpeg's colorspace, primaries, transfer: the output is tagged the same
    audio: int  # audio streams (copied)
    dropped: tuple[str, ...]  # other streams, left out: "subtitle", "data", a second "video"...


@contextmanager
def _readable(av, path: Path, what: str) -> Iterator[None]:
    """FFmpeg's errors (bad data, unknown format, unsupported codec) as one FastNSTError line."""
    try:
        yield
    except av.FFmpegError as e:
        reason = (getattr(e, "strerror", None) or str(e)).splitlines()[0]
        raise FastNSTError(f"{path}: {what} ({reason})") from None


def _url(path: str | os.PathLike) -> str:
    """FFmpeg reads ``x:y.mp4`` as protocol ``x``; the file protocol's prefix keeps it a file name."""
    return "file:" + os.fspath(path)


def _video_stream(container, path: Path):
    """The first video stream that is not cover art (an MP3's picture is a one-frame video stream)."""
    streams = [s for s in container.streams.video if not s.disposition & s.disposition.attached_pic]
    if not streams:
        raise FastNSTError(f"{path}: no video stream (audio only?)")
    return streams[0]


def _first_frame(container, stream, path: Path):
    for frame in container.decode(stream):
        return frame
    raise FastNSTError(f"{path}: the video stream has no frames")


def _display_matrix(frame) -> tuple[int, ...] | None:
    from av.sidedata.sidedata import Type

    data = frame.side_data.get(Type.DISPLAYMATRIX)
    return tuple(int(v) for v in np.frombuffer(bytes(data), dtype=np.int32)) if data is not None else None


def _estimate_frames(stream) -> int | None:
    if stream.frames:
        return stream.frames
    duration = stream.duration * stream.time_base if stream.duration and stream.time_base else None
    if duration is None and stream.container.duration:
        duration = Fraction(stream.container.duration, 1_000_000)  # AV_TIME_BASE
    rate = stream.average_rate or stream.guessed_rate
    return max(1, round(duration * rate)) if duration and rate else None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read ``path``'s header and first frame; FastNSTError if it is no readable video. Cheap: callers
    run it on every input before stylizing any."""
    av = import_av(path)
    path = Path(path)
    if not path.is_file():
        raise FastNSTError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    with _readable(av, path, "not a readable video"), av.open(_url(path)) as container:
        stream = _video_stream(container, path)
        frame = _first_frame(container, stream, path)
        others = [s.type for s in container.streams if s.type not in ("audio",) and s.index != stream.index]
        return VideoInfo(width=frame.width, height=frame.height, frames=_estimate_frames(stream),
                         rotation=round(frame.rotation / 90) % 4 * 90, display_matrix=_display_matrix(frame),
                         alpha=any(c.is_alpha for c in frame.format.components), pix_fmt=frame.format.name,
                         colors=(frame.colorspace, frame.color_primaries, frame.color_trc),
                         audio=len(container.streams.audio), dropped=tuple(others))


def _decode_rgb(frame, width: int, height: int, alpha: bool) -> np.ndarray:
    """A decoded frame -> uint8 [height, width, 3] RGB, scaled (Lanczos, as photos are shrunk) and
    converted with the frame's own colour matrix and range; alpha composited on white."""
    scaled = (width, height) != (frame.width, frame.height)
    kwargs = {"width": width, "height": height, "interpolation": "LANCZOS" if scaled else None,
              "src_color_range": frame.color_range or None}
    if not alpha:
        return frame.to_ndarray(format="rgb24", **kwargs)
    rgba = frame.to_ndarray(format="rgba", **kwargs).astype(np.uint16)
    a = rgba[..., 3:]
    return ((rgba[..., :3] * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def _encoder(out, muxer: str, vin, info: VideoInfo, width: int, height: int):
    codec, options = ENCODERS.get(muxer, DEFAULT_ENCODER)
    vout = out.add_stream(codec, rate=vin.average_rate or vin.guessed_rate or FALLBACK_RATE, options=dict(options))
    vout.width, vout.height, vout.pix_fmt = width, height, PIX_FMT
    # The input's time base: each frame keeps its timestamp, which keeps a variable frame rate.
    vout.codec_context.time_base = vin.time_base or 1 / (vin.average_rate or FALLBACK_RATE)
    # The colour tags of the input, as the frames are converted back with the same matrix.
    ctx = vout.codec_context
    ctx.colorspace, ctx.color_primaries, ctx.color_trc = info.colors
    ctx.color_range = 1  # AVCOL_RANGE_MPEG: swscale writes limited range, whatever the input's
    if info.display_matrix is not None:
        vout.set_display_matrix(info.display_matrix)
    return vout


def _copy_sound(av, out, audio: list, dst: Path, muxer: str) -> dict:
    """Add a copy of each audio stream to ``out`` and write its header: {input index: output stream}.
    FastNSTError where the container cannot hold the sound as it is (WebM takes Opus and Vorbis only)."""
    try:
        copies = {a.index: out.add_stream_from_template(a) for a in audio}
        out.start_encoding()
    except (av.FFmpegError, ValueError) as e:
        codecs = ", ".join(a.codec_context.name for a in audio)
        raise FastNSTError(f"{dst}: {muxer} cannot hold the input's sound ({codecs}: {e}); .mkv holds most "
                           f"(the sound is copied, not re-encoded)") from None
    return copies


def check_sound_fits(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """FastNSTError if ``dst``'s container cannot hold ``src``'s sound as it is. Cheap (a header
    written to memory): callers run it on every input before stylizing any."""
    av = import_av(src)
    src, dst = Path(src), Path(dst)
    muxer = check_video_output(dst)
    with _readable(av, src, "not a readable video"), av.open(_url(src)) as inp:
        if inp.streams.audio:
            with av.open(io.BytesIO(), "w", format=muxer) as out:
                _copy_sound(av, out, list(inp.streams.audio), dst, muxer)


def transcode(src: str | os.PathLike, dst: str | os.PathLike, stylize: Callable[[np.ndarray], np.ndarray], *,
              size: tuple[int, int] | None = None, replace: bool = True,
              progress: FrameProgress | None = None) -> int:
    """Decode ``src``, pass each frame through ``stylize`` (uint8 [H, W, 3] upright, as a player shows
    it -> the same), encode into ``dst``, copy the audio; return the number of frames written.

    ``size``: (width, height) to decode at (default: the stored size). ``dst`` is written atomically
    (files.atomic_write; ``replace=False``: FileExistsError if it appeared meanwhile): an exception,
    Ctrl-C included, leaves no partial file.
    """
    av = import_av(src)
    src, dst = Path(src), Path(dst)
    muxer = check_video_output(dst)
    progress = progress or FrameProgress()
    info = probe_video(src)
    width, height = size or (info.width, info.height)
    even = (width - width % 2, height - height % 2)
    if min(even) < 2:
        raise FastNSTError(f"{src}: frames of {width}x{height} are too small to encode")
    if even != (width, height):
        progress.warn(f"{src}: {width}x{height} is odd, and {PIX_FMT} video needs even sizes: "
                      f"writing {even[0]}x{even[1]} (the last row/column left out)")
    if info.dropped:
        progress.warn(f"{src}: left out {', '.join(info.dropped)} stream(s); only video and audio are written")
    turns = info.rotation // 90  # np.rot90 turns counter-clockwise, as the display matrix does
    written = 0
    with _readable(av, src, f"stylizing into {dst} failed"), av.open(_url(src)) as inp:
        vin = _video_stream(inp, src)
        vin.thread_type = "AUTO"  # frame- and slice-threaded decoding
        audio = list(inp.streams.audio)
        with atomic_write(dst, replace=replace) as f, av.open(_url(f.name), "w", format=muxer) as out:
            vout = _encoder(out, muxer, vin, info, even[0], even[1])
            copies = _copy_sound(av, out, audio, dst, muxer)
            progress.start(src, info.frames)
            last_pts, step = None, _frame_step(vin)
            for packet in inp.demux(vin, *audio):
                if packet.stream.index in copies:
                    if packet.dts is not None:  # None: the demuxer's end-of-stream marker
                        packet.stream = copies[packet.stream.index]
                        out.mux(packet)
                    continue
                for frame in vin.decode(packet):  # the empty packet at the end flushes the decoder
                    rgb = _decode_rgb(frame, width, height, info.alpha)[:even[1], :even[0]]
                    styled = np.rot90(stylize(np.rot90(rgb, turns)), -turns)
                    new = av.VideoFrame.from_ndarray(np.ascontiguousarray(styled), format="rgb24")
                    new = new.reformat(format=PIX_FMT, dst_colorspace=info.colors[0])
                    pts = frame.pts if frame.pts is not None else (0 if last_pts is None else last_pts + step)
                    new.pts = pts if last_pts is None or pts > last_pts else last_pts + 1  # encoders need them rising
                    new.time_base, new.duration, last_pts = vout.codec_context.time_base, frame.duration, new.pts
                    out.mux(vout.encode(new))
                    written += 1
                    progress.frame()
            if not written:  # before atomic_write publishes the file
                raise FastNSTError(f"{src}: the video stream has no frames")
            out.mux(vout.encode(None))  # what the encoder still holds
    return written


def _frame_step(stream) -> int:
    """One frame's duration in the stream's time base: for frames without a timestamp."""
    rate, base = stream.average_rate or stream.guessed_rate or FALLBACK_RATE, stream.time_base
    return max(1, round(1 / (rate * base))) if base else 1


def stylize_video(model: Stylizer, src: str | os.PathLike, dst: str | os.PathLike,
                  options: StylizeOptions | None = None, *, existing: str = "refuse", budget: int | None = None,
                  progress: FrameProgress | None = None) -> bool:
    """Stylize video ``src`` into ``dst`` frame by frame (runtime.stylize_image, so ``max_size``,
    ``strength``, ``preserve_color`` and ``tile`` act per frame as on a photo); True if written
    (False: kept, existing="skip"). FastNSTError for a missing or unreadable input, an output we
    cannot write, a frame too big for ``budget``, or PyAV missing (the message names the extra).
    """
    # runtime re-exports this function, so its names are imported here, at call time.
    from fastnst.runtime import StylizeOptions, check_memory, check_new_output, scaled_size, stylize_image

    options = options or StylizeOptions()
    src, dst = Path(src), Path(dst)
    check_video_output(dst)
    check_new_output(dst, [src], existing)
    if existing == "skip" and dst.exists():
        return False
    info = probe_video(src)
    check_sound_fits(src, dst)
    width, height = scaled_size(info.width, info.height, options.max_size)
    check_memory(model, height, width, options, budget)  # before any frame, not at the first
    try:
        transcode(src, dst, lambda rgb: stylize_image(model, rgb, options, budget=budget), size=(width, height),
                  replace=existing == "replace", progress=progress)
    except FileExistsError:
        if existing == "skip":
            return False
        raise FastNSTError(f"{dst}: appeared while stylizing (another process?); kept it, and did not write ours "
                           f"(pass existing='replace' to replace it)") from None
    return True
