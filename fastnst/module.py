"""The training system: a LightningModule that composes TransformerNet and PerceptualLoss.

The model (transformer.py) and the loss (perceptual.py, vgg.py) are plain modules; this file only
wires them into Lightning: the step, logging, optimizer, and what a checkpoint holds (the
transformer, the style Grams and the optimizer state, never the frozen VGG weights).
"""

from __future__ import annotations

import dataclasses
import math

import pytorch_lightning as pl
import torch

from fastnst import __version__
from fastnst.checkpoint import AVERAGE_PREFIX, model_info
from fastnst.errors import FastNSTError
from fastnst.losses import STRUCTURE_LAYER
from fastnst.perceptual import PerceptualLoss
from fastnst.stability import stability_loss
from fastnst.train_config import TrainConfig
from fastnst.transformer import TransformerNet
from fastnst.vgg import VGGFeatures

# The frozen VGG's keys in state_dict(): under the loss, and again under the early-scale loss
# when there is one (the same module, shared).
VGG_PREFIXES = ("loss.vgg.", "early_loss.vgg.")
# The style image's fixed targets (perceptual.py's buffers gram_<layer>, gram_scale_<layer>,
# palette_<summary>), in both losses.
STYLE_TARGET_PREFIXES = ("loss.gram_", "early_loss.gram_", "loss.palette_", "early_loss.palette_")
# The buffer holding the log of the style weight's multiplier under a structure floor.
STYLE_SCALE_KEY = "style_log_scale"


def lr_factor(step: int, total: int | None, decay_steps: int) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based): 1, then along a cosine to 0
    at ``total`` over its last ``decay_steps`` steps, or all of them if fewer (0 or no total known:
    constant)."""
    if not decay_steps or not total:
        return 1.0
    start = max(0, total - decay_steps)
    t = min(1.0, max(0, step - start) / max(1, total - start))
    return 0.5 * (1 + math.cos(math.pi * t))


# The style weight's multiplier under a structure floor: never above 1 (the configured weight), never
# below STYLE_SCALE_MIN; its log moves by STRUCTURE_GAIN per step per unit of structure above or
# below the floor: slow enough to integrate away the scatter of one crop's structure.
STYLE_SCALE_MIN = 0.1
STRUCTURE_GAIN = 0.05


def next_style_log_scale(log_scale: torch.Tensor, structure: torch.Tensor, floor: float) -> torch.Tensor:
    """One step of the structure floor's integral control: the style weight's log multiplier falls
    while the output's structure is under ``floor`` and climbs back (to 0: the full weight) while
    it is over. Scalars in, scalar out.

    Departure from Johnson et al. (one fixed style weight): the weight that keeps a painting's
    subjects differs per painting, and the style loss alone does not say when they are gone
    (losses.structure does). The multiplier is a Lagrange multiplier of the constraint
    structure >= floor, updated as in GECO (Rezende & Viola 2018, "Taming VAEs")."""
    return (log_scale + STRUCTURE_GAIN * (structure - floor)).clamp(math.log(STYLE_SCALE_MIN), 0.0)


class StyleTransferModule(pl.LightningModule):
    """Train a TransformerNet so that net(photo) minimizes the perceptual loss against one style.

    ``vgg`` and the style images ([1, 3, H, W] in [0, 1]) are built by the caller (training.train
    reads the files); the recipe is ``config``, saved in the checkpoint.
    """

    def __init__(self, vgg: VGGFeatures, style_image: torch.Tensor, config: TrainConfig = TrainConfig(), *,
                 early_style_image: torch.Tensor | None = None, style_name: str = "", style_sha256: str = ""):
        """``style_image`` at config.style_size and ``early_style_image`` at config.early_style_size
        ([1, 3, H, W] in [0, 1]; the latter needed when config.early_steps > 0)."""
        super().__init__()
        if config.structure_floor and STRUCTURE_LAYER not in vgg.layers:
            raise FastNSTError(f"structure_floor needs the VGG extractor to reach {STRUCTURE_LAYER}")
        if config.early_steps and early_style_image is None:
            raise FastNSTError("early_steps needs early_style_image (the style image at early_style_size)")
        self.config = config
        # hparams.yaml and the checkpoint say what the run is: the whole config, plain values.
        self.save_hyperparameters({"config": dataclasses.asdict(config), "style_name": style_name,
                                   "style_sha256": style_sha256})
        self.net = TransformerNet(width=config.width)
        # The uniform average of self.net's weights over the last average_steps steps, the net a run
        # ships. Its weights are in the checkpoint under AVERAGE_PREFIX (checkpoint.load_transformer
        # reads them), with its count n_averaged (0: not started).
        self.net_average = None
        if config.average_steps:
            self.net_average = torch.optim.swa_utils.AveragedModel(self.net, use_buffers=True)
            self.net_average.requires_grad_(False)
            self.net_average.register_buffer("first_step", torch.tensor(0))  # the window's first step
        self.loss = PerceptualLoss(vgg, style_image, config.loss)
        # The first stage's target: the same loss against the style image at early_style_size, at
        # its own weight (its Grams are buffers of their own, saved and resumed with the run).
        early = dataclasses.replace(config.loss, style_weight=config.early_style_weight_or_default)
        self.early_loss = PerceptualLoss(vgg, early_style_image, early) if config.early_steps else None
        self.val_grid: torch.Tensor | None = None  # [3, H, W] grid of the last validation batch
        # log of the style weight's multiplier under structure_floor (next_style_log_scale); saved
        # and resumed with the run. 0: the configured weight.
        self.register_buffer(STYLE_SCALE_KEY, torch.zeros(()))

    def meta(self) -> dict:
        """What an exported model says about itself (see checkpoint.py / export.py); "config" is the
        recipe that trained it (TrainConfig.recipe), which its configs/<style>.yaml resolves to."""
        cfg = self.config
        return {"style_name": self.hparams.style_name, "style_sha256": self.hparams.style_sha256,
                "image_size": cfg.image_size, "style_size": cfg.style_size, "loss": dataclasses.asdict(cfg.loss),
                "config": cfg.recipe(), "fastnst_version": __version__}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def trained_net(self) -> TransformerNet:
        """The net this run ships: the weight average once it has started, else the net being trained."""
        if self.net_average is not None and self.net_average.n_averaged > 0:
            return self.net_average.module
        return self.net

    def _average_start(self) -> int:
        """The step after which the weight average begins: it takes the weights after each step
        from start + 1 to max_steps."""
        return self.trainer.max_steps - self.config.average_steps

    def _restart_average(self, start: int) -> None:
        self.net_average.n_averaged.zero_()
        self.net_average.first_step.fill_(start + 1)

    def on_train_start(self) -> None:
        if self.net_average is None or self.trainer.max_steps < 1:
            return
        start = self._average_start()
        if self.global_step > start and self.net_average.first_step.item() != start + 1:
            # Resumed inside a window other than the one its average began (another max_steps or
            # average_steps, or a checkpoint from before averaging): start again from the weights
            # as resumed, which are inside the window.
            self._restart_average(start)
            self.net_average.update_parameters(self.net)

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.net_average is None or self.trainer.max_steps < 1:
            return
        # Here, not in on_train_batch_end: that hook runs after the callbacks', so a checkpoint saved
        # on this step would miss this step's weights. global_step counts this step once we return.
        step, start = self.global_step + 1, self._average_start()
        if step == start + 1:
            self._restart_average(start)
        if step > start:
            self.net_average.update_parameters(self.net)

    def _step(self, batch: torch.Tensor, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """batch: [B, 3, S, S] photos in [0, 1] -> (total loss, stylized batch)."""
        # Validation measures the net the run would ship now.
        stylized = (self.net if stage == "train" else self.trained_net())(batch)
        # Validation always scores against the final target, so its curve is one measure throughout.
        early = stage == "train" and self.global_step < self.config.early_steps
        loss = self.early_loss if early else self.loss
        floor = self.config.structure_floor if stage == "train" and not early else 0.0
        # The structure (losses.structure) comes from the loss's own VGG pass: validation logs it,
        # the structure floor steers by it.
        measure = (floor or stage == "val") and STRUCTURE_LAYER in loss.vgg.layers
        # The second stage's style weight follows the structure floor (next_style_log_scale).
        log_scale = getattr(self, STYLE_SCALE_KEY)
        style_scale = log_scale.exp() if floor else 1.0
        terms = loss(stylized, loss.content_targets(batch, (STRUCTURE_LAYER,) if measure else ()), style_scale)
        if floor:
            terms["style_scale"] = style_scale
            # One multiplier for every device: each measures its own batch, the mean moves them all.
            measured = self.trainer.strategy.reduce(terms["structure"].detach(), reduce_op="mean")
            log_scale.copy_(next_style_log_scale(log_scale, measured, floor))
        if stage == "train" and not early and self.config.stability_weight:  # the second stage, as the floor
            terms["stability"] = self.config.stability_weight * stability_loss(self.net, batch, stylized)
            terms["total"] = terms["total"] + terms["stability"]
        on_step = stage == "train"
        # The progress bar shows the total (and the floor's multiplier) and validation's structure,
        # the number to watch; every term goes to the logs.
        shown = {"total", "style_scale"} if on_step else {"structure"}
        for prog_bar, keys in ((True, shown & set(terms)), (False, set(terms) - shown)):
            self.log_dict({f"{stage}/{k}": terms[k] for k in sorted(keys)}, prog_bar=prog_bar, on_step=on_step,
                          on_epoch=not on_step, batch_size=batch.shape[0], sync_dist=not on_step)
        return terms["total"], stylized

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        # _step logs val/structure too: the fixed scorer's structure (bench/score.py) on the
        # validation crops, the number that says a net is painting its subjects away (under ~0.6),
        # which the losses do not.
        _, stylized = self._step(batch, "val")
        if batch_idx == 0 and self.config.log_images:
            n = self.config.log_images
            # Row of photos over row of their stylizations: [3, 2·S, n·S].
            photos, styled = batch[:n].float(), stylized[:n].float().clamp(0, 1)
            self.val_grid = torch.cat([torch.cat(list(photos), 2), torch.cat(list(styled), 2)], 1).cpu()
            for logger in self.loggers:
                if hasattr(logger.experiment, "add_image"):  # TensorBoard
                    logger.experiment.add_image("val/stylized", self.val_grid, self.global_step)

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.config.lr)
        if not self.config.lr_decay_steps:
            return optimizer
        total = self.trainer.max_steps if self.trainer.max_steps > 0 else None
        # The factor follows the run's global step, not the scheduler's own count: a run resumed from
        # a checkpoint saved without this schedule starts it at its own step.
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda _: lr_factor(self.global_step, total, self.config.lr_decay_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The frozen VGG is ~80 MB of weights the user already has: keep it out of every checkpoint.
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(VGG_PREFIXES)}
        checkpoint["fastnst"] = {"model": model_info(self.net), "meta": self.meta()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # Checkpoints lack the VGG (see on_save_checkpoint): fill in ours before Lightning loads the
        # state dict (this hook runs first), which then stays strict about everything else.
        # The style Grams are fixed targets of the style image at the sizes this run's config names,
        # computed when this module was built: ours replace the checkpoint's, so a run resumed with
        # another --style-size, --early-steps or style layers trains against what its config
        # says (the checkpoint's Grams would otherwise win without a word).
        # A run resumed with weight averaging switched off drops the checkpoint's average; one
        # switched on, or saved before averaging existed, starts with an empty one (n_averaged 0).
        # A checkpoint saved before the structure floor existed resumes with the full style weight.
        dropped = STYLE_TARGET_PREFIXES + (() if self.net_average is not None else (AVERAGE_PREFIX,))
        state = checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items()
                                            if not k.startswith(dropped)}
        for k, v in self.state_dict().items():
            if k.startswith(VGG_PREFIXES + STYLE_TARGET_PREFIXES + (AVERAGE_PREFIX,)) or k == STYLE_SCALE_KEY:
                state.setdefault(k, v)
