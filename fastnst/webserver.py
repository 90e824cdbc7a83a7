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
folder (web/node_modules/onnxruntime-web included, so nothing is loaded from a CDN). Both default
to the checkout's ``web/`` and ``exported/``: the app is served from a clone, not from a wheel. The page
never uploads anything: photos are decoded and stylized inside the browser.
"""

from __future__ import annotations

import os
import posixpath
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parents[1]
WEB_DIR = REPO / "web"
MODELS_DIR = REPO / "exported"
MODELS_URL = "/models/"

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
}


class AppHandler(SimpleHTTPRequestHandler):
    """Static files with the cross-origin isolation headers; ``/models/`` maps to the models folder."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
        ".onnx": "application/octet-stream",
        ".json": "application/json",
    }

    def __init__(self, *args, directory: str, models_dir: str, **kwargs):
        self.models_dir = models_dir
        super().__init__(*args, directory=directory, **kwargs)

    def translate_path(self, path: str) -> str:
        """The file for a URL path; "" for a /models/ path that is not a plain file name there."""
        route = posixpath.normpath(unquote(urlsplit(path).path))
        if route + "/" == MODELS_URL or route.startswith(MODELS_URL):
            name = route[len(MODELS_URL):]
            # Only plain file names directly in the models folder: no subfolders, no '..', no dotfiles.
            return os.path.join(self.models_dir, name) if name and "/" not in name and not name.startswith(".") else ""
        return super().translate_path(path)

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


def make_server(host: str = "127.0.0.1", port: int = 0, *, web_dir: str | os.PathLike = WEB_DIR,
                models_dir: str | os.PathLike = MODELS_DIR) -> ThreadingHTTPServer:
    """A bound, not yet running server (port 0: a free port; read it from ``server.server_address``)."""
    handler = partial(AppHandler, directory=str(web_dir), models_dir=str(models_dir))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True  # an open keep-alive connection must not block shutdown
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def missing_pieces(web_dir: Path = WEB_DIR) -> list[str]:
    """What the page needs that is not installed yet (empty when it can run)."""
    ort = web_dir / "node_modules" / "onnxruntime-web" / "dist"
    return [] if (ort / "ort.wasm.min.mjs").is_file() else [f"{ort} (run `npm ci` in {web_dir})"]
