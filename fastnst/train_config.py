"""TrainConfig: every option of a training run, and the one place each training default lives.

``fastnst.train(TrainConfig(style=..., data=...))`` trains with it; ``fastnst train`` builds it from
flags and YAML (each field is a flag ``--field-name`` and a YAML key ``field_name``, the loss's
fields included, see cli/options.py). The data and Lightning modules take their defaults from
here (StyleDataModule, StyleTransferModule); the loss's own defaults are LossConfig's, except
where ``loss`` below overrides them for training.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.perceptual import LossConfig
from fastnst.transformer import DEFAULT_WIDTH, MAX_DOWNSAMPLES


def read_holdout(path: str | os.PathLike) -> list[str]:
    """Photo file names, one a line; blank lines and '#' comments ignored (configs/holdout.txt)."""
    lines = (line.split("#")[0].strip() for line in Path(path).read_text().splitlines())
    return [line for line in lines if line]


def opt(default, help: str):
    """A field with its default and what it does (the --help text of its flag)."""
    return field(default=default, metadata={"help": help})


# Ranges nothing downstream checks, or checks too late: Lightning takes max_steps -1 as "no limit"
# and 0 as "train nothing, then export"; a zero or negative lr trains nothing or uphill; the
# DataLoader raises a bare ValueError for negative workers.
MINIMUMS = {"max_steps": 1, "val_every": 1, "checkpoint_every": 1, "log_every": 1, "num_nodes": 1,
            "keep_checkpoints": -1, "num_workers": 0, "val_size": 0, "log_images": 0, "width": 1, "n_residual": 0,
            "image_size": 16, "batch_size": 1, "photo_size": 0, "lr_warmup_steps": 0, "lr_decay_steps": 0,
            "style_ramp_steps": 0,
            "reconstruct_steps": 0, "downsamples": 1, "early_style_size": 0, "early_style_steps": 0,
            "early_image_size": 0, "early_batch_size": 0, "average_steps": 0}


@dataclass(frozen=True)
class TrainConfig:
    """A training run: what to learn from, the recipe, and how to run it. All sizes in px."""

    # What to learn from
    style: str = opt("", "the style image (painting) to learn; required")
    data: str = opt("", "folder of training photos (searched recursively); required")
    run_dir: str | None = opt(None, "folder for the run's config, checkpoints, logs and models "
                                    "(unset: runs/<style>-<date>-<time>)")
    vgg_weights: str | None = opt(None, "torchvision-layout VGG weights for the loss "
                                        "(unset: $FASTNST_VGG_WEIGHTS, else torchvision's download)")
    holdout: tuple[str, ...] = opt((), "photo file names kept out of training and used for validation "
                                       "(unset: val_size photos picked by a seeded shuffle)")
    holdout_file: str | None = opt(None, "a file of such names, one a line (# comments); e.g. configs/holdout.txt, "
                                         "the evaluation photos")

    # The recipe
    # Departure from Johnson et al. (256 px crops at batch 4, style at 256, 40k steps on a GPU):
    # 6000 steps in two stages (early_* below). The first 4000 train on 128 px crops of whole
    # photos at batch 4 (a quarter of the paper's VGG cost per step) against the style image at
    # 256 px, at style weight 3; the last 2000 on 256 px crops of whole photos at batch 1 (the same
    # pixels per step) against it at 384 px, at weight 3. The gradient norm is clipped to 1
    # throughout. Measured against the fixed scorer (bench/score.py) in BENCHMARKS.md, "The
    # defaults on paintings they were never tuned on".
    image_size: int = opt(256, "side of the square training crops (after the early steps)")
    style_size: int | None = opt(384, "longer side the style image is resized to, after the early steps "
                                        "(unset: image_size)")
    photo_size: int = opt(0, "shorter side photos are scaled to before cropping, i.e. the pixel scale the net "
                             "learns at (0: each photo zoomed out to about the crop, as Johnson et al.)")
    batch_size: int = opt(1, "photos per optimizer step (per device; after the early steps)")
    max_steps: int = opt(6000, "optimizer steps to train for (a resumed run counts from its first step)")
    # Departure from the paper's 32: see transformer.DEFAULT_WIDTH for the measurement.
    width: int = opt(DEFAULT_WIDTH, "channels of the transformer's first layer (x2, x4 deeper in; 32 in the paper)")
    n_residual: int = opt(5, "residual blocks of the transformer")
    downsamples: int = opt(2, "stride-2 convs before the residual blocks (2 in the paper; 3: twice their "
                              "receptive field in pixels at the same FLOPs)")
    lr: float = opt(1e-3, "Adam learning rate")
    lr_warmup_steps: int = opt(0, "steps of linear learning-rate warm-up from 0")
    # Departure from Johnson et al. (a constant lr): the lr falls along a cosine to 0 over the last
    # 2000 steps, the second stage (a constant lr, then a decay at the end: the warmup-stable-decay
    # schedule of Hu et al. 2024, MiniCPM). At batch 1 the second stage's constant lr left the net
    # at a noise floor: 1000-2000 more steps there did not lower the style loss (BENCHMARKS.md,
    # "The defaults on paintings they were never tuned on"), and the weight average (below) took
    # out only part of the noise. The second stage run again from the same step-4000 checkpoints
    # of four paintings (five runs), with the decay and the average, gave 3-7% less style loss than
    # at the constant lr on four and 4% more on one (3% less on geometric mean), content the same
    # or lower on all five, structure -0.002 to +0.009
    # (BENCHMARKS.md, "A learning-rate decay in the second stage").
    lr_decay: str = opt("cosine", "after the warm-up: constant, or cosine (to 0 at max_steps)")
    lr_decay_steps: int = opt(2000, "the cosine spans the last N steps, the lr constant before them "
                                    "(0: every step after the warm-up)")
    style_ramp_steps: int = opt(0, "steps over which the style weight grows linearly from 0 "
                                   "(the net first learns to keep the photo)")
    reconstruct_steps: int = opt(0, "warm start: first train the net to return the photo (pixel MSE, no VGG) "
                                    "for N steps, then the perceptual loss")
    # Departure from Johnson et al. (one style scale throughout): a net trained from scratch against
    # the style image at 384-512 px paints blobs or worms over the photo for its first 1000+ steps,
    # while at 256 px it learns the painting's texture and keeps the photo. Moved on to the image at
    # 384 px after that, the same net paints the painting's larger shapes (waves, mosaic's panes,
    # Mondrian's blocks) over the subject, and on wave and Mondrian keeps more of its structure
    # than at 256 px. Weight 3 at 256 px (at 2 starry_night fell 12% short of its style bar); at
    # 384 px weight 3 too, on the 256 px crops of that stage (``loss`` below; on 128 px crops it
    # cost feathers structure, 0.615 -> 0.578, for 1.3x less style loss).
    # BENCHMARKS.md, "mosaic: the style image's scale as a curriculum" and "The defaults on
    # paintings they were never tuned on".
    early_style_size: int = opt(256, "longer side of the style image for the first early_style_steps steps")
    early_style_steps: int = opt(4000, "steps trained against the style image at early_style_size, before "
                                       "style_size (0: style_size from the start)")
    early_style_weight: float = opt(3.0, "style weight of those early steps (0: style_weight)")
    # Departure from Johnson et al. (one crop size): a net trained on 256 px whole photos from
    # the start paints blobs for its first ~2000 steps; the first stage on 128 px crops at batch 4
    # does not, and whole photos at 256 px in the second stage, nearer the 512 px photos the net
    # meets, gave udnie 1.7x less style loss and +0.04 structure, and feathers at weight 3 +0.03
    # structure (BENCHMARKS.md, "The defaults on paintings they were never tuned on").
    early_image_size: int = opt(128, "side of the square training crops in those early steps (0: image_size)")
    early_batch_size: int = opt(4, "photos per optimizer step in those early steps (0: batch_size)")
    # Departure from Johnson et al. (no clipping): against the 384 px target, runs without it
    # collapsed to a flat picture at random steps (udnie twice, 60 and 465 steps after the switch;
    # feathers at weight 2.5), the style term jumping 20-6000x within a few steps; clipped, none
    # did. The gradient's norm is 20-250 here, so with Adam a clip at 1 is a normalized gradient
    # on every step; it cost feathers 0.02 structure at 6000 steps (BENCHMARKS.md, "The defaults
    # on paintings they were never tuned on").
    grad_clip: float = opt(1.0, "clip the gradient's norm to this before each step (0: no clipping)")
    # Departure from Johnson et al. (the last step's weights): the net trained is the uniform average
    # of its weights over the last average_steps steps (Polyak & Juditsky 1992; stochastic weight
    # averaging, Izmailov et al. 2018). At batch 1 and a constant lr the weights wander: the
    # validation style loss moved by up to 24% between checkpoints 500 steps apart, so a run's
    # score depended on where its last step landed. The mean of the checkpoints of steps
    # 4500-6000 of 13 finished runs scored 1.12x less style loss than their last step on geometric
    # mean (1.12-1.33x less on eight, 1-5% less on two, 3-4% more on three) and 0.004 less
    # structure; shorter windows (the last 500 or 1000 steps) gained less on the paintings where
    # averaging gained most (BENCHMARKS.md, "Weight averaging").
    average_steps: int = opt(1500, "the trained net is the average of its weights over the last N steps "
                                   "(0: the last step's weights)")
    # Departure from Johnson et al. (one fixed style weight): from the second stage on, the style
    # weight follows a floor on the output's structure (the relu3_4 similarity of photo and output,
    # losses.structure, measured on each training batch): it falls, down to a tenth, while the
    # structure is under the floor, and comes back up to the full weight while it is over
    # (module.next_style_log_scale). One fixed weight did not suit every painting: weight 3 painted
    # the photo away on en_campo_gris (structure 0.519) and lost half of flower_of_life's subjects
    # (0.618, style 1/105 of the photo's, ten times past its bar), while feathers needs all of it
    # to reach its style bar. With the floor at 0.65: flower_of_life's second stage run again from
    # the same checkpoint 261 / 0.650 (style / structure, from 267 / 0.618), en_campo_gris from
    # scratch 6917 / 0.630 (both bars met), and feathers' weight stayed at 0.98-1 of 3 (its style
    # loss moved by +3.7% and -3.9% in two second stages run again, the spread of its runs);
    # five paintings drawn at random after (rain-princess, the_resevoir_at_poitiers,
    # picasso_self_portrait, woman_with_hat_matisse, trial) met both bars from scratch (style
    # 1/13.8 to 1/23.2 of the photo's, structure 0.679-0.722) with the floor hardly acting
    # (BENCHMARKS.md, "A floor on structure in the second stage"). The same floor in the first
    # stage too, on its 128 px crops, kept more of flower_of_life's subjects by step 2500 but none
    # more by step 6000, where the second stage had painted it like the defaults (BENCHMARKS.md,
    # "A floor in the first stage too").
    structure_floor: float = opt(0.65, "after the early steps (from the first with early_style_steps 0), lower the "
                                       "style weight while the output's structure (val/structure's measure, per "
                                       "training batch) is under this (0: a fixed weight)")
    # Training's loss: Gatys' (LossConfig) with content at relu3_3 and style weight 3, not 10.
    # Measured (BENCHMARKS.md, "Recipe ablations" and bench/balance.py): with content at relu2_2 and
    # weight 1 the objective ranks a faint net above the published ones, so training converges to
    # faint nets; relu3_3 lets the style replace the photo's fine detail but not its shapes, and at
    # weight 2 the objective prefers the published nets' outputs for wave, udnie and the_scream.
    # On the 256 px crops of the second stage, weight 3 paints more of the painting than 2 at the
    # structure 2 kept on 128 px crops (feathers, escher_sphere; BENCHMARKS.md).
    # At weight 10 (good for pixel optimization, which starts from the photo) a net trained from
    # scratch drops the photo. Its fields are flags and YAML keys of their own (--style-weight ...).
    loss: LossConfig = LossConfig(content_layers=("relu3_3",), style_weight=3.0)
    seed: int = opt(0, "seed of the weights' initialisation, the validation split and the crops")

    # How to run it
    # "auto": bf16-mixed where the hardware computes bf16 natively, else 32-true. Emulated bf16 is
    # no shortcut: on an AVX2-only CPU a training step was measured 15x slower than fp32
    # (BENCHMARKS.md), while AVX-512 BF16/AMX CPUs and GPUs gain from it.
    precision: str = opt("auto", "Lightning precision (32-true, bf16-mixed, 16-mixed) or auto: bf16-mixed where "
                                 "the device computes bf16 natively, else 32-true")
    accelerator: str = opt("auto", "Lightning accelerator: auto, cpu, gpu, mps")
    devices: int | str = opt(1, "devices per node: a number, or auto")
    strategy: str = opt("auto", "Lightning strategy, e.g. ddp for several devices")
    num_nodes: int = opt(1, "machines to train on (with a distributed strategy)")
    channels_last: bool = opt(True, "channels-last memory layout (faster convolutions on most hardware)")
    num_workers: int = opt(2, "DataLoader worker processes decoding and cropping photos")
    val_size: int = opt(8, "validation photos when no holdout is given")
    val_every: int = opt(500, "validate (and save a grid of stylized photos) every N steps")
    checkpoint_every: int = opt(500, "save a checkpoint every N steps")
    # 5 at checkpoint_every 500 keeps the default schedule's last 256 px checkpoint (step 4000).
    keep_checkpoints: int = opt(5, "periodic checkpoints kept besides last.ckpt (-1: all)")
    log_every: int = opt(10, "log the losses every N steps (TensorBoard and CSV)")
    log_images: int = opt(4, "validation photos in each saved grid (0: none)")

    def __post_init__(self):
        # YAML and flags give lists; keep tuples so the config stays hashable and comparable.
        object.__setattr__(self, "holdout", tuple(self.holdout))
        for name, minimum in MINIMUMS.items():
            if getattr(self, name) < minimum:
                raise FastNSTError(f"{name} must be >= {minimum}, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise FastNSTError(f"lr must be a finite number > 0, got {self.lr}")
        if self.downsamples > MAX_DOWNSAMPLES:
            raise FastNSTError(f"downsamples must be <= {MAX_DOWNSAMPLES}, got {self.downsamples}")
        if 0 < self.early_image_size < 16:
            raise FastNSTError(f"early_image_size must be 0 (image_size) or >= 16, got {self.early_image_size}")
        if self.early_style_steps and not self.early_style_size:
            raise FastNSTError(f"early_style_steps {self.early_style_steps} needs early_style_size > 0 "
                               "(or early_style_steps 0: style_size from the start)")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise FastNSTError(f"grad_clip must be a finite number >= 0, got {self.grad_clip}")
        if not (math.isfinite(self.early_style_weight) and self.early_style_weight >= 0):
            raise FastNSTError(f"early_style_weight must be a finite number >= 0, got {self.early_style_weight}")
        if not (math.isfinite(self.structure_floor) and 0 <= self.structure_floor < 1):
            raise FastNSTError(f"structure_floor must be in [0, 1) (0: off), got {self.structure_floor}")
        if self.style_size is not None and self.style_size < 1:
            raise FastNSTError(f"style_size must be >= 1, got {self.style_size}")

    def holdout_names(self) -> tuple[str, ...]:
        """``holdout`` plus the names in ``holdout_file`` (read here: the one file this config names)."""
        if self.holdout_file is None:
            return self.holdout
        try:
            return self.holdout + tuple(read_holdout(self.holdout_file))
        except OSError as e:
            raise FastNSTError(f"holdout_file {self.holdout_file}: cannot read ({e.strerror or e})") from None
