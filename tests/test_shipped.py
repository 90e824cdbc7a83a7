"""The models in exported/ and their configs: the contract, the provenance, and that they stylize."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from tiny_models import tiny_models, write_photo

from fastnst.checkpoint import read_checkpoint
from fastnst.cli.options import build, read_yaml, resolve
from fastnst.cli.stylize import stylize_main
from fastnst.cli.train import upgrade
from fastnst.models import resolve_model
from fastnst.train_config import TrainConfig
from fastnst.image import load_image
from fastnst.runtime import OnnxStylizer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
SHIPPED = sorted((REPO / "exported").glob("*.onnx"))
STYLES = ["mosaic", "starry_night", "the_scream", "udnie", "wave"]  # the shipped styles in exported/


def resolved(config: Path) -> TrainConfig:
    """configs/<style>.yaml over today's defaults, as `fastnst train --config` reads it."""
    return build(TrainConfig, resolve(TrainConfig, (str(config), upgrade(str(config), read_yaml(config)))))


def test_each_issue_style_has_a_config_and_a_shipped_model():
    assert {p.stem for p in CONFIGS} >= set(STYLES)
    assert {p.stem for p in SHIPPED} == set(STYLES)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_config_is_a_valid_training_config_that_holds_out_the_one_evaluation_list(config, monkeypatch):
    monkeypatch.chdir(REPO)  # the configs' paths are relative to the checkout, as the commands run there
    cfg = resolved(config)
    # One evaluation set for every style, so the quality table compares like with like: every
    # config names configs/holdout.txt and lists no photos of its own.
    assert cfg.holdout_file == "configs/holdout.txt" and cfg.holdout == ()
    holdout = cfg.holdout_names()
    listed = [line for line in (REPO / "configs" / "holdout.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert list(holdout) == listed and len(holdout) == 25 and len(set(holdout)) == 25
    if (SHARED / "data").is_dir():
        assert Path(REPO, cfg.style).resolve().is_file(), cfg.style
        assert all((SHARED / "data" / "content" / name).is_file() for name in holdout)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_a_config_is_the_defaults_and_at_most_three_changes(config):
    values = read_yaml(config)
    changes = set(values) - {"style", "holdout_file"}  # what to learn from, and where to validate
    defaults = resolve(TrainConfig)
    assert len(changes) <= 3, changes
    assert not [k for k in changes if values[k] == defaults[k]], "nothing copied from the defaults"


@pytest.mark.parametrize("style", STYLES)
def test_a_config_resolves_to_the_recipe_its_shipped_net_was_trained_with(style):
    stored = read_checkpoint(REPO / "exported" / f"{style}.pt")["meta"]["config"]
    # An option added since the net was trained is absent from its file: that option's default
    # (off) is what trained it.
    assert build(TrainConfig, stored).recipe() == resolved(REPO / "configs" / f"{style}.yaml").recipe()
    assert set(stored) <= set(TrainConfig().recipe())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_model_keeps_the_contract(path):
    model = OnnxStylizer(path)  # checks names, ranks and format
    assert model.meta["model"]["width"] == TrainConfig.width
    assert path.stat().st_size < 8 * 2**20  # "a few MB each"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_model_restyles_a_photo_it_never_saw(path):
    photo = REPO / "fastnst" / "assets" / "sample_photo.jpg"
    x = np.ascontiguousarray(load_image(photo, 128).transpose(2, 0, 1)[None])  # [1, 3, H, W] in [0, 1]
    y = OnnxStylizer(path)(x)
    assert y.shape == x.shape and 0.0 <= y.min() and y.max() <= 1.0
    # Stylized, not copied: the pixels move a lot, and the output is not flat.
    assert np.abs(y - x).mean() > 0.05
    assert y.std() > 0.05


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_pytorch_twin_is_the_same_model(path):
    """exported/<style>.pt (stylize's bf16 variant) holds the weights of <style>.onnx."""
    from fastnst.stylize import load_torch_stylizer

    x = np.random.default_rng(0).random((1, 3, 64, 80), dtype=np.float32)
    onnx_out = OnnxStylizer(path)(x)
    fp32 = load_torch_stylizer(path.with_suffix(".pt"), precision="fp32")(x)
    bf16 = load_torch_stylizer(path.with_suffix(".pt"), precision="bf16")(x)
    assert np.abs(fp32 - onnx_out).max() < 1e-3
    assert np.abs(bf16 - onnx_out).mean() < 0.02  # bf16: ~3 significant digits, same picture


@pytest.fixture
def shipped(tmp_path, monkeypatch) -> Path:
    """An exported/ folder holding one style, ``tiny`` (ONNX only), in place of the real one."""
    folder = tmp_path / "exported"
    folder.mkdir()
    shutil.copy(tiny_models().onnx, folder / "tiny.onnx")
    monkeypatch.setattr("fastnst.models.shipped_dir", lambda: folder)
    return folder


def test_a_shipped_style_is_found_by_name(tmp_path, shipped):
    write_photo(tmp_path / "in.png", 40, 30)
    assert stylize_main(["tiny", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").is_file()


def test_an_unknown_style_name_lists_the_shipped_ones(tmp_path, shipped, capsys):
    write_photo(tmp_path / "in.png", 40, 30)
    assert stylize_main(["monet", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png")]) == 2
    err = capsys.readouterr().err
    assert "monet: no such model file, and not a shipped style (shipped: tiny)" in err
    assert not (tmp_path / "out.png").exists()


def test_a_shipped_style_runs_its_fastest_variant(shipped, monkeypatch):
    """Per call, onnxruntime: importing torch alone takes longer than the ONNX pass on a photo. The
    PyTorch twin for bf16 or a GPU asked for by name; a file is taken as given."""
    assert resolve_model(Path("tiny"), "bf16") == shipped / "tiny.onnx"  # no twin shipped: ONNX
    shutil.copy(tiny_models().pt, shipped / "tiny.pt")
    assert resolve_model(Path("tiny"), "bf16") == shipped / "tiny.pt"
    assert resolve_model(Path("tiny"), "fp32") == shipped / "tiny.onnx"
    monkeypatch.setattr("fastnst.stylize.native_bf16", lambda device="cpu": True)  # even with native bf16
    assert resolve_model(Path("tiny"), "auto", "cpu") == shipped / "tiny.onnx"
    assert resolve_model(Path("tiny"), "auto", "auto") == shipped / "tiny.onnx"
    assert resolve_model(Path("tiny"), "auto", "cuda") == shipped / "tiny.pt"
    assert resolve_model(Path("tiny"), "fp32", "cuda:1") == shipped / "tiny.pt"
    assert resolve_model(tiny_models().onnx, "bf16") == tiny_models().onnx  # a file is taken as given
