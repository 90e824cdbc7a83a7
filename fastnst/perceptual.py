"""The Gatys perceptual loss as one module: VGG features + fixed style Grams + weighted terms.

Both paths optimize exactly this: the slow Gatys path (pixels, ``gatys.py``) and the fast path
(transformer weights, ``module.py``). ``LossConfig`` is the single place its defaults live.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fastnst.errors import FastNSTError
from fastnst.losses import content_loss, gram, style_loss, tv_loss
from fastnst.vgg import VGGFeatures


@dataclass(frozen=True)
class LossConfig:
    """Layers and weights of the perceptual loss.

    Defaults use only layers up to relu3_x, which the shared partial VGG19 file covers; Gatys and
    Johnson use relu4/relu5 too (a departure forced by the weights we have, not a preference).
    Terms are relative errors per layer (see PerceptualLoss), so weights are O(1)..O(100).
    """

    content_layers: tuple[str, ...] = ("relu2_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu3_4")
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 1.0
    vgg_arch: str = "vgg19"

    def __post_init__(self):
        # YAML/argparse give lists; keep tuples so the config stays hashable and comparable.
        object.__setattr__(self, "content_layers", tuple(self.content_layers))
        object.__setattr__(self, "style_layers", tuple(self.style_layers))
        if not self.style_layers:
            raise FastNSTError("style_layers must name at least one VGG layer")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise FastNSTError(f"{name} must be >= 0, got {getattr(self, name)}")

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.content_layers + self.style_layers))


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
        with torch.no_grad():
            feats = vgg(style_image, config.style_layers)
        for name in config.style_layers:
            g = gram(feats[name])
            self.register_buffer(f"gram_{name}", g)
            self.register_buffer(f"gram_scale_{name}", 1.0 / (g.pow(2).mean() + 1e-12))

    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """VGG activations of the content image(s) [B, 3, H, W], without grad (the loss's fixed targets)."""
        if not self.config.content_layers:
            return {}
        with torch.no_grad():
            return {k: v.detach() for k, v in self.vgg(content, self.config.content_layers).items()}

    def forward(self, image: torch.Tensor, targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """image: [B, 3, H, W] in [0, 1]; targets from ``content_targets``.

        Returns the weighted terms {"content", "style", "tv"} and their sum "total" (fp32 scalars).
        """
        cfg = self.config
        feats = self.vgg(image)
        zero = image.new_zeros((), dtype=torch.float32)
        content = sum(
            (content_loss(feats[k], targets[k]) / (targets[k].float().pow(2).mean() + 1e-12) for k in cfg.content_layers),
            zero,
        )
        style = sum(
            (style_loss(feats[k], getattr(self, f"gram_{k}")) * getattr(self, f"gram_scale_{k}") for k in cfg.style_layers),
            zero,
        )
        terms = {
            "content": cfg.content_weight * content,
            "style": cfg.style_weight * style,
            "tv": cfg.tv_weight * tv_loss(image),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms
