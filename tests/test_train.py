"""Training: data module, LightningModule checkpoints, the train CLI end to end, resume, DDP."""

import csv
import dataclasses
import logging
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import one_line_error, write_random_vgg
from PIL import Image

from fastnst import TrainConfig, train
from fastnst.checkpoint import load_transformer
from fastnst.cli.options import build, read_yaml, resolve
from fastnst.cli.train import saved_run_config, structure_advice, train_main, upgrade
from fastnst.training import config_yaml, last_logged, training_precision
from fastnst.data import StyleDataModule, find_images
from fastnst.errors import FastNSTError
from fastnst.module import (STRUCTURE_GAIN, STYLE_SCALE_KEY, STYLE_SCALE_MIN, StyleTransferModule, lr_factor,
                            next_style_log_scale)
from fastnst.perceptual import LossConfig
from fastnst.stylize import native_bf16
from fastnst.vgg import VGGFeatures

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def write_photos(folder: Path, n: int, size=(40, 30), seed=0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"photo{i:02d}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny data folder (with junk in it), a style image and random-init VGG weights on disk."""
    root = tmp_path_factory.mktemp("train")
    write_photos(root / "data" / "sub", 6)
    (root / "data" / "notes.jpg").write_text("not an image")
    (root / "data" / "empty.png").write_bytes(b"")
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(root / "style.png")
    write_random_vgg(root / "vgg.pth")
    return root


def base_args(root: Path, run: str, **extra) -> list[str]:
    args = {"style": root / "style.png", "data": root / "data", "run-dir": root / run,
            "vgg-weights": root / "vgg.pth", "image-size": 16, "batch-size": 2, "val-size": 2, "width": 4,
            "max-steps": 4, "val-every": 2, "checkpoint-every": 2, "num-workers": 0, "precision": "32-true",
            "accelerator": "cpu", "log-images": 2, "early-steps": 0, "style-size": 48}
    args.update(extra)
    return [x for k, v in args.items() if v is not None for x in (f"--{k}", str(v))]


def test_train_is_a_library_call_that_checks_its_config_like_the_command(setup, tmp_path):
    with pytest.raises(FastNSTError, match="lr must be"):
        TrainConfig(lr=float("nan"))
    with pytest.raises(FastNSTError, match="max_steps must be >= 1"):
        TrainConfig(max_steps=0)
    with pytest.raises(FastNSTError, match="style_weight must be a finite number"):
        TrainConfig(loss=LossConfig(style_weight=float("inf")))
    with pytest.raises(FastNSTError, match="style is required"):
        train(TrainConfig(data=str(setup / "data")))
    config = TrainConfig(style=str(setup / "style.png"), data=str(setup / "data"), run_dir=str(tmp_path / "run"),
                         vgg_weights=str(setup / "vgg.pth"), image_size=16, batch_size=2, val_size=2, width=4,
                         early_steps=0, style_size=48,
                         max_steps=2, val_every=2, checkpoint_every=2, num_workers=0, precision="32-true",
                         accelerator="cpu", log_images=0, loss=dataclasses.replace(TrainConfig.loss, tv_weight=2.0))
    run = train(config)
    assert run == tmp_path / "run"
    assert (run / "transformer.pt").is_file() and (run / "style.onnx").is_file()
    # The saved config is flat (the loss's fields among the others, as older runs wrote them) and
    # reads back as the very config trained with.
    saved = read_yaml(run / "config.yaml")
    assert saved["tv_weight"] == 2.0 and "loss" not in saved
    assert build(TrainConfig, resolve(TrainConfig, ("config.yaml", saved))) == config


def test_a_config_of_an_older_layout_still_loads(tmp_path):
    """Run configs written before holdout_file existed list their holdout photos inline; those from
    before an option was removed or renamed hold its old key."""
    old = tmp_path / "config.yaml"
    old.write_text("style: s.jpg\ndata: d\nrun_dir: runs/x\nstyle_size: null\nvgg_weights: null\nmax_steps: 300\n"
                   "precision: auto\ndevices: 1\nchannels_last: true\ncontent_layers: [relu2_2]\n"
                   "style_weight: 1.0\nwidth: 16\nlr_decay: constant\nimage_size: 128\n"
                   "holdout: [a.jpg, b.jpg]\nphoto_size: 0\nstyle_octaves: 1\nn_residual: 5\n")
    # Resumed, it keeps the one style scale it was trained with, not today's two-stage schedule.
    resumed = build(TrainConfig, resolve(TrainConfig, (str(old), saved_run_config(tmp_path))))
    assert resumed.holdout_names() == ("a.jpg", "b.jpg") and resumed.loss.content_layers == ("relu2_2",)
    assert resumed.max_steps == 300 and resumed.loss.style_weight == 1.0 and resumed.loss.tv_weight == 1.0
    assert resumed.early_steps == 0 and TrainConfig().early_steps > 0
    assert resumed.grad_clip == 0 and TrainConfig().grad_clip > 0
    assert resumed.average_steps == 0 and TrainConfig().average_steps > 0  # its last step's weights, as before
    assert resumed.structure_floor == 0 and TrainConfig().structure_floor > 0  # a fixed style weight, as before
    assert resumed.lr_decay_steps == 0 and TrainConfig().lr_decay_steps > 0  # lr_decay: constant
    assert resumed.style_size == 128  # null, as saved: the style image at the crop size
    now = tmp_path / "now"
    now.mkdir()
    (now / "config.yaml").write_text(old.read_text() + "early_style_steps: 7\nearly_style_size: 64\ngrad_clip: 2.5\n"
                                     "early_image_size: 0\nearly_batch_size: 0\nbatch_size: 2\n")
    resumed = build(TrainConfig, resolve(TrainConfig, ("now", saved_run_config(now))))
    assert resumed.early_steps == 7 and resumed.grad_clip == 2.5
    assert (resumed.early_image_size, resumed.early_batch_size) == (128, 2), "0 meant the second stage's"


def test_a_run_saved_by_todays_code_resumes_with_its_own_recipe(tmp_path):
    """No option of a run's saved config.yaml falls back to an older run's value on --resume."""
    config = TrainConfig(style="s.jpg", data="d", run_dir=str(tmp_path), lr_decay_steps=1500, early_steps=3000,
                         early_image_size=96, average_steps=700, structure_floor=0.6, grad_clip=0.5)
    (tmp_path / "config.yaml").write_text(config_yaml(config))
    resumed = build(TrainConfig, resolve(TrainConfig, ("saved", saved_run_config(tmp_path))))
    assert resumed == dataclasses.replace(config, run_dir=TrainConfig.run_dir)


@pytest.mark.parametrize("key, value", [("photo_size", 256), ("style_octaves", 2), ("reconstruct_steps", 100),
                                        ("content_top", 0.2), ("n_residual", 3), ("lr_decay", "linear")])
def test_an_older_config_asking_for_a_removed_option_is_refused_by_name(key, value):
    with pytest.raises(FastNSTError, match=key):
        upgrade("old.yaml", {"style": "s.jpg", key: value})


def test_find_images_recursive_and_survives_symlink_loop(tmp_path):
    write_photos(tmp_path / "a" / "b", 2)
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    (tmp_path / "dir.jpg").mkdir()  # a directory with an image name is not an image
    found = find_images(tmp_path)
    assert [p.name for p in found] == ["photo00.png", "photo01.jpg"]


def data_config(data: Path, **kwargs) -> TrainConfig:
    """A TrainConfig for StyleDataModule tests: no first stage, no workers, tiny crops."""
    return TrainConfig(data=str(data), **({"image_size": 16, "batch_size": 2, "val_size": 2, "num_workers": 0,
                                          "early_steps": 0} | kwargs))


def test_datamodule_skips_bad_files_with_one_counted_warning(setup):
    dm = StyleDataModule(data_config(setup / "data"))
    with pytest.warns(UserWarning, match="skipped 2 unreadable") as record:
        dm.setup("fit")
    assert len([w for w in record if "skipped" in str(w.message)]) == 1
    assert len(dm.train_files) == 4 and len(dm.val_files) == 2
    assert not set(dm.train_files) & set(dm.val_files)
    batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (2, 3, 16, 16) and batch.dtype == torch.float32
    assert 0 <= batch.min() and batch.max() <= 1


def test_datamodule_holdout_names_are_never_trained_on(setup):
    dm = StyleDataModule(data_config(setup / "data", holdout=("photo01.jpg", "photo04.png")))
    dm.setup("fit")
    assert sorted(p.name for p in dm.val_files) == ["photo01.jpg", "photo04.png"]
    assert not {"photo01.jpg", "photo04.png"} & {p.name for p in dm.train_files}


@pytest.mark.parametrize("crop", ["random", "center"])
def test_crops_are_of_the_whole_photo_zoomed_out(crop):
    """A 64 px crop of a 480x320 left-to-right ramp spans most of the ramp (Johnson et al.: whole
    photos at about the crop's size)."""
    import random

    from fastnst.data import center_crop, random_crop

    im = Image.fromarray(np.tile(np.linspace(0, 255, 480).astype(np.uint8)[None, :, None], (320, 1, 3)))
    for seed in range(5):
        out = random_crop(im, 64, random.Random(seed)) if crop == "random" else center_crop(im, 64)
        assert out.size == (64, 64)
        red = np.asarray(out)[..., 0].astype(int)
        # Shorter side 64·U(1, 1.25) -> width 1.5·that; a crop spans 63/width of the 0..255 ramp.
        assert 255 * 63 / 120 - 2 <= red.max() - red.min() <= 255 * 63 / 96 + 2


def test_the_validation_grid_shows_log_images_photos_whatever_the_batch_size(setup):
    dm = StyleDataModule(data_config(setup / "data", batch_size=1, val_size=3, log_images=3))
    dm.setup("fit")
    assert next(iter(dm.val_dataloader())).shape == (3, 3, 16, 16)


def test_truncated_file_mid_epoch_is_replaced_not_fatal(tmp_path):
    paths = write_photos(tmp_path, 3)
    paths[0].write_bytes(paths[0].read_bytes()[:60])  # valid header, truncated pixels
    dm = StyleDataModule(data_config(tmp_path, batch_size=3, val_size=0))
    dm.setup("fit")
    with pytest.warns(UserWarning, match="skipping unreadable"):
        batch = next(iter(dm.train_dataloader()))
    assert batch.shape == (3, 3, 16, 16)


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.mkdir()])
def test_missing_or_empty_data_folder_is_a_clear_error(tmp_path, make):
    make(tmp_path / "nothing")
    dm = StyleDataModule(data_config(tmp_path / "nothing"))
    with pytest.raises(FastNSTError, match="nothing"):
        dm.setup("fit")


def test_train_end_to_end_then_resume(setup, capsys, caplog, monkeypatch, tmp_path):
    # Checkpoints are written in their own folder and renamed (SafeCheckpointIO), never staged in the
    # system temp dir (Lightning's fsspec default, a copy across file systems): make that unusable.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-temp-dir"))
    # Lightning's logger does not propagate to the root logger, where caplog listens.
    lightning_log = logging.getLogger("pytorch_lightning")
    monkeypatch.setattr(lightning_log, "handlers", [*lightning_log.handlers, caplog.handler])
    caplog.set_level(logging.INFO, logger="pytorch_lightning")
    run = setup / "run"
    assert train_main(base_args(setup, "run")) == 0
    for name in ["config.yaml", "transformer.pt", "style.onnx", "checkpoints/last.ckpt", "tensorboard", "csv"]:
        assert (run / name).exists(), name
    assert list((run / "samples").glob("*.png")), "validation grids are saved"
    # Our own checkpoints load without unpickling arbitrary objects (no allow-list needed).
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4
    assert not [k for k in ckpt["state_dict"] if ".vgg." in k], "checkpoints never hold the frozen VGG"
    assert any(k.startswith("loss.gram_") for k in ckpt["state_dict"]), "style Grams are buffers"
    assert ckpt["optimizer_states"], "optimizer state is kept for resuming"
    first_seconds = ckpt["callbacks"]["TrainingClock"]["seconds"]
    assert first_seconds > 0, "the training wall time is saved"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["width"] == 4 and cfg["image_size"] == 16 and cfg["style_layers"] == list(LossConfig().style_layers)

    net, meta = load_transformer(run / "transformer.pt")
    assert net.width == 4 and meta["style_name"] == "style" and len(meta["style_sha256"]) == 64
    assert net(torch.rand(1, 3, 21, 19)).shape == (1, 3, 21, 19)

    # Validation logs the scorer's structure (relu3_4 cosine to the photo, a fraction of 1).
    first_structure = last_logged(run, "val/structure")
    assert first_structure is not None and -1.0 <= first_structure <= 1.0
    assert last_logged(run, "val/no_such_metric") is None

    # Resume: the step count continues from the checkpoint and the config is reused.
    assert train_main(["--resume", str(run), "--max-steps", "6"]) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 6
    # The resume logs to a CSV version of its own, and the last value is read from it.
    rows = list(csv.DictReader(open(run / "csv" / "version_1" / "metrics.csv")))
    assert last_logged(run, "val/structure") == float([r for r in rows if r.get("val/structure")][-1]["val/structure"])
    assert ckpt["callbacks"]["TrainingClock"]["seconds"] > first_seconds, "the clock continues across a resume"
    net2, _ = load_transformer(run / "checkpoints" / "last.ckpt")
    assert net2.width == 4
    # Lightning logs this on each checkpoint save that does not say what to save: every run did.
    assert caplog.records and not [r for r in caplog.records if "weights_only" in r.getMessage()]


def test_config_file_flags_override_and_bad_keys_are_errors(setup, tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("width: 4\nmax_steps: 2\nimage_size: 24\n")
    # Default precision ("auto": bf16-mixed or 32-true by the CPU) here: it must work on any CPU.
    args = base_args(setup, "cfgrun", **{"max-steps": 1, "width": None, "precision": None}) + ["--config", str(good)]
    assert train_main(args) == 0
    cfg = yaml.safe_load((setup / "cfgrun" / "config.yaml").read_text())
    assert cfg["max_steps"] == 1, "a flag overrides the file"
    assert cfg["image_size"] == 16, "a flag overrides the file"
    assert cfg["width"] == 4, "the file overrides the default"
    assert cfg["precision"] == "auto"

    for text, message in [("nonsense_key: 3\n", "unknown option 'nonsense_key'"),
                          ("lr: fast\n", "option 'lr': expected float"),
                          ("- a list\n", "mapping")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        capsys.readouterr()
        assert train_main(base_args(setup, "badrun") + ["--config", str(bad)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (setup / "badrun").exists(), "nothing is written before the config is valid"


def test_a_non_empty_run_dir_is_refused_unless_resumed_before_anything_is_written(setup, tmp_path, capsys):
    """A finished run in R: training into R again replaced its transformer.pt, config.yaml and
    last.ckpt, and left a second style's ONNX beside the first."""
    run = tmp_path / "finished"
    (run / "checkpoints").mkdir(parents=True)
    for name, data in (("transformer.pt", b"old model"), ("config.yaml", b"old: config\n"),
                       ("checkpoints/last.ckpt", b"old checkpoint")):
        (run / name).write_bytes(data)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert train_main(base_args(setup, "unused", **{"run-dir": run})) == 2
    line = one_line_error(capsys.readouterr().err)
    assert str(run) in line and "--resume" in line and "--run-dir" in line
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    # Nor into another run's folder while resuming a checkpoint.
    assert train_main(["--resume", str(tmp_path / "elsewhere.ckpt"), "--run-dir", str(run)]) == 2
    capsys.readouterr()
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("damage", ["truncated", "runs-code", "foreign"])
def test_resume_of_a_bad_checkpoint_is_one_line_and_keeps_the_config(setup, tmp_path, capsys, evil_checkpoint,
                                                                     damage):
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    config = yaml.safe_dump({"style": str(setup / "style.png"), "data": str(setup / "data"), "max_steps": 4})
    (run / "config.yaml").write_text(config)
    marker = None
    if damage == "truncated":
        torch.save({"state_dict": {"net.w": torch.zeros(1000)}, "fastnst": {}, "global_step": 2}, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:700])
    elif damage == "runs-code":
        marker = evil_checkpoint(ckpt)
    else:
        torch.save({"state_dict": {}}, ckpt)
    code = train_main(["--resume", str(run), "--max-steps", "8"])
    assert marker is None or not marker.exists(), "resuming ran code from the checkpoint"
    assert code == 2
    assert str(ckpt) in one_line_error(capsys.readouterr().err)
    assert (run / "config.yaml").read_text() == config, "the run's config is untouched"
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.yaml"]


@pytest.mark.parametrize("option, fragment", [
    (["--lr", "nan"], "'lr'"), (["--lr", "-1"], "lr must be"), (["--lr", "0"], "lr must be"),
    (["--style-weight", "nan"], "finite"), (["--content-weight", "inf"], "finite"),
    (["--max-steps", "0"], "max_steps must be >= 1"), (["--max-steps", "-1"], "max_steps must be >= 1"),
    (["--num-workers", "-1"], "num_workers must be >= 0"), (["--holdout", "photo00.png", "nope.jpg"], "'nope.jpg'"),
    (["--accelerator", "banana"], "banana"), (["--batch-size", "0"], "batch_size"),
    (["--width", "0"], "width must be in 1..1024"), (["--width", "5000"], "width must be in 1..1024"),
    (["--devices", "-3"], "devices must be"), (["--early-steps", "2", "--early-image-size", "8"], "early_image_size")])
def test_bad_training_options_are_one_line_errors_before_anything_is_written(setup, capsys, option, fragment):
    assert train_main(base_args(setup, "badopts") + option) == 2
    assert fragment in one_line_error(capsys.readouterr().err)
    assert not (setup / "badopts").exists()


def test_a_yaml_syntax_error_names_the_line_column_and_cause(setup, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("width: 4\nstyle_layers: [relu1_1, relu2_1\nlr: 0.001\n")
    assert train_main(base_args(setup, "yamlrun") + ["--config", str(bad)]) == 2
    line = one_line_error(capsys.readouterr().err)
    assert f"{bad}:3:3:" in line and "flow sequence" in line and "expected ',' or ']'" in line
    assert not (setup / "yamlrun").exists()


def test_a_loss_that_becomes_nan_stops_training_and_keeps_the_last_good_checkpoint(setup, capsys, monkeypatch):
    """NaN from the 4th step on (as a diverging run's loss): no NaN model is saved, exported or reported as done."""
    real = StyleTransferModule.training_step

    def nan_from_step_3(self, batch, batch_idx):
        loss = real(self, batch, batch_idx)
        return loss * float("nan") if self.global_step >= 3 else loss

    monkeypatch.setattr(StyleTransferModule, "training_step", nan_from_step_3)
    run = setup / "nanrun"
    assert train_main(base_args(setup, "nanrun", **{"max-steps": 8})) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "training stopped at step 4: the loss became nan" in line
    assert f"{run / 'checkpoints' / 'last.ckpt'} (step 2)" in line and f"--resume {run}" in line
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert not (run / "transformer.pt").exists() and not list(run.glob("*.onnx"))
    assert not list((run / "checkpoints").glob("step0000004*"))


def test_style_layer_deeper_than_weights_is_an_error_before_training(setup, capsys):
    assert train_main(base_args(setup, "deep") + ["--style-layers", "relu4_1"]) == 2
    assert "conv4_1" in capsys.readouterr().err
    assert not (setup / "deep").exists()


def test_lr_factor_is_constant_then_follows_a_cosine_to_zero():
    late = [lr_factor(s, 100, 40) for s in range(100)]
    assert late[:61] == [1.0] * 61 and late[80] == pytest.approx(0.5) and late[99] == pytest.approx(0.0, abs=1e-2)
    assert all(a >= b for a, b in zip(late, late[1:])), "monotone"
    assert lr_factor(50, None, 40) == 1.0, "no known end: no decay"
    assert lr_factor(99, 100, 0) == 1.0, "0 decay steps: constant"
    assert lr_factor(5, 10, 2000) == pytest.approx(0.5), "a run shorter than the decay: the cosine spans it"
    recipe = TrainConfig()
    assert recipe.max_steps - recipe.lr_decay_steps == recipe.early_steps, "the decay spans the second stage"


def test_a_late_cosine_follows_the_global_step_of_a_run_resumed_without_one(setup):
    run = setup / "late_decay"
    assert train_main(base_args(setup, "late_decay", **{"keep-checkpoints": -1, "lr-decay-steps": 0})) == 0
    resumed = ["--resume", str(run / "checkpoints" / "step0000004.ckpt"), "--max-steps", "8", "--lr-decay-steps", "4"]
    assert train_main(resumed) == 0

    def lr_at(step):
        ckpt = torch.load(run / "checkpoints" / f"step{step:07d}.ckpt", weights_only=True)
        return ckpt["optimizer_states"][0]["param_groups"][0]["lr"]
    # The lr a checkpoint saves is the next step's: steps 4-7 decay from 1e-3 to 0 at step 8.
    assert lr_at(4) == pytest.approx(1e-3)
    assert lr_at(6) == pytest.approx(0.5e-3) and lr_at(8) == pytest.approx(0.0, abs=1e-9)


def test_the_early_steps_train_against_the_early_style_image_and_validate_against_the_final_one(monkeypatch):
    torch.manual_seed(0)
    vgg = VGGFeatures(TrainConfig().loss.layers)
    style, early_style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 16, 16)
    config = TrainConfig(width=4, early_style_size=16, early_steps=2, structure_floor=0.0, early_style_weight=0.0)
    module = StyleTransferModule(vgg, style, config, early_style_image=early_style)
    logged = {}
    monkeypatch.setattr(module, "log_dict", lambda d, **k: logged.update(d))
    photos = torch.rand(2, 3, 16, 16)

    def total(loss):  # the loss's total for the net's current output
        with torch.no_grad():
            return loss(module.net(photos), loss.content_targets(photos))["total"].item()

    at_final, at_early = total(module.loss), total(module.early_loss)
    assert at_final != pytest.approx(at_early), "the two style images must give different losses"
    for step, expected in ((0, at_early), (1, at_early), (2, at_final), (50, at_final)):
        monkeypatch.setattr(type(module), "global_step", property(lambda self, s=step: s))
        with torch.no_grad():
            assert module.training_step(photos, 0).item() == pytest.approx(expected, rel=1e-5), step
    monkeypatch.setattr(type(module), "global_step", property(lambda self: 0))
    with torch.no_grad():
        module.validation_step(photos, 0)
    assert logged["val/total"].item() == pytest.approx(at_final, rel=1e-5), "validation scores the final target"
    with pytest.raises(FastNSTError, match="early_style_image"):
        StyleTransferModule(vgg, style, config)
    weighted = StyleTransferModule(vgg, style, dataclasses.replace(config, early_style_weight=5.0),
                                   early_style_image=early_style)
    assert weighted.early_loss.config.style_weight == 5.0
    assert weighted.loss.config.style_weight == TrainConfig().loss.style_weight, "the rest keep the loss's weight"
    assert module.early_loss.config.style_weight == module.loss.config.style_weight, "unset: style_weight"


def test_a_resumed_run_trains_against_the_style_grams_its_config_names(setup):
    # The style Grams are buffers, saved in every checkpoint; a resume with another --style-size (or
    # without the early stage) must train against the new targets, not the checkpoint's.
    def grams(run: Path) -> dict[str, torch.Tensor]:
        state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
        return {k: v for k, v in state.items() if ".gram_" in k}

    run, fresh = setup / "regram", setup / "regram_fresh"
    assert train_main(base_args(setup, "regram", **{"style-size": 24, "max-steps": 2, "early-steps": 4000,
                                                    "early-image-size": 16, "early-batch-size": 2})) == 0
    before = grams(run)
    assert any(k.startswith("early_loss.") for k in before), "the defaults' early stage has Grams of its own"
    assert train_main(["--resume", str(run), "--max-steps", "4", "--style-size", "40", "--early-steps", "0"]) == 0
    assert train_main(base_args(setup, "regram_fresh", **{"style-size": 40, "max-steps": 1})) == 0
    after, expected = grams(run), grams(fresh)
    assert after.keys() == expected.keys() and not [k for k in after if k.startswith("early_loss.")]
    for k, v in expected.items():
        assert torch.allclose(after[k], v), k
    assert not torch.allclose(after["loss.gram_relu1_1"], before["loss.gram_relu1_1"]), "the 24 px Grams are gone"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4 and ckpt["fastnst"]["meta"]["style_size"] == 40


def test_the_early_steps_train_on_their_own_crops_then_switch_on_the_step(setup, monkeypatch):
    # 4 training photos: at early batch 2 an epoch is 2 steps, so the switch at step 3 falls mid-epoch;
    # the early loader's last epoch must end there, and a resume inside the early steps must too.
    seen: dict[int, tuple[int, ...]] = {}
    train_step = StyleTransferModule.training_step

    def record(self, batch, batch_idx):
        seen[self.global_step] = tuple(batch.shape)
        return train_step(self, batch, batch_idx)

    monkeypatch.setattr(StyleTransferModule, "training_step", record)
    run = setup / "crops"
    args = base_args(setup, "crops", **{"early-image-size": 16, "early-batch-size": 2, "image-size": 24,
                                        "batch-size": 1, "early-style-size": 24, "early-steps": 3,
                                        "max-steps": 6, "checkpoint-every": 1, "keep-checkpoints": -1})
    assert train_main(args) == 0
    early, late = (2, 3, 16, 16), (1, 3, 24, 24)
    assert seen == {0: early, 1: early, 2: early, 3: late, 4: late, 5: late}
    seen.clear()
    assert train_main(["--resume", str(run / "checkpoints" / "step0000001.ckpt"), "--max-steps", "5"]) == 0
    assert seen == {1: early, 2: early, 3: late, 4: late}


def test_early_crop_options_reach_the_loader(setup):
    config = data_config(setup / "data", image_size=24, batch_size=1, early_image_size=16, early_batch_size=2,
                         early_steps=100, log_images=1)
    dm = StyleDataModule(config)
    dm.setup("fit")
    early = dm.train_dataloader()
    assert next(iter(early)).shape == (2, 3, 16, 16) and len(early) == 2, "100 steps left: all 4 photos"
    dm.config = dataclasses.replace(config, early_steps=0)  # past the early steps
    final = dm.train_dataloader()
    assert next(iter(final)).shape == (1, 3, 24, 24) and dm.train_dataloader() is final, "built once"
    assert next(iter(dm.val_dataloader())).shape == (1, 3, 24, 24), "validation at the final crops"
    for bad in ({"early_image_size": 8}, {"early_batch_size": 0}):
        with pytest.raises(FastNSTError, match="early_"):
            TrainConfig(**bad)


def test_training_precision_picks_bf16_only_where_native():
    assert training_precision("32-true") == "32-true" and training_precision("bf16-mixed") == "bf16-mixed"
    expected = "bf16-mixed" if native_bf16("cpu") else "32-true"
    assert training_precision("auto", "cpu") == expected


def test_recipe_options_train_and_reach_the_checkpoint(setup):
    run = setup / "recipe"
    args = base_args(setup, "recipe", **{"lr-decay-steps": 3, "image-size": 32, "log-every": 1,
                                         "early-style-size": 24, "early-steps": 2, "early-style-weight": 3,
                                         "early-image-size": 16, "early-batch-size": 2, "grad-clip": 0.5})
    assert train_main(args) == 0
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)  # scheduler state too: no pickled objects
    assert "early_loss.gram_relu1_1" in ckpt["state_dict"], "the early style image's Grams are saved"
    assert not [k for k in ckpt["state_dict"] if ".vgg." in k], "neither loss's copy of the VGG is saved"
    assert train_main(["--resume", str(run), "--max-steps", "5"]) == 0, "a run with both targets resumes"
    assert ckpt["lr_schedulers"], "the schedule's position is saved for resuming"
    saved = ckpt["hyper_parameters"]["config"]
    assert saved["lr_decay_steps"] == 3 and saved["grad_clip"] == 0.5 and saved["early_steps"] == 2
    recipe = ckpt["fastnst"]["meta"]["config"]
    assert recipe["early_style_size"] == 24 and recipe["image_size"] == 32 and "run_dir" not in recipe
    header = (run / "csv" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "time/train_seconds" in header, "wall time is logged beside the losses"


@pytest.mark.parametrize("flag", [("--lr-decay-steps", "-1"), ("--early-steps", "-1"),
                                  ("--early-style-size", "0"), ("--early-style-size", "-5"),
                                  ("--early-style-weight", "-1"), ("--early-style-weight", "nan"),
                                  ("--grad-clip", "-1"), ("--grad-clip", "inf"), ("--structure-floor", "1"),
                                  ("--structure-floor", "-0.1"), ("--structure-floor", "nan"),
                                  ("--style-size", "8")])
def test_bad_recipe_options_are_one_line_errors(setup, capsys, flag):
    assert train_main(base_args(setup, "badrecipe", **{"early-steps": 2}) + list(flag)) == 2
    err = capsys.readouterr().err
    assert flag[0].lstrip("-").replace("-", "_") in err and "Traceback" not in err


def test_ddp_two_cpu_processes(setup, tmp_path):
    """Lightning's own DDP (gloo) with 2 processes runs a few steps and writes one run directory."""
    run = tmp_path / "ddp"
    args = base_args(setup, "unused", **{"run-dir": run, "devices": 2, "strategy": "ddp", "max-steps": 2})
    env = {k: v for k, v in os.environ.items() if k != "FASTNST_RUN_DIR"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stderr + proc.stdout
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 2
    assert (run / "transformer.pt").exists()


@pytest.mark.weights
def test_short_real_run_lowers_the_training_loss(tmp_path):
    weights = os.environ.get("FASTNST_VGG_WEIGHTS")
    if not weights or not Path(weights).is_file() or not (SHARED / "data" / "content").is_dir():
        pytest.skip("needs FASTNST_VGG_WEIGHTS and ../shared/data")

    data = tmp_path / "photos"
    data.mkdir()
    for p in sorted((SHARED / "data" / "content").glob("*.jpg"))[:24]:
        (data / p.name).symlink_to(p)
    run = tmp_path / "run"
    args = ["--style", str(SHARED / "data" / "style" / "mosaic.jpg"), "--data", str(data), "--run-dir", str(run),
            "--vgg-weights", weights, "--image-size", "64", "--batch-size", "4", "--max-steps", "40",
            "--val-every", "1000", "--checkpoint-every", "1000", "--log-every", "1", "--num-workers", "0",
            "--width", "16", "--lr", "0.005", "--seed", "0", "--early-steps", "0", "--style-size", "256"]
    assert train_main(args) == 0
    rows = list(csv.DictReader(open(next(run.glob("csv/version_*/metrics.csv")))))
    totals = [float(r["train/total"]) for r in rows if r.get("train/total")]
    assert len(totals) >= 30
    first, last = np.mean(totals[:5]), np.mean(totals[-5:])
    assert last < 0.7 * first, (first, last)


def test_a_run_resumed_after_an_interrupt_keeps_its_checkpoint_and_validation_steps(setup, capsys, monkeypatch):
    """Ctrl-C lands inside a step; the resumed run still checkpoints and validates at multiples of the interval."""
    real = StyleTransferModule.training_step

    def interrupt_at_step_3(self, batch, batch_idx):
        if self.global_step == 3:  # mid-epoch: 2 steps an epoch here
            raise KeyboardInterrupt
        return real(self, batch, batch_idx)

    run = setup / "ctrlc"
    with monkeypatch.context() as m:
        m.setattr(StyleTransferModule, "training_step", interrupt_at_step_3)
        assert train_main(base_args(setup, "ctrlc", **{"max-steps": 8, "keep-checkpoints": -1})) == 130
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 3
    capsys.readouterr()
    assert train_main(["--resume", str(run)]) == 0
    periodic = sorted(run.glob("checkpoints/step*.ckpt"))
    assert [p.name for p in periodic] == [f"step{s:07d}.ckpt" for s in (2, 4, 6, 8)]
    assert [torch.load(p, weights_only=True)["global_step"] for p in periodic] == [2, 4, 6, 8]
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [f"step{s:07d}.png" for s in (2, 4, 6, 8)]


@pytest.mark.parametrize("structure, warned", [(None, False), (0.75, False), (0.6, False), (0.53, True)])
def test_structure_advice_only_under_the_floor(structure, warned):
    advice = structure_advice(structure)
    assert (advice is not None) == warned
    if warned:
        assert "0.53" in advice and "--style-weight" in advice and "--structure-floor" in advice


def test_a_run_that_paints_the_photo_away_ends_with_advice(setup, capsys, monkeypatch):
    import fastnst.cli.train
    import fastnst.training

    monkeypatch.setattr(fastnst.training, "last_logged", lambda run_dir, key: 0.41 if key == "val/structure" else None)
    assert train_main(base_args(setup, "advice", **{"max-steps": 2})) == 0
    assert "validation structure" not in capsys.readouterr().err, "a 2-step net is still learning: no advice"
    monkeypatch.setattr(fastnst.cli.train, "ADVICE_MIN_STEPS", 2)
    assert train_main(base_args(setup, "advice2", **{"max-steps": 2})) == 0
    err = capsys.readouterr().err
    assert "validation structure 0.41" in err and "--style-weight" in err and "Traceback" not in err


def test_the_trained_net_is_the_average_of_the_weights_over_the_last_steps(setup):
    # Checkpoints at every step hold the weights after that step ("net."): the shipped net must be
    # the mean of those of steps 4..6, and a checkpoint mid-way reads as the mean so far.
    run = setup / "average"
    assert train_main(base_args(setup, "average", **{"max-steps": 6, "average-steps": 3, "checkpoint-every": 1,
                                                     "keep-checkpoints": -1})) == 0

    def saved(step: int) -> dict[str, torch.Tensor]:
        state = torch.load(run / "checkpoints" / f"step{step:07d}.ckpt", weights_only=True)["state_dict"]
        return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}

    def weights(path: Path) -> dict[str, torch.Tensor]:
        return load_transformer(path)[0].state_dict()

    def mean(steps) -> dict[str, torch.Tensor]:
        return {k: sum(saved(s)[k] for s in steps) / len(steps) for k in saved(steps[0])}

    def close(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)

    assert not close(saved(5), saved(6)), "the weights move every step"
    assert close(weights(run / "transformer.pt"), mean([4, 5, 6]))
    assert close(weights(run / "checkpoints" / "last.ckpt"), mean([4, 5, 6]))
    assert close(weights(run / "checkpoints" / "step0000005.ckpt"), mean([4, 5]))
    assert close(weights(run / "checkpoints" / "step0000003.ckpt"), saved(3)), "before the average starts"

    # Resumed for 2 more steps, the average starts again over the new last 3 (steps 6..8).
    assert train_main(["--resume", str(run), "--max-steps", "8"]) == 0
    assert close(weights(run / "transformer.pt"), mean([6, 7, 8]))


def test_a_run_saved_without_averaging_resumes_with_it_and_back(setup):
    run = setup / "average_resume"
    assert train_main(base_args(setup, "average_resume", **{"max-steps": 2, "average-steps": 0})) == 0
    assert not [k for k in torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                if k.startswith("net_average.")]
    assert train_main(["--resume", str(run), "--max-steps", "4", "--average-steps", "1"]) == 0
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert last["net_average.n_averaged"].item() == 1
    live = {k.removeprefix("net."): v for k, v in last.items() if k.startswith("net.")}
    shipped = load_transformer(run / "transformer.pt")[0].state_dict()
    assert all(torch.equal(shipped[k], live[k]) for k in live), "the average of one step is its weights"
    assert train_main(["--resume", str(run), "--max-steps", "5", "--average-steps", "0"]) == 0
    assert not [k for k in torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                if k.startswith("net_average.")]


def test_the_structure_floor_lowers_the_style_weight_under_it_and_gives_it_back_over_it():
    log_scale, floor = torch.zeros(()), 0.65
    for _ in range(440):  # 0.05 under the floor for 440 steps: about a third of the weight
        log_scale = next_style_log_scale(log_scale, torch.tensor(0.60), floor)
    assert log_scale.exp().item() == pytest.approx(math.exp(-440 * STRUCTURE_GAIN * 0.05), rel=1e-5)
    assert 0.3 < log_scale.exp().item() < 0.35
    for _ in range(10_000):
        log_scale = next_style_log_scale(log_scale, torch.tensor(0.0), floor)
    assert log_scale.exp().item() == pytest.approx(STYLE_SCALE_MIN), "never below the minimum"
    for _ in range(10_000):
        log_scale = next_style_log_scale(log_scale, torch.tensor(0.9), floor)
    assert log_scale.item() == 0.0, "back to the configured weight, never above it"


def test_the_structure_floor_follows_each_second_stage_steps_structure_and_resumes(setup):
    run = setup / "floor"
    args = base_args(setup, "floor", **{"max-steps": 6, "keep-checkpoints": -1, "log-every": 1,
                                        "early-style-size": 24, "early-steps": 2, "early-image-size": 16,
                                        "early-batch-size": 2, "structure-floor": 0.9999})
    assert train_main(args) == 0

    def scale_at(step):
        return torch.load(run / "checkpoints" / f"step{step:07d}.ckpt", weights_only=True)["state_dict"][STYLE_SCALE_KEY]

    def logged(version):
        rows = csv.DictReader(open(run / "csv" / f"version_{version}" / "metrics.csv"))
        return {int(r["step"]): (float(r["train/structure"]), float(r["train/style_scale"]))
                for r in rows if r.get("train/structure")}

    first = logged(0)
    assert sorted(first) == [2, 3, 4, 5], "measured in the second stage only"
    assert scale_at(2).item() == 0.0, "the early steps keep the full weight"
    expected = 0.0
    for step in range(2, 6):
        structure, style_scale = first[step]
        assert style_scale == pytest.approx(math.exp(expected), rel=1e-5), "each step trains at the scale so far"
        expected = min(0.0, max(math.log(STYLE_SCALE_MIN), expected + STRUCTURE_GAIN * (structure - 0.9999)))
        if step % 2:
            assert scale_at(step + 1).item() == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert expected < 0, "the net's structure is under 0.9999: the weight fell"

    assert train_main(["--resume", str(run), "--max-steps", "8"]) == 0
    # (Lightning labels a resumed run's rows one step on; its first row is its first step, step 6.)
    assert logged(1)[min(logged(1))][1] == pytest.approx(math.exp(expected), rel=1e-5), \
        "a resumed run continues from the saved scale"

    # A checkpoint saved before the floor existed has no scale: it resumes at the full weight.
    old = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    del old["state_dict"][STYLE_SCALE_KEY]
    torch.save(old, run / "checkpoints" / "last.ckpt")
    assert train_main(["--resume", str(run), "--max-steps", "9"]) == 0
    assert logged(2)[min(logged(2))][1] == 1.0


def test_the_stability_term_trains_in_the_second_stage_and_is_logged_only_when_asked_for(setup):
    args = base_args(setup, "stable", **{"stability-weight": 10, "log-every": 1, "early-steps": 2, "max-steps": 4,
                                         "early-image-size": 16, "early-batch-size": 2, "early-style-size": 24})
    assert train_main(args) == 0
    rows = list(csv.DictReader(open(setup / "stable" / "csv" / "version_0" / "metrics.csv")))
    assert sorted(int(r["step"]) for r in rows if r.get("train/stability")) == [2, 3], "second stage only"
    ckpt = torch.load(setup / "stable" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["fastnst"]["meta"]["config"]["stability_weight"] == 10
    assert train_main(base_args(setup, "unstable", **{"log-every": 1})) == 0
    assert "stability" not in (setup / "unstable" / "csv" / "version_0" / "metrics.csv").read_text().splitlines()[0]


def test_a_second_process_on_a_run_folder_is_refused_and_a_dead_ones_lock_is_not(setup, capsys):
    from fastnst.runlock import run_lock

    run = setup / "locked"
    with run_lock(run):  # another open of the lock file: as another process holds it
        assert train_main(base_args(setup, "locked")) == 2
    assert "in use by another fastnst process" in one_line_error(capsys.readouterr().err)
    assert not (run / "config.yaml").exists()
    # A process that died holding the lock (SIGKILL) leaves it free.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; sys.path.insert(0, sys.argv[1]);"
                               "from fastnst.runlock import run_lock\nwith run_lock(sys.argv[2]): print('held', flush=True);"
                               " time.sleep(60)", str(REPO), str(run)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    assert train_main(base_args(setup, "locked")) == 0


def test_a_fifo_in_the_data_folder_is_not_a_photo(tmp_path):
    write_photos(tmp_path, 2)
    os.mkfifo(tmp_path / "pipe.jpg")  # opening it would block until a writer comes
    assert [p.name for p in find_images(tmp_path)] == ["photo00.png", "photo01.jpg"]


def test_a_resume_that_changes_the_architecture_or_the_style_is_refused_before_anything_is_written(setup, capsys,
                                                                                                   tmp_path):
    run = setup / "rearch"
    assert train_main(base_args(setup, "rearch", **{"max-steps": 2})) == 0
    saved = (run / "config.yaml").read_text()
    assert train_main(["--resume", str(run), "--max-steps", "4", "--width", "8"]) == 2
    assert "width 4, not 8" in one_line_error(capsys.readouterr().err)
    other = tmp_path / "other.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(other)
    assert train_main(["--resume", str(run), "--max-steps", "4", "--style", str(other)]) == 2
    assert "a run learns one style" in one_line_error(capsys.readouterr().err)
    assert (run / "config.yaml").read_text() == saved
    assert train_main(["--resume", str(run), "--max-steps", "4"]) == 0, "still resumable as it was"


def test_a_moved_run_resumes_where_it_is(setup):
    old, new = setup / "before_move", setup / "after_move"
    assert train_main(base_args(setup, "before_move", **{"max-steps": 2})) == 0
    old.rename(new)
    assert train_main(["--resume", str(new), "--max-steps", "4"]) == 0
    assert not old.exists()
    assert torch.load(new / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    assert read_yaml(new / "config.yaml")["run_dir"] == str(new)


def test_a_very_thin_photo_is_cropped_to_a_bounded_aspect_before_zooming(tmp_path):
    import random

    from fastnst.data import MAX_ASPECT, center_crop, limit_aspect, random_crop

    strip = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1, 20000, 3), dtype=np.uint8))
    assert limit_aspect(strip).size == (round(MAX_ASPECT), 1)
    assert limit_aspect(strip.transpose(Image.Transpose.TRANSPOSE), random.Random(0)).size == (1, round(MAX_ASPECT))
    assert random_crop(strip, 64, random.Random(0)).size == (64, 64) and center_crop(strip, 64).size == (64, 64)
    photo = Image.new("RGB", (300, 200))
    assert limit_aspect(photo) is photo, "ordinary photos are left whole"


def test_photos_gone_mid_run_save_a_checkpoint_and_end_in_one_line(setup, capsys, monkeypatch):
    from fastnst.data import CropDataset, TrainingDataGone

    real = CropDataset.__getitem__
    calls = {"n": 0}

    def vanish_after_a_while(self, index):
        calls["n"] += 1
        if self.train and calls["n"] > 6:  # batch 2: three steps' photos, then the folder is gone
            raise TrainingDataGone("no training photo could be read any more (the last tried: x.jpg)")
        return real(self, index)

    monkeypatch.setattr(CropDataset, "__getitem__", vanish_after_a_while)
    run = setup / "vanish"
    assert train_main(base_args(setup, "vanish", **{"max-steps": 8})) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "could be read any more" in line and f"--resume {run}" in line
    # Lightning fetches a batch ahead: the photos ran out during step 2 or 3; that step's checkpoint is kept.
    step = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert step in (2, 3) and f"at step {step};" in line and f"(step {step})" in line


def test_a_run_folder_inside_the_data_folder_is_refused(setup, capsys):
    assert train_main(base_args(setup, "unused", **{"run-dir": setup / "data" / "runs" / "x"})) == 2
    assert "inside --data" in one_line_error(capsys.readouterr().err)
    assert not (setup / "data" / "runs").exists()


def test_a_fresh_run_folder_holding_only_a_killed_saves_temp_file_is_used_and_cleaned(setup):
    run = setup / "stale"
    run.mkdir()
    from fastnst.files import atomic_write

    stale = None
    try:
        with atomic_write(run / "config.yaml") as f:
            stale = Path(f.name)
            raise RuntimeError("killed")
    except RuntimeError:
        pass
    # atomic_write removes its temp file on an exception; a SIGKILL does not: put one back.
    stale.write_text("half a file")
    assert train_main(base_args(setup, "stale", **{"max-steps": 2})) == 0
    assert not stale.exists()


def test_a_run_shorter_than_val_every_still_leaves_a_sample_grid(setup):
    assert train_main(base_args(setup, "short", **{"max-steps": 1, "val-every": 100})) == 0
    assert [p.name for p in (setup / "short" / "samples").glob("*.png")] == ["step0000001.png"]


def test_lightnings_hardware_lines_and_adverts_stay_off_the_console(setup, capsys, caplog):
    caplog.set_level(logging.INFO)
    assert train_main(base_args(setup, "quiet", **{"max-steps": 1})) == 0
    said = capsys.readouterr().err + "".join(r.getMessage() for r in caplog.records)
    assert "training into" in said and "GPU available" not in said and "TPU available" not in said
    assert "Tip" not in said


def test_a_full_disk_at_a_checkpoint_is_one_line_that_says_how_to_resume(setup, capsys, monkeypatch):
    import errno

    import fastnst.callbacks

    def full(obj, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(fastnst.callbacks, "atomic_torch_save", full)
    assert train_main(base_args(setup, "full", **{"max-steps": 4})) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "is full" in line and "no checkpoint had been saved yet" in line
