"""``fastnst web`` (scripts/web.py): serve the browser app and the shipped models on this machine."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fastnst.cli.common import base_parser, run_main
from fastnst.errors import FastNSTError


def web_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = base_parser("Serve the browser app (web/) and the shipped models on this machine, with the headers "
                    "that let onnxruntime-web run multi-threaded. Photos are stylized inside the browser.", prog)
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


def web_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    return run_main(web_command, web_parser(prog), argv)
