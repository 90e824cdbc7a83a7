"""Lightning callbacks of a training run: checkpoint on interrupt, validation grids as PNG files."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytorch_lightning as pl

from fastnst.image import from_tensor, save_image


class SaveOnInterrupt(pl.Callback):
    """On Ctrl-C or SIGTERM (raised as KeyboardInterrupt), save a checkpoint before Lightning exits."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.global_step > 0:
            trainer.save_checkpoint(self.path)  # Lightning writes a temp file and moves it into place
            if trainer.is_global_zero:
                print(f"\nsaved {self.path} at step {trainer.global_step}", file=sys.stderr)


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
