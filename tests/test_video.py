"""Videos (fastnst/video.py, the [video] extra): timing, rotation and sound kept, options per frame,
odd inputs as one line, no partial output, bounded memory, the CLI, and the light install's message.

Clips are generated here with PyAV (tests/video_clips.py), a few KB each. Without PyAV the tests
that need it skip (fail under CI=true, which installs the dev extra).
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, skip_unless_ci
from tiny_models import tiny_models, write_photo
from video_clips import audio_packets, read_frames, video_timing, write_clip

from fastnst.cli.stylize import stylize_main
from fastnst.errors import FastNSTError
from fastnst.inputs import output_name
from fastnst.runtime import FrameProgress, StylizeOptions, stylize_image, stylize_video
from fastnst.video_files import check_video_output


@pytest.fixture
def pyav():
    try:
        import av
    except ImportError:
        skip_unless_ci("PyAV (the [video] extra) is not installed")
    return av


class Invert:
    """A per-pixel stylizer, 1 - x, that records the shape of every batch it is given."""

    bytes_per_pixel, meta = 64, {}

    def __init__(self, fail_at: int | None = None, error: type[BaseException] = RuntimeError):
        self.shapes, self.fail_at, self.error = [], fail_at, error

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.shapes.append(batch.shape)
        if len(self.shapes) == self.fail_at:
            raise self.error("stopped mid-stream")
        return 1.0 - batch


class Warnings(FrameProgress):
    def __init__(self):
        self.messages = []

    def warn(self, message: str) -> None:
        self.messages.append(message)


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_timestamps_rate_rotation_and_the_sound_packets_are_kept(tmp_path, pyav):
    src = write_clip(tmp_path / "in.mp4", rotation=90)
    model = Invert()
    assert stylize_video(model, src, tmp_path / "out:1.mp4") is True  # a colon: not an FFmpeg protocol
    before, after = video_timing(src), video_timing(tmp_path / "out:1.mp4")
    assert after["frames"] == before["frames"] == 10 and after["rate"] == before["rate"] == 25
    assert after["rotation"] == 90 and after["size"] == (64, 48)
    assert after["pts"] == pytest.approx(before["pts"]) and after["durations"] == pytest.approx(before["durations"])
    sound = audio_packets(src)
    assert sound and audio_packets(tmp_path / "out:1.mp4") == sound, "the sound is remuxed byte for byte"
    # The net sees the picture upright, as a player shows it: 48 wide, 64 high.
    assert {s for s in model.shapes} == {(1, 3, 64, 48)}


def test_every_frame_is_the_per_image_path_on_that_frame_with_the_options(tmp_path, pyav):
    src = write_clip(tmp_path / "in.mp4", audio=False)
    for i, options in enumerate([StylizeOptions(), StylizeOptions(strength=0.4, preserve_color=True)]):
        dst = tmp_path / f"out{i}.mkv"
        stylize_video(Invert(), src, dst, options)
        expected = [stylize_image(Invert(), frame, options) for frame in read_frames(src)]
        got = read_frames(dst)
        assert len(got) == len(expected) == 10
        assert max(mean_diff(a, b) for a, b in zip(got, expected)) < 3, "only the encoder's loss"
    stylize_video(Invert(), src, tmp_path / "small.mp4", StylizeOptions(max_size=32))
    assert video_timing(tmp_path / "small.mp4")["size"] == (32, 24)


def test_variable_frame_rate_keeps_each_timestamp(tmp_path, pyav):
    pts = [0, 40, 80, 200, 240, 400, 440, 480, 600, 640]
    src = write_clip(tmp_path / "vfr.mp4", pts=pts, time_base=Fraction(1, 1000))
    stylize_video(Invert(), src, tmp_path / "out.mp4")
    got = video_timing(tmp_path / "out.mp4")["pts"]
    assert got == pytest.approx([p / 1000 for p in pts], abs=1e-3)


def test_an_odd_size_loses_its_last_row_and_column_and_says_so(tmp_path, pyav):
    src = write_clip(tmp_path / "odd.mp4", width=65, height=49, pix_fmt="yuv444p")
    progress = Warnings()
    stylize_video(Invert(), src, tmp_path / "out.mp4", progress=progress)
    assert video_timing(tmp_path / "out.mp4")["size"] == (64, 48)
    assert any("65x49 is odd" in m and "64x48" in m for m in progress.messages), progress.messages
    expected = 255 - read_frames(src)[0][:48, :64]
    assert mean_diff(read_frames(tmp_path / "out.mp4")[0], expected) < 3


def test_10_bit_and_alpha_inputs_give_a_correct_8_bit_result(tmp_path, pyav):
    src = write_clip(tmp_path / "deep.mp4", pix_fmt="yuv420p10le")
    stylize_video(Invert(), src, tmp_path / "deep_out.mp4")
    assert mean_diff(read_frames(tmp_path / "deep_out.mp4")[3], 255 - read_frames(src)[3]) < 3

    src = write_clip(tmp_path / "alpha.mov", codec="qtrle", pix_fmt="argb", audio=False, alpha_left_half=True)
    stylize_video(Invert(), src, tmp_path / "alpha_out.mov")
    out = read_frames(tmp_path / "alpha_out.mov")[0]
    assert out[:, :28].mean() < 4, "transparent pixels are composited on white, as for photos (inverted: black)"
    assert mean_diff(out[:, 36:], 255 - read_frames(src)[0][:, 36:]) < 4


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_exception_mid_stream_leaves_no_output_and_no_temp_file(tmp_path, pyav, error):
    src = write_clip(tmp_path / "in.mp4")
    with pytest.raises(error):
        stylize_video(Invert(fail_at=5, error=error), src, tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_memory_stays_flat_over_the_clip_length(tmp_path, pyav):
    """Python-side allocations (the frames' arrays) over 8 and over 48 frames of 160x120."""
    peaks = []
    for frames in (8, 48):
        src = write_clip(tmp_path / f"in{frames}.mp4", width=160, height=120, frames=frames, audio=False)
        tracemalloc.start()
        stylize_video(Invert(), src, tmp_path / f"out{frames}.mp4")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    frame_bytes = 160 * 120 * 3
    assert peaks[1] < peaks[0] + 8 * frame_bytes, f"peaks {peaks}: frames are being kept"


def write_odd_files(folder: Path, av) -> dict[str, Path]:
    """Inputs that are no usable video: sound only, a video stream without frames, garbage."""
    files = {"sound only": folder / "sound.mp4", "no frames": folder / "empty.mkv", "garbage": folder / "junk.mov"}
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("sound only", "no frames"):  # MP4 drops a track without packets; Matroska keeps it
        with av.open(str(files[kind]), "w") as out:
            if kind == "no frames":
                video = out.add_stream("libx264", rate=25)
                video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
            sound = out.add_stream("aac", rate=44100)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 4096), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, 0
            out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    files["garbage"].write_bytes(os.urandom(3000))
    return files


@pytest.mark.parametrize("kind,fragment", [("sound only", "no video stream"), ("no frames", "no frames"),
                                           ("garbage", "not a readable video")])
def test_unusable_inputs_are_one_line_errors(tmp_path, capsys, pyav, kind, fragment):
    src = write_odd_files(tmp_path / "in", pyav)[kind]
    with pytest.raises(FastNSTError, match=fragment):
        stylize_video(Invert(), src, tmp_path / "out.mp4")
    code = stylize_main([str(tiny_models().onnx), str(src), "-o", str(tmp_path / "out.mp4")])
    assert_one_line_error(code, capsys.readouterr().err, fragment, src.name)
    assert not (tmp_path / "out.mp4").exists()


def test_a_container_that_cannot_hold_the_sound_says_so_before_any_frame(tmp_path, capsys, pyav):
    src = write_clip(tmp_path / "in.mp4")
    model = Invert()
    with pytest.raises(FastNSTError, match=r"webm cannot hold the input's sound \(aac.*\.mkv"):
        stylize_video(model, src, tmp_path / "out.webm")
    assert model.shapes == [] and not (tmp_path / "out.webm").exists()
    code = stylize_main([str(tiny_models().onnx), str(src), "-o", str(tmp_path / "out.webm")])
    captured = capsys.readouterr()
    assert_one_line_error(code, captured.err, "webm cannot hold")
    assert captured.out == "", "said before any work, not after a run that wrote nothing"


def test_the_cli_stylizes_a_clip_and_a_folder_of_photos_and_videos(tmp_path, capsys, pyav):
    src = write_clip(tmp_path / "clip.mp4")
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(tmp_path / "styled.mkv"),
                               "--max-size", "32"]) == 0
    assert "wrote 1 video(s)" in capsys.readouterr().out
    assert video_timing(tmp_path / "styled.mkv")["size"] == (32, 24)

    folder = tmp_path / "mixed"
    write_photo(folder / "a.png", 30, 40)
    write_clip(folder / "b.mp4")
    write_clip(folder / "c.avi", codec="mpeg4", audio=False)
    (folder / "notes.txt").write_text("not a picture")
    assert stylize_main([str(tiny_models().onnx), str(folder), "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "wrote 1 image(s) and 2 video(s)" in captured.out and "skipped 1 file" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.mp4", "c.mp4"]
    assert video_timing(tmp_path / "out" / "c.mp4")["frames"] == 10


def test_sigterm_mid_video_leaves_no_partial_file(tmp_path, capsys, monkeypatch, pyav):
    import fastnst.runtime

    src = write_clip(tmp_path / "in.mp4")
    real, calls = fastnst.runtime.stylize_image, []

    def sigterm_at_third_frame(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    def unhandled(signum, frame):
        raise RuntimeError("SIGTERM was not handled")

    monkeypatch.setattr(fastnst.runtime, "stylize_image", sigterm_at_third_frame)
    old = signal.signal(signal.SIGTERM, unhandled)
    try:
        code = stylize_main([str(tiny_models().onnx), str(src), "-o", str(tmp_path / "out" / "o.mp4")])
    finally:
        signal.signal(signal.SIGTERM, old)
    err = capsys.readouterr().err
    assert code == 130 and "interrupted: wrote 0 of 1 file(s)" in err and "Traceback" not in err, err
    assert list((tmp_path / "out").iterdir()) == [], "no output, no hidden temp file"


def test_without_pyav_a_video_gets_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 100)  # never opened: the extra is checked first
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    with pytest.raises(FastNSTError, match=r'pip install "fastnst\[video\]"'):
        stylize_video(Invert(), tmp_path / "clip.mp4", tmp_path / "out.mp4")
    code = stylize_main([str(tiny_models().onnx), str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "o.mp4")])
    assert_one_line_error(code, capsys.readouterr().err, 'pip install "fastnst[video]"', "clip.mp4")

    # In a folder, a video is skipped with that line as a warning and the photos are still done.
    write_photo(tmp_path / "folder" / "a.png", 20, 20)
    (tmp_path / "folder" / "clip.mp4").write_bytes(b"\x00" * 100)
    assert stylize_main([str(tiny_models().onnx), str(tmp_path / "folder"), "-o", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "fastnst[video]" in captured.err and "wrote 1 image(s) and 0 video(s)" in captured.out
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["a.png"]


def test_video_outputs_are_named_by_what_we_can_write(tmp_path, capsys):
    assert output_name(Path("a/clip.MOV")) == "clip.MOV" and output_name(Path("clip.avi")) == "clip.mp4"
    with pytest.raises(FastNSTError, match="written as"):
        check_video_output(tmp_path / "out.gif")
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 100)
    code = stylize_main([str(tiny_models().onnx), str(tmp_path / "clip.mp4"), "-o", str(tmp_path / "o.png")])
    assert_one_line_error(code, capsys.readouterr().err, "o.png", "written as .mp4")
