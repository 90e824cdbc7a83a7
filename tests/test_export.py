"""The ONNX export contract: names, dtypes, dynamic shapes, odd sizes, metadata, parity, failure modes."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from tiny_models import META, make_net, tiny_models

import fastnst
from fastnst import export as export_module
from fastnst.cli import export_main
from fastnst.export import ExportError, export_onnx
from fastnst.runtime import FORMAT


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_graph_has_one_float_input_image_and_output_stylized_with_dynamic_n_h_w():
    model = onnx.load(tiny_models().onnx)
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["stylized"]
    for value in (model.graph.input[0], model.graph.output[0]):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert _dims(value) == ["N", 3, "H", "W"]
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert model.graph.node[-1].op_type == "Clip"  # exported in eval mode: the [0, 1] clamp is in the graph


def test_file_is_self_contained():
    models = tiny_models()
    model = onnx.load(models.onnx, load_external_data=False)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert not [p for p in models.folder.iterdir() if p.suffix == ".data" or p.name.startswith(".")]


@pytest.mark.parametrize("shape", [(1, 3, 16, 16), (1, 3, 17, 33), (3, 3, 31, 16), (2, 3, 75, 129), (1, 3, 16, 250)])
def test_any_size_from_16_px_gives_exactly_that_size(shape):
    session = ort.InferenceSession(str(tiny_models().onnx), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    (y,) = session.run(None, {"image": x})
    assert y.shape == shape and y.dtype == np.float32
    assert 0.0 <= y.min() and y.max() <= 1.0


def test_metadata_props_carry_style_training_size_loss_and_version():
    props = {p.key: p.value for p in onnx.load(tiny_models().onnx).metadata_props}
    assert props["fastnst.format"] == FORMAT
    assert props["fastnst.style_name"] == META["style_name"]
    assert props["fastnst.style_sha256"] == META["style_sha256"]
    assert int(props["fastnst.image_size"]) == META["image_size"]
    assert int(props["fastnst.style_size"]) == META["style_size"]
    assert json.loads(props["fastnst.loss"]) == META["loss"]  # weights and layers
    assert props["fastnst.version"] == fastnst.__version__
    assert json.loads(props["fastnst.model"]) == {"width": 8, "n_residual": 5}


def test_parity_report_and_an_independent_size():
    models = tiny_models()
    assert models.report.max_abs_diff <= 1e-3
    assert any(h % 2 or w % 2 for _, _, h, w in models.report.shapes)
    x = np.random.default_rng(2).random((1, 3, 53, 41), dtype=np.float32)
    session = ort.InferenceSession(str(models.onnx), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        want = models.net(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"image": x})[0] - want).max() <= 1e-3
    assert 0.05 < want.std()  # not a constant image: the comparison means something


def test_export_leaves_the_callers_net_as_it_was(tmp_path, monkeypatch):
    models = tiny_models()
    net = make_net(seed=3).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    # Reuse the shared export's graph (the weights differ): parity must then fail, loudly, and no
    # file may remain. This also checks the net is untouched when export raises.
    monkeypatch.setattr(export_module, "_to_onnx", lambda net, opset: onnx.load(models.onnx))
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(net, tmp_path / "model.onnx", META)
    assert list(tmp_path.iterdir()) == []
    assert net.training
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_export_cli_from_a_checkpoint(tmp_path, capsys):
    models = tiny_models()
    out = tmp_path / "style.onnx"
    assert export_main([str(models.ckpt), "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(4).random((1, 3, 24, 40), dtype=np.float32)
    with torch.inference_mode():
        want = models.net(torch.from_numpy(x)).numpy()
    assert np.abs(session.run(None, {"image": x})[0] - want).max() <= 1e-3
    # An existing output is kept without --overwrite.
    assert export_main([str(models.ckpt), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"", b"garbage, not a pickle", None])
def test_export_cli_bad_model_is_one_line_error(tmp_path, capsys, content):
    model = tmp_path / "transformer.pt"
    if content is None:  # truncated real file
        data = tiny_models().pt.read_bytes()
        model.write_bytes(data[: len(data) // 2])
    else:
        model.write_bytes(content)
    assert export_main([str(model)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "transformer.onnx").exists()


def test_export_cli_refuses_onnx_input(tmp_path, capsys):
    assert export_main([str(tiny_models().onnx), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "already an ONNX model" in capsys.readouterr().err
