"""The web app's server and static files, without a browser: headers, routes, the style list."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest
from conftest import REPO_ROOT
from PIL import Image

from fastnst.cli.web import web_main
from fastnst.webserver import ISOLATION_HEADERS, make_server, missing_pieces, url_of

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
    (root / ".env").write_text("outside: a dotfile")
    (root / "leak.txt").symlink_to(root.parent / "secret.txt")
    (root / "outside").symlink_to(root.parent)
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
    ("models/mosaic.pt", "application/octet-stream"),
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
                                  "models/.hidden", ".env", "%2eenv", "leak.txt", "outside/secret.txt",
                                  "%00", "app.js%00.txt", "models/mosaic.onnx%00"])
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


def request(url: str, host: str | None) -> int:
    """The status of GET ``url`` sent with Host: ``host``."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.putrequest("GET", "/app.js", skip_host=True)
    if host is not None:
        connection.putheader("Host", host)
    connection.endheaders()
    status = connection.getresponse().status
    connection.close()
    return status


@pytest.mark.parametrize("host, status", [("127.0.0.1:8000", 200), ("localhost:8000", 200), ("[::1]:8000", 200),
                                          ("192.168.1.20:8000", 200), ("evil.example:8000", 403),
                                          ("evil.example", 403), ("127.0.0.1.evil.example", 403)])
def test_only_requests_that_name_this_server_by_address_or_localhost_are_served(server, host, status):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name, which it sends as Host."""
    assert request(server, host) == status


def test_idle_connections_are_closed(tmp_path):
    quick = make_server("127.0.0.1", 0, web_dir=tmp_path, models_dir=tmp_path, idle_timeout=0.5)
    threading.Thread(target=quick.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(quick.server_address[:2], timeout=30) as idle:
            start = time.monotonic()
            assert idle.recv(1) == b""  # closed by the server, not by our 30 s timeout
            assert time.monotonic() - start < 20
    finally:
        quick.shutdown()
        quick.server_close()


def test_clients_that_go_away_leave_no_traceback(server, capfd):
    quick = make_server("127.0.0.1", 0, web_dir=REPO_ROOT, models_dir=REPO_ROOT)
    for error in (BrokenPipeError(32, "Broken pipe"), ConnectionResetError(104, "reset")):
        try:
            raise error
        except OSError:
            quick.handle_error(None, ("127.0.0.1", 1))
    quick.server_close()
    get(server + "%00")
    assert "Traceback" not in capfd.readouterr().err


def test_ipv6_loopback_works(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    (tmp_path / "app.js").write_text("export {};")
    try:
        six = make_server("::1", 0, web_dir=tmp_path, models_dir=tmp_path)
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here ({e})")
    threading.Thread(target=six.serve_forever, daemon=True).start()
    try:
        assert url_of(six).startswith("http://[::1]:")
        assert request(url_of(six), urlsplit(url_of(six)).netloc) == 200
    finally:
        six.shutdown()
        six.server_close()


def test_listening_on_every_interface_says_so(monkeypatch, capsys):
    import fastnst.webserver as webserver

    class Fake:
        server_address = ("0.0.0.0", 8000)

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    monkeypatch.setattr(webserver, "missing_pieces", lambda: [])
    monkeypatch.setattr(webserver, "make_server", lambda host, port: Fake())
    assert web_main(["--host", "0.0.0.0"]) == 130
    assert "warning: --host 0.0.0.0 listens on every network interface" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_port_out_of_range_is_one_line(capsys, port):
    assert web_main(["--port", port]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: argument --port") and err.count("\n") == 1


def test_without_a_checkout_the_cli_says_the_app_runs_from_one(tmp_path):
    pieces = missing_pieces(tmp_path / "site-packages" / "web")
    assert len(pieces) == 1 and "runs from a checkout" in pieces[0] and "npm" not in pieces[0]
