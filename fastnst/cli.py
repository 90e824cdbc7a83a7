"""Command-line layer: argv parsing, file I/O, progress bars and error reporting for scripts/*.py.

The library modules never parse argv or print; everything user-facing happens here. User mistakes
(FastNSTError) become one ``error: ...`` line and exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from fastnst.errors import FastNSTError

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser


def run_main(main: Callable[[argparse.Namespace], int | None], parser: argparse.ArgumentParser,
             argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run ``main``; turn errors into one line and an exit status."""
    args = parser.parse_args(argv)
    try:
        return main(args) or 0
    except FastNSTError as e:
        if args.debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        if args.debug:
            traceback.print_exc()
        print("error: out of memory (try a smaller --size/--max-size, or --tile for stylize)", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as e:  # a bug: say so briefly, keep the traceback one flag away
        if args.debug:
            raise
        print(f"internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)".splitlines()[0],
              file=sys.stderr)
        return EXIT_INTERNAL_ERROR


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FastNSTError(f"--device {name}: no CUDA GPU is available")
    return torch.device(name)


def check_new_output(path: Path, inputs: Sequence[Path], overwrite: bool) -> None:
    """Refuse to write over an input, and over an existing file unless ``overwrite``."""
    resolved = path.resolve()
    if any(resolved == Path(p).resolve() for p in inputs):
        raise FastNSTError(f"{path}: output would overwrite an input file")
    if path.exists() and not overwrite:
        raise FastNSTError(f"{path}: already exists (pass --overwrite to replace it)")
    if path.is_dir():
        raise FastNSTError(f"{path}: is a directory")


# ---------------------------------------------------------------------------------------------
# Flags generated from typed keyword arguments: the dataclass/signature is the single definition
# of each option's type and default; argparse only mirrors it.


def add_dataclass_args(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls) -> None:
    """One ``--field-name`` flag per dataclass field; defaults stay in the dataclass (SUPPRESS here)."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        help_default = f"default: {f.default}"
        if kind.startswith("tuple"):
            parser.add_argument(flag, nargs="+", default=argparse.SUPPRESS, metavar="LAYER", help=help_default)
        elif kind == "float":
            parser.add_argument(flag, type=float, default=argparse.SUPPRESS, help=help_default)
        elif kind == "int":
            parser.add_argument(flag, type=int, default=argparse.SUPPRESS, help=help_default)
        else:
            parser.add_argument(flag, type=str, default=argparse.SUPPRESS, help=help_default)


def dataclass_from_args(cls, args: argparse.Namespace, base: dict | None = None):
    """Build ``cls`` from ``base`` (e.g. a YAML section) overridden by the flags that were given."""
    names = {f.name for f in dataclasses.fields(cls)}
    values = {k: v for k, v in (base or {}).items() if k in names}
    values.update({k: v for k, v in vars(args).items() if k in names})
    return cls(**values)


# ---------------------------------------------------------------------------------------------
# scripts/gatys.py


def gatys_parser() -> argparse.ArgumentParser:
    from fastnst.perceptual import LossConfig

    p = base_parser("Gatys et al. neural style transfer: optimize the pixels of one image (slow reference path).")
    p.add_argument("--content", required=True, type=Path, help="content photo")
    p.add_argument("--style", required=True, type=Path, help="style image (painting)")
    p.add_argument("-o", "--output", type=Path, default=None, help="output image (default: out/<content>_<style>.jpg)")
    p.add_argument("--size", type=int, default=512, help="longer side of the output, px")
    p.add_argument("--style-size", type=int, default=None, help="longer side the style image is resized to (default: --size)")
    p.add_argument("--iterations", type=int, default=300)
    p.add_argument("--optimizer", choices=["lbfgs", "adam"], default="lbfgs")
    p.add_argument("--lr", type=float, default=None, help="step size (default: 1 for L-BFGS, 0.02 for Adam)")
    p.add_argument("--init", choices=["content", "noise", "smooth-noise"], default="content")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="also save the image every N iterations")
    p.add_argument("--vgg-weights", default=None, help="torchvision-layout VGG weights (else $FASTNST_VGG_WEIGHTS, else download)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_dataclass_args(p.add_argument_group("loss"), LossConfig)
    return p


def gatys_command(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from fastnst import gatys
    from fastnst.image import check_output_path, from_tensor, load_image, save_image, to_tensor
    from fastnst.perceptual import LossConfig, PerceptualLoss
    from fastnst.vgg import load_vgg

    # Validate everything cheap before the slow parts start.
    output = args.output or Path("out") / f"{args.content.stem}_{args.style.stem}.jpg"
    check_output_path(output)
    check_new_output(output, [args.content, args.style], args.overwrite)
    for name in ("size", "iterations"):
        if getattr(args, name) < 1:
            raise FastNSTError(f"--{name} must be >= 1")
    config = dataclass_from_args(LossConfig, args)
    device = pick_device(args.device)
    content = to_tensor(load_image(args.content, args.size, upscale=True)).to(device)
    style = to_tensor(load_image(args.style, args.style_size or args.size, upscale=True)).to(device)
    vgg = load_vgg(config.layers, arch=config.vgg_arch, weights=args.vgg_weights).to(device)
    loss = PerceptualLoss(vgg, style, config)

    bar = tqdm(total=args.iterations, desc="gatys", unit="it", dynamic_ncols=True)

    def on_step(step: int, terms: dict[str, float], image) -> None:
        bar.update(1)
        bar.set_postfix({k: f"{v:.4g}" for k, v in terms.items()})
        if args.save_every and step % args.save_every == 0 and step < args.iterations:
            save_image(from_tensor(image), output.with_name(f"{output.stem}_{step:05d}{output.suffix}"))

    try:
        image, history = gatys.stylize(content, loss, iterations=args.iterations, optimizer=args.optimizer,
                                       lr=args.lr, init=args.init, seed=args.seed, callback=on_step)
    finally:
        bar.close()
    save_image(from_tensor(image), output)
    print(f"wrote {output}  (final loss: " + ", ".join(f"{k} {v:.4g}" for k, v in history[-1].items()) + ")")
    return 0


def gatys_main(argv: Sequence[str] | None = None) -> int:
    return run_main(gatys_command, gatys_parser(), argv)
