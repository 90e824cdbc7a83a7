"""Training data: a folder of photos (recursive) -> random square crops in [0, 1], as a LightningDataModule.

Photos people keep in folders include broken files: they are skipped with one warning that counts
them, and a file that breaks mid-epoch is replaced by another photo instead of stopping the epoch.
"""

from __future__ import annotations

import os
import random
import signal
import warnings
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from fastnst.errors import FastNSTError
from fastnst.image import READ_FORMATS, open_image, to_float
from fastnst.train_config import TrainConfig

TRAIN_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# A photo longer than this many times its width (or the reverse) is first cropped to this aspect
# ratio: zoomed out to the crop size whole, a 1 x 20000 px strip would be millions of px long.
MAX_ASPECT = 3.0


class TrainingDataGone(FastNSTError):
    """No training photo could be read any more (the folder moved or was deleted mid-run)."""


def find_images(root: str | os.PathLike) -> list[Path]:
    """All files under ``root`` with an image extension, sorted; follows symlinks but not loops."""
    root = Path(root)
    if not root.is_dir():
        raise FastNSTError(f"training data folder {root} does not exist or is not a folder")
    found: list[Path] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop (or a second link to the same folder): walk it once
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames.sort()
        # Regular files only (is_file follows symlinks): opening a FIFO would block forever.
        found += [Path(dirpath) / f for f in sorted(filenames)
                  if f.lower().endswith(TRAIN_EXTENSIONS) and (Path(dirpath) / f).is_file()]
    return found


def readable_images(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Split ``paths`` into (headers Pillow recognises, the rest). Cheap: reads headers, not pixels."""
    good, bad = [], []
    for p in paths:
        try:
            with Image.open(p, formats=READ_FORMATS):
                good.append(p)
        except Exception:  # any failure to identify the file means we cannot train on it
            bad.append(p)
    return good, bad


def scale_shorter_side(im: Image.Image, shorter: float, size: int) -> Image.Image:
    """Resize so the shorter side is ``shorter`` px (neither side below ``size``, the crop to come)."""
    w, h = im.size
    scale = shorter / min(w, h)
    return im.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                     Image.Resampling.BILINEAR, reducing_gap=2.0)


def limit_aspect(im: Image.Image, rng=None) -> Image.Image:
    """Crop ``im`` to at most MAX_ASPECT:1 (a random window with ``rng``, else the centre)."""
    w, h = im.size
    if max(w, h) <= MAX_ASPECT * min(w, h):
        return im
    long = round(MAX_ASPECT * min(w, h))
    start = rng.randint(0, max(w, h) - long) if rng is not None else (max(w, h) - long) // 2
    return im.crop((start, 0, start + long, h) if w > h else (0, start, w, start + long))


def random_crop(im: Image.Image, size: int, rng=random) -> Image.Image:
    """Scale the shorter side to size·U(1, 1.25) (each photo zoomed out to about the crop, as
    Johnson et al.), take a random size x size crop, flip half the time.
    ``rng``: the ``random`` module or a ``random.Random`` (for reproducible tests)."""
    im = scale_shorter_side(limit_aspect(im, rng), size * rng.uniform(1.0, 1.25), size)
    x, y = rng.randint(0, im.width - size), rng.randint(0, im.height - size)
    im = im.crop((x, y, x + size, y + size))
    return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else im


def center_crop(im: Image.Image, size: int) -> Image.Image:
    """Deterministic view for validation: shorter side to ``size``, centre square."""
    im = scale_shorter_side(limit_aspect(im), size, size)
    x, y = (im.width - size) // 2, (im.height - size) // 2
    return im.crop((x, y, x + size, y + size))


class CropDataset(Dataset):
    """[3, size, size] float32 crops in [0, 1]; random (train) or centred (validation)."""

    def __init__(self, files: list[Path], size: int, train: bool):
        self.files, self.size, self.train = files, size, train

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        # A file that passed the header check can still be truncated: try the next ones instead.
        for attempt in range(len(self.files)):
            path = self.files[(index + attempt) % len(self.files)]
            try:
                im = open_image(path)
            except FastNSTError as e:
                warnings.warn(f"skipping unreadable training image: {e}", stacklevel=1)
                continue
            if self.train:
                # The global RNG: DataLoader reseeds it per worker and epoch (and Lightning's
                # seed_everything(workers=True) makes that reproducible), so crops differ every epoch.
                im = random_crop(im, self.size, random)
            else:
                im = center_crop(im, self.size)
            return torch.from_numpy(to_float(np.asarray(im, dtype=np.uint8))).permute(2, 0, 1)
        raise TrainingDataGone(f"no training photo could be read any more (the last tried: {path})")


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader worker init: leave Ctrl-C/SIGTERM to the main process.

    A terminal's Ctrl-C or a `kill` of the process group reaches the workers too; a worker that
    dies first turns a clean "save a checkpoint and exit" into a DataLoader crash. PyTorch still
    seeds ``random`` per worker and epoch, so this init function costs no randomness.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class StyleDataModule(pl.LightningDataModule):
    """Photos under ``config.data`` -> train/validation loaders of square crops.

    The validation split is ``config.val_size`` photos chosen by a seeded shuffle, or the names
    listed in its holdout (file names, e.g. the evaluation set); held-out photos are never trained
    on. The first ``config.early_steps`` steps get early_image_size crops at early_batch_size.
    """

    def __init__(self, config: TrainConfig = TrainConfig()):
        super().__init__()
        self.config = config
        self.data_dir, self.holdout = config.data, config.holdout_names()
        self._train_loader: tuple[tuple[int, int], DataLoader] | None = None  # (crop, batch), loader
        self.train_files: list[Path] = []
        self.val_files: list[Path] = []

    def prepare_files(self) -> None:
        """Scan the folder and split; raises FastNSTError before training if nothing usable is there."""
        files, bad = readable_images(find_images(self.data_dir))
        if bad:
            warnings.warn(f"skipped {len(bad)} unreadable or non-image file(s) in {self.data_dir} "
                          f"(first: {bad[0]})", stacklevel=1)
        if not files:
            raise FastNSTError(f"no readable images (jpg, png, webp, bmp) found under {self.data_dir}")
        if self.holdout:
            names = set(self.holdout)
            missing = sorted(names - {f.name for f in files})
            if missing:  # a typo would otherwise shrink the validation set silently
                raise FastNSTError(f"holdout: no readable image named {', '.join(map(repr, missing))} under "
                                   f"{self.data_dir} (holdout takes file names, e.g. photo01.jpg)")
            self.val_files = [f for f in files if f.name in names]
            self.train_files = [f for f in files if f.name not in names]
        else:
            shuffled = files[:]
            random.Random(self.config.seed).shuffle(shuffled)
            n_val = min(self.config.val_size, len(files) - 1)
            self.val_files, self.train_files = sorted(shuffled[:n_val]), sorted(shuffled[n_val:])
        if not self.train_files:
            raise FastNSTError(f"no training images left in {self.data_dir} after the validation split")

    def setup(self, stage: str | None = None) -> None:
        if not self.train_files:
            self.prepare_files()

    def train_dataloader(self) -> DataLoader:
        """This step's loader: the early crops before ``early_steps``, then ``image_size`` x ``batch_size``.

        The trainer asks again every epoch (training.py sets reload_dataloaders_every_n_epochs=1).
        An early loader holds no more batches than early steps are left, so its last epoch ends on
        the switch whatever the size of the data folder; a full loader is built once and reused.
        """
        cfg = self.config
        step = self.trainer.global_step if self.trainer is not None else 0
        size, batch = cfg.early_image_size, cfg.early_batch_size
        left = cfg.early_steps - step
        if left <= 0 or (size, batch) == (cfg.image_size, cfg.batch_size):
            size, batch, files = cfg.image_size, cfg.batch_size, self.train_files
        else:
            world = self.trainer.world_size if self.trainer is not None else 1
            files = self.train_files
            if left * batch * world < len(files):  # the global RNG: seeded, like the crops
                files = sorted(random.sample(files, left * batch * world))
        if self._train_loader is not None and self._train_loader[0] == (size, batch) and files is self.train_files:
            return self._train_loader[1]
        loader = self._loader(files, size, batch)
        self._train_loader = ((size, batch), loader) if files is self.train_files else None
        return loader

    def _loader(self, files: list[Path], size: int, batch: int) -> DataLoader:
        ds = CropDataset(files, size, train=True)
        return DataLoader(ds, batch_size=batch, shuffle=True, drop_last=len(ds) >= batch,
                          num_workers=self.config.num_workers, worker_init_fn=ignore_stop_signals,
                          # Workers live across epochs: no respawn cost, and no iterator teardown
                          # (__del__) at every epoch end for a Ctrl-C to land in and be swallowed.
                          persistent_workers=self.config.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        # Batches of log_images photos, so a validation grid shows that many (the training batch may be 1).
        ds = CropDataset(self.val_files, self.config.image_size, train=False)
        return DataLoader(ds, batch_size=max(1, self.config.log_images), num_workers=0)
