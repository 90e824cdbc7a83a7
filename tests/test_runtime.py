"""The torch-free runtime: import hygiene, model validation, session options, image-level behaviour."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image
from tiny_models import photo, tiny_models, write_photo

from fastnst.errors import FastNSTError
from fastnst.models import META_KEYS
from fastnst.onnx_stylizer import physical_cores, session_options
from fastnst.postprocess import luminance
from fastnst.runtime import (OnnxStylizer, StylizeOptions, open_model, stylize_file, stylize_folder,
                             stylize_image)
from fastnst.stylize import TorchStylizer

REPO = Path(__file__).resolve().parents[1]


def test_importing_runtime_does_not_import_torch():
    code = ("import sys, fastnst, fastnst.runtime, fastnst.cli, fastnst.cli.stylize\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_onnx_model_runs_without_torch(tmp_path):
    """A whole file-to-file stylization in a process where torch cannot be imported at all."""
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    write_photo(src, 40, 56)
    code = ("import sys; sys.modules['torch'] = None\n"  # any 'import torch' now raises ImportError
            "from fastnst.runtime import OnnxStylizer, stylize_file\n"
            f"stylize_file(OnnxStylizer({str(tiny_models().onnx)!r}), {str(src)!r}, {str(dst)!r})\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Image.open(dst).size == (56, 40)


def test_the_console_command_stylizes_without_torch_and_names_the_extra_for_training(tmp_path):
    """The light install: `fastnst stylize` works, `fastnst train` says what to install, in one line."""
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    write_photo(src, 40, 56)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    prelude = "import sys; sys.modules['torch'] = None\nfrom fastnst.cli import main\n"
    stylize = prelude + f"sys.exit(main(['stylize', {str(tiny_models().onnx)!r}, {str(src)!r}, '-o', {str(dst)!r}]))"
    result = subprocess.run([sys.executable, "-c", stylize], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert Image.open(dst).size == (56, 40)
    for command in ("train", "gatys", "export"):
        code = prelude + f"sys.exit(main([{command!r}, '--help']))"
        result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and 'pip install "fastnst[train]"' in result.stderr


def test_session_uses_all_graph_optimizations_and_physical_cores():
    options = session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.intra_op_num_threads == physical_cores()
    assert 1 <= physical_cores() <= len(os.sched_getaffinity(0))


def test_model_metadata_is_read():
    model = OnnxStylizer(tiny_models().onnx)
    assert model.meta["style_name"] == "tiny-test-style"
    assert model.meta["image_size"] == 256 and model.meta["style_size"] == 384
    assert model.meta["loss"]["style_weight"] == 10.0
    assert model.meta["model"] == {"width": 8, "n_residual": 5, "downsamples": 2}


def _identity_model(path: Path, input_name: str = "x", output_name: str = "y", format_key: str | None = None) -> Path:
    """A valid ONNX file that is not a fastnst export (unless given its names and format key)."""
    shape = ["N", 3, "H", "W"]
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", [input_name], [output_name])], "identity",
        [onnx.helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, shape)],
        [onnx.helper.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, shape)])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    model.ir_version = 8
    if format_key is not None:
        onnx.helper.set_model_props(model, {"fastnst.format": format_key})
    onnx.save(model, path)
    return path


def fastnst_graph(path: Path, nodes: list, initializers: tuple = ()) -> Path:
    """An ONNX file with the fastnst contract's names, ranks and format key around ``nodes`` (image -> stylized)."""
    graph = onnx.helper.make_graph(
        nodes, "g", [onnx.helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [onnx.helper.make_tensor_value_info("stylized", onnx.TensorProto.FLOAT, ["N", "C", "H2", "W2"])],
        list(initializers))
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=8)
    onnx.helper.set_model_props(model, {"fastnst.format": "fastnst-transformer/1"})
    onnx.save(model, path)
    return path


def _ints(name: str, values: list[int]):
    return onnx.helper.make_tensor(name, onnx.TensorProto.INT64, [len(values)], values)


WRONG_SHAPES = {  # models that keep the contract's names and ranks, but not its shapes
    "stride-2 slice": ([onnx.helper.make_node("Slice", ["image", "s", "e", "a", "t"], ["stylized"])],
                       (_ints("s", [0, 0]), _ints("e", [2**62, 2**62]), _ints("a", [2, 3]), _ints("t", [2, 2]))),
    "H and W swapped": ([onnx.helper.make_node("Transpose", ["image"], ["stylized"], perm=[0, 1, 3, 2])], ()),
    "6 channels": ([onnx.helper.make_node("Concat", ["image", "image"], ["stylized"], axis=1)], ()),
}


@pytest.mark.parametrize("kind", sorted(WRONG_SHAPES))
def test_a_model_whose_output_has_another_shape_is_refused_not_written(tmp_path, kind, capsys):
    from conftest import one_line_error

    from fastnst.cli.stylize import stylize_main

    model = fastnst_graph(tmp_path / "m.onnx", *WRONG_SHAPES[kind])
    src, out = tmp_path / "in.png", tmp_path / "out.png"
    write_photo(src, 96, 64)
    assert stylize_main([str(model), str(src), "-o", str(out)]) == 2
    assert "a style model must return its input's shape" in one_line_error(capsys.readouterr().err)
    assert not out.exists()
    for options in (StylizeOptions(tile=64), StylizeOptions(strength=0.5), StylizeOptions(preserve_color=True)):
        with pytest.raises(FastNSTError, match="input's shape"):  # one check for every path
            stylize_image(OnnxStylizer(model), photo(40, 150), options)


def test_a_model_that_fails_while_running_is_one_line(tmp_path):
    """onnxruntime's own exception types (a Reshape to an impossible shape here) become FastNSTError."""
    model = fastnst_graph(tmp_path / "m.onnx", [onnx.helper.make_node("Reshape", ["image", "shape"], ["stylized"])],
                          (_ints("shape", [1, 3, 7, 7]),))
    with pytest.raises(FastNSTError, match="the model failed while running") as info:
        stylize_image(OnnxStylizer(model), photo(20, 20))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated", "other-names", "no-format-key"])
def test_bad_model_files_give_a_clear_one_line_error(tmp_path, kind):
    path = tmp_path / "model.onnx"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(b"\x00\x01 this is not protobuf" * 50)
    elif kind == "truncated":
        data = tiny_models().onnx.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "other-names":
        _identity_model(path, format_key="fastnst-transformer/1")
    elif kind == "no-format-key":
        _identity_model(path, "image", "stylized")
    with pytest.raises(FastNSTError) as info:
        OnnxStylizer(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    expected = {"missing": "no such model file", "other-names": "not a fastnst style model",
                "no-format-key": "not a fastnst export"}.get(kind, "not a readable ONNX model")
    assert expected in message


def test_uint8_and_float_images_keep_shape_and_dtype_and_match_torch():
    models = tiny_models()
    onnx_model, torch_model = OnnxStylizer(models.onnx), TorchStylizer(models.net)
    image = photo(37, 50)
    out = stylize_image(onnx_model, image)
    assert out.shape == image.shape and out.dtype == np.float32
    assert np.abs(out - stylize_image(torch_model, image)).max() <= 1e-3
    as_uint8 = stylize_image(onnx_model, (image * 255).astype(np.uint8))
    assert as_uint8.shape == image.shape and as_uint8.dtype == np.uint8


def test_images_smaller_than_16_px_are_padded_not_refused():
    out = stylize_image(OnnxStylizer(tiny_models().onnx), photo(7, 12))
    assert out.shape == (7, 12, 3)


def test_strength_zero_returns_the_input():
    model = OnnxStylizer(tiny_models().onnx)
    image = photo(40, 30)
    assert np.array_equal(stylize_image(model, image, StylizeOptions(strength=0.0)), image)
    pixels = (image * 255).astype(np.uint8)
    assert np.array_equal(stylize_image(model, pixels, StylizeOptions(strength=0.0)), pixels)
    assert np.array_equal(stylize_image(model, pixels, StylizeOptions(strength=0.0, tile=64)), pixels)


def test_strength_is_a_linear_blend():
    model = OnnxStylizer(tiny_models().onnx)
    image = photo(40, 30)
    full = stylize_image(model, image)
    half = stylize_image(model, image, StylizeOptions(strength=0.5))
    assert np.abs(half - (full + image) / 2).max() < 1e-5


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 (Cb, Cr) up to scale: B - Y and R - Y."""
    y = luminance(rgb)
    return np.stack([rgb[..., 2] - y, rgb[..., 0] - y], axis=-1)


def test_preserve_color_keeps_the_chrominance_and_takes_the_luminance():
    model = OnnxStylizer(tiny_models().onnx)
    image = photo(48, 64, lo=0.2, hi=0.8)  # mid-range, so few pixels clip
    plain = stylize_image(model, image)
    kept = stylize_image(model, image, StylizeOptions(preserve_color=True))
    inside = np.all((kept > 0) & (kept < 1), axis=-1)
    assert inside.mean() > 0.9
    assert np.abs(_chroma(kept) - _chroma(image))[inside].max() < 1e-5
    assert np.abs(luminance(kept) - luminance(plain))[inside].max() < 1e-5
    assert np.abs(_chroma(plain) - _chroma(image)).mean() > 0.02  # the net does change colours


def test_too_big_for_memory_fails_before_running_and_names_a_tile():
    class Exploding:
        bytes_per_pixel = 1000

        def __call__(self, batch):
            raise AssertionError("must not run")

    with pytest.raises(FastNSTError, match=r"--tile \d+"):
        stylize_image(Exploding(), np.zeros((1000, 1000, 3), np.uint8), budget=200 * 200 * 1000)


def test_the_memory_estimate_is_for_the_padded_size_the_pass_runs_at():
    """A 1x100000 image runs as 16x100000 (MIN_SIZE edge padding): 16x the pixels of its own size."""
    from fastnst.memory import check_forward_fits, padded_size

    assert padded_size(1, 100000) == (16, 100000) and padded_size(97, 131) == (100, 132)
    per_pixel = 768
    check_forward_fits(1, 100000, per_pixel, 16 * 100000 * per_pixel, tiled=False)
    with pytest.raises(FastNSTError, match="--tile"):
        check_forward_fits(1, 100000, per_pixel, 16 * 100000 * per_pixel - 1, tiled=False)


def test_tile_makes_a_too_big_image_fit():
    model = OnnxStylizer(tiny_models().onnx)
    image = (photo(150, 200) * 255).astype(np.uint8)
    budget = 100 * 100 * model.bytes_per_pixel
    with pytest.raises(FastNSTError):
        stylize_image(model, image, budget=budget)
    assert stylize_image(model, image, StylizeOptions(tile=96), budget=budget).shape == image.shape


def test_stylize_folder_skips_non_images_and_keeps_names(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 30, 40)
    write_photo(src / "b.jpg", 32, 20, seed=1)
    (src / "notes.txt").write_text("not an image")
    report = stylize_folder(OnnxStylizer(tiny_models().onnx), src, dst)
    assert sorted(p.name for p in report.written) == ["a.png", "b.jpg"]
    assert [p.name for p, _ in report.skipped] == ["notes.txt"]
    assert Image.open(dst / "b.jpg").size == (20, 32)


def test_one_policy_for_existing_outputs_in_file_and_folder_calls(tmp_path):
    """refuse (the default: an error before any work), skip (keep them, do the rest), replace."""
    model = OnnxStylizer(tiny_models().onnx)
    src, dst = tmp_path / "in", tmp_path / "out"
    write_photo(src / "a.png", 30, 40)
    write_photo(src / "b.png", 32, 20, seed=1)
    dst.mkdir()
    (dst / "a.png").write_bytes(b"earlier result")
    with pytest.raises(FastNSTError, match="already exists"):
        stylize_folder(model, src, dst)
    assert [p.name for p in dst.iterdir()] == ["a.png"], "refused before any work"
    with pytest.raises(FastNSTError, match="already exists"):
        stylize_file(model, src / "a.png", dst / "a.png")
    report = stylize_folder(model, src, dst, existing="skip")
    assert [p.name for p in report.written] == ["b.png"] and [p.name for p in report.kept] == ["a.png"]
    assert (dst / "a.png").read_bytes() == b"earlier result"
    assert stylize_file(model, src / "a.png", dst / "a.png", existing="skip") is False
    assert stylize_file(model, src / "a.png", dst / "a.png", existing="replace") is True
    assert Image.open(dst / "a.png").size == (40, 30)
    with pytest.raises(FastNSTError, match="overwrite an input"):
        stylize_file(model, src / "a.png", src / "a.png", existing="replace")


def test_open_model_gives_every_format_one_interface_and_one_metadata_layout():
    models = [open_model(path, device="cpu", precision="fp32")
              for path in (tiny_models().onnx, tiny_models().pt, tiny_models().ckpt)]
    x = np.random.default_rng(0).random((1, 3, 24, 20), dtype=np.float32)
    outputs = [model(x) for model in models]
    assert all(np.abs(out - outputs[0]).max() < 1e-3 for out in outputs)
    assert [set(model.meta) for model in models] == [set(META_KEYS)] * 3
    assert [model.meta["fastnst_version"] for model in models] == ["0.1.0"] * 3
    assert [model.meta["model"] for model in models] == [{"width": 8, "n_residual": 5, "downsamples": 2}] * 3
    assert len({model.bytes_per_pixel for model in models}) == 1


def test_tiny_inputs_are_padded_alike_by_every_backend():
    """One rule (onnx_contract.MIN_SIZE): ONNX and PyTorch give the same pixels for a 5x3 image."""
    image = photo(5, 3)
    onnx_out = stylize_image(open_model(tiny_models().onnx), image)
    torch_out = stylize_image(open_model(tiny_models().pt, device="cpu", precision="fp32"), image)
    assert onnx_out.shape == image.shape and np.abs(onnx_out - torch_out).max() < 1e-3


@pytest.mark.parametrize("options", [dict(strength=1.5), dict(strength=-0.1), dict(tile=32), dict(max_size=8)])
def test_bad_options_are_refused(options):
    with pytest.raises(FastNSTError):
        StylizeOptions(**options)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_model_that_outputs_nan_or_inf_is_an_error_not_a_black_image(bad):
    class Broken:  # any stylizer (e.g. an ONNX export of diverged weights) whose output is not finite
        bytes_per_pixel = 500

        def __call__(self, batch):
            out = np.full_like(batch, 0.5)
            out[0, 1, 3, 4] = bad
            return out

    with pytest.raises(FastNSTError, match="not finite"):
        stylize_image(Broken(), photo(20, 30), StylizeOptions())
    with pytest.raises(FastNSTError, match="not finite"):
        stylize_image(Broken(), (photo(80, 80) * 255).astype(np.uint8), StylizeOptions(tile=64))


@pytest.mark.parametrize("call, message", [
    (lambda: open_model(None), "the model must be a shipped style's name or a model file's path"),
    (lambda: open_model(""), "the model must be"),
    (lambda: open_model(tiny_models().onnx, device="banana"), "--device banana: not a device"),
    (lambda: open_model(tiny_models().onnx, precision="fp16"), "precision must be one of auto, fp32, bf16"),
    (lambda: open_model(REPO / "README.md"), "not a model file"),
    (lambda: StylizeOptions(strength="0.5"), "strength must be a number, got str"),
    (lambda: StylizeOptions(strength=True), "strength must be a number"),
    (lambda: StylizeOptions(tile=256.0), "tile must be a whole number or None"),
    (lambda: StylizeOptions(preserve_color="no"), "preserve_color must be True or False"),
    (lambda: stylize_image(OnnxStylizer(tiny_models().onnx), None), "image must be a numpy array"),
    (lambda: stylize_image(None, photo(20, 20)), "model must be a stylizer"),
    (lambda: stylize_image(OnnxStylizer(tiny_models().onnx), photo(20, 20).astype(np.float64) * 255),
     r"a float image must be in \[0, 1\], this one spans \[\S+, 255\] \(0..255 pixels"),
    (lambda: stylize_image(OnnxStylizer(tiny_models().onnx), photo(20, 20) > 0.5), "uint8 .0..255. or float"),
    (lambda: stylize_image(OnnxStylizer(tiny_models().onnx), np.zeros((0, 5, 3), np.uint8)), "expected an"),
    (lambda: stylize_image(OnnxStylizer(tiny_models().onnx), np.full((20, 20, 3), np.nan)), "must be in"),
    (lambda: stylize_file(OnnxStylizer(tiny_models().onnx), None, "out.png"), "src must be a file path"),
])
def test_the_python_api_refuses_wrong_types_and_values_in_one_line(call, message):
    with pytest.raises(FastNSTError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_float64_images_in_0_1_are_stylized_as_float32_whole_and_tiled():
    model = OnnxStylizer(tiny_models().onnx)
    image = photo(40, 90).astype(np.float64)
    for options in (StylizeOptions(), StylizeOptions(tile=64)):
        out = stylize_image(model, image, options)
        assert out.dtype == np.float32 and out.shape == image.shape
