"""The ONNX export contract: names, dtypes, dynamic shapes, odd sizes, metadata, parity, failure modes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import one_line_error
from tiny_models import META, make_net, tiny_models

import fastnst
from fastnst import export as export_module
from fastnst.checkpoint import save_transformer
from fastnst.cli.export import export_main
from fastnst.errors import FastNSTError
from fastnst.export import ExportError, export_onnx
from fastnst.onnx_contract import ONNX_FORMAT


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
    assert props["fastnst.format"] == ONNX_FORMAT
    assert props["fastnst.style_name"] == META["style_name"]
    assert props["fastnst.style_sha256"] == META["style_sha256"]
    assert int(props["fastnst.image_size"]) == META["image_size"]
    assert int(props["fastnst.style_size"]) == META["style_size"]
    assert json.loads(props["fastnst.loss"]) == META["loss"]  # weights and layers
    assert props["fastnst.version"] == fastnst.__version__
    assert json.loads(props["fastnst.model"]) == {"width": 8, "n_residual": 5, "downsamples": 2}


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
    assert not list(tmp_path.glob("*.onnx"))


def test_export_cli_refuses_onnx_input(tmp_path, capsys):
    assert export_main([str(tiny_models().onnx), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "already an ONNX model" in capsys.readouterr().err


def test_export_cli_refuses_a_checkpoint_that_would_run_code(tmp_path, capsys, evil_checkpoint):
    model = tmp_path / "last.ckpt"
    marker = evil_checkpoint(model)
    assert export_main([str(model), "-o", str(tmp_path / "x.onnx")]) == 2
    assert not marker.exists(), "loading the checkpoint ran code from it"
    assert "refused" in one_line_error(capsys.readouterr().err)
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("opset", ["17", "29", "0", "-3"])
def test_export_cli_refuses_an_opset_the_exporter_would_not_write(tmp_path, capsys, opset):
    """17 came out as 18 and 29 as 18 (after an onnx traceback), both reported as asked, exit 0."""
    out = tmp_path / "x.onnx"
    assert export_main([str(tiny_models().pt), "-o", str(out), "--opset", opset]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert f"opset {opset} is not supported" in line and str(export_module.MIN_OPSET) in line
    assert not out.exists()


def test_export_never_reports_an_opset_other_than_the_files(tmp_path, monkeypatch):
    models = tiny_models()
    assert models.report.opset == 18 == export_module.written_opset(onnx.load(models.onnx))
    # An exporter that ignores the opset asked for (as it did below its own): an error, no file.
    monkeypatch.setattr(export_module, "_to_onnx", lambda net, opset: onnx.load(models.onnx))
    with pytest.raises(ExportError, match="asked for opset 19"):
        export_onnx(models.net, tmp_path / "model.onnx", META, opset=19)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_nan_weights_and_non_finite_outputs(tmp_path, capsys):
    nan_net = make_net()
    with torch.no_grad():
        nan_net.decoder[-1][1].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(FastNSTError, match="not finite"):
        export_onnx(nan_net, tmp_path / "nan.onnx", META)
    # Finite weights whose first convolution overflows: inf - inf in instance norm gives NaN outputs,
    # which the parity check would otherwise pass (NaN vs NaN: no difference found).
    huge = make_net()
    with torch.no_grad():
        huge.encoder[0][1].weight.fill_(3e38)
    with pytest.raises(FastNSTError, match="not finite"):
        export_onnx(huge, tmp_path / "huge.onnx", META)
    assert list(tmp_path.iterdir()) == []
    save_transformer(nan_net, tmp_path / "transformer.pt", META)
    assert export_main([str(tmp_path / "transformer.pt")]) == 2
    assert "not finite" in one_line_error(capsys.readouterr().err)
    assert not list(tmp_path.glob("*.onnx"))


def test_export_names_its_output_for_the_style_as_training_does(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_models().pt, run / "transformer.pt")
    assert export_main([str(run / "transformer.pt")]) == 0
    assert f"wrote {run / 'tiny-test-style.onnx'} (tiny-test-style;" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir()) == ["tiny-test-style.onnx", "transformer.pt"]


def test_the_style_shown_is_a_shipped_model_s_file_name_and_never_a_path(tmp_path):
    """The shipped the_scream, udnie and wave record the image they were trained on (*_lengstrom)."""
    from fastnst.models import shipped_dir, style_label

    assert style_label(shipped_dir() / "the_scream.pt", {"style_name": "the_scream_lengstrom"}) == "the_scream"
    assert style_label(tmp_path / "transformer.pt", {"style_name": "mosaic"}) == "mosaic"
    for hostile in ("../../escape", "", None, ["a"], ".hidden"):
        assert style_label(tmp_path / "transformer.pt", {"style_name": hostile}) == "transformer"
