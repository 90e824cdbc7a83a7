"""Serve the browser app (web/) and the shipped models (exported/) on the loopback interface.

Standard library only: no torch, no onnxruntime. The page needs two things a plain
``python -m http.server`` does not give it:

- Cross-origin isolation. onnxruntime-web runs its WASM kernels on several threads only when
  ``SharedArrayBuffer`` exists, and browsers expose that only to pages served with
  ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy: require-corp``
  (https://web.dev/articles/coop-coep). Without them the page still works, on one thread.
- The right MIME types: ``.mjs`` as JavaScript (module scripts are refused otherwise) and
  ``.wasm`` as ``application/wasm`` (needed for streaming compilation).

URL layout: ``/models/<style>.onnx`` comes from the models folder, everything else from the web
folder (web/node_modules/onnxruntime-web included, so nothing is loaded from a CDN). The web folder
is the checkout's ``web/``: the browser app runs from a clone, not from a wheel (``missing_pieces``
says so); the models are the shipped styles (models.shipped_dir). The page never uploads
anything: photos are decoded and stylized inside the browser.

What it serves, and to whom: only files really inside those two folders (no dotfiles, no symlinks
out, no NUL bytes), only to requests whose Host names this server by an IP address, localhost or
the address it was bound to (a DNS-rebinding page has its own name there); idle connections are
closed after IDLE_TIMEOUT seconds, and clients that go away are not reported as tracebacks.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fastnst.models import shipped_dir

REPO = Path(__file__).resolve().parents[1]
WEB_DIR = REPO / "web"
MODELS_DIR = shipped_dir()
MODELS_URL = "/models/"
IDLE_TIMEOUT = 30.0  # s: a connection that sends nothing for this long is closed, freeing its thread
LOCAL_NAMES = ("localhost", "localhost.")

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


def _inside(path: str, root: str) -> bool:
    """Whether ``path``, symlinks resolved, is ``root`` or inside it (symlinks resolved too)."""
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top + os.sep)


def host_name(header: str) -> str:
    """The host of a Host header, without its port or IPv6 brackets, lower-cased."""
    if header.startswith("["):
        return header[1:header.find("]")].lower() if "]" in header else ""
    return header.rsplit(":", 1)[0].lower() if header.count(":") == 1 else header.lower()


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class AppHandler(SimpleHTTPRequestHandler):
    """Static files with the cross-origin isolation headers; ``/models/`` maps to the models folder."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
        ".pt": "application/octet-stream",
        ".json": "application/json",
    }

    def __init__(self, *args, directory: str, models_dir: str, bound_host: str, idle_timeout: float = IDLE_TIMEOUT,
                 **kwargs):
        self.models_dir = models_dir
        self.bound_host = host_name(bound_host)
        self.timeout = idle_timeout  # read by setup(), which the base __init__ runs
        super().__init__(*args, directory=directory, **kwargs)

    def parse_request(self) -> bool:
        """The request line and headers, then the Host check: 403 for a name that is not ours."""
        if not super().parse_request():
            return False
        host = self.headers.get("Host")
        if host is None:  # HTTP/1.0 without Host: not a browser, so not a rebinding page
            return True
        name = host_name(host)
        if name in LOCAL_NAMES or name == self.bound_host or is_ip(name):
            return True
        self.send_error(HTTPStatus.FORBIDDEN, "Host not allowed: use http://127.0.0.1 or http://localhost")
        return False

    def translate_path(self, path: str) -> str:
        """The file for a URL path; "" for anything not really inside the web or models folder:
        dotfiles and '..', NUL bytes, subfolders of /models/, symlinks that lead out."""
        route = unquote(urlsplit(path).path)
        parts = [part for part in route.split("/") if part]
        if "\0" in route or any(part.startswith(".") for part in parts):
            return ""
        if route + "/" == MODELS_URL or route.startswith(MODELS_URL):
            name = route[len(MODELS_URL):]
            if not name or "/" in name:  # only plain file names directly in the models folder
                return ""
            root, file = self.models_dir, os.path.join(self.models_dir, name)
        else:
            root, file = self.directory, super().translate_path(path)
        return file if _inside(file, root) else ""

    def send_head(self):
        if self.translate_path(self.path) == "":
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")  # the app needs no folder listings
        return None

    def end_headers(self) -> None:
        for key, value in ISOLATION_HEADERS.items():
            self.send_header(key, value)
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass  # quiet: the CLI prints the URL; request logs would bury it


class AppServer(ThreadingHTTPServer):
    """The threading server, quiet about clients that go away mid-response (BrokenPipe and the like)."""

    daemon_threads = True  # an open keep-alive connection must not block shutdown

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return  # the browser closed the tab or the connection timed out: nothing to report
        print(f"web: a request from {client_address[0]} failed: {type(error).__name__}: {error}"[:300],
              file=sys.stderr)


class AppServer6(AppServer):
    address_family = socket.AF_INET6


def make_server(host: str = "127.0.0.1", port: int = 0, *, web_dir: str | os.PathLike = WEB_DIR,
                models_dir: str | os.PathLike = MODELS_DIR, idle_timeout: float = IDLE_TIMEOUT) -> AppServer:
    """A bound, not yet running server (port 0: a free port; read it from ``server.server_address``).
    An IPv6 address (``::1``) gets an IPv6 socket."""
    handler = partial(AppHandler, directory=str(web_dir), models_dir=str(models_dir), bound_host=host,
                      idle_timeout=idle_timeout)
    return (AppServer6 if ":" in host else AppServer)((host, port), handler)


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def is_wildcard(host: str) -> bool:
    """Whether binding ``host`` listens on every interface (0.0.0.0, ::, or an empty host)."""
    return host in ("", "0.0.0.0", "::", "[::]")


def missing_pieces(web_dir: Path = WEB_DIR) -> list[str]:
    """What the page needs that is not there (empty when it can run), one sentence each."""
    if not (web_dir / "index.html").is_file():  # an installed wheel: the app is not in it
        return [f"the browser app runs from a checkout of fastnst's repository, not from an installed package "
                f"(no {web_dir}): clone the repository and run `make web` there"]
    ort = web_dir / "node_modules" / "onnxruntime-web" / "dist"
    return [] if (ort / "ort.wasm.min.mjs").is_file() else [f"{ort} (run `npm ci` in {web_dir})"]
