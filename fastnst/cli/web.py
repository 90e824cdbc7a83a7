"""``fastnst web`` (scripts/web.py): serve the browser app and the shipped models on this machine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fastnst.cli.common import base_parser, run_main
from fastnst.errors import FastNSTError


def port_number(text: str) -> int:
    """--port: 0..65535 (0: a free one), a parse error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0..65535, got {text!r}")
    return value


def web_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = base_parser("Serve the browser app (web/) and the shipped models on this machine, with the headers "
                    "that let onnxruntime-web run multi-threaded. Photos are stylized inside the browser.", prog)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on: the default is this machine only; ::1 for IPv6; 0.0.0.0 or :: "
                        "is every network interface (a warning says so)")
    p.add_argument("--port", type=port_number, default=8000, help="port, 0..65535; 0 picks a free one")
    return p


def web_command(args: argparse.Namespace) -> int:
    from fastnst.webserver import is_wildcard, make_server, missing_pieces, url_of

    missing = missing_pieces()
    if missing:
        raise FastNSTError("the web app cannot run: " + "; ".join(missing))
    try:
        server = make_server(args.host, args.port)
    except (OSError, OverflowError) as e:
        raise FastNSTError(f"cannot listen on {args.host}:{args.port} ({getattr(e, 'strerror', None) or e})") from None
    if is_wildcard(args.host):
        print(f"warning: --host {args.host} listens on every network interface: anyone who can reach this machine "
              f"can load the page and the models", file=sys.stderr)
    print(f"serving fastnst's web app at {url_of(server)} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def web_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    return run_main(web_command, web_parser(prog), argv)
