"""Driving the web app (web/) in a real headless Chromium through Playwright: for tests and bench/web.py.

Playwright drives Debian's ``chromium`` package (or $FASTNST_CHROMIUM), never a browser of its own:
``playwright install`` downloads one, which machines without the internet cannot do. The page
reports its progress in ``body[data-state]`` and counts the results and errors it showed in
``body[data-outcomes]`` (web/app.js); everything here waits on those, never on a fixed sleep.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from fastnst.webserver import make_server, missing_pieces, url_of

# Root in containers needs --no-sandbox; the rest keep Chromium off the network it would otherwise
# try at start (updates, sync, QUIC probes), which this machine refuses.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# WebGPU without a GPU: Chromium's software Vulkan (SwiftShader, shipped in Debian's package) gives
# a real WebGPU adapter, very slowly (seconds per shader), enough to check the WebGPU path's pixels.
SOFTWARE_WEBGPU_FLAGS = [f for f in CHROMIUM_FLAGS if f != "--disable-gpu"] + [
    "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader",
    "--use-webgpu-adapter=swiftshader", "--use-angle=swiftshader"]
# A camera without one: Chromium's fake device (a moving test pattern) and permission granted
# without a prompt, for the camera mode (web/live.js).
CAMERA_FLAGS = CHROMIUM_FLAGS + ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
TIMEOUT_MS = 180_000  # a busy 2-core machine compiles the 14 MB WASM module and runs the net slowly


def find_chromium() -> str | None:
    explicit = os.environ.get("FASTNST_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def missing() -> str | None:
    """Why the browser tests cannot run here (one line), or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if find_chromium() is None:
        return "no chromium executable (apt-get install chromium, or set FASTNST_CHROMIUM)"
    pieces = missing_pieces()
    return f"web app not installed: {pieces[0]}" if pieces else None


@contextmanager
def served() -> Iterator[str]:
    """The web app on a free loopback port, for the duration of the block; yields its URL."""
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()


def launch(playwright, flags: list[str] = CHROMIUM_FLAGS):
    """A headless Chromium (Playwright's Browser) from a started sync_playwright(); close it when done."""
    return playwright.chromium.launch(executable_path=find_chromium(), headless=True, args=flags)


@contextmanager
def chromium(flags: list[str] = CHROMIUM_FLAGS) -> Iterator:
    """A headless Chromium for the block, Playwright included (one per process: Playwright's sync API
    cannot be started twice at once; inside a started one, use launch)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright, flags)
        try:
            yield browser
        finally:
            browser.close()


def open_app(browser, url: str, viewport=(1100, 900), init_script: str | None = None):
    """A new page on the app, once it is ready for a photo; console errors are collected in page.errors.
    ``init_script`` runs before the page's own scripts (to take a browser feature away, say)."""
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    if init_script:
        page.add_init_script(init_script)
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: page.errors.append(message.text) if message.type == "error" else None)
    page.goto(url)
    page.wait_for_function("['ready', 'error'].includes(document.body.dataset.state)")
    return page


def outcomes(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.outcomes || 0)"))


def wait_for_result(page, after: int, polling: float | str = "raf") -> str:
    """Wait for the next result or error after outcome number ``after``; return the state ("done", "error").
    ``polling``: every animation frame, or every so many ms (less CPU, for measuring CPU time)."""
    page.wait_for_function(f"Number(document.body.dataset.outcomes || 0) > {after}", polling=polling)
    return page.evaluate("document.body.dataset.state")


def set_control(page, element_id: str, value) -> None:
    """Set an input as a person would and fire the events the page listens to (input, change)."""
    page.evaluate("""([id, value]) => {
        const el = document.getElementById(id);
        if (el.type === 'checkbox') el.checked = value; else el.value = String(value);
        el.dispatchEvent(new Event('input', {bubbles: true}));
        el.dispatchEvent(new Event('change', {bubbles: true}));
    }""", [element_id, value])


def choose_style(page, name: str) -> None:
    page.click(f"#styles button[data-style='{name}']")


def upload(page, path: str | os.PathLike) -> str:
    """Give the page a file through its own file input; wait for the result or an error; return the state."""
    before = outcomes(page)
    page.set_input_files("#file", str(path))
    return wait_for_result(page, before)


def canvas_pixels(page, element_id: str) -> np.ndarray:
    """A canvas's pixels as uint8 [H, W, 3], read back through a lossless PNG data URL."""
    url = page.evaluate(f"document.getElementById('{element_id}').toDataURL('image/png')")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))
