"""``fastnst export`` (scripts/export.py): a transformer.pt or training .ckpt -> a verified ONNX file."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from fastnst.cli.common import base_parser, output_path, run_with_train_extra
from fastnst.errors import FastNSTError


def export_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = base_parser("Export a trained model (transformer.pt or a training .ckpt) to ONNX. The export is checked "
                    "with onnx.checker and against PyTorch at three sizes; it fails rather than write a wrong file.",
                    prog)
    p.add_argument("model", type=Path, help="transformer.pt or .ckpt")
    p.add_argument("-o", "--output", type=output_path, default=None,
                   help="ONNX file to write (unset: <style>.onnx beside MODEL, as training names it)")
    p.add_argument("--opset", type=int, default=None,
                   help="ONNX opset, from fastnst.export.MIN_OPSET to the installed onnx's newest "
                        "(unset: fastnst.export.DEFAULT_OPSET)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p


def export_command(args: argparse.Namespace) -> int:
    if args.model.suffix.lower() == ".onnx":
        raise FastNSTError(f"{args.model}: already an ONNX model; export reads transformer.pt or .ckpt files")
    existing = "replace" if args.overwrite else "refuse"
    if args.output is not None:  # checked before the model is read; the default needs its style name
        check_onnx_output(args.output, args.model, existing)

    from fastnst.checkpoint import load_transformer
    from fastnst.export import DEFAULT_OPSET, check_opset, export_onnx  # imports torch
    from fastnst.models import style_label

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    try:
        check_opset(opset)
    except FastNSTError as e:
        raise FastNSTError(f"--{e}") from None
    net, meta = load_transformer(args.model)
    style = style_label(args.model, meta)
    output = args.output or args.model.parent / f"{style}.onnx"
    check_onnx_output(output, args.model, existing)
    try:
        report = export_onnx(net, output, meta, opset=opset, replace=args.overwrite)
    except FileExistsError:
        raise FastNSTError(f"{output}: appeared while exporting (another process?); kept it, and did not write "
                           f"ours (pass --overwrite to replace it)") from None
    shapes = ", ".join(f"{n}x3x{h}x{w}" for n, _, h, w in report.shapes)
    print(f"wrote {output} ({style}; opset {report.opset}; onnxruntime vs PyTorch max |diff| "
          f"{report.max_abs_diff:.2g} on {shapes}; {report.seconds:.1f}s)")
    return 0


def check_onnx_output(output: Path, model: Path, existing: str) -> None:
    """A .onnx path that overwrites neither the model nor, unless ``existing`` is "replace", a file."""
    from fastnst.runtime import check_new_output

    if output.suffix.lower() != ".onnx":
        raise FastNSTError(f"{output}: the output should be a .onnx file")
    check_new_output(output, [model], existing)


def export_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    return run_with_train_extra(export_command, export_parser, argv, prog)
