"""The web app's server and static files, without a browser: headers, routes, the style list."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from conftest import REPO_ROOT
from PIL import Image

from fastnst.cli.web import web_main
from fastnst.webserver import ISOLATION_HEADERS, make_server, url_of

WEB = REPO_ROOT / "web"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The server on a free port, over a small web folder (with a fake onnxruntime-web build) and the real models."""
    root = tmp_path_factory.mktemp("web")
    (root / "index.html").write_text("<!doctype html><title>t</title>")
    (root / "app.js").write_text("export {};")
    dist = root / "node_modules" / "onnxruntime-web" / "dist"
    dist.mkdir(parents=True)
    (dist / "ort.wasm.min.mjs").write_text("export {};")
    (dist / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root.parent / "secret.txt").write_text("outside the web folder")
    server = make_server("127.0.0.1", 0, web_dir=root, models_dir=REPO_ROOT / "exported")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url_of(server)
    server.shutdown()
    server.server_close()


def get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, b""


def test_binds_loopback_on_a_free_port(server):
    assert server.startswith("http://127.0.0.1:") and not server.endswith(":0/")


@pytest.mark.parametrize("path, mime", [
    ("", "text/html"),
    ("app.js", "text/javascript"),
    ("node_modules/onnxruntime-web/dist/ort.wasm.min.mjs", "text/javascript"),
    ("node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm", "application/wasm"),
    ("models/mosaic.onnx", "application/octet-stream"),
])
def test_files_come_with_isolation_headers_and_their_mime_type(server, path, mime):
    status, headers, body = get(server + path)
    assert status == 200 and body
    assert headers["Content-Type"].split(";")[0] == mime
    for key, value in ISOLATION_HEADERS.items():  # what makes the page crossOriginIsolated
        assert headers[key] == value


def test_models_are_the_exported_files(server):
    _, _, body = get(server + "models/wave.onnx")
    assert body == (REPO_ROOT / "exported" / "wave.onnx").read_bytes()


@pytest.mark.parametrize("path", ["models/", "models", "node_modules/", "models/missing.onnx",
                                  "models/%2e%2e/README.md", "models/..%2fREADME.md", "%2e%2e/secret.txt",
                                  "models/.hidden"])
def test_nothing_outside_the_two_folders_is_served(server, path):
    status, _, body = get(server + path)
    assert status == 404 and b"outside" not in body


def test_style_list_covers_every_shipped_model_with_a_small_thumbnail():
    styles = json.loads((WEB / "styles.json").read_text())
    names = [s["name"] for s in styles]
    assert sorted(names) == sorted(p.stem for p in (REPO_ROOT / "exported").glob("*.onnx"))
    for style in styles:
        thumb = WEB / "thumbs" / f"{style['name']}.jpg"
        assert thumb.stat().st_size < 16_000, f"{thumb} is not a thumbnail"
        assert max(Image.open(thumb).size) <= 256
        assert style["title"] and style["credit"]


def test_cli_says_what_to_install_when_onnxruntime_web_is_missing(monkeypatch, capsys):
    import fastnst.webserver as webserver

    monkeypatch.setattr(webserver, "missing_pieces", lambda: ["web/node_modules/onnxruntime-web (run `npm ci`)"])
    assert web_main(["--port", "0"]) == 2
    assert "npm ci" in capsys.readouterr().err
