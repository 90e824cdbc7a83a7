"""The web app in a real headless Chromium: the ONNX contract holds in onnxruntime-web too.

Each test loads a photo through the page's own file input (or a drop), lets the page stylize it
with onnxruntime-web (WASM), reads the result back from its canvas and compares it with
fastnst.runtime on the same photo and model. The camera tests use Chromium's fake camera (a
moving test pattern) and its real refusals: no camera, permission denied, no mediaDevices.
Needs Chromium, Playwright and web/node_modules: outside CI a missing one skips the module with
one line; under CI=true it fails (conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from bench.browser import (CAMERA_FLAGS, CHROMIUM_FLAGS, SOFTWARE_WEBGPU_FLAGS, canvas_pixels, choose_style, launch,
                           missing, open_app, outcomes, served, set_control, upload, wait_for_result)
from conftest import IN_CI, REPO_ROOT, skip_unless_ci
from PIL import Image

from fastnst.runtime import OnnxStylizer, StylizeOptions, read_image, stylize_image

PHOTO = REPO_ROOT / "fastnst" / "assets" / "sample_photo.jpg"  # 451x300 JPEG
TOLERANCE = 2  # /255: the bound between onnxruntime-web and Python onnxruntime
ARTIFACTS = REPO_ROOT / "out" / "test-artifacts"

MISSING = missing()  # why the browser cannot run here (one line), or None
if MISSING and not IN_CI:
    pytest.skip(MISSING, allow_module_level=True)


@pytest.fixture(scope="module")
def app_url():
    if MISSING:
        skip_unless_ci(MISSING)  # under CI=true: every test here fails, and the rest of the suite still runs
    with served() as url:
        yield url


@pytest.fixture(scope="module")
def playwright(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright):
    browser = launch(playwright)
    yield browser
    browser.close()


@pytest.fixture
def page(browser, app_url):
    page = open_app(browser, app_url)
    yield page
    page.close()


@pytest.fixture(scope="module")
def python_model():
    return OnnxStylizer(REPO_ROOT / "exported" / "mosaic.onnx")


def python_result(model, photo, **options) -> np.ndarray:
    options = StylizeOptions(**options)
    return stylize_image(model, read_image(photo, options.max_size), options)


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def test_stylized_photo_matches_python_runtime(page, python_model):
    assert upload(page, PHOTO) == "done", page.inner_text("#error")
    assert page.evaluate("crossOriginIsolated"), "COOP/COEP missing: WASM would run on one thread"
    assert page.evaluate("document.body.dataset.backend") == "wasm"
    # Chromium decodes the JPEG to the same pixels as Pillow, so both networks see one photo.
    assert max_diff(canvas_pixels(page, "original"), read_image(PHOTO)) == 0
    assert max_diff(canvas_pixels(page, "stylized"), python_result(python_model, PHOTO)) <= TOLERANCE
    assert "s per image" in page.inner_text("#status")
    assert page.errors == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web.png"), full_page=True)


@pytest.mark.parametrize("style, max_size, shape", [("wave", 200, (133, 200, 3)), ("udnie", 16, (11, 16, 3))])
def test_other_styles_and_max_size_match_python(page, style, max_size, shape):
    # A shrink exercises web/resize.js, the port of Pillow's LANCZOS that fastnst's reader uses
    # (measured bit-exact; 1 allows for Math.sin vs C's sin); 11 px also the edge padding to 16.
    set_control(page, "max-size", max_size)
    choose_style(page, style)
    assert upload(page, PHOTO) == "done", page.inner_text("#error")
    original = canvas_pixels(page, "original")
    assert original.shape == shape
    assert max_diff(original, read_image(PHOTO, max_size)) <= 1
    expected = python_result(OnnxStylizer(REPO_ROOT / "exported" / f"{style}.onnx"), PHOTO, max_size=max_size)
    assert max_diff(canvas_pixels(page, "stylized"), expected) <= TOLERANCE


def test_strength_zero_returns_the_photo(page):
    assert upload(page, PHOTO) == "done"
    before = outcomes(page)
    set_control(page, "strength", 0)
    wait_for_result(page, before)
    assert max_diff(canvas_pixels(page, "stylized"), read_image(PHOTO)) == 0


def test_preserve_color_and_strength_match_postprocess(page, python_model):
    set_control(page, "preserve-color", True)
    set_control(page, "strength", 0.6)
    assert upload(page, PHOTO) == "done"
    expected = python_result(python_model, PHOTO, preserve_color=True, strength=0.6)
    assert max_diff(canvas_pixels(page, "stylized"), expected) <= TOLERANCE
    # The colours are the photo's: the chroma differs far less than without preservation.
    plain = python_result(python_model, PHOTO, strength=0.6)
    page_result = canvas_pixels(page, "stylized").astype(float)
    photo = read_image(PHOTO).astype(float)
    chroma = lambda im: im - im.mean(axis=2, keepdims=True)  # noqa: E731
    assert np.abs(chroma(page_result) - chroma(photo)).mean() < 0.5 * np.abs(chroma(plain) - chroma(photo)).mean()


def test_download_is_the_shown_result(page, tmp_path):
    assert upload(page, PHOTO) == "done"
    with page.expect_download() as info:
        page.click("#download")
    download = info.value
    assert download.suggested_filename == "sample_photo_mosaic.png"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), canvas_pixels(page, "stylized"))


def test_dropped_photo_is_stylized(page, python_model):
    before = outcomes(page)
    page.evaluate("""async (bytes) => {
        const file = new File([new Uint8Array(bytes)], 'dropped.jpg', {type: 'image/jpeg'});
        const data = new DataTransfer();
        data.items.add(file);
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true}));
    }""", list(PHOTO.read_bytes()))
    assert wait_for_result(page, before) == "done"
    assert max_diff(canvas_pixels(page, "stylized"), python_result(python_model, PHOTO)) <= TOLERANCE


def test_text_file_named_jpg_shows_a_message(page, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is a shopping list, not a photo\n")
    assert upload(page, bad) == "error"
    message = page.locator("#error")
    assert message.is_visible()
    assert "notes.jpg" in message.inner_text() and "not an image" in message.inner_text()
    assert page.is_disabled("#download")
    # The page still works: a real photo after the bad one is stylized and clears the message.
    assert upload(page, PHOTO) == "done"
    assert not message.is_visible()


def test_webgpu_is_used_when_the_browser_has_it(playwright, app_url, python_model):
    # Software WebGPU needs seconds per shader: a 24 px image keeps this to about half a minute.
    browser = launch(playwright, SOFTWARE_WEBGPU_FLAGS)
    try:
        page = open_app(browser, app_url)
        if "WebGPU" not in page.inner_text("#status"):
            pytest.skip("this Chromium build offers no software WebGPU adapter (SwiftShader)")
        set_control(page, "max-size", 24)
        assert upload(page, PHOTO) == "done", page.inner_text("#error")
        assert page.evaluate("document.body.dataset.backend") == "webgpu"
        assert "WebGPU" in page.inner_text("#status")
        expected = python_result(python_model, PHOTO, max_size=24)
        assert max_diff(canvas_pixels(page, "stylized"), expected) <= TOLERANCE
        assert page.errors == []
    finally:
        browser.close()


@pytest.fixture(scope="module")
def camera_page(playwright, app_url):
    browser = launch(playwright, CAMERA_FLAGS)
    page = open_app(browser, app_url)
    yield page
    browser.close()


def camera_frames(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.cameraFrames || 0)"))


def wait_for_camera_frame(page, after: int) -> int:
    page.wait_for_function(f"Number(document.body.dataset.cameraFrames || 0) > {after} "
                           "|| document.body.dataset.camera === 'error'")
    assert page.evaluate("document.body.dataset.camera") == "running", page.inner_text("#camera-message")
    return camera_frames(page)


@pytest.mark.parametrize("size, shape", [("320x240", (240, 320, 3)), ("640x480", (480, 640, 3))])
def test_camera_frames_are_stylized_at_the_chosen_size_with_fps_shown(camera_page, size, shape):
    page = camera_page
    page.select_option("#camera-size", size)
    page.click("#camera-start")
    try:
        seen = wait_for_camera_frame(page, camera_frames(page) + 1)  # the second frame: the fps needs two
        first = canvas_pixels(page, "camera-output")
        wait_for_camera_frame(page, seen)
        second = canvas_pixels(page, "camera-output")
        assert first.shape == second.shape == shape
        # The fake camera's clock and pacman move: a new frame, not the same one drawn again.
        assert np.abs(first.astype(int) - second.astype(int)).mean() > 0.5
        assert float(page.evaluate("document.body.dataset.cameraFps")) > 0
        assert f"fps at {size.replace('x', '×')}" in page.inner_text("#camera-fps")
    finally:
        page.click("#camera-stop")
    page.wait_for_function("document.body.dataset.camera === 'stopped'")  # the pass in flight has ended
    assert page.is_enabled("#camera-start") and page.is_disabled("#camera-stop")
    assert page.errors == []


def test_camera_snapshot_is_the_shown_frame(camera_page, tmp_path):
    page = camera_page
    page.click("#camera-start")
    wait_for_camera_frame(page, camera_frames(page))
    page.click("#camera-stop")  # the frame on screen stays, and stays still for the comparison
    page.wait_for_function("document.body.dataset.camera === 'stopped'")
    with page.expect_download() as info:
        page.click("#camera-snapshot")
    assert info.value.suggested_filename == "camera_mosaic.png"
    path = tmp_path / "snapshot.png"
    info.value.save_as(path)
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), canvas_pixels(page, "camera-output"))


@pytest.mark.parametrize("flags, message", [
    (CHROMIUM_FLAGS, "No camera found"),  # headless Chromium has no camera of its own
    (CHROMIUM_FLAGS + ["--use-fake-device-for-media-stream"], "permission was denied"),  # the prompt is dismissed
])
def test_camera_refused_is_one_line_and_photos_still_work(playwright, app_url, python_model, flags, message):
    browser = launch(playwright, flags)
    try:
        page = open_app(browser, app_url)
        page.click("#camera-start")
        page.wait_for_function("document.body.dataset.camera === 'error'")
        line = page.inner_text("#camera-message")
        assert message in line and "\n" not in line
        assert page.is_enabled("#camera-start")  # press again once a camera or permission is given
        assert upload(page, PHOTO) == "done"
        assert max_diff(canvas_pixels(page, "stylized"), python_result(python_model, PHOTO)) <= TOLERANCE
        assert page.errors == []
    finally:
        browser.close()


def test_page_without_media_devices_says_so_at_once(browser, app_url):
    # As on a page served over plain http off localhost, where browsers leave mediaDevices undefined.
    hide = "Object.defineProperty(navigator, 'mediaDevices', {value: undefined})"
    page = open_app(browser, app_url, init_script=hide)
    try:
        assert "https or on localhost" in page.inner_text("#camera-message")
        assert page.is_disabled("#camera-start")
        assert upload(page, PHOTO) == "done"
        assert page.errors == []
    finally:
        page.close()
