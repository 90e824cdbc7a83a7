"""The trained-model file formats: ``transformer.pt`` and the Lightning ``.ckpt``, read the same way.

``transformer.pt`` (written at the end of training) is a plain dict, readable with
``torch.load(path, weights_only=True)``::

    {"format": "fastnst-transformer", "version": 1,
     "model": {"width": 32, "n_residual": 5, "downsamples": 2},  # TransformerNet(**model) rebuilds the net
     "state_dict": {...},                               # TransformerNet.state_dict()
     "meta": {"style_name", "style_sha256", "image_size", "loss": {LossConfig fields},
              "fastnst_version"}}

A Lightning checkpoint holds the same "model" and "meta" under the key "fastnst", and the
transformer's weights in "state_dict" under the prefix "net."; from the step weight averaging
starts, the net it ships is their average, under AVERAGE_PREFIX (below), and that is what is read.
"""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import torch

from fastnst.errors import FastNSTError
from fastnst.files import atomic_write
from fastnst.models import MAX_MODEL_BYTES, check_architecture, check_meta
from fastnst.transformer import TransformerNet

# A Lightning checkpoint's keys of the weight average of the net (module.StyleTransferModule's
# net_average, a torch.optim.swa_utils.AveragedModel): the weights under "<prefix>module.", the
# number of steps averaged under "<prefix>n_averaged" (0: averaging has not started).
AVERAGE_PREFIX = "net_average."
PT_FORMAT = "fastnst-transformer"  # the "format" key of transformer.pt (ONNX files: onnx_contract.ONNX_FORMAT)
VERSION = 1


def model_info(net: TransformerNet) -> dict:
    """The constructor arguments that rebuild ``net``."""
    return {"width": net.width, "n_residual": net.n_residual, "downsamples": net.downsamples}


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """torch.save to a temp file in the same folder, then rename: a kill never leaves half a file.

    Serialized in memory first (checkpoints are megabytes): torch's zip writer calls the file's
    write() from C++, and a Ctrl-C/SIGTERM handler that runs inside it (a write interrupted by the
    signal) has its KeyboardInterrupt turned into RuntimeError("unexpected pos ..."), so training
    crashed instead of saving and exiting (seen in tests/test_interrupt.py). Lightning's own
    TorchCheckpointIO serializes to memory first too.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_write(path) as f:
        f.write(buffer.getbuffer())


def save_transformer(net: TransformerNet, path: str | os.PathLike, meta: dict) -> None:
    """Write ``transformer.pt`` (see module doc) atomically."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    atomic_torch_save({"format": PT_FORMAT, "version": VERSION, "model": model_info(net), "state_dict": state,
                       "meta": meta}, path)


def expanded_size(path: Path) -> int:
    """Bytes torch.load may unpack from ``path``: the uncompressed sizes its zip declares (torch's
    reader allocates each record at that size), or the file's own size for a legacy pickle."""
    if not zipfile.is_zipfile(path):
        return path.stat().st_size
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):  # damaged: torch.load reports it
        return path.stat().st_size


def check_expanded_size(path: Path) -> None:
    """FastNSTError if ``path`` would expand to more than MAX_MODEL_BYTES: checked before torch.load."""
    size = expanded_size(path)
    if size > MAX_MODEL_BYTES:
        raise FastNSTError(f"{path}: refused: it expands to {size / 2**20:.0f} MiB, more than a fastnst model "
                           f"file may hold ({MAX_MODEL_BYTES / 2**20:.0f} MiB)")


def read_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """torch.load a ``transformer.pt`` or ``.ckpt`` without ever unpickling arbitrary objects.

    weights_only=True: the unpickler takes tensors, containers and plain values only, so a file
    crafted to run code (a pickle ``__reduce__`` payload) fails here instead. Our Lightning
    checkpoints need no allow-list (torch.serialization.add_safe_globals): their hyperparameters are
    a plain dict (module.py), the optimizer/scheduler/callback states are tensors and plain values;
    tests/test_train.py loads a real last.ckpt this way. A file that would expand past
    MAX_MODEL_BYTES is refused before it is loaded. Errors are one-line FastNSTErrors.
    """
    path = Path(path)
    if not path.is_file():
        raise FastNSTError(f"{path}: no such model file" if not path.exists() else f"{path}: not a regular file")
    check_expanded_size(path)
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of files it then refuses
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # Also what a truncated legacy pickle raises; the message covers both without guessing.
        raise FastNSTError(f"{path}: refused: not a plain PyTorch checkpoint (it holds Python objects other than "
                           f"tensors and plain values, which could run code when loaded, or it is damaged)") from None
    except Exception as e:
        raise FastNSTError(f"{path}: not a readable PyTorch model file ({type(e).__name__})") from None
    if not isinstance(obj, dict):
        raise FastNSTError(f"{path}: not a fastnst model file")
    return obj


def check_finite(net: torch.nn.Module, what: str | os.PathLike) -> None:
    """Raise FastNSTError if any weight of ``net`` is NaN or infinite (a diverged training run)."""
    bad = [name for name, t in net.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise FastNSTError(f"{what}: the model's weights are not finite (NaN or inf in {bad[0]}"
                           f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}): its training diverged")


def averaged_steps(saved: dict, path: Path) -> int:
    """The number of steps the checkpoint's weight average holds (0: none); FastNSTError if it is not one number."""
    count = saved.get(AVERAGE_PREFIX + "n_averaged")
    if count is None:
        return 0
    if not isinstance(count, torch.Tensor) or count.numel() != 1 or count.is_floating_point() or count.is_complex():
        raise FastNSTError(f"{path}: {AVERAGE_PREFIX}n_averaged should be one whole number, got "
                           f"{tuple(count.shape) if isinstance(count, torch.Tensor) else type(count).__name__}")
    return int(count.item())


def check_state_shapes(info: dict, state: dict, path: Path) -> None:
    """FastNSTError unless ``state`` holds exactly the tensors, of exactly the shapes, that the
    architecture ``info`` has: found on a weightless (meta device) net, before any memory is spent."""
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in TransformerNet(**info).state_dict().items()}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise FastNSTError(f"{path}: weight {str(key)[:60]!r} is not a tensor")
    got = {k: tuple(v.shape) for k, v in state.items()}
    if got != expected:
        key = next((k for k in expected if got.get(k) != expected[k]), None) or next(k for k in got if k not in expected)
        raise FastNSTError(f"{path}: the weights do not match the architecture the file states ({info}): "
                           f"{str(key)[:60]} is {got.get(key, 'missing')}, expected {expected.get(key, 'nothing')}")


def load_transformer(path: str | os.PathLike) -> tuple[TransformerNet, dict]:
    """Read a ``transformer.pt`` or a training ``.ckpt`` -> (TransformerNet in eval mode, meta).

    Refuses (FastNSTError) files that are not plain checkpoints or too big (see read_checkpoint),
    metadata of the wrong types and architectures out of bounds (models.check_meta), weights whose
    shapes differ from the architecture (checked before the net is built), and models whose weights
    are not finite.
    """
    path = Path(path)
    obj = read_checkpoint(path)
    if obj.get("format") == PT_FORMAT:
        info, state, meta = obj.get("model"), obj.get("state_dict"), obj.get("meta", {})
    elif isinstance(obj.get("fastnst"), dict) and isinstance(obj.get("state_dict"), dict):
        info, meta = obj["fastnst"].get("model"), obj["fastnst"].get("meta", {})
        # The net the run ships: its weight average once that has started, else the trained weights.
        saved = obj["state_dict"]
        prefix = AVERAGE_PREFIX + "module." if averaged_steps(saved, path) > 0 else "net."
        state = {k.removeprefix(prefix): v for k, v in saved.items() if isinstance(k, str) and k.startswith(prefix)}
    else:
        raise FastNSTError(f"{path}: not a fastnst model file (no transformer weights found)")
    if info is None or not isinstance(state, dict) or not state:
        raise FastNSTError(f"{path}: fastnst model file is incomplete")
    check_architecture(info, path)
    meta = check_meta({} if meta is None else meta, path)
    check_state_shapes(info, state, path)
    try:
        net = TransformerNet(**info)
        net.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError) as e:
        raise FastNSTError(f"{path}: transformer weights do not match its config ({str(e).splitlines()[0]})") from None
    check_finite(net, path)
    return net.eval(), meta
