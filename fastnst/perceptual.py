"""The Gatys perceptual loss as one module: VGG features + fixed style Grams + weighted terms.

Both paths optimize exactly this: the slow Gatys path (pixels, ``gatys.py``) and the fast path
(transformer weights, ``module.py``). ``LossConfig`` is the single place its defaults live; the
fast path's overrides (content layer, style weight) are ``TrainConfig.loss`` in train_config.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import torch
from torch import nn

from fastnst.errors import FastNSTError
from fastnst.fieldcheck import check_field_types
from fastnst.losses import (STRUCTURE_LAYER, colour_quantiles, content_loss, gram, palette_loss, rgb_to_lab, structure,
                            style_loss, tv_loss)
from fastnst.vgg import VGGFeatures


# The palette term: the painting's pixels at an even stride, fewer than 2 * PALETTE_PIXELS of them
# (a 512 px painting has ~200k), summarized by PALETTE_LEVELS quantiles on each of PALETTE_BANK
# fixed directions, of which each training step draws PALETTE_DIRECTIONS at random.
PALETTE_PIXELS, PALETTE_LEVELS, PALETTE_BANK, PALETTE_DIRECTIONS = 65536, 1024, 256, 16


@dataclass(frozen=True)
class LossConfig:
    """Layers and weights of the perceptual loss.

    Departure from Gatys and Johnson (relu4/relu5 layers too): layers up to relu3_x only, forced
    by the VGG19 file we have (conv1_1..conv3_4). Terms are relative errors per layer (see
    PerceptualLoss), so weights are O(1)..O(100).
    """

    content_layers: tuple[str, ...] = field(default=("relu2_2",), metadata={
        "help": "VGG layers whose activations the result must keep from the photo (relu<block>_<n>)"})
    style_layers: tuple[str, ...] = field(default=("relu1_1", "relu2_1", "relu3_1", "relu3_4"), metadata={
        "help": "VGG layers whose Gram matrices (texture statistics) the result must share with the style image"})
    content_weight: float = field(default=1.0, metadata={"help": "weight of the content term: more keeps the photo"})
    style_weight: float = field(default=10.0, metadata={"help": "weight of the style term: more paints over the photo"})
    tv_weight: float = field(default=1.0, metadata={
        "help": "weight of the total-variation term: more smooths away pixel noise"})
    palette_weight: float = field(default=0.0, metadata={
        "help": "weight of a term pulling the output's colours toward the painting's (0: off)"})
    vgg_arch: str = field(default="vgg19", metadata={"help": "the loss network: vgg19 or vgg16 (torchvision layout)"})

    def __post_init__(self):
        # YAML/argparse give lists; keep tuples so the config stays hashable and comparable.
        for name in ("content_layers", "style_layers"):
            if isinstance(getattr(self, name), (list, tuple)):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        check_field_types(self)
        if not self.style_layers:
            raise FastNSTError("style_layers must name at least one VGG layer")
        for name in ("content_weight", "style_weight", "tv_weight", "palette_weight"):
            value = getattr(self, name)
            if not math.isfinite(value):  # NaN passes `< 0` and trains a NaN model
                raise FastNSTError(f"{name} must be a finite number, got {value}")
            if value < 0:
                raise FastNSTError(f"{name} must be >= 0, got {value}")

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))


def loss_config(saved: dict) -> LossConfig:
    """A model file's stored loss fields -> LossConfig; fields of options since removed are dropped."""
    names = {f.name for f in fields(LossConfig)}
    return LossConfig(**{k: v for k, v in saved.items() if k in names})


class PerceptualLoss(nn.Module):
    """Weighted content + style + TV (+ palette) loss against one fixed style image.

    The style Grams are computed once and kept as buffers (``gram_<layer>``, [1, C, C] fp32), so
    they follow ``.to(device)`` and are saved with the module but never recomputed per step.

    Departure from Gatys/Johnson: each layer's term is divided by the size of its target (style:
    mean(G_S²); content: mean(a_C²)), so raw terms that differ by orders of magnitude across layers
    and VGG files become O(1): one set of weights for any layer choice and any VGG file.
    """

    def __init__(self, vgg: VGGFeatures, style_image: torch.Tensor, config: LossConfig = LossConfig()):
        """vgg must extract ``config.layers``; style_image: [1, 3, H, W] RGB in [0, 1]."""
        super().__init__()
        missing = set(config.layers) - set(vgg.layers)
        if missing:
            raise FastNSTError(f"VGG extractor lacks layers {sorted(missing)}")
        self.vgg = vgg
        self.config = config
        with torch.no_grad():
            feats = vgg(style_image, config.style_layers)
        for name in config.style_layers:
            g = gram(feats[name])
            self.register_buffer(f"gram_{name}", g)
            self.register_buffer(f"gram_scale_{name}", 1.0 / (g.pow(2).mean() + 1e-12))
        if config.palette_weight:
            # The painting's colours [N, 3] in CIELAB, summarized once on a fixed bank of directions
            # (each step compares on PALETTE_DIRECTIONS of them: sorting is the term's cost).
            lab = rgb_to_lab(style_image).flatten(2)[0].T
            lab = lab[:: max(1, lab.shape[0] // PALETTE_PIXELS)]
            bank = torch.randn(PALETTE_BANK, 3, generator=torch.Generator().manual_seed(0)).to(lab)
            bank = torch.nn.functional.normalize(bank, dim=1)
            self.register_buffer("palette_directions", bank)
            self.register_buffer("palette_quantiles", colour_quantiles(lab, bank, PALETTE_LEVELS))
            self.register_buffer("palette_variance", lab.var(dim=0).sum() / 3 + 1e-6)

    def content_targets(self, content: torch.Tensor, extra_layers: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
        """VGG activations of the content image(s) [B, 3, H, W], without grad (the loss's fixed targets).

        ``extra_layers``: more of the photo's activations to carry along, e.g. (STRUCTURE_LAYER,), for
        which ``forward`` then reports the output's structure."""
        layers = tuple(dict.fromkeys(self.config.content_layers + tuple(extra_layers)))
        if not layers:
            return {}
        with torch.no_grad():
            return {k: v.detach() for k, v in self.vgg(content, layers).items()}

    def layer_terms(self, image: torch.Tensor, targets: dict[str, torch.Tensor],
                    feats: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The unweighted relative error of every layer: {"content_<layer>", "style_<layer>"}.

        image: [B, 3, H, W] in [0, 1]; targets from ``content_targets``; feats: ``self.vgg(image)``
        where the caller has it already. fp32 scalars."""
        cfg = self.config
        feats = self.vgg(image) if feats is None else feats
        terms = {f"content_{k}": content_loss(feats[k], targets[k]) / (targets[k].float().pow(2).mean() + 1e-12)
                 for k in cfg.content_layers}
        for k in cfg.style_layers:
            terms[f"style_{k}"] = style_loss(feats[k], getattr(self, f"gram_{k}")) * getattr(self, f"gram_scale_{k}")
        return terms

    def forward(self, image: torch.Tensor, targets: dict[str, torch.Tensor],
                style_scale: torch.Tensor | float = 1.0) -> dict[str, torch.Tensor]:
        """image: [B, 3, H, W] in [0, 1]; targets from ``content_targets``; style_scale multiplies the
        style weight (the structure floor's multiplier, module.py).

        Returns the weighted terms {"content", "style", "tv"}, "palette" where its weight is not 0, and
        their sum "total" (fp32 scalars),
        and "structure" (losses.structure, no grad) where ``targets`` holds the photo's STRUCTURE_LAYER.
        """
        cfg = self.config
        feats = self.vgg(image)
        layers = self.layer_terms(image, targets, feats)
        zero = image.new_zeros((), dtype=torch.float32)

        def summed(kind: str) -> torch.Tensor:
            return sum((v for k, v in layers.items() if k.startswith(f"{kind}_")), zero)

        terms = {
            "content": cfg.content_weight * summed("content"),
            "style": cfg.style_weight * style_scale * summed("style"),
            "tv": cfg.tv_weight * tv_loss(image),
        }
        if cfg.palette_weight:
            # Fresh directions each training step; in eval mode the same ones (validation, L-BFGS).
            pick = (torch.randperm(PALETTE_BANK, device=image.device)[:PALETTE_DIRECTIONS] if self.training
                    else torch.arange(PALETTE_DIRECTIONS, device=image.device))
            terms["palette"] = cfg.palette_weight * palette_loss(
                image, self.palette_directions[pick], self.palette_quantiles[pick], self.palette_variance)
        terms["total"] = terms["content"] + terms["style"] + terms["tv"] + terms.get("palette", zero)
        if STRUCTURE_LAYER in targets and STRUCTURE_LAYER in feats:
            terms["structure"] = structure(targets[STRUCTURE_LAYER], feats[STRUCTURE_LAYER].detach())
        return terms
