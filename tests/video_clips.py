"""Tiny video files written with PyAV for the video tests: moving content, optional AAC sound,
rotation, odd sizes, 10-bit, alpha, irregular timestamps. A few KB each, made in milliseconds."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np


def picture(index: int, width: int, height: int) -> np.ndarray:
    """uint8 [H, W, 3]: a gradient with a square moving one pixel per frame (the frames differ)."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack([xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1),
                      np.full_like(xx, 128)], axis=-1).astype(np.uint8)
    x0, y0 = (3 + index) % max(1, width - 8), height // 3
    image[y0:y0 + 8, x0:x0 + 8] = (250, 250, 40)
    return image


def write_clip(path: Path, *, width: int = 64, height: int = 48, frames: int = 10, rate: int = 25,
               audio: bool = True, rotation: int = 0, codec: str = "libx264", pix_fmt: str = "yuv420p",
               pts: Sequence[int] | None = None, time_base: Fraction | None = None,
               alpha_left_half: bool = False) -> Path:
    """Write a clip; ``pts`` (in ``time_base``, default 1/rate) gives each frame's timestamp (a VFR clip).
    ``alpha_left_half``: the left half fully transparent (needs a codec and pix_fmt with alpha)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            video.codec_context.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=44100)
            sound.layout = "mono"
        for i in range(frames):
            rgb = picture(i, width, height)
            if alpha_left_half:
                alpha = np.full((height, width, 1), 255, np.uint8)
                alpha[:, : width // 2] = 0
                frame = av.VideoFrame.from_ndarray(np.concatenate([rgb, alpha], axis=-1), format="rgba")
            else:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i if pts is None else pts[i]
            out.mux(video.encode(frame))
        if sound is not None:
            seconds = frames / rate
            t = np.arange(round(44100 * seconds), dtype=np.float32) / 44100
            samples = (0.2 * np.sin(2 * np.pi * 440 * t))[None]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
        out.mux(video.encode(None))
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    """Every frame as uint8 [H, W, 3] RGB, as stored (not rotated)."""
    import av

    with av.open(f"file:{path}") as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def video_timing(path: Path) -> dict:
    """Frame count, rate, each frame's pts and duration in seconds, the rotation, the size."""
    import av

    with av.open(f"file:{path}") as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        base = stream.time_base
        return {"frames": len(frames), "rate": stream.average_rate, "rotation": frames[0].rotation,
                "size": (frames[0].width, frames[0].height),
                "pts": [float(f.pts * base) for f in frames], "durations": [float(f.duration * base) for f in frames]}


def audio_packets(path: Path) -> list[bytes]:
    """The first audio stream's packets, as bytes (for a remux they must be identical)."""
    import av

    with av.open(f"file:{path}") as container:
        if not container.streams.audio:
            return []
        return [bytes(p) for p in container.demux(audio=0) if p.size]
