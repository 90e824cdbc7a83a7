"""Video throughput: frames/s of runtime.stylize_video on generated 480p and 720p clips (decode,
stylize, encode, the sound copied), against the same frames stylized as separate images in memory
(runtime.stylize_image on decoded arrays); the difference is the video path's overhead.

    python -m bench.video                                  # the shipped mosaic .onnx, 60 frames
    python -m bench.video --model exported/wave.onnx --frames 30 --repeats 5

The clips are the bundled sample photo panned across the frame (H.264 CRF 18, 30 fps, AAC sound),
written to a temporary folder; their writing is not timed. Back-to-back runs of the same frames
differ by up to about 10% here, so each repeat times the images and then the video, and the table
gives the median overhead of the repeats with their range. The last column times the video path
with an identity in place of the net (decode, convert, encode, mux): what the path itself costs a
frame, free of that scatter. Wall time and this process's CPU time are both reported: on a machine
shared with other work, the CPU time is the steadier. Needs the [video] extra; torch-free.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from fastnst.runtime import StylizeOptions, open_model, stylize_image, stylize_video
from fastnst.video import transcode

REPO = Path(__file__).resolve().parents[1]
SIZES = {"480p": (854, 480), "720p": (1280, 720)}
RATE = 30


def write_clip(path: Path, size: tuple[int, int], frames: int) -> None:
    """The sample photo, 1.3x the frame, panned ~1 px per frame; H.264 CRF 18 with a 440 Hz AAC tone."""
    import av

    width, height = size
    photo = Image.open(REPO / "fastnst" / "assets" / "sample_photo.jpg").convert("RGB")
    scale = 1.3 * max(width / photo.width, height / photo.height)
    photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=RATE, options={"crf": "18"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = out.add_stream("aac", rate=44100)
        for i in range(frames):
            left = (photo.width - width) * i / max(1, frames - 1)
            picture = photo.transform(size, Image.Transform.AFFINE, (1, 0, left, 0, 1, (photo.height - height) / 2),
                                      Image.Resampling.BILINEAR)
            frame = av.VideoFrame.from_image(picture)
            frame.pts = i
            out.mux(video.encode(frame))
        t = np.arange(round(44100 * frames / RATE), dtype=np.float32) / 44100
        tone = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t))[None], format="fltp", layout="mono")
        tone.sample_rate, tone.pts = 44100, 0
        out.mux(sound.encode(tone))
        out.mux(sound.encode(None))
        out.mux(video.encode(None))


def decoded_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@dataclass
class Timing:
    frames: int
    wall: float  # seconds
    cpu: float  # CPU seconds of this process, all threads: what the work costs, even on a busy machine


def timed(fn, frames: int) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Timing(frames, time.perf_counter() - wall, time.process_time() - cpu)


def measure(model, clip: Path, out: Path, options: StylizeOptions, repeats: int) -> tuple[list, list, Timing]:
    """([as a video file -> file], [as images in memory -> arrays]) per repeat, and the video path
    with an identity for the net."""
    frames = decoded_frames(clip)
    stylize_image(model, frames[0], options)  # warm-up: onnxruntime sizes its buffers on the first run
    videos, images = [], []
    for _ in range(repeats):
        images.append(timed(lambda: [stylize_image(model, frame, options) for frame in frames], len(frames)))
        videos.append(timed(lambda: stylize_video(model, clip, out, options, existing="replace"), len(frames)))
    path_only = timed(lambda: transcode(clip, out, lambda rgb: rgb), len(frames))
    return videos, images, path_only


def overhead(videos: list[Timing], images: list[Timing], attr: str) -> str:
    """The median of the repeats' overheads (video / images - 1), and their range."""
    ratios = sorted(100 * (getattr(v, attr) / getattr(i, attr) - 1) for v, i in zip(videos, images))
    spread = f" ({ratios[0]:+.1f} to {ratios[-1]:+.1f})" if len(ratios) > 1 else ""
    return f"{statistics.median(ratios):+.1f}%{spread}"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "exported" / "mosaic.onnx", help="an exported .onnx")
    p.add_argument("--frames", type=int, default=60, help="frames per clip")
    p.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    p.add_argument("--repeats", type=int, default=3, choices=range(1, 101), metavar="N",
                   help="times each clip is run both ways")
    args = p.parse_args(argv)
    model = open_model(args.model)
    options = StylizeOptions()
    print(f"{platform.processor() or platform.machine()}, model {args.model.name}, {args.frames} frames per clip, "
          f"{args.repeats} repeats")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sizes:
            clip = Path(tmp) / f"{name}.mp4"
            write_clip(clip, SIZES[name], args.frames)
            videos, images, path_only = measure(model, clip, Path(tmp) / f"{name}_out.mp4", options, args.repeats)
            rows.append((name, videos, images, path_only))
            print(f"{name}: video {', '.join(f'{v.frames / v.wall:.2f}' for v in videos)} frames/s, "
                  f"images {', '.join(f'{i.frames / i.wall:.2f}' for i in images)}", flush=True)
    print("\n| clip | frames | video file -> file: frames/s | images in memory: frames/s | overhead: wall "
          "| overhead: CPU | the path alone (no net): ms a frame, % of the images' time |"
          "\n|---|---|---|---|---|---|---|")
    for name, videos, images, path_only in rows:
        video_wall, images_wall = (sum(t.wall for t in ts) for ts in (videos, images))
        frames = sum(t.frames for t in videos)
        print(f"| {name} | {videos[0].frames} x {len(videos)} | {frames / video_wall:.2f} | {frames / images_wall:.2f} "
              f"| {overhead(videos, images, 'wall')} | {overhead(videos, images, 'cpu')} "
              f"| {1000 * path_only.wall / path_only.frames:.1f}, "
              f"{100 * (path_only.wall / path_only.frames) / (images_wall / frames):.1f}% |")


if __name__ == "__main__":
    main()
