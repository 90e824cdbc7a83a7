"""The Gatys perceptual loss as one module: VGG features + fixed style Grams + weighted terms.

Both paths optimize exactly this: the slow Gatys path (pixels, ``gatys.py``) and the fast path
(transformer weights, ``module.py``). ``LossConfig`` is the single place its defaults live; the
fast path's one override (a lower style weight) is ``TrainConfig.loss`` in train_config.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

import torch.nn.functional as F

from fastnst.errors import FastNSTError
from fastnst.losses import STRUCTURE_LAYER, content_loss, gram, structure, style_loss, tv_loss
from fastnst.vgg import VGGFeatures


@dataclass(frozen=True)
class LossConfig:
    """Layers and weights of the perceptual loss.

    Defaults use only layers up to relu3_x, which the shared partial VGG19 file covers; Gatys and
    Johnson use relu4/relu5 too (a departure forced by the weights we have, not a preference).
    Terms are relative errors per layer (see PerceptualLoss), so weights are O(1)..O(100).

    ``style_octaves`` > 1 adds the style terms of the image downsampled by 2, 4, ... against the
    style image downsampled alike (a Gram pyramid). Departure from Gatys/Johnson, who reach large
    brush strokes through relu4_x/relu5_x: our VGG file stops at relu3_4, whose receptive field
    (~40 px) is smaller than a stroke of most paintings at 512 px; at half size the same layers see
    twice as far, for a quarter of the VGG cost.
    """

    content_layers: tuple[str, ...] = field(default=("relu2_2",), metadata={
        "help": "VGG layers whose activations the result must keep from the photo (relu<block>_<n>)"})
    style_layers: tuple[str, ...] = field(default=("relu1_1", "relu2_1", "relu3_1", "relu3_4"), metadata={
        "help": "VGG layers whose Gram matrices (texture statistics) the result must share with the style image"})
    content_weight: float = field(default=1.0, metadata={"help": "weight of the content term: more keeps the photo"})
    style_weight: float = field(default=10.0, metadata={"help": "weight of the style term: more paints over the photo"})
    tv_weight: float = field(default=1.0, metadata={
        "help": "weight of the total-variation term: more smooths away pixel noise"})
    style_octaves: int = field(default=1, metadata={
        "help": "style terms at 1, 1/2, 1/4... of the size (a Gram pyramid: larger brush strokes); 1: full size only"})
    content_top: float = field(default=1.0, metadata={
        "help": "the content term averages only the worst fraction of each photo's locations, where the output "
                "has lost most of it (more weight for small and faint subjects); 1: every location"})
    vgg_arch: str = field(default="vgg19", metadata={"help": "the loss network: vgg19 or vgg16 (torchvision layout)"})

    def __post_init__(self):
        # YAML/argparse give lists; keep tuples so the config stays hashable and comparable.
        object.__setattr__(self, "content_layers", tuple(self.content_layers))
        object.__setattr__(self, "style_layers", tuple(self.style_layers))
        if not self.style_layers:
            raise FastNSTError("style_layers must name at least one VGG layer")
        if self.style_octaves < 1:
            raise FastNSTError(f"style_octaves must be >= 1 (1: full resolution only), got {self.style_octaves}")
        if not 0 < self.content_top <= 1:  # NaN fails this too
            raise FastNSTError(f"content_top must be in (0, 1] (1: every location), got {self.content_top}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not math.isfinite(value):  # NaN passes `< 0` and trains a NaN model
                raise FastNSTError(f"{name} must be a finite number, got {value}")
            if value < 0:
                raise FastNSTError(f"{name} must be >= 0, got {value}")

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))


def octave_suffix(octave: int) -> str:
    """Buffer-name suffix of a pyramid level: "" at full size (the names of one-octave checkpoints), "_d2", "_d4"..."""
    return f"_d{2 ** octave}" if octave else ""


def downsample(image: torch.Tensor, octave: int) -> torch.Tensor:
    """[B, 3, H, W] -> [B, 3, H/2^octave, W/2^octave] by area averaging (no aliasing); octave 0 is a no-op."""
    return image if octave == 0 else F.avg_pool2d(image, 2**octave, ceil_mode=True)


class PerceptualLoss(nn.Module):
    """Weighted content + style + TV loss against one fixed style image.

    The style Grams are computed once and kept as buffers (``gram_<layer>``, [1, C, C] fp32), so
    they follow ``.to(device)`` and are saved with the module but never recomputed per step.

    Departure from Gatys/Johnson: each layer's term is divided by the size of its target
    (style: mean(G_S²) of the style Gram; content: mean(a_C²) of the content activations), i.e. we
    minimize relative errors. Raw terms differ by 10^4 between relu1_1 and relu3_4 and scale with
    the VGG file's activation scale (the Caffe-derived shared file's activations are ~50x
    torchvision's); relative terms are O(1) per layer, so one set of weights works for any layer
    choice and any VGG file.
    """

    def __init__(self, vgg: VGGFeatures, style_image: torch.Tensor, config: LossConfig = LossConfig()):
        """vgg must extract ``config.layers``; style_image: [1, 3, H, W] RGB in [0, 1]."""
        super().__init__()
        missing = set(config.layers) - set(vgg.layers)
        if missing:
            raise FastNSTError(f"VGG extractor lacks layers {sorted(missing)}")
        self.vgg = vgg
        self.config = config
        for octave in range(config.style_octaves):
            with torch.no_grad():
                feats = vgg(downsample(style_image, octave), config.style_layers)
            for name in config.style_layers:
                g = gram(feats[name])
                self.register_buffer(f"gram_{name}{octave_suffix(octave)}", g)
                self.register_buffer(f"gram_scale_{name}{octave_suffix(octave)}", 1.0 / (g.pow(2).mean() + 1e-12))

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
        """The unweighted relative error of every layer: {"content_<layer>", "style_<layer><octave suffix>"}.

        image: [B, 3, H, W] in [0, 1]; targets from ``content_targets``; feats: ``self.vgg(image)``
        where the caller has it already. fp32 scalars."""
        cfg = self.config
        feats = self.vgg(image) if feats is None else feats
        terms = {f"content_{k}": content_loss(feats[k], targets[k], cfg.content_top)
                 / (targets[k].float().pow(2).mean() + 1e-12)
                 for k in cfg.content_layers}
        for octave in range(cfg.style_octaves):
            f = feats if octave == 0 else self.vgg(downsample(image, octave), cfg.style_layers)
            sfx = octave_suffix(octave)
            for k in cfg.style_layers:
                terms[f"style_{k}{sfx}"] = (style_loss(f[k], getattr(self, f"gram_{k}{sfx}"))
                                            * getattr(self, f"gram_scale_{k}{sfx}"))
        return terms

    def forward(self, image: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """image: [B, 3, H, W] in [0, 1]; targets from ``content_targets``.

        Returns the weighted terms {"content", "style", "tv"} and their sum "total" (fp32 scalars),
        and "structure" (losses.structure, no grad) where ``targets`` holds the photo's STRUCTURE_LAYER.
        """
        cfg = self.config
        feats = self.vgg(image)
        layers = self.layer_terms(image, targets, feats)
        zero = image.new_zeros((), dtype=torch.float32)
        terms = {
            "content": cfg.content_weight * sum((v for k, v in layers.items() if k.startswith("content_")), zero),
            "style": cfg.style_weight * sum((v for k, v in layers.items() if k.startswith("style_")), zero),
            "tv": cfg.tv_weight * tv_loss(image),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        if STRUCTURE_LAYER in targets and STRUCTURE_LAYER in feats:
            terms["structure"] = structure(targets[STRUCTURE_LAYER], feats[STRUCTURE_LAYER].detach())
        return terms
