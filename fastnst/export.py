"""Export a TransformerNet to ONNX with the contract in onnx_contract.py, and prove the file is right.

``export_onnx(net, path, meta)`` is the one entry point (training calls it at the end of a run,
scripts/export.py calls it via ``export_checkpoint``). After writing, it runs ``onnx.checker``
and compares onnxruntime against PyTorch at PARITY_SHAPES (one odd size, one batch of 2); a
difference above the tolerance raises ExportError and leaves no file behind. The file is written
to a temporary name and renamed only once every check has passed, and it is self-contained
(weights inline, no external .data file: the model is ~7 MB, far under protobuf's 2 GB limit).

Exporter: torch.export-based (``dynamo=True``, the default since torch 2.9; needs onnxscript)
with ``dynamic_shapes`` for N, H and W. The net's only shape-dependent branch (tiny inputs) is
decided statically by H, W >= 16, and its pad-to-a-multiple-of-4 + crop is exported
symbolically, so any H, W >= 16 gives an output of exactly that size.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch.export import Dim

import fastnst
from fastnst.checkpoint import check_finite, load_transformer, model_info
from fastnst.errors import FastNSTError
from fastnst.files import atomic_write
from fastnst.onnx_contract import INPUT_NAME, METADATA_PREFIX, MIN_SIZE, ONNX_FORMAT, OUTPUT_NAME
from fastnst.onnx_stylizer import OnnxStylizer
from fastnst.transformer import TransformerNet

DEFAULT_OPSET = 18  # >= 17 for InstanceNormalization/Pad as exported; 18 runs on onnxruntime >= 1.14
# The torch.export-based exporter builds the graph at opset 18 (its torchlib) and converts it to
# another opset with onnx's version converter, which cannot go below that: measured with torch
# 2.13 / onnx 1.23, --opset 17 wrote an opset-18 file, and --opset 29 (over onnx's newest) printed
# the converter's traceback and wrote opset 18 too. Only the range in between is honoured.
MIN_OPSET = 18
PARITY_TOLERANCE = 1e-3
# [N, 3, H, W] inputs of the parity check: an odd size and a batch of 2 exercise the dynamic axes.
PARITY_SHAPES: tuple[tuple[int, int, int, int], ...] = ((1, 3, 64, 64), (2, 3, 48, 80), (1, 3, 97, 131))
EXAMPLE_SHAPE = (2, 3, 64, 96)  # the traced example; not 1 nor equal H, W, so nothing gets specialised


def max_opset() -> int:
    """The newest opset the installed onnx package knows (its version converter's upper bound)."""
    return onnx.defs.onnx_opset_version()


def check_opset(opset: int) -> None:
    """FastNSTError unless ``opset`` is one the exporter really writes (MIN_OPSET..max_opset())."""
    if not MIN_OPSET <= opset <= max_opset():
        raise FastNSTError(f"opset {opset} is not supported: the exporter writes opsets {MIN_OPSET} to {max_opset()} "
                           f"(onnx {onnx.__version__})")


def written_opset(model: onnx.ModelProto) -> int | None:
    """The default-domain opset a model declares."""
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return max(versions) if versions else None


class ExportError(RuntimeError):
    """The exported model failed onnx.checker or does not match PyTorch: a bug, not a user mistake."""


@dataclass(frozen=True)
class ExportReport:
    path: Path
    opset: int
    max_abs_diff: float  # worst |onnxruntime - PyTorch| over the parity shapes
    shapes: tuple[tuple[int, int, int, int], ...]  # the parity shapes checked
    metadata: dict[str, str]  # the metadata_props written
    seconds: float


def metadata_props(net: TransformerNet, meta: dict) -> dict[str, str]:
    """The ``fastnst.*`` metadata_props for ``meta`` (checkpoint.py's meta dict); missing fields are ''/null."""
    loss = meta.get("loss")
    values = {
        "format": ONNX_FORMAT,
        "version": fastnst.__version__,  # of the exporter; the training run's is in fastnst.meta
        "style_name": str(meta.get("style_name") or ""),
        "style_sha256": str(meta.get("style_sha256") or ""),
        "image_size": str(meta.get("image_size") or ""),
        "style_size": str(meta.get("style_size") or ""),
        "loss": json.dumps(loss, sort_keys=True, default=str),  # weights and layers, as LossConfig fields
        "model": json.dumps(model_info(net), sort_keys=True),
        "meta": json.dumps(meta, sort_keys=True, default=str),  # everything, for provenance
    }
    return {METADATA_PREFIX + k: v for k, v in values.items()}


def _to_onnx(net: TransformerNet, opset: int) -> onnx.ModelProto:
    """Trace ``net`` (eval, CPU) to an ONNX ModelProto with dynamic N, H, W."""
    dims = {0: Dim("N", min=1), 2: Dim("H", min=MIN_SIZE), 3: Dim("W", min=MIN_SIZE)}
    example = torch.rand(*EXAMPLE_SHAPE)
    # The exporter logs a warning per missing torchvision op and emits deprecation warnings from
    # its dependencies: noise for our users, not actionable. Errors still raise.
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    old_levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(net, (example,), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=(dims,), opset_version=opset, dynamo=True, verbose=False)
    finally:
        for logger, level in zip(loggers, old_levels):
            logger.setLevel(level)
    model = program.model_proto
    # The exporter names the output dims after its symbolic expression (Min(H, 4*((H+...)//4)...));
    # the contract is "the input's shape", so say so.
    for dim, name in zip(model.graph.output[0].type.tensor_type.shape.dim, ("N", None, "H", "W")):
        if name is not None:
            dim.dim_param = name
    return model


def check_parity(net: TransformerNet, path: str | os.PathLike,
                 shapes: tuple[tuple[int, int, int, int], ...] = PARITY_SHAPES) -> float:
    """Max |onnxruntime - PyTorch| of the model at ``path`` vs ``net`` on seeded random inputs of ``shapes``.

    Opens the file with onnx_stylizer.OnnxStylizer, so the contract checks (names, ranks, format key)
    and the session options users run with are part of the check. Raises ExportError on a shape mismatch.
    """
    session = OnnxStylizer(path)
    rng = np.random.default_rng(0)
    worst = 0.0
    for shape in shapes:
        x = rng.random(shape, dtype=np.float32)
        got = session(x)
        with torch.inference_mode():
            want = net(torch.from_numpy(x)).numpy()
        if got.shape != want.shape or got.dtype != np.float32:
            raise ExportError(f"ONNX output {got.dtype} {got.shape} for input {shape}, expected float32 {want.shape}")
        if not (np.isfinite(want).all() and np.isfinite(got).all()):  # NaN == NaN would pass as "no difference"
            raise FastNSTError(f"the model's output is not finite (NaN or inf) for an input of shape {shape}: "
                               f"its weights are broken (a diverged training run?)")
        worst = max(worst, float(np.abs(got - want).max()))
    return worst


def export_onnx(net: TransformerNet, path: str | os.PathLike, meta: dict, *, opset: int = DEFAULT_OPSET,
                tolerance: float = PARITY_TOLERANCE, replace: bool = True) -> ExportReport:
    """Write ``net`` as a verified ONNX model at ``path`` (replacing it) and report on it.

    ``meta``: the checkpoint meta dict (style_name, style_sha256, image_size, loss, fastnst_version).
    ``net`` itself is left as it was (a CPU eval-mode copy is exported), so training can call this
    mid-run. Raises FastNSTError for an opset outside MIN_OPSET..max_opset() and for a model whose
    weights or outputs are not finite; ExportError if the file does not have the opset asked for,
    onnx.checker fails or the parity difference exceeds ``tolerance``; nothing is left at ``path``
    (or at a temporary name) in those cases. ``replace=False``: FileExistsError if a file appeared
    at ``path`` meanwhile (see files.atomic_write).
    """
    start = time.perf_counter()
    path = Path(path)
    check_opset(opset)
    check_finite(net, "export")
    net = copy.deepcopy(net).cpu().eval()  # eval: instance norm as at inference, and the clamp in the graph
    with torch.inference_mode():  # finite weights can still overflow: find out before the slow trace
        if not torch.isfinite(net(torch.rand(*EXAMPLE_SHAPE, generator=torch.Generator().manual_seed(0)))).all():
            raise FastNSTError("export: the model's output is not finite (NaN or inf) although its weights are: "
                               "they are broken (a diverged training run?)")
    model = _to_onnx(net, opset)
    if written_opset(model) != opset:  # the report must only ever name the opset in the file
        raise ExportError(f"asked for opset {opset}, the exporter produced opset {written_opset(model)}")
    props = metadata_props(net, meta)
    onnx.helper.set_model_props(model, props)
    model.producer_name, model.producer_version = "fastnst", fastnst.__version__
    model.doc_string = ("fastnst style transfer: input 'image' float32 [N,3,H,W] RGB in [0,1] (H, W >= 16) -> "
                        "output 'stylized', same shape, RGB in [0,1]")
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as e:
        raise ExportError(f"exported model fails onnx.checker: {str(e).splitlines()[0]}") from e

    with atomic_write(path, replace=replace) as f:  # verified before it replaces anything at ``path``
        f.write(model.SerializeToString())  # one file: weights inline, never external data
        f.flush()
        diff = check_parity(net, f.name)
        if not diff <= tolerance:  # also catches NaN
            raise ExportError(f"onnxruntime differs from PyTorch by {diff:.3g} (> {tolerance:g}) on {PARITY_SHAPES}")
    return ExportReport(path=path, opset=written_opset(model), max_abs_diff=diff, shapes=PARITY_SHAPES, metadata=props,
                        seconds=time.perf_counter() - start)


def export_checkpoint(model_path: str | os.PathLike, onnx_path: str | os.PathLike, *,
                      opset: int = DEFAULT_OPSET, replace: bool = True) -> ExportReport:
    """``transformer.pt`` or ``.ckpt`` -> verified ONNX (see export_onnx)."""
    check_opset(opset)  # before reading the model
    net, meta = load_transformer(model_path)
    return export_onnx(net, onnx_path, meta, opset=opset, replace=replace)
