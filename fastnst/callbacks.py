"""Lightning callbacks of a training run: checkpoint on interrupt, validation grids as PNG files."""

from __future__ import annotations

import sys
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
