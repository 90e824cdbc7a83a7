"""A frozen VGG16/VGG19 feature extractor for the perceptual loss.

The module tree mirrors torchvision's ``vgg*.features`` (keys ``features.N.weight``), so the files
torchvision publishes, and any partial file in that layout, load unchanged. Only the ``features``
part is built, and only as deep as the deepest requested layer: a loss that stops at relu3_4 never
pays for conv4_1..conv5_4.

Pixel convention: input is RGB float in [0, 1], shape [B, 3, H, W]. ImageNet normalization
(torchvision's mean/std) happens inside ``forward``; nothing outside this file knows about it.
"""

from __future__ import annotations

import os
import urllib.error
from collections.abc import Sequence

import torch
from torch import nn

from fastnst.errors import FastNSTError

# Channel plan per architecture: an int is a 3x3 conv (+ ReLU), "M" a 2x2 max-pool (torchvision's cfg D/E).
_CFGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

# torchvision's published ImageNet weights; the hash prefix in the name is checked by torch.hub.
WEIGHT_URLS = {
    "vgg16": "https://download.pytorch.org/models/vgg16-397923af.pth",
    "vgg19": "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
}
WEIGHTS_ENV = "FASTNST_VGG_WEIGHTS"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_indices(arch: str) -> dict[str, int]:
    """Map layer names (conv1_1, relu1_1, pool1, ...) to their index in ``features``."""
    if arch not in _CFGS:
        raise FastNSTError(f"unknown VGG architecture {arch!r}; choose one of {sorted(_CFGS)}")
    names: dict[str, int] = {}
    block, conv, i = 1, 1, 0
    for v in _CFGS[arch]:
        if v == "M":
            names[f"pool{block}"] = i
            block, conv, i = block + 1, 1, i + 1
        else:
            names[f"conv{block}_{conv}"] = i
            names[f"relu{block}_{conv}"] = i + 1
            conv, i = conv + 1, i + 2
    return names


class VGGFeatures(nn.Module):
    """Frozen VGG ``features`` truncated at the deepest of ``layers``; ``forward`` returns {name: activation}.

    Built with random weights (useful for tests); call ``load_state_dict`` or use ``load_vgg``
    for real ones. Parameters never require grad and the module stays in eval mode.
    """

    def __init__(self, layers: Sequence[str], arch: str = "vgg19"):
        super().__init__()
        index = layer_indices(arch)
        unknown = [name for name in layers if name not in index]
        if unknown or not layers:
            raise FastNSTError(f"unknown {arch} layer(s) {unknown or '(none given)'}; valid: relu1_1, relu2_2, conv3_1, ...")
        self.arch = arch
        self.layers = tuple(dict.fromkeys(layers))  # unique, order kept
        self._index = {name: index[name] for name in self.layers}
        depth = max(self._index.values()) + 1

        modules: list[nn.Module] = []
        in_ch = 3
        for v in _CFGS[arch]:
            if v == "M":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                # inplace=False: an in-place ReLU would overwrite the conv output we return for conv* layers.
                modules += [nn.Conv2d(in_ch, v, 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = v
        self.features = nn.Sequential(*modules[:depth])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGGFeatures":
        # Always eval: the extractor is a fixed measuring instrument, never trained.
        return super().train(False)

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """x: [B, 3, H, W] RGB in [0, 1] -> {layer: [B, C_l, H_l, W_l]}.

        ``layers`` (a subset of self.layers) stops the pass early, e.g. for content targets only.
        """
        names = self.layers if layers is None else layers
        wanted = {self._index[name]: name for name in names}
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        for i, module in enumerate(self.features):
            h = module(h)
            if i in wanted:
                out[wanted[i]] = h
                if len(out) == len(wanted):
                    break
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load torchvision-layout weights; extra (deeper / classifier) keys are ignored.

        Missing keys for a layer we need raise a FastNSTError naming that layer and the deepest
        layer the file covers, instead of torch's list of key names.
        """
        state = {k.removeprefix("module."): v for k, v in state_dict.items()}
        if not any(k.startswith("features.") for k in state):
            state = {f"features.{k}": v for k, v in state.items()}
        names = {i: name for name, i in layer_indices(self.arch).items() if name.startswith("conv")}
        needed = {k for k in self.state_dict() if k.startswith("features.")}
        missing = sorted(needed - state.keys(), key=lambda k: int(k.split(".")[1]))
        if missing:
            first = names[int(missing[0].split(".")[1])]
            have = [i for i in names if f"features.{i}.weight" in state]
            covers = names[max(have)] if have else "no conv layer"
            raise FastNSTError(
                f"VGG weights do not cover {first} (needed for {', '.join(self.layers)}); "
                f"the file covers up to {covers}. Use shallower layers or the full torchvision {self.arch} file."
            )
        for k in needed:
            if state[k].shape != self.state_dict()[k].shape:
                raise FastNSTError(f"VGG weights: {k} has shape {tuple(state[k].shape)}, expected "
                                   f"{tuple(self.state_dict()[k].shape)} (is this a {self.arch} file?)")
        return super().load_state_dict({k: state[k] for k in needed}, strict=strict, assign=assign)


def resolve_weights(arch: str = "vgg19", path: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """Find VGG weights: explicit ``path``, else $FASTNST_VGG_WEIGHTS, else torchvision's URL via torch.hub.

    torch.hub caches the download (~/.cache/torch/hub/checkpoints) and checks its hash prefix.
    """
    path = path or os.environ.get(WEIGHTS_ENV) or None
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FastNSTError(f"VGG weights file not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a corrupt pickle/zip
            raise FastNSTError(f"cannot read VGG weights {path}: {type(e).__name__}: {e}".splitlines()[0]) from e
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise FastNSTError(f"VGG weights {path} is not a state dict")
        return state
    try:
        return torch.hub.load_state_dict_from_url(WEIGHT_URLS[arch], map_location="cpu", check_hash=True, progress=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise FastNSTError(
            f"no VGG weights: could not download {WEIGHT_URLS[arch]} ({type(e).__name__}). "
            f"Give a local torchvision-layout {arch} file with --vgg-weights PATH or ${WEIGHTS_ENV}."
        ) from e


def load_vgg(layers: Sequence[str], arch: str = "vgg19", weights: str | os.PathLike | None = None) -> VGGFeatures:
    """A frozen, weight-loaded extractor for ``layers`` (see ``resolve_weights`` for where weights come from)."""
    vgg = VGGFeatures(layers, arch=arch)
    vgg.load_state_dict(resolve_weights(arch, weights))
    return vgg
