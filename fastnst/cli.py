"""Command-line layer: argv parsing, file I/O, progress bars and error reporting for scripts/*.py.

The library modules never parse argv or print; everything user-facing happens here. User mistakes
(FastNSTError) become one ``error: ...`` line and exit status 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.files import NAME_MAX

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one ``error: ...`` line like every other user mistake."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"error: {message} (see {self.prog} --help)\n")


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = Parser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser


def run_main(main: Callable[[argparse.Namespace], int | None], parser: argparse.ArgumentParser,
             argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run ``main``; turn errors into one line and an exit status.

    SIGTERM (``kill``, a scheduler, a closed session) takes Ctrl-C's path: a KeyboardInterrupt,
    so temporary files are removed and commands report what they finished. SIGINT gets Python's
    handler explicitly: a process started from a background job of a non-interactive shell
    (``cmd &`` in a script, nohup) inherits SIGINT *ignored*, and Python then installs none.
    """
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, or a parse error already printed as one line
        return e.code if isinstance(e.code, int) else EXIT_USER_ERROR
    handlers = {}
    if threading.current_thread() is threading.main_thread():  # signal handlers can only be set there
        handlers = {signal.SIGTERM: signal.signal(signal.SIGTERM, _raise_keyboard_interrupt),
                    signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler)}
    try:
        return main(args) or 0
    except FastNSTError as e:
        if args.debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as e:  # a command may say what it finished: KeyboardInterrupt("interrupted: ...")
        print(str(e) or "interrupted", file=sys.stderr)
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
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


# argparse types: a bad value is a one-line parse error before anything runs. float("nan") and
# float("inf") parse, and NaN passes every `x < 0` check, so finiteness is checked explicitly.


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def nonnegative_int(text: str) -> int:
    return _int_at_least(text, 0)


def output_path(text: str) -> Path:
    """-o: a path that names something (Path("") would silently be ".", the working directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the output path is empty")
    if text == "-":
        raise argparse.ArgumentTypeError("writing to standard output is not supported; give a file or folder name")
    too_long = [part for part in Path(text).parts if len(os.fsencode(part)) > NAME_MAX]
    if too_long:  # stat() itself fails on such a name: say so before anything looks at the path
        raise argparse.ArgumentTypeError(f"file name too long ({len(os.fsencode(too_long[0]))} bytes; "
                                         f"file systems take at most {NAME_MAX}): {too_long[0][:40]}...")
    name = Path(text).name
    if name.endswith(".") and name not in (".", ".."):
        raise argparse.ArgumentTypeError(f"{text!r} ends with a dot: give an extension for a file (.png, .jpg) "
                                         f"or end a folder name with /")
    return Path(text)


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise FastNSTError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise FastNSTError(f"--device {name}: not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FastNSTError(f"--device {name}: no CUDA GPU is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FastNSTError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise FastNSTError(f"--device {name}: MPS is not available on this machine")
    return device


def check_new_output(path: Path, inputs: Sequence[Path], overwrite: bool) -> None:
    """Refuse to write over an input, over a folder, and over an existing file unless ``overwrite``;
    refuse a file name longer than the file system takes."""
    from fastnst.files import name_max

    resolved = path.resolve()
    folder = next((p for p in resolved.parents if p.is_dir()), Path("/"))
    limit = name_max(folder)
    if len(os.fsencode(path.name)) > limit:  # first: even stat() fails on such a name
        raise FastNSTError(f"{path}: file name too long ({len(os.fsencode(path.name))} bytes; the file system "
                           f"takes at most {limit})")
    if any(resolved == Path(p).resolve() for p in inputs):
        raise FastNSTError(f"{path}: output would overwrite an input file")
    if path.is_dir():
        raise FastNSTError(f"{path}: is a directory")
    if path.exists() and not overwrite:
        raise FastNSTError(f"{path}: already exists (pass --overwrite to replace it)")


# ---------------------------------------------------------------------------------------------
# scripts/gatys.py


def gatys_parser() -> argparse.ArgumentParser:
    from fastnst.perceptual import LossConfig

    p = base_parser("Gatys et al. neural style transfer: optimize the pixels of one image (slow reference path).")
    p.add_argument("--content", required=True, type=Path, help="content photo")
    p.add_argument("--style", required=True, type=Path, help="style image (painting)")
    p.add_argument("-o", "--output", type=output_path, default=None,
                   help="output image (default: out/<content>_<style>.jpg)")
    p.add_argument("--size", type=positive_int, default=512, help="longer side of the output, px")
    p.add_argument("--style-size", type=positive_int, default=None,
                   help="longer side the style image is resized to (default: --size)")
    p.add_argument("--iterations", type=positive_int, default=300)
    p.add_argument("--optimizer", choices=["lbfgs", "adam", "sgd"], default="lbfgs",
                   help="lbfgs (Gatys); adam; sgd with the learning rate decayed by 0.96 every 100 steps")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="step size (default: 1 for L-BFGS, 0.02 for Adam; SGD's is per pixel, 3/(128·128), times H·W)")
    p.add_argument("--init", choices=["content", "noise", "smooth-noise"], default="content")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save-every", type=nonnegative_int, default=0, metavar="N",
                   help="also save the image every N iterations (0: only the result)")
    p.add_argument("--vgg-weights", default=None, help="torchvision-layout VGG weights (else $FASTNST_VGG_WEIGHTS, else download)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_option_flags(p.add_argument_group("loss"), signature_options(LossConfig))
    return p


def gatys_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fastnst import gatys
    from fastnst.image import check_output_path, from_tensor, load_image, save_image, to_tensor
    from fastnst.perceptual import LossConfig, PerceptualLoss
    from fastnst.vgg import load_vgg

    # Validate everything cheap before the slow parts start.
    output = args.output or Path("out") / f"{args.content.stem}_{args.style.stem}.jpg"
    check_output_path(output)
    check_new_output(output, [args.content, args.style], args.overwrite)
    snapshots = {step: output.with_name(f"{output.stem}_{step:05d}{output.suffix}")
                 for step in range(args.save_every or args.iterations, args.iterations, args.save_every or 1)}
    for path in snapshots.values():
        check_new_output(path, [args.content, args.style], args.overwrite)
    loss_options = signature_options(LossConfig)
    config = LossConfig(**resolve_options(loss_options, {k: v for k, v in vars(args).items() if k in loss_options}))
    device = pick_device(args.device)
    content = to_tensor(load_image(args.content, args.size, upscale=True)).to(device)
    style = to_tensor(load_image(args.style, args.style_size or args.size, upscale=True)).to(device)
    vgg = load_vgg(config.layers, arch=config.vgg_arch, weights=args.vgg_weights).to(device)
    loss = PerceptualLoss(vgg, style, config)

    def save(image, path: Path) -> None:
        try:
            save_image(from_tensor(image), path, replace=args.overwrite)
        except FileExistsError:
            raise FastNSTError(f"{path}: appeared while gatys ran (another process?); kept it, and did not "
                               f"write ours (pass --overwrite to replace it)") from None

    bar = tqdm(total=args.iterations, desc="gatys", unit="it", dynamic_ncols=True)

    latest = {}

    def on_step(step: int, terms: dict[str, float], image) -> None:
        latest.update(step=step, image=image)
        bar.update(1)
        bar.set_postfix({k: f"{v:.4g}" for k, v in terms.items()})
        if step in snapshots:
            save(image, snapshots[step])

    try:
        image, history = gatys.stylize(content, loss, iterations=args.iterations, optimizer=args.optimizer,
                                       lr=args.lr, init=args.init, seed=args.seed, callback=on_step)
    except KeyboardInterrupt:
        # Minutes of optimization are the user's work: keep the latest image rather than nothing.
        bar.close()
        if latest:
            save(latest["image"], output)
            raise KeyboardInterrupt(f"interrupted: wrote the image after {latest['step']} iterations to {output}") \
                from None
        raise
    except gatys.NonFiniteLoss as e:
        # Keep the last finite image as well, and say so: the error still makes the exit status 2.
        bar.close()
        if latest:
            save(latest["image"], output)
            raise FastNSTError(f"{e}; wrote the image of iteration {latest['step']} to {output}") from None
        raise
    finally:
        bar.close()
    save(image, output)
    print(f"wrote {output}  (final loss: " + ", ".join(f"{k} {v:.4g}" for k, v in history[-1].items()) + ")")
    return 0


def gatys_main(argv: Sequence[str] | None = None) -> int:
    return run_main(gatys_command, gatys_parser(), argv)


# ---------------------------------------------------------------------------------------------
# Options from signatures: flags and YAML keys mirror typed keyword arguments; coercion gives a
# clear error for a wrong type instead of a failure deep inside training.


def signature_options(fn, skip: Sequence[str] = ()) -> dict[str, tuple[str, object]]:
    """{name: (annotation as text, default)} for ``fn``'s keyword arguments that have defaults."""
    import inspect

    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        if name in skip or name == "self" or p.default is inspect.Parameter.empty:
            continue
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "str")
        out[name] = (ann, p.default)
    return out


def coerce(name: str, ann: str, value):
    """Check/convert ``value`` for an option annotated ``ann`` (int, float, str, bool, X | None, tuple[str, ...])."""
    kinds = [k.strip() for k in ann.split("|")]
    if value is None and "None" in kinds:
        return None
    for kind in kinds:
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "bool" and isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if kind == "int" and not isinstance(value, bool):
            if isinstance(value, int):
                return value
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value)
        if kind == "float" and not isinstance(value, bool):
            number = None
            if isinstance(value, (int, float)):
                number = float(value)
            elif isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    pass
            if number is not None:
                # NaN passes every range check (nan < 0 is False) and trains a NaN model: refuse here.
                if not math.isfinite(number):
                    raise FastNSTError(f"option {name!r}: expected a finite number, got {value!r}")
                return number
        if kind.startswith("tuple") and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        if kind == "str" and isinstance(value, str):
            return value
    raise FastNSTError(f"option {name!r}: expected {ann}, got {value!r}")


def add_option_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, options: dict) -> None:
    for name, (ann, default) in options.items():
        flag = "--" + name.replace("_", "-")
        shown = f"default: {default}"
        if ann.startswith("tuple"):
            parser.add_argument(flag, nargs="*", default=argparse.SUPPRESS, help=shown)
        elif ann == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=shown)
        else:
            parser.add_argument(flag, default=argparse.SUPPRESS, metavar=ann.split("|")[0].strip().upper(), help=shown)


def resolve_options(options: dict, *layers: dict, source_names: Sequence[str] = ()) -> dict:
    """Defaults < each layer in turn (e.g. YAML file, then flags); unknown keys and bad types are errors."""
    resolved = {name: default for name, (ann, default) in options.items()}
    for i, layer in enumerate(layers):
        source = source_names[i] if i < len(source_names) else "options"
        for key, value in layer.items():
            if key not in options:
                raise FastNSTError(f"{source}: unknown option {key!r}; valid options: {', '.join(sorted(options))}")
            resolved[key] = coerce(key, options[key][0], value)
    return resolved


def read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise FastNSTError(f"{path}: config file not found") from None
    except yaml.MarkedYAMLError as e:  # a syntax error: say where and what, as YAML does
        mark = e.problem_mark or e.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        cause = "; ".join(str(x) for x in (e.context, e.problem) if x)
        raise FastNSTError(f"{path}{where}: YAML syntax error: {cause or type(e).__name__}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise FastNSTError(f"{path}: not a readable YAML file ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FastNSTError(f"{path}: a config must be a mapping of option: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


# ---------------------------------------------------------------------------------------------
# scripts/train.py


@dataclasses.dataclass
class RunConfig:
    """Options of a training run that belong to neither the model, the loss nor the data."""

    style: str = ""
    data: str = ""
    run_dir: str | None = None
    style_size: int | None = None
    vgg_weights: str | None = None
    max_steps: int = 20000
    # "auto": bf16-mixed where the hardware computes bf16 natively, else 32-true. Emulated bf16 is
    # no shortcut: on an AVX2-only CPU a training step was measured 15x slower than fp32
    # (BENCHMARKS.md), while AVX-512 BF16/AMX CPUs and GPUs gain from it.
    precision: str = "auto"
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    num_nodes: int = 1
    val_every: int = 500
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    seed: int = 0
    channels_last: bool = True


# StyleTransferModule arguments that train_command derives (from the loss options, the style file and
# the data options) instead of taking them as flags of their own.
MODULE_SET_BY_RUN = ("loss", "style_name", "style_sha256", "image_size", "style_size")


def train_options() -> dict[str, tuple[str, object]]:
    """Every training option, each with the one default defined where it is used."""
    from fastnst.data import StyleDataModule
    from fastnst.module import StyleTransferModule
    from fastnst.perceptual import LossConfig

    options = signature_options(RunConfig)
    train_loss = signature_options(StyleTransferModule)["loss"][1]  # the module's default LossConfig
    options |= {k: (ann, getattr(train_loss, k)) for k, (ann, _) in signature_options(LossConfig).items()}
    options |= signature_options(StyleTransferModule, skip=MODULE_SET_BY_RUN)
    options |= signature_options(StyleDataModule, skip=("data_dir", "seed"))
    return options


def train_parser() -> argparse.ArgumentParser:
    p = base_parser("Train a fast style-transfer network for one style image.")
    p.add_argument("--config", type=Path, default=None, help="YAML file of options (flags override it)")
    p.add_argument("--resume", type=Path, default=None,
                   help="continue a run: its run directory or a checkpoint file (its config is reused)")
    add_option_flags(p.add_argument_group("options (also valid as YAML keys)"), train_options())
    return p


def sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_resume(path: Path) -> tuple[Path, Path]:
    """--resume RUN_DIR or CKPT -> (run directory, checkpoint to continue from)."""
    if path.is_dir():
        run_dir, ckpt = path, path / "checkpoints" / "last.ckpt"
    elif path.is_file():
        ckpt = path
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    else:
        raise FastNSTError(f"--resume {path}: no such run directory or checkpoint")
    if not ckpt.is_file():
        raise FastNSTError(f"--resume {path}: no checkpoint found ({ckpt} is missing)")
    return run_dir, ckpt


# Ranges of training options that nothing downstream checks, or checks too late: Lightning takes
# max_steps -1 as "no limit" and 0 as "train nothing, then export"; a zero or negative lr trains
# nothing or uphill; the DataLoader raises a bare ValueError for negative workers. (Options checked
# where they are used, e.g. image_size in data.py, are not repeated here.)
TRAIN_MINIMUMS = {"max_steps": 1, "val_every": 1, "checkpoint_every": 1, "log_every": 1, "num_nodes": 1,
                  "keep_checkpoints": -1, "num_workers": 0, "val_size": 0, "log_images": 0, "width": 1,
                  "n_residual": 0}
TRAIN_POSITIVE = ("lr",)


def check_train_ranges(cfg: dict) -> None:
    for name, minimum in TRAIN_MINIMUMS.items():
        if isinstance(cfg.get(name), int) and cfg[name] < minimum:
            raise FastNSTError(f"--{name.replace('_', '-')} must be >= {minimum}, got {cfg[name]}")
    for name in TRAIN_POSITIVE:
        if name in cfg and not cfg[name] > 0:
            raise FastNSTError(f"--{name.replace('_', '-')} must be > 0, got {cfg[name]}")


def read_resume_checkpoint(ckpt: Path) -> int:
    """Check a checkpoint given to --resume before anything is written; return its step."""
    from fastnst.checkpoint import read_checkpoint

    obj = read_checkpoint(ckpt)  # weights_only: refuses files that could run code
    if not isinstance(obj.get("fastnst"), dict) or not isinstance(obj.get("global_step"), int):
        raise FastNSTError(f"--resume {ckpt}: not a fastnst training checkpoint")
    return obj["global_step"]


def check_run_dir(run_dir: Path, resuming: Path | None) -> None:
    """Refuse to train into a folder that holds files, unless it is the run being resumed: a new run
    would replace the old one's transformer.pt, config and checkpoints, and mix in its own."""
    if run_dir.exists() and not run_dir.is_dir():
        raise FastNSTError(f"--run-dir {run_dir}: exists and is not a folder")
    if resuming is not None and run_dir.resolve() == resuming.resolve():
        return
    if run_dir.is_dir() and any(run_dir.iterdir()):
        raise FastNSTError(f"--run-dir {run_dir}: not empty (a previous run?); continue that run with "
                           f"--resume {run_dir}, or give a fresh --run-dir")


def describe_last_checkpoint(ckpt: Path, run_dir: Path) -> str:
    if not ckpt.is_file():
        return "no checkpoint had been saved yet"
    try:
        step = read_resume_checkpoint(ckpt)
    except FastNSTError:
        return f"{ckpt} is not readable"
    return f"the last good checkpoint, {ckpt} (step {step}), is kept: --resume {run_dir} continues from it"


def training_precision(precision: str, accelerator: str = "auto") -> str:
    """Lightning's precision for a run: ``precision`` itself, or for "auto" bf16-mixed where bf16 is
    native to the device that will train (see stylize.native_bf16), else 32-true."""
    if precision != "auto":
        return precision
    import torch

    from fastnst.stylize import native_bf16

    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return "bf16-mixed" if native_bf16("cuda" if gpu else "cpu") else "32-true"


def train_command(args: argparse.Namespace) -> int:
    import datetime

    import pytorch_lightning as pl
    import torch
    import yaml

    from pytorch_lightning.utilities.exceptions import MisconfigurationException
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    from fastnst.callbacks import (NonFiniteLoss, SafeCheckpointIO, SaveOnInterrupt, SaveValidationGrid,
                                   StopOnNonFiniteLoss, TrainingClock)
    from fastnst.checkpoint import save_transformer
    from fastnst.data import StyleDataModule
    from fastnst.files import atomic_write
    from fastnst.image import load_image, to_tensor
    from fastnst.module import StyleTransferModule
    from fastnst.perceptual import LossConfig
    from fastnst.vgg import load_vgg

    options = train_options()
    flags = {k: v for k, v in vars(args).items() if k in options}
    layers, names = [], []
    ckpt_path = resume_dir = None
    if args.resume is not None:
        run_dir, ckpt_path = find_resume(args.resume)
        read_resume_checkpoint(ckpt_path)  # a damaged or foreign file stops here, before the config is rewritten
        resume_dir = run_dir
        layers.append(read_yaml(run_dir / "config.yaml"))
        names.append(str(run_dir / "config.yaml"))
        flags.setdefault("run_dir", str(run_dir))
    if args.config is not None:
        layers.append(read_yaml(args.config))
        names.append(str(args.config))
    layers.append(flags)
    names.append("command line")
    cfg = resolve_options(options, *layers, source_names=names)
    check_train_ranges(cfg)

    # Check the inputs before any slow work starts.
    if not cfg["style"]:
        raise FastNSTError("--style is required (the style image to learn)")
    if not cfg["data"]:
        raise FastNSTError("--data is required (a folder of training photos)")
    style_path = Path(cfg["style"])
    # One run directory for every DDP rank: rank 0 picks it, the processes it launches inherit it
    # (and find it holding rank 0's config: only rank 0 checks it).
    run_dir = Path(cfg["run_dir"] or os.environ.get("FASTNST_RUN_DIR") or
                   Path("runs") / f"{style_path.stem}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    if rank_zero_only.rank == 0:
        check_run_dir(run_dir, resume_dir)
    loss_cfg = LossConfig(**{k: cfg[k] for k in signature_options(LossConfig)})
    data = StyleDataModule(data_dir=cfg["data"], seed=cfg["seed"],
                           **{k: cfg[k] for k in signature_options(StyleDataModule, skip=("data_dir", "seed"))})
    data.prepare_files()
    style = to_tensor(load_image(style_path, cfg["style_size"] or cfg["image_size"], upscale=True))
    vgg = load_vgg(loss_cfg.layers, arch=loss_cfg.vgg_arch, weights=cfg["vgg_weights"])

    os.environ["FASTNST_RUN_DIR"] = str(run_dir)
    cfg["run_dir"] = str(run_dir)

    pl.seed_everything(cfg["seed"], workers=True, verbose=False)
    precision = training_precision(cfg["precision"], cfg["accelerator"])
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # the frozen VGG, on purpose
    model = StyleTransferModule(
        vgg, style, loss=loss_cfg, style_name=style_path.stem, style_sha256=sha256_file(style_path),
        image_size=cfg["image_size"], style_size=cfg["style_size"] or cfg["image_size"],
        **{k: cfg[k] for k in signature_options(StyleTransferModule, skip=MODULE_SET_BY_RUN)})
    if cfg["channels_last"]:
        model = model.to(memory_format=torch.channels_last)

    ckpt_dir = run_dir / "checkpoints"
    periodic = pl.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
        every_n_train_steps=cfg["checkpoint_every"], save_top_k=cfg["keep_checkpoints"], monitor="step",
        mode="max", save_last=True)
    callbacks = [StopOnNonFiniteLoss(), periodic, SaveOnInterrupt(ckpt_dir / "last.ckpt"),
                 SaveValidationGrid(run_dir / "samples"), TrainingClock(),
                 pl.callbacks.TQDMProgressBar(refresh_rate=1)]
    # CSV logs get a version_N folder per (re)start, so a resume never erases earlier logs.
    loggers = [pl.loggers.TensorBoardLogger(run_dir, name="", version="tensorboard"),
               pl.loggers.CSVLogger(run_dir, name="csv")]
    try:
        trainer = pl.Trainer(
            max_steps=cfg["max_steps"], precision=precision, accelerator=cfg["accelerator"],
            devices=cfg["devices"], strategy=cfg["strategy"], num_nodes=cfg["num_nodes"],
            val_check_interval=cfg["val_every"],
            check_val_every_n_epoch=None, log_every_n_steps=cfg["log_every"], callbacks=callbacks,
            logger=loggers, default_root_dir=run_dir, enable_model_summary=False, num_sanity_val_steps=0,
            use_distributed_sampler=True, plugins=[SafeCheckpointIO()])
    except (MisconfigurationException, ValueError) as e:  # e.g. --accelerator/--precision/--devices Lightning rejects
        raise FastNSTError(f"invalid trainer option: {str(e).splitlines()[0]}") from None
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_dir / "config.yaml") as f:
            f.write(yaml.safe_dump({k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
                                   sort_keys=False).encode())
        print(f"run directory: {run_dir}", file=sys.stderr)

    # SIGTERM (e.g. `kill`, a scheduler) and SIGINT take the same path: checkpoint, then exit
    # (run_main installs both handlers; see there why SIGINT needs one too).
    try:
        trainer.fit(model, datamodule=data, ckpt_path=str(ckpt_path) if ckpt_path else None, weights_only=True)
    except SystemExit:
        # Lightning exits after a KeyboardInterrupt, once SaveOnInterrupt has written last.ckpt.
        if trainer.is_global_zero:
            print(f"interrupted at step {trainer.global_step}; resume with: python scripts/train.py "
                  f"--resume {run_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except NonFiniteLoss as e:
        raise FastNSTError(f"{e}; {describe_last_checkpoint(ckpt_dir / 'last.ckpt', run_dir)}") from None

    # The periodic checkpoints fire every N steps; make last.ckpt the final state, so a later
    # `--resume RUN --max-steps MORE` continues from where training really stopped. weights_only=False:
    # the full state, and said explicitly, else Lightning logs "`weights_only` was not set" each time.
    trainer.save_checkpoint(ckpt_dir / "last.ckpt", weights_only=False)
    if trainer.is_global_zero:
        net = model.net.to(memory_format=torch.contiguous_format).float().cpu().eval()
        save_transformer(net, run_dir / "transformer.pt", model.meta())
        print(f"wrote {run_dir / 'transformer.pt'}", file=sys.stderr)
        export_to_run_dir(net, run_dir, model.meta())
    return 0


def export_to_run_dir(net, run_dir: Path, meta: dict) -> None:
    """Write <style>.onnx next to transformer.pt (verified export; see export.py)."""
    try:
        from fastnst.export import export_onnx
    except ImportError:  # export support not installed in this build
        return
    path = run_dir / f"{meta['style_name'] or 'model'}.onnx"
    export_onnx(net, path, meta)
    print(f"wrote {path}", file=sys.stderr)


def train_main(argv: Sequence[str] | None = None) -> int:
    return run_main(train_command, train_parser(), argv)


# ---------------------------------------------------------------------------------------------
# scripts/export.py


def export_parser() -> argparse.ArgumentParser:
    p = base_parser("Export a trained model (transformer.pt or a training .ckpt) to ONNX. The export is checked "
                    "with onnx.checker and against PyTorch at three sizes; it fails rather than write a wrong file.")
    p.add_argument("model", type=Path, help="transformer.pt or .ckpt")
    p.add_argument("-o", "--output", type=output_path, default=None, help="ONNX file to write; None: MODEL with .onnx")
    p.add_argument("--opset", type=int, default=None,
                   help="ONNX opset, from fastnst.export.MIN_OPSET to the installed onnx's newest; "
                        "None: fastnst.export.DEFAULT_OPSET")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    return p


def export_command(args: argparse.Namespace) -> int:
    if args.model.suffix.lower() == ".onnx":
        raise FastNSTError(f"{args.model}: already an ONNX model; export reads transformer.pt or .ckpt files")
    output = args.output or args.model.with_suffix(".onnx")
    if output.suffix.lower() != ".onnx":
        raise FastNSTError(f"{output}: the output should be a .onnx file")
    check_new_output(output, [args.model], args.overwrite)

    from fastnst.export import DEFAULT_OPSET, check_opset, export_checkpoint  # imports torch

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    try:
        check_opset(opset)
    except FastNSTError as e:
        raise FastNSTError(f"--{e}") from None
    try:
        report = export_checkpoint(args.model, output, opset=opset, replace=args.overwrite)
    except FileExistsError:
        raise FastNSTError(f"{output}: appeared while exporting (another process?); kept it, and did not write "
                           f"ours (pass --overwrite to replace it)") from None
    shapes = ", ".join(f"{n}x3x{h}x{w}" for n, _, h, w in report.shapes)
    style = report.metadata.get("fastnst.style_name") or "unnamed style"
    print(f"wrote {output} ({style}; opset {report.opset}; onnxruntime vs PyTorch max |diff| "
          f"{report.max_abs_diff:.2g} on {shapes}; {report.seconds:.1f}s)")
    return 0


def export_main(argv: Sequence[str] | None = None) -> int:
    return run_main(export_command, export_parser(), argv)


# ---------------------------------------------------------------------------------------------
# scripts/stylize.py


def stylize_parser() -> argparse.ArgumentParser:
    from fastnst.runtime import StylizeOptions  # torch-free: --help stays fast

    p = base_parser("Stylize photos with a trained model in one pass.")
    p.epilog = ("Files named on the command line must be readable images (else: error, exit status 2; one that "
                "fails only while decoding is reported after the others are done). Files found in a folder or by "
                "a glob that are not readable images are skipped with a warning. Every image's size is checked "
                "first: one too big to run whole stops the run before any work and names a --tile that fits. "
                "Inputs are never overwritten; outputs are written atomically, and an existing output is "
                "replaced only with --overwrite, even one another process writes meanwhile. Interrupted "
                "(Ctrl-C, SIGTERM), it says how many images it wrote; rerun with --skip-existing to do the rest.")
    p.add_argument("model", type=Path,
                   help="a shipped style's name (" + ", ".join(shipped_styles()) + "; from exported/), "
                        "or a model file: exported .onnx, training .ckpt or transformer.pt")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files, folders (the images directly in them) or quoted glob patterns")
    p.add_argument("-o", "--output", type=output_path, required=True,
                   help="output image (one input) or folder (created; results keep the input file names, "
                        "as .png where that format cannot be written or would lose colours: GIF, ICO)")
    p.add_argument("--max-size", type=int, default=StylizeOptions.max_size, metavar="PX",
                   help="shrink so the longer side is at most this; None: keep the size")
    p.add_argument("--preserve-color", action="store_true", default=StylizeOptions.preserve_color,
                   help="keep the photo's colours: take only the luminance from the stylized image")
    p.add_argument("--strength", type=float, default=StylizeOptions.strength,
                   help="0..1: blend of the stylized image with the original (0 = original)")
    p.add_argument("--tile", type=int, default=StylizeOptions.tile, metavar="PX",
                   help="run images bigger than this in overlapping, feathered tiles of this size (e.g. 1024): "
                        "memory is then bounded by the tile, not the image; None: run whole")
    existing = p.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing output files")
    existing.add_argument("--skip-existing", action="store_true",
                          help="leave existing output files as they are and stylize only the others "
                               "(e.g. to finish an interrupted folder run)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda: for .ckpt/.pt models (.onnx runs on CPU)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 for .pt/.ckpt models where the hardware has native bf16 (a shipped style then "
                        "runs its .pt twin: the fastest variant, see BENCHMARKS.md), else fp32. .onnx is fp32 only")
    p.add_argument("--max-memory", type=positive_float, default=None, metavar="GIB",
                   help="memory one forward pass may use; bigger images need --tile "
                        "(None: fastnst.memory.MEMORY_FRACTION of the available memory)")
    return p


# Models trained and exported by this project, one <style>.onnx per style. Found next to
# the package, i.e. in a clone or an editable install.
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "exported"


def shipped_styles() -> list[str]:
    return sorted(p.stem for p in SHIPPED_DIR.glob("*.onnx"))


def wants_bf16(precision: str, device: str) -> bool:
    if precision != "auto":
        return precision == "bf16"
    from fastnst.stylize import native_bf16

    return native_bf16(pick_device(device))


def resolve_model(model: Path, precision: str = "auto", device: str = "auto") -> Path:
    """A model file as given, or a shipped style's name (``mosaic``) -> its fastest shipped variant:
    exported/mosaic.pt (PyTorch, run in bf16) where bf16 is wanted and native, else exported/mosaic.onnx."""
    if model.exists() or model.suffix or len(model.parts) > 1:
        return model
    onnx, pt = SHIPPED_DIR / f"{model}.onnx", SHIPPED_DIR / f"{model}.pt"
    if onnx.is_file():
        return pt if pt.is_file() and wants_bf16(precision, device) else onnx
    raise FastNSTError(f"{model}: no such model file, and not a shipped style "
                       f"(shipped: {', '.join(shipped_styles()) or 'none found in ' + str(SHIPPED_DIR)})")


def load_stylizer(path: Path, device: str, precision: str = "auto"):
    """An .onnx file -> runtime.OnnxStylizer (torch never imported); anything else -> stylize.TorchStylizer."""
    if path.suffix.lower() == ".onnx":
        if precision == "bf16":
            raise FastNSTError(f"{path}: --precision bf16 needs a PyTorch model (.pt or .ckpt); ONNX models run in fp32")
        from fastnst.runtime import OnnxStylizer

        return OnnxStylizer(path)
    if not path.is_file():  # before the torch import: a typo should not cost two seconds
        raise FastNSTError(f"{path}: no such model file")
    from fastnst.stylize import load_torch_stylizer

    bf16 = wants_bf16(precision, device)
    return load_torch_stylizer(path, device=pick_device(device), precision="bf16" if bf16 else "fp32")


def stylize_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fastnst.image import image_size, save_image
    from fastnst.inputs import expand_inputs, output_is_folder, plan_outputs
    from fastnst.memory import TILE_STEP, default_budget, largest_tile
    from fastnst.runtime import StylizeOptions, check_memory, read_image, scaled_size, stylize_image

    def warn(message: str) -> None:
        tqdm.write(f"warning: {message}", file=sys.stderr)

    # Everything cheap first: options, inputs, outputs, the model, every image's size. Only then work.
    options = StylizeOptions(max_size=args.max_size, preserve_color=args.preserve_color, strength=args.strength,
                             tile=args.tile)
    budget = default_budget() if args.max_memory is None else int(args.max_memory * 2**30)
    args.model = resolve_model(args.model, args.precision, args.device)
    inputs = expand_inputs(args.inputs)
    folder = output_is_folder(args.output)
    outputs = plan_outputs(inputs, args.output, folder)
    input_paths = [i.path for i in inputs] + [args.model]
    planned, kept = [], 0
    for item, out in zip(inputs, outputs):
        check_new_output(out, input_paths, args.overwrite or args.skip_existing)
        if args.skip_existing and out.exists():
            kept += 1
            continue
        planned.append((item, out))
    model = load_stylizer(args.model, args.device, args.precision)
    if args.max_memory is not None and largest_tile(model.bytes_per_pixel, budget) is None:
        raise FastNSTError(f"--max-memory {args.max_memory:g} GiB is too small: even a {TILE_STEP} px tile needs "
                           f"about {TILE_STEP**2 * model.bytes_per_pixel / 2**20:.1f} MiB with this model")

    todo, skipped = [], 0
    for item, out in planned:
        try:
            width, height = image_size(item.path)  # header only
        except FastNSTError as e:
            if item.explicit:
                raise
            warn(f"{e}; skipped")
            skipped += 1
            continue
        width, height = scaled_size(width, height, options.max_size)
        check_memory(model, height, width, options, budget)  # fail now, not after the other images
        todo.append((item, out))

    written, failed = 0, []
    bar = tqdm(todo, desc="stylize", unit="img", disable=len(todo) < 2, dynamic_ncols=True)
    try:
        for item, out in bar:
            try:
                image = read_image(item.path, options.max_size)  # uint8 [H, W, 3]: 3 bytes/px
            except FastNSTError as e:  # decodes badly although the header was fine (e.g. truncated)
                if item.explicit:
                    failed.append(str(e))  # reported once, at the end, after the other images
                else:
                    warn(f"{e}; skipped")
                    skipped += 1
                continue
            tile_bar = None

            def on_tile(done: int, total: int) -> None:
                nonlocal tile_bar
                if tile_bar is None:
                    tile_bar = tqdm(total=total, desc=item.path.name, unit="tile", leave=False, dynamic_ncols=True)
                tile_bar.update(1)

            try:
                result = stylize_image(model, image, options, budget=budget, on_tile=on_tile)
            finally:
                if tile_bar is not None:
                    tile_bar.close()
            del image  # one image in memory at a time: peak stays flat over a folder
            try:
                # Checked above, but another process may have written it since: never replace that
                # one unless --overwrite (files.atomic_write's replace=False).
                save_image(result, out, replace=args.overwrite)
            except FileExistsError:
                if args.skip_existing:
                    kept += 1
                else:
                    failed.append(f"{out}: appeared while stylizing (another process?); kept it, and did not "
                                  f"write ours (pass --overwrite to replace it, or --skip-existing)")
                continue
            except OSError as e:
                raise FastNSTError(f"{out}: cannot write ({e.strerror or e})") from None
            finally:
                del result
            written += 1
    except KeyboardInterrupt:
        # atomic_write has removed the image being written; say what is done and how to finish.
        raise KeyboardInterrupt(f"interrupted: wrote {written} of {len(todo)} image(s)"
                                + (f" to {args.output}" if written else "")
                                + ("; rerun with --skip-existing to do the rest" if folder else "")) from None
    finally:
        bar.close()

    message = f"wrote {written} image(s)" + (f" to {args.output}" if written else "")
    if kept:
        message += f"; kept {kept} existing output(s)"
    if skipped:
        message += f"; skipped {skipped} file(s) that are not readable images"
    print(message)
    if len(failed) == 1:
        raise FastNSTError(failed[0])
    if failed:
        raise FastNSTError(f"{len(failed)} images failed: " + "; ".join(failed))
    return 0


def stylize_main(argv: Sequence[str] | None = None) -> int:
    return run_main(stylize_command, stylize_parser(), argv)


# ---------------------------------------------------------------------------------------------
# scripts/web.py


def web_parser() -> argparse.ArgumentParser:
    p = base_parser("Serve the browser app (web/) and the shipped models on this machine, with the headers "
                    "that let onnxruntime-web run multi-threaded. Photos are stylized inside the browser.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (the default is this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    return p


def web_command(args: argparse.Namespace) -> int:
    from fastnst.webserver import make_server, missing_pieces, url_of

    missing = missing_pieces()
    if missing:
        raise FastNSTError("the web app is not installed: missing " + "; ".join(missing))
    try:
        server = make_server(args.host, args.port)
    except OSError as e:
        raise FastNSTError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") from None
    print(f"serving fastnst's web app at {url_of(server)} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def web_main(argv: Sequence[str] | None = None) -> int:
    return run_main(web_command, web_parser(), argv)
