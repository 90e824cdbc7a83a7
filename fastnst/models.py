"""Open a model by a shipped style's name or by file (.onnx, transformer.pt, training .ckpt) -> a stylizer.

Every stylizer has one interface (runtime.Stylizer): called on float32 [N, 3, H, W] in [0, 1] it
returns the same shape in [0, 1]; ``bytes_per_pixel`` feeds the memory check (memory.py) and
``meta`` describes the model with META_KEYS. Torch-free: PyTorch is imported only to open a .pt
or .ckpt file, which needs the ``[train]`` extra.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.onnx_contract import DOWNSAMPLES

# The one metadata layout of every stylizer (checkpoint.py's meta dict plus "model": the
# TransformerNet constructor arguments). A field the file does not record is None. style_name is
# the style image's file stem in training (with style_sha256, how bench/ finds that image); the
# name shown to users is style_label's.
META_KEYS = ("style_name", "style_sha256", "image_size", "style_size", "loss", "model", "fastnst_version")
# The most a model file (.onnx, .pt, or a .pt/.ckpt once unzipped) may hold. Ours: ~2 MB (.onnx,
# .pt) and under 10 MB (.ckpt: optimizer state and weight average too) at width 16, ~4x that at
# width 32. A file past this is no style model of ours, and loading it could take the machine's
# memory (a 2 MB deflated .pt can hold 2 GiB of zeros).
MAX_MODEL_BYTES = 2**30
# Bounds of the architecture a model file may state (TransformerNet's arguments): far above what
# we train (width 16 or 32, 5 blocks), far below what would take the machine's memory to build.
ARCHITECTURE_BOUNDS = {"width": (1, 256), "n_residual": (0, 64), "downsamples": (DOWNSAMPLES, DOWNSAMPLES)}
# The types of meta's other fields (None: the file does not record it).
META_TYPES = {"style_name": str, "style_sha256": str, "image_size": int, "style_size": int, "loss": dict,
              "fastnst_version": str}
PRECISIONS = ("auto", "fp32", "bf16")
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:\d+)?")  # what pick_device takes; checked without torch
MODEL_SUFFIXES = (".onnx", ".pt", ".pth", ".ckpt")
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


def style_label(path: str | os.PathLike, meta: dict) -> str:
    """The style's name as users see it, and as output files are named: a shipped model's file
    name (its metadata names the image it was trained on, which may be spelt otherwise), else the
    metadata's style_name where it is a plain file name, else the model file's stem."""
    path = Path(path)
    if path.resolve().parent == shipped_dir().resolve():
        return path.stem
    name = meta.get("style_name")
    return name if isinstance(name, str) and re.fullmatch(r"\w[\w.+-]*", name) else path.stem


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


def check_model_args(model, device, precision) -> Path:
    """open_model's arguments checked before anything is opened -> the model as a Path; FastNSTError
    for a model that is not a non-empty str/PathLike (Path("") is "."), an unknown device or precision."""
    if not isinstance(model, (str, os.PathLike)) or not str(model).strip():
        raise FastNSTError(f"the model must be a shipped style's name or a model file's path, got "
                           f"{type(model).__name__} {str(model)[:40]!r}")
    if not isinstance(device, str) or not DEVICE_NAME.fullmatch(device):
        raise FastNSTError(f"--device {str(device)[:40]}: not a device; use auto, cpu, cuda or cuda:N")
    if precision not in PRECISIONS:
        raise FastNSTError(f"precision must be one of {', '.join(PRECISIONS)}, got {str(precision)[:40]!r}")
    return Path(model)


def wants_torch(precision: str, device: str) -> bool:
    """Whether a style that ships both variants should run its .pt twin (PyTorch) instead of its
    .onnx: only for bf16 or a GPU asked for by name.

    "auto" picks the ONNX twin: on a CPU a whole run through onnxruntime beats PyTorch's bf16, whose
    import alone takes seconds (BENCHMARKS.md, "Speed"); a GPU needs that import anyway.
    """
    return precision == "bf16" or device.startswith(("cuda", "mps"))


def suggest_style(name: str) -> str:
    """"; did you mean X?" for a near miss of a shipped style's name (case, - for _, typos), else ""."""
    styles = {style.lower(): style for style in shipped_styles()}
    typed = re.sub(r"[-\s]+", "_", name.lower())
    close = difflib.get_close_matches(typed, list(styles), n=1, cutoff=0.6)
    return f"; did you mean {styles[close[0]]}?" if close else ""


def run_dir_model(folder: Path, precision: str, device: str) -> Path:
    """A training run's folder -> its model: <style>.onnx (transformer.pt for bf16 or a GPU, or where
    there is no .onnx); FastNSTError where it holds neither, or several .onnx files."""
    onnx = sorted(p for p in folder.glob("*.onnx") if not p.name.startswith("."))
    pt = folder / "transformer.pt"
    if pt.is_file() and (wants_torch(precision, device) or not onnx):
        return pt
    if len(onnx) == 1:
        return onnx[0]
    if onnx:
        raise FastNSTError(f"{folder}: a folder with several models ({', '.join(p.name for p in onnx[:5])}); "
                           f"name one")
    last = folder / "checkpoints" / "last.ckpt"
    hint = f" (training writes them at its end; its latest checkpoint is {last})" if last.is_file() else ""
    raise FastNSTError(f"{folder}: a folder with no model in it: no <style>.onnx, no transformer.pt{hint}")


def resolve_model(model: str | os.PathLike, precision: str = "auto", device: str = "auto") -> Path:
    """A model file as given, a training run's folder (run_dir_model), or a shipped style's name
    (``mosaic``) -> the file to open: <style>.onnx, or its twin <style>.pt where wants_torch."""
    model = check_model_args(model, device, precision)
    if model.is_dir():
        return run_dir_model(model, precision, device)
    if model.exists() or model.suffix or len(model.parts) > 1:
        return model
    folder = shipped_dir()
    onnx, pt = folder / f"{model}.onnx", folder / f"{model}.pt"
    if onnx.is_file():
        return pt if pt.is_file() and wants_torch(precision, device) else onnx
    shipped = ", ".join(shipped_styles()) or f"none found in {folder}"
    raise FastNSTError(f"{model}: no such model file, and not a shipped style (shipped: {shipped})"
                       f"{suggest_style(str(model))}")


def open_model(name_or_path: str | os.PathLike, *, device: str = "auto", precision: str = "auto"):
    """A shipped style's name, a training run's folder, an exported .onnx, a transformer.pt or a
    training .ckpt -> a stylizer.

    .onnx -> onnx_stylizer.OnnxStylizer (CPU, fp32; torch is never imported); .pt/.ckpt ->
    stylize.TorchStylizer on ``device`` ("auto", "cpu", "cuda[:N]", "mps") in ``precision``
    ("auto": bf16 where the device computes it natively, else fp32). A shipped style or a run runs
    its .onnx unless bf16 or a GPU is asked for (wants_torch). Errors are FastNSTError.
    """
    path = resolve_model(name_or_path, precision, device)
    if path.suffix.lower() not in MODEL_SUFFIXES:
        raise FastNSTError(f"{path}: not a model file (a model is a shipped style's name, a training run's folder, "
                           f"or a {', '.join(MODEL_SUFFIXES)} file)")
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
