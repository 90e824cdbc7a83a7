"""``fastnst stylize`` when videos are among the inputs: each video streams through
fastnst.video frame by frame (a bar of frames, fps and ETA), the photos go through
runtime.stylize_files as in a photo-only run, and one summary line ends it.

The policy is the photos': an input named on the command line that is not a readable video is an
error before any work (PyAV missing included: the message names the extra); a video found in a
folder or by a glob is skipped with a warning; one that fails halfway is reported at the end.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from fastnst.cli.stylize import report_outcome
from fastnst.errors import FastNSTError
from fastnst.inputs import InputImage
from fastnst.runtime import (StylizeOptions, StylizeReport, Stylizer, check_memory, scaled_size, stylize_files,
                             stylize_video)
from fastnst.video import FrameProgress, check_sound_fits, probe_video
from fastnst.video_files import is_video


def has_videos(inputs: Sequence[InputImage]) -> bool:
    return any(is_video(i.path) for i in inputs)


class FrameBar(FrameProgress):
    """A tqdm bar per video (frames, frames/s, ETA); plain warnings where tqdm is not installed."""

    def __init__(self):
        try:
            from tqdm import tqdm
        except ImportError:
            tqdm = None
        self.tqdm, self.bar = tqdm, None

    def warn(self, message: str) -> None:
        write = self.tqdm.write if self.tqdm else print
        write(f"warning: {message}", file=sys.stderr)

    def start(self, path: Path, frames: int | None) -> None:
        if self.tqdm:
            self.bar = self.tqdm(total=frames, desc=path.name, unit="frame", dynamic_ncols=True)

    def frame(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = None


def stylize_with_videos(model: Stylizer, inputs: Sequence[InputImage], outputs: Sequence[Path],
                        options: StylizeOptions, *, existing: str, budget: int, protect: Sequence[Path],
                        output: Path, folder: bool) -> int:
    """The CLI's run over photos and videos; outputs are already planned and checked (check_new_output)."""
    from fastnst.cli.stylize import BarProgress  # that module dispatches here

    report, progress, bar = StylizeReport(), BarProgress(), FrameBar()
    images = [(i, o) for i, o in zip(inputs, outputs, strict=True) if not is_video(i.path)]
    videos = []
    for item, out in zip(inputs, outputs, strict=True):  # every video's header and size before any work
        if not is_video(item.path):
            continue
        if existing == "skip" and out.exists():
            report.kept.append(out)
            continue
        try:
            info = probe_video(item.path)
            check_sound_fits(item.path, out)
        except FastNSTError as e:
            if item.explicit:
                raise
            bar.warn(f"{e}; skipped")
            report.skipped.append((item.path, str(e)))
            continue
        width, height = scaled_size(info.width, info.height, options.max_size)
        check_memory(model, height, width, options, budget)
        videos.append((item, out))

    written_videos = []
    try:
        if images:
            stylize_files(model, [i for i, _ in images], [o for _, o in images], options, existing=existing,
                          budget=budget, protect=protect, progress=progress, report=report)
            progress.close()
        for item, out in videos:
            try:
                if stylize_video(model, item.path, out, options, existing=existing, budget=budget, progress=bar):
                    report.written.append(out)
                    written_videos.append(out)
                else:
                    report.kept.append(out)
            except FastNSTError as e:  # failed halfway (bad data mid-stream, the output appeared meanwhile)
                if not item.explicit:
                    bar.warn(f"{e}; skipped")
                    report.skipped.append((item.path, str(e)))
                else:
                    report.failed.append(str(e))
            finally:
                bar.close()
    except KeyboardInterrupt:
        written = len(report.written)
        raise KeyboardInterrupt(f"interrupted: wrote {written} of {report.total + len(videos)} file(s)"
                                + (f" to {output}" if written else "")
                                + ("; rerun with --skip-existing to do the rest" if folder else "")) from None
    finally:
        progress.close()
        bar.close()

    message = (f"wrote {len(report.written) - len(written_videos)} image(s) and " if images else "wrote ") \
        + f"{len(written_videos)} video(s)" + (f" to {output}" if report.written else "")
    return report_outcome(report, message, "readable images or videos", "files")
