"""The trained-model file formats: ``transformer.pt`` and the Lightning ``.ckpt``, read the same way.

``transformer.pt`` (written at the end of training) is a plain dict, readable with
``torch.load(path, weights_only=True)``::

    {"format": "fastnst-transformer", "version": 1,
     "model": {"width": 32, "n_residual": 5},          # TransformerNet(**model) rebuilds the net
     "state_dict": {...},                               # TransformerNet.state_dict()
     "meta": {"style_name", "style_sha256", "image_size", "loss": {LossConfig fields},
              "fastnst_version"}}

A Lightning checkpoint holds the same "model" and "meta" under the key "fastnst", and the
transformer's weights in "state_dict" under the prefix "net.".
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from fastnst.errors import FastNSTError
from fastnst.files import atomic_write
from fastnst.transformer import TransformerNet

FORMAT = "fastnst-transformer"
VERSION = 1


def model_info(net: TransformerNet) -> dict:
    """The constructor arguments that rebuild ``net``."""
    return {"width": net.width, "n_residual": net.n_residual}


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temp file in the same folder, then rename: a kill never leaves half a file."""
    with atomic_write(path) as f:
        torch.save(obj, f)


def save_transformer(net: TransformerNet, path: str | os.PathLike, meta: dict) -> None:
    """Write ``transformer.pt`` (see module doc) atomically."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    atomic_torch_save({"format": FORMAT, "version": VERSION, "model": model_info(net), "state_dict": state,
                       "meta": meta}, path)


def load_transformer(path: str | os.PathLike) -> tuple[TransformerNet, dict]:
    """Read a ``transformer.pt`` or a training ``.ckpt`` -> (TransformerNet in eval mode, meta)."""
    path = Path(path)
    if not path.is_file():
        raise FastNSTError(f"{path}: no such model file")
    try:
        # weights_only=False is needed for Lightning checkpoints (they pickle hparams); only load
        # files you trust, as with any PyTorch checkpoint.
        obj = torch.load(path, map_location="cpu", weights_only=path.suffix != ".ckpt")
    except Exception as e:
        raise FastNSTError(f"{path}: not a readable PyTorch model file ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise FastNSTError(f"{path}: not a fastnst model file")
    if obj.get("format") == FORMAT:
        info, state, meta = obj.get("model"), obj.get("state_dict"), obj.get("meta", {})
    elif "fastnst" in obj and "state_dict" in obj:
        info, meta = obj["fastnst"].get("model"), obj["fastnst"].get("meta", {})
        state = {k.removeprefix("net."): v for k, v in obj["state_dict"].items() if k.startswith("net.")}
    else:
        raise FastNSTError(f"{path}: not a fastnst model file (no transformer weights found)")
    if not isinstance(info, dict) or not state:
        raise FastNSTError(f"{path}: fastnst model file is incomplete")
    try:
        net = TransformerNet(**info)
        net.load_state_dict(state)
    except (TypeError, RuntimeError) as e:
        raise FastNSTError(f"{path}: transformer weights do not match its config ({str(e).splitlines()[0]})") from None
    return net.eval(), meta
