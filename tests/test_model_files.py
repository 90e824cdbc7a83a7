"""Model files are data, and hostile data at that: bounds, types and shapes are checked before
anything is built or allocated, for .pt/.ckpt (stylize, export, --resume) and .onnx alike."""

from __future__ import annotations

import zipfile
from pathlib import Path

import onnx
import pytest
import torch
from conftest import one_line_error
from tiny_models import META, tiny_models, write_photo

import fastnst.checkpoint
from fastnst.checkpoint import AVERAGE_PREFIX, PT_FORMAT, load_transformer
from fastnst.cli.stylize import stylize_main
from fastnst.errors import FastNSTError
from fastnst.models import ARCHITECTURE_BOUNDS
from fastnst.onnx_stylizer import OnnxStylizer
from fastnst.transformer import TransformerNet


def write_pt(path: Path, model, state=None, meta=META) -> Path:
    """A transformer.pt stating architecture ``model``, holding ``state`` (default: the tiny net's weights)."""
    state = tiny_models().net.state_dict() if state is None else state
    torch.save({"format": PT_FORMAT, "version": 1, "model": model, "state_dict": state, "meta": meta}, path)
    return path


@pytest.fixture
def no_big_nets(monkeypatch) -> list:
    """TransformerNet, failing the test when asked to allocate a net out of bounds; records real (non-meta) builds."""
    built = []

    def guarded(**info):
        if torch.empty(0).device.type != "meta":
            built.append(info)
            for key, (low, high) in ARCHITECTURE_BOUNDS.items():
                value = info.get(key, low)
                assert isinstance(value, int) and low <= value <= high, f"asked to build {info}"
        return TransformerNet(**info)

    monkeypatch.setattr(fastnst.checkpoint, "TransformerNet", guarded)
    return built


@pytest.mark.parametrize("model, field", [
    ({"width": 2000, "n_residual": 5}, "width"),  # 6 GB and rising
    ({"width": 8, "n_residual": 200000}, "n_residual"),
    ({"width": -3, "n_residual": 5}, "width"),
    ({"width": True, "n_residual": 5}, "width"),
    ({"width": "8", "n_residual": 5}, "width"),
    ({"width": 8, "n_residual": 5, "downsamples": 9}, "downsamples"),
    ({"width": 8, "n_residual": 5, "layers": 3}, "unknown architecture field"),
    ([8, 5], "not a mapping"),
])
def test_an_architecture_out_of_bounds_or_of_the_wrong_type_is_refused_before_any_net_is_built(
        tmp_path, no_big_nets, model, field):
    path = write_pt(tmp_path / "transformer.pt", model)
    with pytest.raises(FastNSTError, match=field) as info:
        load_transformer(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert no_big_nets == []


def test_weights_whose_shapes_differ_from_the_stated_architecture_are_refused_before_the_net_is_built(
        tmp_path, no_big_nets):
    path = write_pt(tmp_path / "transformer.pt", {"width": 64, "n_residual": 5})  # the weights are width 8's
    with pytest.raises(FastNSTError, match="do not match the architecture the file states"):
        load_transformer(path)
    assert no_big_nets == []
    with pytest.raises(FastNSTError, match="is not a tensor"):
        load_transformer(write_pt(tmp_path / "t2.pt", {"width": 8, "n_residual": 5},
                                  {**tiny_models().net.state_dict(), "encoder.0.1.bias": [0.0] * 8}))


def test_a_model_file_that_expands_past_the_limit_is_refused_before_torch_load(tmp_path, monkeypatch):
    """A deflated zip of zeros: 4 MiB inside ~4 KiB here, with the limit at 1 MiB (the real one is 1 GiB)."""
    plain = tmp_path / "plain.pt"
    torch.save({"format": PT_FORMAT, "model": {"width": 8}, "state_dict": {"w": torch.zeros(2**20)}}, plain)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item.filename))
    assert bomb.stat().st_size < 64 * 2**10
    monkeypatch.setattr(fastnst.checkpoint, "MAX_MODEL_BYTES", 2**20)

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load was reached")

    monkeypatch.setattr(torch, "load", no_load)
    with pytest.raises(FastNSTError, match=r"refused: it expands to 4 MiB"):
        load_transformer(bomb)


def test_real_model_files_are_far_under_the_limit():
    for path in (tiny_models().pt, tiny_models().ckpt, *sorted(Path(fastnst.checkpoint.__file__).parents[1]
                                                              .joinpath("exported").glob("*.pt"))):
        assert fastnst.checkpoint.expanded_size(path) < fastnst.checkpoint.MAX_MODEL_BYTES / 100
        load_transformer(path)


@pytest.mark.parametrize("meta, message", [(["style"], "metadata is not a mapping"),
                                           ({**META, "image_size": "256"}, "image_size should be int"),
                                           ({**META, "loss": [1, 2]}, "loss should be dict"),
                                           ({**META, "style_size": -4}, "style_size must be positive")])
def test_metadata_of_the_wrong_type_is_refused(tmp_path, meta, message):
    with pytest.raises(FastNSTError, match=message):
        load_transformer(write_pt(tmp_path / "transformer.pt", {"width": 8, "n_residual": 5}, meta=meta))


@pytest.mark.parametrize("count", [torch.tensor([1, 2]), torch.tensor(1.5), torch.zeros(0, dtype=torch.long)])
def test_an_n_averaged_of_the_wrong_size_or_type_is_refused(tmp_path, count):
    state = tiny_models().net.state_dict()
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {**{"net." + k: v for k, v in state.items()}, AVERAGE_PREFIX + "n_averaged": count},
                "fastnst": {"model": {"width": 8, "n_residual": 5}, "meta": META}}, ckpt)
    with pytest.raises(FastNSTError, match="n_averaged should be one whole number"):
        load_transformer(ckpt)


def test_a_pt_whose_meta_is_a_list_is_one_line_in_stylize(tmp_path, capsys):
    model = write_pt(tmp_path / "transformer.pt", {"width": 8, "n_residual": 5}, meta=["a", "list"])
    write_photo(tmp_path / "in.png", 20, 20)
    assert stylize_main([str(model), str(tmp_path / "in.png"), "-o", str(tmp_path / "o.png")]) == 2
    assert "metadata is not a mapping" in one_line_error(capsys.readouterr().err)


def onnx_with_metadata(path: Path, **props: str) -> Path:
    """The tiny ONNX export with some fastnst.* metadata_props replaced."""
    model = onnx.load(tiny_models().onnx)
    for entry in model.metadata_props:
        if entry.key.removeprefix("fastnst.") in props:
            entry.value = props[entry.key.removeprefix("fastnst.")]
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("value, message", [("[16, 5]", "not a mapping"), ('{"width": -5}', "width"),
                                            ('{"width": 1000000000}', "width"), ('{"width": 16.5}', "width")])
def test_onnx_architecture_metadata_of_the_wrong_type_or_size_is_refused(tmp_path, value, message):
    path = onnx_with_metadata(tmp_path / "m.onnx", model=value)
    with pytest.raises(FastNSTError, match=message) as info:
        OnnxStylizer(path)
    assert "\n" not in str(info.value)


def test_an_onnx_file_over_the_limit_is_refused_before_onnxruntime_reads_it(monkeypatch):
    import fastnst.onnx_stylizer

    monkeypatch.setattr(fastnst.onnx_stylizer, "MAX_MODEL_BYTES", 2**10)
    monkeypatch.setattr("onnxruntime.InferenceSession", None)  # calling it would fail the test
    with pytest.raises(FastNSTError, match="more than a fastnst model file may hold"):
        OnnxStylizer(tiny_models().onnx)
