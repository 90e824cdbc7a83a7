"""``train(config) -> run directory``: train a fast style-transfer net for one style, from Python.

    from fastnst import TrainConfig, train
    run = train(TrainConfig(style="mosaic.jpg", data="photos/", max_steps=3000))
    # run / "transformer.pt", run / "mosaic.onnx", run / "checkpoints" / "last.ckpt", run / "config.yaml"

This composes the pieces: the data (data.py), the style image and VGG (image.py, vgg.py), the
LightningModule (module.py), a Lightning Trainer with our callbacks (callbacks.py), then the
export (export.py). It parses no argv and prints nothing of its own (Lightning draws its progress
bar); it writes only the run directory. Errors a user can fix are FastNSTError; Ctrl-C/SIGTERM
saves a checkpoint and raises KeyboardInterrupt saying how to resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import hashlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import yaml

from fastnst.errors import FastNSTError
from fastnst.files import is_temp_file
from fastnst.runlock import LOCK_NAME, run_lock
from fastnst.train_config import TrainConfig


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_resume(path: str | os.PathLike) -> tuple[Path, Path]:
    """A run directory or a checkpoint to resume -> (run directory, checkpoint to continue from)."""
    path = Path(path)
    if path.is_dir():
        run_dir, ckpt = path, path / "checkpoints" / "last.ckpt"
    elif path.is_file():
        ckpt = path
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    else:
        raise FastNSTError(f"--resume {path}: no such run directory or checkpoint")
    if not ckpt.is_file():
        raise FastNSTError(f"--resume {path}: no checkpoint found ({ckpt} is missing)")
    return run_dir, ckpt


def read_resume_checkpoint(ckpt: Path) -> int:
    """Check a checkpoint to resume before anything is written; return its step."""
    return _resume_info(ckpt)["global_step"]


def _resume_info(ckpt: Path) -> dict:
    from fastnst.checkpoint import read_checkpoint

    obj = read_checkpoint(ckpt)  # weights_only: refuses files that could run code
    if not isinstance(obj.get("fastnst"), dict) or not isinstance(obj.get("global_step"), int):
        raise FastNSTError(f"--resume {ckpt}: not a fastnst training checkpoint")
    return obj


def check_resumable(ckpt: Path, saved: dict, config: TrainConfig, style_sha256: str) -> None:
    """Refuse, before anything is written, a resume that changes what the checkpoint holds: the
    net's architecture (its weights would not fit) or the style image (a run learns one style)."""
    saved = saved["fastnst"]  # what _resume_info(ckpt) read: the file is read once
    model, meta = saved.get("model"), saved.get("meta")
    width = model.get("width") if isinstance(model, dict) else None
    if width != config.width:
        raise FastNSTError(f"--resume {ckpt}: the run's net has width {width}, not {config.width}; the architecture "
                           "of a run cannot change (start a new run for another width)")
    sha = meta.get("style_sha256") if isinstance(meta, dict) else None
    if sha and sha != style_sha256:
        raise FastNSTError(f"--resume {ckpt}: the run learns {meta.get('style_name') or 'another style image'}, not "
                           f"{config.style}; a run learns one style (start a new run for another)")


def check_run_dir(run_dir: Path, resuming: Path | None, data: str = "") -> None:
    """Refuse to train into a folder that holds files, unless it is the run being resumed: a new run
    would replace the old one's transformer.pt, config and checkpoints, and mix in its own. Refuse
    one inside the data folder too: its samples would become training photos."""
    if run_dir.exists() and not run_dir.is_dir():
        raise FastNSTError(f"--run-dir {run_dir}: exists and is not a folder")
    if data and run_dir.resolve().is_relative_to(Path(data).resolve()):
        raise FastNSTError(f"--run-dir {run_dir} is inside --data {data}: its sample images would be trained on; "
                           "put runs elsewhere")
    if resuming is not None and run_dir.resolve() == resuming.resolve():
        return
    # Our own leftovers do not count: the lock file, and a temporary file a killed save left.
    if run_dir.is_dir() and any(p.name != LOCK_NAME and not is_temp_file(p) for p in run_dir.iterdir()):
        raise FastNSTError(f"--run-dir {run_dir}: not empty (a previous run?); continue that run with "
                           f"--resume {run_dir}, or give a fresh --run-dir")


def describe_last_checkpoint(ckpt: Path, run_dir: Path) -> str:
    if not ckpt.is_file():
        return "no checkpoint had been saved yet"
    try:
        step = read_resume_checkpoint(ckpt)
    except FastNSTError:
        return f"{ckpt} is not readable"
    return f"the last good checkpoint, {ckpt} (step {step}), is kept: --resume {run_dir} continues from it"


def training_precision(precision: str, accelerator: str = "auto") -> str:
    """Lightning's precision for a run: ``precision`` itself, or for "auto" bf16-mixed where bf16 is
    native to the device that will train (see stylize.native_bf16), else 32-true."""
    if precision != "auto":
        return precision
    import torch

    from fastnst.stylize import native_bf16

    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if native_bf16("cuda" if gpu else "cpu") else "32-true"


def run_dir_of(config: TrainConfig) -> Path:
    """Where ``config`` trains: its run_dir, else the one a DDP launcher's rank 0 picked
    ($FASTNST_RUN_DIR, inherited by the processes it starts), else runs/<style>-<date>-<time>."""
    return Path(config.run_dir or os.environ.get("FASTNST_RUN_DIR") or
                Path("runs") / f"{Path(config.style).stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}")


def config_yaml(config: TrainConfig) -> str:
    """The resolved config as run_dir/config.yaml holds it: flat keys, the loss's fields among them,
    so ``fastnst train --resume RUN`` (and every older run's file) reads it back."""
    flat = {}
    for key, value in dataclasses.asdict(config).items():
        flat |= value if isinstance(value, dict) else {key: value}
    return yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v for k, v in flat.items()}, sort_keys=False)


def logged_rows(run_dir: str | os.PathLike) -> Iterator[dict[str, str]]:
    """Every row of a run's CSV logs, run_dir/csv/version_*/metrics.csv in version order (each
    resume adds a version); a metric a row did not log is an empty string."""
    import csv

    versions = sorted(Path(run_dir, "csv").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:]))
    for path in versions:
        with open(path, newline="") as f:
            yield from csv.DictReader(f)


def last_logged(run_dir: str | os.PathLike, key: str) -> float | None:
    """The last value of ``key`` (e.g. "val/structure") in a run's CSV logs, or None if never logged."""
    values = [row[key] for row in logged_rows(run_dir) if row.get(key)]
    return float(values[-1]) if values else None


def train(config: TrainConfig, *, resume: str | os.PathLike | None = None) -> Path:
    """Train per ``config``; return the run directory, which then holds config.yaml, transformer.pt,
    <style>.onnx (verified export), checkpoints/, samples/ (validation grids), tensorboard/ and csv/.

    ``resume``: a run directory or checkpoint to continue from (its step count, optimizer state and
    clock); ``config.run_dir`` unset then means that run's directory. Everything is checked before
    any slow work or any write. Raises FastNSTError for a mistake (the run's last good checkpoint is
    named when a loss becomes NaN), KeyboardInterrupt after an interrupted run saved its checkpoint.
    """
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.utilities.exceptions import MisconfigurationException
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    from fastnst.callbacks import (ProgressBar, SafeCheckpointIO, SaveOnInterrupt, SaveValidationGrid,
                                   StopOnNonFiniteLoss, TrainingClock)
    from fastnst.data import StyleDataModule
    from fastnst.files import atomic_write, remove_temp_files
    from fastnst.image import load_image, to_tensor
    from fastnst.losses import STRUCTURE_LAYER
    from fastnst.module import StyleTransferModule
    from fastnst.vgg import load_vgg

    if not config.style:
        raise FastNSTError("--style is required (the style image to learn)")
    if not config.data:
        raise FastNSTError("--data is required (a folder of training photos)")
    ckpt_path = resume_dir = None
    if resume is not None:
        resume_dir, ckpt_path = find_resume(resume)
        resumed = _resume_info(ckpt_path)  # a damaged or foreign file stops here, before anything is written
        if config.run_dir is None:
            config = dataclasses.replace(config, run_dir=str(resume_dir))

    # Check the inputs before any slow work starts. One run directory for every DDP rank: rank 0
    # picks it, the processes it launches inherit it (and find it holding rank 0's config: only
    # rank 0 checks it).
    style_path = Path(config.style)
    run_dir = run_dir_of(config)
    if rank_zero_only.rank == 0:
        check_run_dir(run_dir, resume_dir, config.data)
    style_sha256 = sha256_file(style_path) if style_path.is_file() else ""
    if ckpt_path is not None:
        check_resumable(ckpt_path, resumed, config, style_sha256)
    data = StyleDataModule(config)
    data.prepare_files()
    style = to_tensor(load_image(style_path, config.style_size, upscale=True))
    early_style = (to_tensor(load_image(style_path, config.early_style_size, upscale=True))
                   if config.early_steps else None)
    # The structure floor measures the output at STRUCTURE_LAYER, which the loss's layers may stop short of.
    layers = config.loss.layers + ((STRUCTURE_LAYER,) if config.structure_floor else ())
    vgg = load_vgg(tuple(dict.fromkeys(layers)), arch=config.loss.vgg_arch, weights=config.vgg_weights)

    os.environ["FASTNST_RUN_DIR"] = str(run_dir)
    config = dataclasses.replace(config, run_dir=str(run_dir))

    pl.seed_everything(config.seed, workers=True, verbose=False)
    precision = training_precision(config.precision, config.accelerator)
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the frozen VGG, on purpose
    model = StyleTransferModule(vgg, style, config, early_style_image=early_style, style_name=style_path.stem,
                                style_sha256=style_sha256)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)

    ckpt_dir = run_dir / "checkpoints"
    periodic = pl.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
        every_n_train_steps=config.checkpoint_every, save_top_k=config.keep_checkpoints, monitor="step",
        mode="max", save_last=True)
    callbacks = [StopOnNonFiniteLoss(), periodic, SaveOnInterrupt(ckpt_dir / "last.ckpt"),
                 SaveValidationGrid(run_dir / "samples"), TrainingClock(), ProgressBar(refresh_rate=1)]
    # CSV logs get a version_N folder per (re)start, so a resume never erases earlier logs.
    loggers = [pl.loggers.TensorBoardLogger(run_dir, name="", version="tensorboard"),
               pl.loggers.CSVLogger(run_dir, name="csv")]
    try:
        trainer = pl.Trainer(
            max_steps=config.max_steps, precision=precision, accelerator=config.accelerator,
            devices=config.devices, strategy=config.strategy, num_nodes=config.num_nodes,
            val_check_interval=config.val_every, check_val_every_n_epoch=None, log_every_n_steps=config.log_every,
            callbacks=callbacks, logger=loggers, default_root_dir=run_dir, enable_model_summary=False,
            num_sanity_val_steps=0, use_distributed_sampler=True, plugins=[SafeCheckpointIO()],
            reload_dataloaders_every_n_epochs=1,  # StyleDataModule switches crops after the early steps
            gradient_clip_val=config.grad_clip or None)
    except (MisconfigurationException, ValueError) as e:  # e.g. an accelerator/precision/devices Lightning rejects
        raise FastNSTError(f"invalid trainer option: {str(e).splitlines()[0]}") from None
    # One process at a time in a run folder (rank 0 holds the lock for every rank).
    with run_lock(run_dir) if trainer.is_global_zero else contextlib.nullcontext():
        if trainer.is_global_zero:
            check_run_dir(run_dir, resume_dir, config.data)  # again, now that no other process can write here
            for folder in (run_dir, run_dir / "checkpoints"):  # a kill mid-save leaves its temporary file
                remove_temp_files(folder)
            with atomic_write(run_dir / "config.yaml") as f:
                f.write(config_yaml(config).encode())
        _fit(trainer, model, data, ckpt_path, run_dir, ckpt_dir)
    return run_dir


def _fit(trainer, model, data, ckpt_path: Path | None, run_dir: Path, ckpt_dir: Path) -> None:
    """trainer.fit, then the final checkpoint, transformer.pt and the verified ONNX export."""
    import torch

    from fastnst.callbacks import NonFiniteLoss, TrainingDataGone
    from fastnst.checkpoint import save_transformer

    # SIGTERM (e.g. `kill`, a scheduler) and SIGINT take the same path when the caller turns them
    # into KeyboardInterrupt (cli/common.run_main does): checkpoint, then stop.
    try:
        trainer.fit(model, datamodule=data, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    except SystemExit:
        # Lightning exits after a KeyboardInterrupt, once SaveOnInterrupt has written last.ckpt.
        raise KeyboardInterrupt(f"interrupted at step {trainer.global_step}; resume with: fastnst train "
                                f"--resume {run_dir}") from None
    except NonFiniteLoss as e:
        raise FastNSTError(f"{e}; {describe_last_checkpoint(ckpt_dir / 'last.ckpt', run_dir)}") from None
    except TrainingDataGone as e:  # raised in a DataLoader worker: its message carries the worker's traceback
        raise FastNSTError(f"{str(e).splitlines()[0]} at step {trainer.global_step}; "
                           f"{describe_last_checkpoint(ckpt_dir / 'last.ckpt', run_dir)}") from None
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise FastNSTError(f"the disk holding {run_dir} is full (writing at step {trainer.global_step}); free some "
                           f"space, then: {describe_last_checkpoint(ckpt_dir / 'last.ckpt', run_dir)}") from None

    # The periodic checkpoints fire every N steps; make last.ckpt the final state, so a later
    # resume with more max_steps continues from where training really stopped. weights_only=False:
    # the full state, and said explicitly, else Lightning logs "`weights_only` was not set" each time.
    trainer.save_checkpoint(ckpt_dir / "last.ckpt", weights_only=False)
    if trainer.world_size == 1 and not list((run_dir / "samples").glob("*.png")):
        trainer.validate(model, datamodule=data, verbose=False)  # a run shorter than val_every: one grid at its end
    if trainer.is_global_zero:
        from fastnst.export import export_onnx

        net = model.trained_net().to(memory_format=torch.contiguous_format).float().cpu().eval()
        save_transformer(net, run_dir / "transformer.pt", model.meta())
        export_onnx(net, run_dir / f"{model.meta()['style_name'] or 'model'}.onnx", model.meta())
