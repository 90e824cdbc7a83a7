"""What every command shares: argparse with one-line errors, argument types, and run_main, which
turns errors and signals into one line and an exit status.

User mistakes (FastNSTError) become one ``error: ...`` line and exit status 2; ``--debug`` shows
the traceback. Torch-free: ``fastnst stylize`` runs without PyTorch.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.files import NAME_MAX

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130
# What `fastnst train | gatys | export` import beyond the light install (pyproject.toml's [train] extra).
TRAIN_MODULES = ("torch", "pytorch_lightning", "onnx", "onnxscript", "yaml", "tqdm", "tensorboard")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one ``error: ...`` line like every other user mistake."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's help, then its default where it has one worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def base_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=description, formatter_class=HelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    return parser


def require_train_extra() -> None:
    """One line naming the extra to install where train/gatys/export lack what they import."""
    missing = [name for name in TRAIN_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise FastNSTError(f"this command needs {', '.join(missing)}, which the light install leaves out: "
                           f'pip install "fastnst[train]"')


def run_with_train_extra(main: Callable[[argparse.Namespace], int | None],
                         make_parser: Callable[[str | None], argparse.ArgumentParser],
                         argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """run_main for train/gatys/export, whose parsers already import PyTorch: first one line naming
    the extra to install where it is missing."""
    try:
        require_train_extra()
    except FastNSTError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    return run_main(main, make_parser(prog), argv)


def run_main(main: Callable[[argparse.Namespace], int | None], parser: argparse.ArgumentParser,
             argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run ``main``; turn errors into one line and an exit status.

    SIGTERM (``kill``, a scheduler, a closed session) takes Ctrl-C's path: a KeyboardInterrupt,
    so temporary files are removed and commands report what they finished. SIGINT gets Python's
    handler explicitly: a process started from a background job of a non-interactive shell
    (``cmd &`` in a script, nohup) inherits SIGINT *ignored*, and Python then installs none.
    """
    printable_streams()
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


def printable_streams() -> None:
    """Let stdout and stderr print any file name: one that is not valid UTF-8 (os.fsdecode's
    surrogates) raised UnicodeEncodeError under PYTHONIOENCODING=utf-8, after the work was done.
    Such characters print as backslash escapes (\\udce9), as Python's stderr does by default."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):  # not a TextIOWrapper (a test's capture, a pipe wrapper)
            pass


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
