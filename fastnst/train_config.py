"""TrainConfig: every option of a training run, and the one place each training default lives.

``fastnst.train(TrainConfig(style=..., data=...))`` trains with it; ``fastnst train`` builds it from
flags and YAML (each field is a flag ``--field-name`` and a YAML key ``field_name``, the loss's
fields included, see cli/options.py). Every value is checked here, once; the modules that take a
TrainConfig (module.py, data.py) trust it. Where the recipe departs from Johnson et al. 2016, a
comment says what and why in a line or two; the measurements are BENCHMARKS.md's "Recipe decisions".
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.fieldcheck import check_field_types
from fastnst.perceptual import LossConfig
from fastnst.transformer import DEFAULT_WIDTH

# The groups of `fastnst train --help`, in order; each field names its group.
GROUPS = {"data": "what to learn from", "recipe": "the recipe", "run": "the run", "machine": "the machine"}


def read_holdout(path: str | os.PathLike) -> list[str]:
    """Photo file names, one a line; blank lines and '#' comments ignored (configs/holdout.txt)."""
    lines = (line.split("#")[0].strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line]


def opt(default, group: str, help: str):
    """A field with its default, its --help group and what it does (the help text of its flag)."""
    return field(default=default, metadata={"group": group, "help": help})


# The smallest value of each integer option (the largest where given as a pair).
RANGES = {"max_steps": 1, "val_every": 1, "checkpoint_every": 1, "log_every": 1, "num_nodes": 1,
          "keep_checkpoints": -1, "num_workers": 0, "val_size": 0, "log_images": 0, "width": (1, 1024),
          "image_size": 16, "batch_size": 1, "lr_decay_steps": 0, "early_style_size": 0, "early_steps": 0,
          "early_batch_size": 0, "average_steps": 0, "seed": 0}


@dataclass(frozen=True)
class TrainConfig:
    """A training run: what to learn from, the recipe, the run, the machine. All sizes in px."""

    style: str = opt("", "data", "the style image (painting) to learn; required")
    data: str = opt("", "data", "folder of training photos (searched recursively; a few hundred photos "
                                "of any subjects, e.g. MS-COCO's); required")
    holdout: tuple[str, ...] = opt((), "data", "photo file names kept out of training and used for validation "
                                               "(unset: val_size photos picked by a seeded shuffle)")
    holdout_file: str | None = opt(None, "data", "a file of such names, one a line (# comments), "
                                                 "e.g. configs/holdout.txt")
    vgg_weights: str | None = opt(None, "data", "torchvision-layout VGG weights for the loss "
                                                "(unset: $FASTNST_VGG_WEIGHTS, else torchvision's download)")

    # The recipe. Johnson et al.: 40k steps of 256 px crops at batch 4 against the style image at
    # 256 px. Ours is 6000 steps in two stages, sized for a CPU.
    max_steps: int = opt(6000, "recipe", "optimizer steps (a resumed run counts from its first step)")
    # Departure: half the paper's width (transformer.DEFAULT_WIDTH).
    width: int = opt(DEFAULT_WIDTH, "recipe", "channels of the transformer's first layer (32 in the paper)")
    # Departure: a first stage on small crops at a small style scale. From scratch against a large
    # style image a net paints blobs; on 128 px crops against it at 256 px it learns the texture first.
    early_steps: int = opt(4000, "recipe", "steps of the first stage (0: no first stage)")
    early_image_size: int = opt(128, "recipe", "side of the square crops in the first stage")
    early_batch_size: int = opt(4, "recipe", "photos per step in the first stage")
    early_style_size: int = opt(256, "recipe", "longer side of the style image in the first stage")
    early_style_weight: float = opt(3.0, "recipe", "style weight in the first stage; --style-weight sets the "
                                                    "second's (0: the same)")
    # The second stage: whole photos at 256 px, one a step (the same pixels per step), against the
    # style image at 384 px. 512 px paints larger strokes; on some paintings the structure floor then
    # holds the style weight down and less style is learnt (BENCHMARKS.md, Recipe decisions).
    image_size: int = opt(256, "recipe", "side of the square crops in the second stage")
    batch_size: int = opt(1, "recipe", "photos per step in the second stage (per device)")
    style_size: int = opt(384, "recipe", "longer side of the style image in the second stage")
    lr: float = opt(1e-3, "recipe", "Adam learning rate")
    # Departure: the decay phase of warmup-stable-decay (Hu et al. 2024), no warm-up: at batch 1 a
    # constant lr leaves the net at a noise floor.
    lr_decay_steps: int = opt(2000, "recipe", "the lr falls along a cosine to 0 over the last N steps (0: constant)")
    # Departure: unclipped runs collapsed to a flat picture at random steps.
    grad_clip: float = opt(1.0, "recipe", "clip the gradient's norm to this (0: no clipping)")
    # Departure: the net shipped is the mean of its weights over the last steps (Izmailov et al. 2018).
    average_steps: int = opt(1500, "recipe", "ship the average of the weights over the last N steps (0: the last)")
    # Departure: one style weight does not suit every painting; in the second stage it falls (to a
    # tenth at most) while the output's structure (losses.structure) is under this floor (module.py).
    structure_floor: float = opt(0.65, "recipe", "in the second stage, lower the style weight while the "
                                                 "output's structure is under this (0: a fixed weight)")
    # Departure, for video (off by default): the output for a moved, noisier photo is the moved output
    # (fastnst/stability.py; Gupta et al. 2017).
    stability_weight: float = opt(0.0, "recipe", "in the second stage, weight of a term that keeps the output "
                                                 "still when the photo moves by a pixel or gets noise: steadier "
                                                 "video (0: off)")
    # Departure: content at relu3_3 (the paper: relu2_2) and style weight 3 (BENCHMARKS.md, "Recipe decisions").
    loss: LossConfig = LossConfig(content_layers=("relu3_3",), style_weight=3.0)
    seed: int = opt(0, "recipe", "seed of the initial weights, the validation split and the crops")

    run_dir: str | None = opt(None, "run", "folder for the run's config, checkpoints, logs and models "
                                           "(unset: runs/<style>-<date>-<time>)")
    val_size: int = opt(8, "run", "validation photos when no holdout is given")
    val_every: int = opt(500, "run", "validate (and save a grid of stylized photos) every N steps")
    checkpoint_every: int = opt(500, "run", "save a checkpoint every N steps")
    keep_checkpoints: int = opt(5, "run", "periodic checkpoints kept besides last.ckpt (-1: all)")
    log_every: int = opt(10, "run", "log the losses every N steps (TensorBoard and CSV)")
    log_images: int = opt(4, "run", "validation photos in each saved grid (0: none)")

    # bf16 only where native: emulated bf16 is many times slower than fp32 (BENCHMARKS.md, "Recipe decisions").
    precision: str = opt("auto", "machine", "Lightning precision (32-true, bf16-mixed, 16-mixed) or auto: "
                                            "bf16-mixed where the device computes bf16 natively, else 32-true")
    accelerator: str = opt("auto", "machine", "Lightning accelerator: auto, cpu, gpu, mps")
    devices: int | str = opt(1, "machine", "devices per node: a number, or auto")
    strategy: str = opt("auto", "machine", "Lightning strategy, e.g. ddp for several devices")
    num_nodes: int = opt(1, "machine", "machines to train on (with a distributed strategy)")
    channels_last: bool = opt(True, "machine", "channels-last memory layout (faster convolutions on most hardware)")
    num_workers: int = opt(2, "machine", "DataLoader worker processes decoding and cropping photos")

    def __post_init__(self):
        # YAML and flags give lists; keep tuples so the config stays hashable and comparable.
        if isinstance(self.holdout, (list, tuple)):
            object.__setattr__(self, "holdout", tuple(self.holdout))
        check_field_types(self)
        for name, bounds in RANGES.items():
            low, high = bounds if isinstance(bounds, tuple) else (bounds, None)
            value = getattr(self, name)
            if value < low or (high is not None and value > high):
                raise FastNSTError(f"{name} must be {f'in {low}..{high}' if high else f'>= {low}'}, got {value}")
        for name in ("early_image_size", "early_style_size", "style_size"):
            if getattr(self, name) < 16 and (name == "style_size" or self.early_steps):
                raise FastNSTError(f"{name} must be >= 16, got {getattr(self, name)}")
        if self.early_steps and self.early_batch_size < 1:
            raise FastNSTError(f"early_batch_size must be >= 1, got {self.early_batch_size}")
        for name, low, high in (("lr", 0, math.inf), ("grad_clip", 0, math.inf), ("early_style_weight", 0, math.inf),
                                ("structure_floor", 0, 1), ("stability_weight", 0, math.inf)):
            value = getattr(self, name)
            closed = name != "lr"  # lr 0 trains nothing
            if not (math.isfinite(value) and (low <= value if closed else low < value) and value < high):
                raise FastNSTError(f"{name} must be a finite number {'>=' if closed else '>'} {low}"
                                   f"{f' and < {high}' if high != math.inf else ''}, got {value}")
        if isinstance(self.devices, str) and self.devices != "auto" and not self.devices.lstrip("-").isdigit():
            raise FastNSTError(f"devices must be a number or auto, got {self.devices!r}")
        if isinstance(self.devices, int) and self.devices < 1 and self.devices != -1:
            raise FastNSTError(f"devices must be >= 1 (or -1 / auto: every device), got {self.devices}")

    @property
    def early_style_weight_or_default(self) -> float:
        """The first stage's style weight: early_style_weight, or the loss's where that is 0."""
        return self.early_style_weight or self.loss.style_weight

    def holdout_names(self) -> tuple[str, ...]:
        """``holdout`` plus the names in ``holdout_file`` (read here: the one file this config names)."""
        if self.holdout_file is None:
            return self.holdout
        try:
            return self.holdout + tuple(read_holdout(self.holdout_file))
        except (OSError, UnicodeDecodeError) as e:
            raise FastNSTError(f"holdout_file {self.holdout_file}: cannot read ({getattr(e, 'strerror', None) or e})") \
                from None

    def recipe(self) -> dict:
        """The fields that decide the net (the recipe group and the loss), as a transformer.pt carries
        them: what a config file must resolve to for that net to be reproduced."""
        out = {}
        for f in self.__dataclass_fields__.values():
            if f.name == "loss":
                out |= {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.loss).items()}
            elif f.metadata.get("group") == "recipe":
                out[f.name] = getattr(self, f.name)
        return out
