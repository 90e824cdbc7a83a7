"""The command line: ``fastnst COMMAND ...`` (the console script) and scripts/COMMAND.py, one module
per command, each parsing its arguments and calling the library. Torch-free to import."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from fastnst import __version__

# command -> (module, what it does). train/gatys/export need the [train] extra.
COMMANDS = {
    "stylize": ("fastnst.cli.stylize", "stylize photos with a shipped style or a trained model"),
    "train": ("fastnst.cli.train", "train a fast network for one style image"),
    "gatys": ("fastnst.cli.gatys", "optimize one image's pixels (Gatys et al.; slow reference)"),
    "export": ("fastnst.cli.export", "export a transformer.pt or .ckpt to ONNX"),
    "web": ("fastnst.cli.web", "serve the browser app from a checkout"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """``fastnst COMMAND [options]``: run COMMAND's main with the rest of the arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: fastnst {" + ",".join(COMMANDS) + "} ...  (fastnst COMMAND --help for its options)\n")
        print("Fast neural style transfer.\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:8} {text}")
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"fastnst {__version__}")
        return 0
    if argv[0] not in COMMANDS:
        print(f"error: unknown command {argv[0]!r}; use one of {', '.join(COMMANDS)} (see fastnst --help)",
              file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return getattr(module, f"{argv[0]}_main")(argv[1:], prog=f"fastnst {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
