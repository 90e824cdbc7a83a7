"""Open a model by a shipped style's name or by file (.onnx, transformer.pt, training .ckpt) -> a stylizer.

Every stylizer has one interface (runtime.Stylizer): called on float32 [N, 3, H, W] in [0, 1] it
returns the same shape in [0, 1]; ``bytes_per_pixel`` feeds the memory check (memory.py) and
``meta`` describes the model with META_KEYS. Torch-free: PyTorch is imported only to open a .pt
or .ckpt file, which needs the ``[train]`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.onnx_contract import MAX_DOWNSAMPLES

# The one metadata layout of every stylizer (checkpoint.py's meta dict plus "model": the
# TransformerNet constructor arguments). A field the file does not record is None.
META_KEYS = ("style_name", "style_sha256", "image_size", "style_size", "loss", "model", "fastnst_version")
# The most a model file (.onnx, .pt, or a .pt/.ckpt once unzipped) may hold. Ours: ~2 MB (.onnx,
# .pt) and under 10 MB (.ckpt: optimizer state and weight average too) at width 16, ~4x that at
# width 32. A file past this is no style model of ours, and loading it could take the machine's
# memory (a 2 MB deflated .pt can hold 2 GiB of zeros).
MAX_MODEL_BYTES = 2**30
# Bounds of the architecture a model file may state (TransformerNet's arguments): far above what
# we train (width 16 or 32, 5 blocks), far below what would take the machine's memory to build.
ARCHITECTURE_BOUNDS = {"width": (1, 256), "n_residual": (0, 64), "downsamples": (1, MAX_DOWNSAMPLES)}
# The types of meta's other fields (None: the file does not record it).
META_TYPES = {"style_name": str, "style_sha256": str, "image_size": int, "style_size": int, "loss": dict,
              "fastnst_version": str}
PRECISIONS = ("auto", "fp32", "bf16")
TORCH_MISSING = 'PyTorch is not installed: pip install "fastnst[train]"'


def check_architecture(info, what: str | os.PathLike) -> dict:
    """A model file's stated architecture (TransformerNet's arguments) -> itself, if it is a mapping
    of whole numbers within ARCHITECTURE_BOUNDS; FastNSTError naming the field otherwise."""
    if not isinstance(info, dict):
        raise FastNSTError(f"{what}: the model's architecture is not a mapping (got {type(info).__name__})")
    for key, value in info.items():
        if key not in ARCHITECTURE_BOUNDS:
            raise FastNSTError(f"{what}: unknown architecture field {str(key)[:40]!r}")
        low, high = ARCHITECTURE_BOUNDS[key]
        if type(value) is not int or not low <= value <= high:  # bool is an int subclass: not a width
            raise FastNSTError(f"{what}: architecture field {key} must be a whole number from {low} to {high}, "
                               f"got {str(value)[:40]!r}")
    return info


def check_meta(meta, what: str | os.PathLike) -> dict:
    """A model file's meta dict -> itself, if each field of META_KEYS it has is of its type (None
    allowed); FastNSTError naming the field otherwise. Fields outside META_KEYS are kept unchecked."""
    if not isinstance(meta, dict):
        raise FastNSTError(f"{what}: the model's metadata is not a mapping (got {type(meta).__name__})")
    for key, kind in META_TYPES.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise FastNSTError(f"{what}: metadata field {key} should be {kind.__name__}, got {type(value).__name__}")
        if kind is int and value is not None and value < 1:
            raise FastNSTError(f"{what}: metadata field {key} must be positive, got {value}")
    if meta.get("model") is not None:
        check_architecture(meta["model"], what)
    return meta


def shipped_dir() -> Path:
    """Where the shipped styles (<style>.onnx, and in a clone their PyTorch twins <style>.pt) are:
    fastnst/styles/ in an installed wheel (pyproject.toml maps exported/ there), else the
    checkout's exported/ beside the package."""
    packaged = Path(__file__).resolve().parent / "styles"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[1] / "exported"


def shipped_styles() -> list[str]:
    return sorted(p.stem for p in shipped_dir().glob("*.onnx"))


def import_torch():
    """torch, or a one-line FastNSTError saying which extra brings it."""
    try:
        import torch
    except ImportError:
        raise FastNSTError(TORCH_MISSING) from None
    return torch


def wants_bf16(precision: str, device: str = "auto") -> bool:
    """Whether ``precision`` means bf16: "bf16", or "auto" where ``device`` computes bf16 natively."""
    if precision not in PRECISIONS:
        raise FastNSTError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    try:
        import_torch()
    except FastNSTError:  # no PyTorch: the ONNX path, which is fp32
        return False
    from fastnst.stylize import native_bf16, pick_device

    return native_bf16(pick_device(device))


def resolve_model(model: str | os.PathLike, precision: str = "auto", device: str = "auto") -> Path:
    """A model file as given, or a shipped style's name (``mosaic``) -> its fastest shipped variant:
    <style>.pt (PyTorch, run in bf16) where bf16 is wanted and native, else <style>.onnx."""
    model = Path(model)
    if model.exists() or model.suffix or len(model.parts) > 1:
        return model
    folder = shipped_dir()
    onnx, pt = folder / f"{model}.onnx", folder / f"{model}.pt"
    if onnx.is_file():
        return pt if pt.is_file() and wants_bf16(precision, device) else onnx
    raise FastNSTError(f"{model}: no such model file, and not a shipped style "
                       f"(shipped: {', '.join(shipped_styles()) or 'none found in ' + str(folder)})")


def open_model(name_or_path: str | os.PathLike, *, device: str = "auto", precision: str = "auto"):
    """A shipped style's name, an exported .onnx, a transformer.pt or a training .ckpt -> a stylizer.

    .onnx -> onnx_stylizer.OnnxStylizer (CPU, fp32; torch is never imported); .pt/.ckpt ->
    stylize.TorchStylizer on ``device`` ("auto", "cpu", "cuda[:N]", "mps") in ``precision``
    ("auto": bf16 where the device computes it natively, else fp32). Errors are FastNSTError.
    """
    path = resolve_model(name_or_path, precision, device)
    if path.suffix.lower() == ".onnx":
        if precision == "bf16":
            raise FastNSTError(f"{path}: --precision bf16 needs a PyTorch model (.pt or .ckpt); ONNX models run in fp32")
        from fastnst.onnx_stylizer import OnnxStylizer

        return OnnxStylizer(path)
    if not path.is_file():  # before the torch import: a typo should not cost two seconds
        raise FastNSTError(f"{path}: no such model file")
    import_torch()
    from fastnst.stylize import load_torch_stylizer, pick_device

    bf16 = wants_bf16(precision, device)
    return load_torch_stylizer(path, device=pick_device(device), precision="bf16" if bf16 else "fp32")
