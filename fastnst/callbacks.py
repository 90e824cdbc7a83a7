"""Lightning plug-ins of a training run: checkpoint on interrupt, stop on a non-finite loss,
validation grids as PNG files, and checkpoint files written atomically and read safely."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from fastnst.checkpoint import atomic_torch_save, read_checkpoint
from fastnst.data import TrainingDataGone
from fastnst.errors import FastNSTError
from fastnst.image import from_tensor, save_image


class SafeCheckpointIO(TorchCheckpointIO):
    """Checkpoints written with files.atomic_write and read with weights_only=True.

    Lightning's own TorchCheckpointIO writes through an fsspec transaction, which stages the file in
    the system temp dir and moves it into place: a copy, not an atomic rename, when runs/ is on
    another file system. Its load_checkpoint unpickles whatever a file holds unless told otherwise;
    a checkpoint given to --resume comes from the user, so it is read like any model file
    (checkpoint.read_checkpoint).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location: Any | None = lambda storage, loc: storage,
                        weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location=map_location)  # weights_only=True, whatever is asked


class SaveOnInterrupt(pl.Callback):
    """On Ctrl-C or SIGTERM (raised as KeyboardInterrupt), or photos gone mid-run, save a checkpoint
    before Lightning exits."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, (KeyboardInterrupt, TrainingDataGone)) and trainer.global_step > 0:
            # The interrupt lands inside a step: Lightning has counted that batch as ready but not
            # completed, and a restart rolls back only the epoch's counters, not the run's total
            # (pytorch_lightning/loops/progress.py, _BatchProgress.reset_on_restart). The total is
            # what schedules validation (training_epoch_loop.py, total_batch_idx), so each resume
            # would validate and save its periodic checkpoints one step early, and a checkpoint due
            # at an epoch's last batch would be written under the wrong step. Count only completed
            # batches, as the weights saved here have seen.
            trainer.fit_loop.epoch_loop.batch_progress.total.reset_on_restart()
            # weights_only=False: the full state (optimizer, loops), for --resume. Saying so also
            # keeps Lightning from logging "`weights_only` was not set" on every save.
            trainer.save_checkpoint(self.path, weights_only=False)  # atomically: SafeCheckpointIO
            if trainer.is_global_zero:
                print(f"\nsaved {self.path} at step {trainer.global_step}", file=sys.stderr)


class NonFiniteLoss(FastNSTError):
    """Training stopped because the loss or the weights stopped being finite numbers."""

    def __init__(self, step: int, what: str):
        self.step = step
        super().__init__(f"training stopped at step {step}: {what} (the run diverged; a lower --lr or smaller loss "
                         f"weights may help)")


class StopOnNonFiniteLoss(pl.Callback):
    """Raise NonFiniteLoss as soon as a step's loss or the net's weights are NaN or infinite.

    Runs before ModelCheckpoint in on_train_batch_end (Lightning calls checkpoint callbacks last),
    so the diverged step is never saved: the checkpoints on disk keep the last finite weights.
    Weights are checked as well as the loss because a finite loss can still give NaN gradients.
    One device sync per step, for one reduction over the transformer's ~2M weights.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach().float()
        finite = torch.isfinite(loss).all()
        for p in pl_module.parameters():
            if p.requires_grad:
                finite = finite & torch.isfinite(p).all()
        if not bool(finite):
            value = float(loss)
            what = f"the loss became {value}" if not math.isfinite(value) else "the weights became NaN or infinite"
            raise NonFiniteLoss(trainer.global_step, what)


class SaveValidationGrid(pl.Callback):
    """Write each validation grid (photos over their stylizations, see module.py) to ``folder``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        grid = getattr(pl_module, "val_grid", None)
        if grid is not None and trainer.is_global_zero and not trainer.sanity_checking:
            save_image(from_tensor(grid), self.folder / f"step{trainer.global_step:07d}.png")


class TrainingClock(pl.Callback):
    """Wall-clock seconds of training, summed over resumes; saved in every checkpoint
    (``checkpoint["callbacks"]["TrainingClock"]["seconds"]``) and logged as ``time/train_seconds``,
    so quality can be plotted against time (bench/time_to_quality.py). Counts everything a run
    spends from the start of fit: steps, data loading, validation and checkpoint writes."""

    def __init__(self):
        self.saved = 0.0  # seconds of earlier (resumed-from) fits
        self.start: float | None = None

    @property
    def seconds(self) -> float:
        return self.saved + (time.perf_counter() - self.start if self.start is not None else 0.0)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        pl_module.log("time/train_seconds", self.seconds, on_step=True, on_epoch=False, batch_size=1)

    def state_dict(self) -> dict:
        return {"seconds": self.seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.saved = float(state_dict.get("seconds", 0.0))


class ProgressBar(pl.callbacks.TQDMProgressBar):
    """Lightning's bar without its logger version number (v_num), which says nothing to a user."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics
