"""scripts/stylize.py in-process: outputs, skipping and errors, overwrite rules, memory behaviour."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error
from PIL import Image
from tiny_models import tiny_models, write_photo

from fastnst.cli.stylize import stylize_main
from fastnst.image import image_size

REPO = Path(__file__).resolve().parents[1]


def _one_line_error(err: str) -> str:
    """The single ``error: ...`` line in stderr (a progress bar may be there too, nothing else)."""
    return one_line_error(err, others=("stylize:",))


@pytest.mark.parametrize("which", ["onnx", "pt", "ckpt"])
def test_folder_of_images_with_every_model_kind(tmp_path, capsys, which):
    src, out = tmp_path / "photos", tmp_path / "out"
    write_photo(src / "a.png", 40, 60)
    write_photo(src / "b.jpg", 33, 17, seed=1)
    assert stylize_main([str(getattr(tiny_models(), which)), str(src), "-o", str(out), "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg"]
    assert Image.open(out / "b.jpg").size == (17, 33)
    assert "wrote 2 image(s)" in capsys.readouterr().out


def test_onnx_and_torch_models_give_the_same_image(tmp_path):
    src = tmp_path / "in.png"
    write_photo(src, 50, 70)
    models = tiny_models()
    for kind in ("onnx", "pt"):
        argv = [str(getattr(models, kind)), str(src), "-o", str(tmp_path / f"{kind}.png"), "--precision", "fp32"]
        assert stylize_main(argv) == 0
    a, b = (np.asarray(Image.open(tmp_path / f"{k}.png"), dtype=np.int16) for k in ("onnx", "pt"))
    assert np.abs(a - b).max() <= 1


def test_bf16_is_close_to_fp32(tmp_path):
    src = tmp_path / "in.png"
    write_photo(src, 50, 70)
    for precision in ("fp32", "bf16"):
        argv = [str(tiny_models().pt), str(src), "-o", str(tmp_path / f"{precision}.png"), "--precision", precision]
        assert stylize_main(argv) == 0
    a, b = (np.asarray(Image.open(tmp_path / f"{k}.png"), dtype=np.int16) for k in ("fp32", "bf16"))
    assert 0 < np.abs(a - b).mean() < 3  # a different computation, visually the same image


def test_bf16_with_an_onnx_model_is_a_clear_error(tmp_path, capsys):
    write_photo(tmp_path / "in.png", 20, 20)
    argv = [str(tiny_models().onnx), str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png"), "--precision", "bf16"]
    assert stylize_main(argv) == 2
    assert "needs a PyTorch model" in _one_line_error(capsys.readouterr().err)


def test_non_images_in_a_folder_are_skipped_with_a_warning_and_counted(tmp_path, capsys):
    src, out = tmp_path / "photos", tmp_path / "out"
    write_photo(src / "a.png", 30, 30)
    (src / "readme.txt").write_text("hello")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and all("skipped" in w for w in warnings)
    assert "skipped 2 file(s)" in captured.out
    assert [p.name for p in out.iterdir()] == ["a.png"]


def test_a_named_bad_file_is_an_error_before_any_work(tmp_path, capsys):
    good, bad = tmp_path / "good.png", tmp_path / "bad.jpg"
    write_photo(good, 30, 30)
    bad.write_text("not an image")
    out = tmp_path / "out"
    assert stylize_main([str(tiny_models().onnx), str(good), str(bad), "-o", str(out)]) == 2
    assert "bad.jpg: not an image" in _one_line_error(capsys.readouterr().err)
    assert not out.exists()


def test_a_named_file_that_fails_to_decode_is_an_error_after_the_others(tmp_path, capsys):
    good, truncated = tmp_path / "good.png", tmp_path / "truncated.png"
    write_photo(good, 64, 64)
    data = good.read_bytes()
    write_photo(truncated, 64, 64, seed=2)
    truncated.write_bytes(truncated.read_bytes()[: len(data) // 2])  # header fine, pixel data cut short
    out = tmp_path / "out"
    assert stylize_main([str(tiny_models().onnx), str(truncated), str(good), "-o", str(out)]) == 2
    assert "truncated.png: cannot read image" in _one_line_error(capsys.readouterr().err)
    assert [p.name for p in out.iterdir()] == ["good.png"]


def test_missing_input_is_an_error(tmp_path, capsys):
    assert stylize_main([str(tiny_models().onnx), str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o.png")]) == 2
    assert "no such file" in _one_line_error(capsys.readouterr().err)


def test_glob_inputs(tmp_path, capsys):
    for name in ("x1.png", "x2.png", "y.png"):
        write_photo(tmp_path / "in" / name, 20, 20)
    assert stylize_main([str(tiny_models().onnx), str(tmp_path / "in" / "x*.png"), "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x1.png", "x2.png"]
    assert stylize_main([str(tiny_models().onnx), str(tmp_path / "in" / "z*.png"), "-o", str(tmp_path / "out")]) == 2
    assert "matches no files" in capsys.readouterr().err


def test_never_overwrites_an_input(tmp_path, capsys):
    src, other = tmp_path / "photo.png", tmp_path / "other.png"
    pixels = write_photo(src, 30, 30)
    write_photo(other, 20, 20)
    for inputs, out in (([src], src), ([src, other], tmp_path)):  # the file itself; their own folder
        assert stylize_main([str(tiny_models().onnx), *map(str, inputs), "-o", str(out), "--overwrite"]) == 2
        assert "overwrite an input" in _one_line_error(capsys.readouterr().err)
    assert np.array_equal(np.asarray(Image.open(src)), pixels)


def test_existing_output_is_replaced_only_with_overwrite(tmp_path, capsys):
    src, out = tmp_path / "photo.png", tmp_path / "styled.png"
    write_photo(src, 30, 30)
    out.write_bytes(b"keep me")
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out)]) == 2
    assert "--overwrite" in _one_line_error(capsys.readouterr().err)
    assert out.read_bytes() == b"keep me"
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out), "--overwrite"]) == 0
    assert Image.open(out).size == (30, 30)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind


def test_strength_zero_writes_the_input_pixels(tmp_path):
    src, out = tmp_path / "photo.png", tmp_path / "out.png"
    pixels = write_photo(src, 41, 37)
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out), "--strength", "0"]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), pixels)


def test_max_size_shrinks_and_preserve_color_runs(tmp_path):
    src, out = tmp_path / "photo.png", tmp_path / "out.png"
    write_photo(src, 100, 150)
    argv = [str(tiny_models().onnx), str(src), "-o", str(out), "--max-size", "60", "--preserve-color"]
    assert stylize_main(argv) == 0
    assert Image.open(out).size == (60, 40)


@pytest.mark.parametrize("kind", ["truncated-onnx", "foreign-onnx", "corrupt-ckpt", "missing"])
def test_bad_model_is_one_line_error_before_any_work(tmp_path, capsys, kind):
    models = tiny_models()
    src = tmp_path / "photo.png"
    write_photo(src, 30, 30)
    if kind == "truncated-onnx":
        model = tmp_path / "m.onnx"
        model.write_bytes(models.onnx.read_bytes()[:5000])
    elif kind == "foreign-onnx":  # a valid ONNX file that is not a fastnst export
        import onnx

        model = tmp_path / "m.onnx"
        x = onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, 224, 224])
        y = onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1, 3, 224, 224])
        graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["input"], ["logits"])], "g", [x], [y])
        onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=8), model)
    elif kind == "corrupt-ckpt":
        model = tmp_path / "last.ckpt"
        model.write_bytes(models.ckpt.read_bytes()[:3000])
    else:
        model = tmp_path / "nothing.onnx"
    out = tmp_path / "out.png"
    assert stylize_main([str(model), str(src), "-o", str(out)]) == 2
    assert str(model) in _one_line_error(capsys.readouterr().err)
    assert not out.exists()


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    src = tmp_path / "photo.png"
    write_photo(src, 30, 30)
    for option in (["--strength", "1.5"], ["--tile", "8"], ["--max-memory", "-1"]):
        assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(tmp_path / "o.png"), *option]) == 2
        _one_line_error(capsys.readouterr().err)
    other = tmp_path / "other.png"
    write_photo(other, 20, 20)
    assert stylize_main([str(tiny_models().onnx), str(src), str(other), "-o", str(tmp_path / "o.png")]) == 2
    assert "need an output folder" in _one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "o.png").exists()


def test_huge_image_without_tile_fails_early_and_suggests_one(tmp_path, capsys):
    """Scaled down: a 'memory' of 20 MiB makes a 400x300 photo too big to run whole."""
    small, big = tmp_path / "in" / "a_small.png", tmp_path / "in" / "b_big.png"
    write_photo(small, 30, 30)
    write_photo(big, 300, 400)
    out = tmp_path / "out"
    assert stylize_main([str(tiny_models().onnx), str(tmp_path / "in"), "-o", str(out), "--max-memory", "0.02"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "--tile" in line
    assert not out.exists()  # early: not even the small image was processed
    tile = line.rsplit("--tile ", 1)[1].split()[0]
    argv = [str(tiny_models().onnx), str(tmp_path / "in"), "-o", str(out), "--max-memory", "0.02", "--tile", tile]
    assert stylize_main(argv) == 0
    assert Image.open(out / "b_big.png").size == (400, 300)


def test_a_1x100000_image_is_refused_when_its_padded_pass_does_not_fit(tmp_path, capsys):
    """It runs as 16x100000: ~680 MiB with the tiny model, though 1x100000 px would be ~43 MiB."""
    src = tmp_path / "thin.png"
    Image.new("RGB", (100000, 1), (120, 60, 30)).save(src)
    out = tmp_path / "out.png"
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out), "--max-memory", "0.1"]) == 2
    assert "run it in tiles: --tile" in _one_line_error(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("name, side", [("out.webp", 16384), ("out.jpg", 65501)])
def test_an_image_too_large_for_the_output_format_is_refused_before_the_pass(tmp_path, capsys, monkeypatch, name,
                                                                            side):
    def no_pass(*args, **kwargs):
        raise AssertionError("stylized before the output format's size limit was checked")

    monkeypatch.setattr("fastnst.runtime.stylize_image", no_pass)
    src = tmp_path / "wide.png"
    Image.new("RGB", (side, 1)).save(src)
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(tmp_path / name)]) == 2
    assert f"at most {side - 1} px on a side" in _one_line_error(capsys.readouterr().err)
    monkeypatch.undo()
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(tmp_path / name), "--max-size", "1000"]) == 0
    assert image_size(tmp_path / name) == (1000, 1)


def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path):
    """Results are written and dropped one at a time (numpy allocations are traced by tracemalloc)."""
    side = 160
    result_bytes = side * side * 3
    model = str(tiny_models().onnx)  # built (exported) before tracing starts

    def peak_for(n: int) -> int:
        src = tmp_path / f"in{n}"
        for i in range(n):
            write_photo(src / f"{i:03d}.png", side, side, seed=i)
        tracemalloc.start()
        try:
            assert stylize_main([model, str(src), "-o", str(tmp_path / f"out{n}")]) == 0
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak_for(1)  # warm-up: first-time imports and caches are not per-image costs
    few, many = peak_for(2), peak_for(14)
    assert many - few < 0.5 * 12 * result_bytes  # growth per extra image: less than half an image


@pytest.mark.slow
def test_12000x9000_photo_stylizes_in_tiles_with_bounded_memory(tmp_path):
    """The issue's acceptance case. Runs the real script in a subprocess to measure its peak RSS."""
    src, out = tmp_path / "huge.jpg", tmp_path / "huge_styled.jpg"
    h, w = 9000, 12000
    yy = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    xx = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    pixels = np.stack([np.broadcast_to(xx, (h, w)), np.broadcast_to(yy, (h, w)), (xx + yy) / 2], -1).astype(np.uint8)
    Image.fromarray(pixels).save(src, quality=90)
    del pixels, yy, xx
    model = tiny_models().onnx
    start = time.perf_counter()
    script = str(REPO / "scripts" / "stylize.py")
    argv = [sys.executable, script, str(model), str(src), "-o", str(out), "--tile", "1024"]
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-2000:]
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # Linux: KiB
    print(f"12000x9000 --tile 1024: {seconds:.0f}s, peak RSS {peak_gib:.2f} GiB")
    assert image_size(out) == (w, h)
    assert peak_gib < 4  # the image alone is 0.3 GB as uint8; a whole-image float pass would be ~100 GB
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.parametrize("name, legacy", [("evil.ckpt", False), ("transformer.pt", False), ("old.ckpt", True)])
def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path, capsys, evil_checkpoint,
                                                                        name, legacy):
    model = tmp_path / name
    marker = evil_checkpoint(model, legacy=legacy)
    write_photo(tmp_path / "in.png", 20, 20)
    assert stylize_main([str(model), str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png")]) == 2
    assert not marker.exists(), "loading the model file ran code from it"
    assert "refused" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "out.png").exists()


def test_a_model_with_nan_weights_is_refused(tmp_path, capsys):
    from fastnst.checkpoint import save_transformer
    from tiny_models import META, make_net

    net = make_net()
    with torch.no_grad():
        net.decoder[-1][1].weight[0, 0, 0, 0] = float("nan")
    save_transformer(net, tmp_path / "nan.pt", META)
    write_photo(tmp_path / "in.png", 20, 20)
    assert stylize_main([str(tmp_path / "nan.pt"), str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png")]) == 2
    assert "not finite" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("output, message", [("", "empty"), ("-", "standard output"), ("result.", "ends with a dot")])
def test_output_paths_that_name_nothing_are_refused(tmp_path, capsys, monkeypatch, output, message):
    """Path("") is ".", and "-" and "result." have no extension: each used to become a folder silently."""
    monkeypatch.chdir(tmp_path)
    write_photo(tmp_path / "in.png", 20, 20)
    assert stylize_main([str(tiny_models().onnx), "in.png", "-o", output]) == 2
    assert message in one_line_error(capsys.readouterr().err)
    assert [p.name for p in tmp_path.iterdir()] == ["in.png"]


def test_an_output_format_pillow_cannot_write_fails_before_the_model_is_loaded(tmp_path, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output format was checked")

    monkeypatch.setattr("fastnst.cli.stylize.open_model", no_model)
    write_photo(tmp_path / "in.png", 20, 20)
    for name, message in (("out.xbm", "cannot write RGB"), ("out.gif", "256 colours"), ("out.ico", "icon")):
        assert stylize_main([str(tiny_models().onnx), str(tmp_path / "in.png"), "-o", str(tmp_path / name)]) == 2
        assert message in one_line_error(capsys.readouterr().err)
    assert [p.name for p in tmp_path.iterdir()] == ["in.png"]


def test_a_gif_in_a_folder_is_written_as_png(tmp_path):
    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    Image.fromarray((np.random.default_rng(0).random((20, 30, 3)) * 255).astype(np.uint8)).save(src / "anim.gif")
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out)]) == 0
    assert [p.name for p in out.iterdir()] == ["anim.png"]


def test_a_folder_of_only_subfolders_says_so(tmp_path, capsys):
    write_photo(tmp_path / "photos" / "2024" / "a.png", 20, 20)
    assert stylize_main([str(tiny_models().onnx), str(tmp_path / "photos"), "-o", str(tmp_path / "out")]) == 2
    assert "only subfolders" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_a_255_byte_file_name_is_stylized_into_a_folder(tmp_path, capsys):
    """Its hidden temp file's name would be 14 bytes longer than the file system allows."""
    name = "p" * 251 + ".png"
    write_photo(tmp_path / "in" / name, 20, 20)
    write_photo(tmp_path / "in" / "short.png", 20, 20)
    assert stylize_main([str(tiny_models().onnx), str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([name, "short.png"])


@pytest.mark.parametrize("option", [["--device", "banana"], ["--device", "cuda:7"], ["--max-memory", "nan"],
                                    ["--max-memory", "inf"], ["--max-memory", "0.00001"], ["--max-memory", "0"],
                                    ["--strength", "nan"], ["--overwrite", "--skip-existing"]])
def test_more_bad_options_are_one_line_errors_and_write_nothing(tmp_path, capsys, option):
    write_photo(tmp_path / "in.png", 20, 20)
    argv = [str(tiny_models().pt), str(tmp_path / "in.png"), "-o", str(tmp_path / "out" / "o.png"), *option]
    assert stylize_main(argv) == 2
    line = one_line_error(capsys.readouterr().err)
    assert option[0] in line or "strength" in line
    assert not (tmp_path / "out").exists()


def test_sigterm_mid_folder_removes_the_temp_file_and_skip_existing_finishes(tmp_path, capsys, monkeypatch):
    """SIGTERM (a real signal, to this process) arrives while the 2nd of 4 images is being written."""
    src, out = tmp_path / "photos", tmp_path / "out"
    for i in range(4):
        write_photo(src / f"{i}.png", 20, 20, seed=i)
    real_save = Image.Image.save
    calls = []

    def save_then_sigterm(self, fp, *args, **kwargs):
        calls.append(fp)
        real_save(self, fp, *args, **kwargs)  # the temp file is complete on disk, not yet renamed
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    def unhandled(signum, frame):  # what the default action (death) stands for inside pytest
        raise RuntimeError("SIGTERM was not handled")

    monkeypatch.setattr(Image.Image, "save", save_then_sigterm)
    old = signal.signal(signal.SIGTERM, unhandled)
    try:
        code = stylize_main([str(tiny_models().onnx), str(src), "-o", str(out)])
    finally:
        signal.signal(signal.SIGTERM, old)
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 130, err
    assert "wrote 1 of 4 image(s)" in err and "--skip-existing" in err and "Traceback" not in err
    assert [p.name for p in out.iterdir()] == ["0.png"], "no hidden temp file, nothing half-written"
    first = (out / "0.png").stat().st_mtime_ns

    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out), "--skip-existing"]) == 0
    assert "wrote 3 image(s)" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png", "2.png", "3.png"]
    assert (out / "0.png").stat().st_mtime_ns == first, "an existing output is left alone"


def endless_model(path: Path) -> Path:
    """A model with the fastnst contract that never finishes: a Loop of 2^62 iterations around the image."""
    import onnx
    from onnx import TensorProto
    from onnx.helper import make_graph, make_model, make_node, make_opsetid, make_tensor, make_tensor_value_info

    body = make_graph([make_node("Identity", ["cond_in"], ["cond_out"]), make_node("Identity", ["x_in"], ["x_out"])],
                      "body", [make_tensor_value_info("i", TensorProto.INT64, []),
                               make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                               make_tensor_value_info("x_in", TensorProto.FLOAT, None)],
                      [make_tensor_value_info("cond_out", TensorProto.BOOL, []),
                       make_tensor_value_info("x_out", TensorProto.FLOAT, None)])
    graph = make_graph([make_node("Loop", ["n", "cond", "image"], ["stylized"], body=body)], "endless",
                       [make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                       [make_tensor_value_info("stylized", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                       [make_tensor("n", TensorProto.INT64, [], [2**62]), make_tensor("cond", TensorProto.BOOL, [], [True])])
    model = make_model(graph, opset_imports=[make_opsetid("", 18)], ir_version=8)
    onnx.helper.set_model_props(model, {"fastnst.format": "fastnst-transformer/1"})
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_a_run_inside_onnxruntime_within_seconds(tmp_path, signum):
    """The model never finishes; the signal lands once the run has started (a marker file says so)."""
    model, src, out, started = endless_model(tmp_path / "endless.onnx"), tmp_path / "in.png", tmp_path / "out.png", \
        tmp_path / "started"
    write_photo(src, 20, 20)
    code = ("import sys; from pathlib import Path; import fastnst.onnx_stylizer as s\n"
            "run = s.OnnxStylizer.__call__\n"
            f"s.OnnxStylizer.__call__ = lambda *a: (Path({str(started)!r}).touch(), run(*a))[1]\n"
            "from fastnst.cli import main\n"
            f"sys.exit(main(['stylize', {str(model)!r}, {str(src)!r}, '-o', {str(out)!r}]))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), process.communicate(timeout=10)
        time.sleep(0.5)  # well inside session.run now
        process.send_signal(signum)
        sent = time.monotonic()
        _, err = process.communicate(timeout=30)
        took = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert took < 5, f"took {took:.1f}s to honour the signal"  # a generous bound: ~0.1 s here
    assert err.strip() == "interrupted: wrote 0 of 1 image(s)", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["endless.onnx", "in.png", "started"]  # no output


@pytest.mark.parametrize("kind", ["file", "dangling symlink", "read-only"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_the_model_is_loaded(tmp_path, capsys, monkeypatch,
                                                                                     kind):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output folder was checked")

    blocker = tmp_path / "blocker"
    if kind == "file":
        blocker.write_text("a file where a folder should be")
    elif kind == "dangling symlink":
        blocker.symlink_to(tmp_path / "gone")
    else:
        blocker.mkdir()
        blocker.chmod(0o555)
        if os.access(blocker, os.W_OK):
            pytest.skip("root writes into a mode 555 folder: chmod cannot make it read-only here")
    write_photo(tmp_path / "in.png", 20, 20)
    monkeypatch.setattr("fastnst.cli.stylize.open_model", no_model)
    for out in (blocker / "out.png", blocker / "sub" / "out.png", blocker / "folder/"):
        assert stylize_main([str(tiny_models().onnx), str(tmp_path / "in.png"), "-o", str(out)]) == 2
        line = one_line_error(capsys.readouterr().err)
        assert f"cannot write it: {blocker}" in line and "appeared" not in line, line
    blocker.chmod(0o755) if kind == "read-only" else None


def test_an_output_written_by_another_process_meanwhile_is_kept(tmp_path, capsys, monkeypatch):
    """The existence check passes, then another writer creates the file before our rename."""
    import fastnst.runtime

    src, out = tmp_path / "in.png", tmp_path / "out.png"
    write_photo(src, 20, 20)
    real = fastnst.runtime.stylize_image

    def other_writer_too(*args, **kwargs):
        out.write_bytes(b"the other process's result")
        return real(*args, **kwargs)

    monkeypatch.setattr(fastnst.runtime, "stylize_image", other_writer_too)
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out)]) == 2
    assert "appeared" in one_line_error(capsys.readouterr().err)
    assert out.read_bytes() == b"the other process's result"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    out.unlink()
    assert stylize_main([str(tiny_models().onnx), str(src), "-o", str(out), "--overwrite"]) == 0
    assert Image.open(out).size == (20, 20)


def test_an_output_name_longer_than_the_file_system_takes_fails_before_the_model_is_loaded(tmp_path, capsys,
                                                                                         monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the output name was checked")

    monkeypatch.setattr("fastnst.cli.stylize.open_model", no_model)
    write_photo(tmp_path / "in.png", 20, 20)
    out = tmp_path / ("x" * 300 + ".png")
    assert stylize_main([str(tiny_models().onnx), str(tmp_path / "in.png"), "-o", str(out)]) == 2
    assert "file name too long (304 bytes" in one_line_error(capsys.readouterr().err)


def test_without_an_output_one_photo_is_written_beside_the_working_folder_named_for_the_style(tmp_path, monkeypatch,
                                                                                             capsys):
    monkeypatch.chdir(tmp_path)
    write_photo(tmp_path / "photos" / "cat.jpg", 20, 24)
    assert stylize_main([str(tiny_models().onnx), "photos/cat.jpg"]) == 0
    assert Image.open(tmp_path / "cat_tiny.jpg").size == (24, 20)
    assert stylize_main([str(tiny_models().onnx), "photos/cat.jpg"]) == 2, "an existing result is kept"
    assert "already exists" in one_line_error(capsys.readouterr().err)
    assert stylize_main([str(tiny_models().onnx), "photos"]) == 2
    assert "-o FOLDER" in one_line_error(capsys.readouterr().err)



def test_one_photo_into_a_folder_is_named_for_the_style_so_a_second_style_fits_beside_it(tmp_path, capsys):
    write_photo(tmp_path / "cat.jpg", 20, 24)
    other = tmp_path / "other_style.onnx"
    shutil.copy(tiny_models().onnx, other)
    for model in (tiny_models().onnx, other):
        assert stylize_main([str(model), str(tmp_path / "cat.jpg"), "-o", str(tmp_path / "out") + "/"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cat_other_style.jpg", "cat_tiny.jpg"]
    assert "to " + str(tmp_path / "out" / "cat_other_style.jpg") in capsys.readouterr().out


def test_several_photos_without_an_output_are_written_beside_each_photo(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_photo(tmp_path / "a" / "cat.jpg", 20, 24)
    write_photo(tmp_path / "b" / "dog.png", 16, 18)
    assert stylize_main([str(tiny_models().onnx), "a/cat.jpg", "b/dog.png"]) == 0
    assert "wrote 2 image(s) beside their photos" in capsys.readouterr().out
    assert image_size(tmp_path / "a" / "cat_tiny.jpg") == (24, 20) and image_size(tmp_path / "b" / "dog_tiny.png")
    assert stylize_main([str(tiny_models().onnx), "a/cat.jpg", "b/dog.png"]) == 2, "existing results are kept"
    assert "already exists" in one_line_error(capsys.readouterr().err)


def test_swapped_arguments_say_which_command_was_meant(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_photo(tmp_path / "photo.jpg", 20, 20)
    assert stylize_main(["photo.jpg", "mosaic"]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "the first argument is the style/model; did you mean `fastnst stylize mosaic photo.jpg`?" in line, line
    assert "could run code" not in line and not list(tmp_path.glob("*mosaic*"))


@pytest.mark.parametrize("typed, meant", [("starry-night", "starry_night"), ("Mosaic", "mosaic"),
                                          ("mosiac", "mosaic"), ("the scream", "the_scream")])
def test_a_misspelt_style_gets_a_did_you_mean(tmp_path, capsys, typed, meant):
    write_photo(tmp_path / "photo.jpg", 20, 20)
    assert stylize_main([typed, str(tmp_path / "photo.jpg")]) == 2
    assert one_line_error(capsys.readouterr().err).endswith(f"; did you mean {meant}?")


def test_a_run_folder_stylizes_with_the_run_s_model(tmp_path, capsys):
    run = tmp_path / "runs" / "mosaic-1"
    run.mkdir(parents=True)
    write_photo(tmp_path / "photo.png", 20, 24)
    assert stylize_main([str(run), str(tmp_path / "photo.png"), "-o", str(tmp_path / "x.png")]) == 2
    assert "no model in it" in one_line_error(capsys.readouterr().err)
    shutil.copy(tiny_models().pt, run / "transformer.pt")
    assert stylize_main([str(run), str(tmp_path / "photo.png"), "-o", str(tmp_path / "pt.png")]) == 0
    shutil.copy(tiny_models().onnx, run / "mosaic.onnx")
    assert stylize_main([str(run), str(tmp_path / "photo.png"), "-o", str(tmp_path / "out") + "/"]) == 0
    assert image_size(tmp_path / "out" / "photo_mosaic.png") == (24, 20)


def test_help_says_that_missing_output_folders_are_created(capsys):
    assert stylize_main(["--help"]) == 0
    assert "missing folders are created" in " ".join(capsys.readouterr().out.split())


def test_a_file_name_that_is_not_utf8_prints_under_pythonioencoding_utf8(tmp_path):
    """os.fsdecode gives it surrogates, which a strict UTF-8 stdout refused, after the image was written."""
    name = os.fsdecode(b"caf\xe9.png")
    write_photo(tmp_path / name, 20, 20)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "stylize.py"), str(tiny_models().onnx), name],
                            cwd=tmp_path, env=env, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"wrote 1 image(s) to caf\\udce9_tiny.png\n"
    assert (tmp_path / os.fsdecode(b"caf\xe9_tiny.png")).is_file()
