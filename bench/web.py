"""Seconds per 512² image: the web app in headless Chromium (onnxruntime-web, WASM) vs Python onnxruntime.

    python -m bench.web                    # writes its section into BENCHMARKS.md
    python -m bench.web --repeats 3 --no-write
    python -m bench.web --camera           # camera mode's fps at 320x240 and 640x480 (fake camera)

Same model (exported/<--style>.onnx), same 512x512 photo, same machine, one run. The four
variants are interleaved, one image each per round, so background load hits them alike; each
number is the median over --repeats rounds after --warmup untimed ones. Per variant three numbers:
*network* is the forward pass alone (onnxruntime-web's session.run; OnnxStylizer's call), *image*
is everything from decoded pixels to finished pixels (web: shrink check, tensor, network,
post-processing, drawing the canvas; Python: fastnst.runtime.stylize_image). In the browser the
page's own timers are read back (body[data-network-seconds], body[data-seconds]). *CPU s* is the
CPU time all threads spent on one whole image (browser: this process's child processes, from
Linux's /proc; Python: process time): unlike the wall-clock seconds, it does not depend on what
else the machine runs, so it shows what a second thread costs even where no core is free for it.
With --camera: frames per second of the page's camera mode (web/live.js) on Chromium's fake
camera, per thread count and size, over --frames frames after one dropped (camera start), the
variants interleaved as above; the median over rounds, with the CPU seconds per frame as above.
WASM only: headless Chromium without a GPU offers WebGPU only through SwiftShader (software, on
the CPU), minutes per 320x240 frame here.
Needs what tests/test_web.py needs: Chromium, playwright, web/node_modules.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image

from bench.browser import (CAMERA_FLAGS, chromium, find_chromium, missing, open_app, outcomes, served, set_control,
                           upload, wait_for_result)
from bench.sections import write_section
from fastnst.onnx_stylizer import physical_cores
from fastnst.runtime import OnnxStylizer, run_image, stylize_image

REPO = Path(__file__).resolve().parents[1]

MARK_BEGIN, MARK_END = "<!-- web begin -->", "<!-- web end -->"
CAMERA_BEGIN, CAMERA_END = "<!-- web camera begin -->", "<!-- web camera end -->"
SIZE = 512
POLL_MS = 200  # how often the page is asked whether it is done: each frame's asking costs CPU time too
CAMERA_SIZES = ("320x240", "640x480")


def photo_512(path: Path) -> np.ndarray:
    """The bundled photo, stretched to 512x512 (content does not change the cost), saved as PNG."""
    image = Image.open(REPO / "fastnst" / "assets" / "sample_photo.jpg").convert("RGB")
    image = image.resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    image.save(path)
    return np.asarray(image)


def children_cpu_seconds() -> float:
    """CPU seconds used so far by this process's running descendants (the browser's processes and
    Playwright's driver), from Linux's /proc; NaN where there is none."""
    children: dict[int, list[tuple[int, int]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # exited meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (name) ": state, ppid, ...
        children.setdefault(int(fields[1]), []).append((int(stat.parent.name), int(fields[11]) + int(fields[12])))
    if not children:
        return float("nan")
    ticks, todo = 0, [os.getpid()]
    while todo:
        for pid, used in children.get(todo.pop(), []):
            ticks += used
            todo.append(pid)
    return ticks / os.sysconf("SC_CLK_TCK")


def browser_round(page) -> tuple[float, float, float]:
    """Stylize the loaded photo once more (a max-size change reruns it); (network s, image s, CPU s)."""
    before, cpu = outcomes(page), children_cpu_seconds()
    set_control(page, "max-size", 1024)
    if wait_for_result(page, before, POLL_MS) != "done":
        raise SystemExit(f"the page failed: {page.inner_text('#error')}")
    cpu = children_cpu_seconds() - cpu
    return (*(float(page.evaluate(f"document.body.dataset.{key}")) for key in ("networkSeconds", "seconds")), cpu)


def python_round(model, photo: np.ndarray) -> tuple[float, float, float]:
    t = time.perf_counter()
    run_image(model, photo.astype(np.float32) / 255.0)
    network = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    stylize_image(model, photo)
    return network, time.perf_counter() - t, time.process_time() - cpu


def camera_frames(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.cameraFrames || 0)"))


def wait_for_frames(page, count: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.cameraFrames || 0) >= {count} "
                           "|| document.body.dataset.camera === 'error'", polling=POLL_MS / 4)
    if page.evaluate("document.body.dataset.camera") == "error":
        raise SystemExit(f"the camera failed: {page.inner_text('#camera-message')}")


def camera_round(page, size: str, frames: int) -> tuple[float, float, str]:
    """Start the camera at ``size``, drop the first frame, time the next ``frames``;
    (fps, CPU s per frame, the page's line)."""
    page.select_option("#camera-size", size)
    page.click("#camera-start")
    first = camera_frames(page) + 1
    wait_for_frames(page, first)
    t, cpu = time.perf_counter(), children_cpu_seconds()
    wait_for_frames(page, first + frames)
    fps = frames / (time.perf_counter() - t)
    cpu = (children_cpu_seconds() - cpu) / frames
    line = page.inner_text("#camera-fps")
    page.click("#camera-stop")
    page.wait_for_function("document.body.dataset.camera === 'stopped'")  # its last pass ends before the next
    return fps, cpu, line


def camera_main(args) -> None:
    """Camera mode's fps per (engine, size), interleaved; prints a Markdown table (and writes it, unless --no-write)."""
    load_before = os.getloadavg()[0]
    with served() as url, chromium(CAMERA_FLAGS) as browser:
        pages = {f"WASM, {t} thread(s)": open_app(browser, f"{url}?threads={t}") for t in args.threads}
        for page in pages.values():
            page.click(f"#styles button[data-style='{args.style}']")
            set_control(page, "backend", "wasm")
        variants = [(name, size) for size in CAMERA_SIZES for name in pages]
        results = {v: [] for v in variants}
        lines = {}
        for i in range(args.warmup + args.repeats):
            for name, size in variants:
                *result, lines[name, size] = camera_round(pages[name], size, args.frames)
                if i >= args.warmup:
                    results[name, size].append(result)
            print(f"round {i + 1}/{args.warmup + args.repeats}", file=sys.stderr)
        browser_version = browser.version
    rows = []
    for name, size in variants:
        fps, cpu = (statistics.median(r[i] for r in results[name, size]) for i in (0, 1))
        rows.append(f"| {name} | {size.replace('x', '×')} | {fps:.2f} | {cpu:.3f} | {lines[name, size]} |")
    body = (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; {datetime.date.today()}. Chromium "
            f"{browser_version} headless, fake camera (`--use-fake-device-for-media-stream`); model "
            f"`exported/{args.style}.onnx`; frames per second over {args.frames} frames after the first, "
            f"median of {args.repeats} interleaved rounds after {args.warmup} warm-up; 1-minute load average "
            f"{load_before:.1f} before and {os.getloadavg()[0]:.1f} after. "
            "Reproduce: `python -m bench.web --camera`\n\n"
            "| engine | size | fps | CPU s/frame | the page's last line |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n")
    print(body)
    if not args.no_write:
        write_section(REPO / "BENCHMARKS.md", CAMERA_BEGIN, CAMERA_END, body,
                      heading="### Browser camera mode (onnxruntime-web), frames per second\n\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--style", default="mosaic")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="WASM and onnxruntime thread counts")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    p.add_argument("--camera", action="store_true", help="the camera mode's fps instead (fake camera)")
    p.add_argument("--frames", type=int, default=5, help="--camera: frames timed per round")
    args = p.parse_args()
    reason = missing()
    if reason:
        raise SystemExit(reason)
    if args.camera:
        return camera_main(args)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, served() as url, chromium() as browser:
        path = Path(tmp) / "photo_512.png"
        photo = photo_512(path)
        variants = {}
        for threads in args.threads:
            page = open_app(browser, f"{url}?threads={threads}")
            page.click(f"#styles button[data-style='{args.style}']")
            if upload(page, path) != "done":
                raise SystemExit(f"the page failed: {page.inner_text('#error')}")
            if threads > 1 and not page.evaluate("crossOriginIsolated"):
                raise SystemExit("the page is not cross-origin isolated: WASM cannot use threads")
            variants[f"Chromium, onnxruntime-web WASM, {threads} thread(s)"] = lambda page=page: browser_round(page)
            model = OnnxStylizer(REPO / "exported" / f"{args.style}.onnx", threads=threads)
            variants[f"Python onnxruntime, {threads} thread(s)"] = lambda model=model: python_round(model, photo)
        times = {name: [] for name in variants}
        for i in range(args.warmup + args.repeats):
            for name, run in variants.items():
                result = run()
                if i >= args.warmup:
                    times[name].append(result)
            print(f"round {i + 1}/{args.warmup + args.repeats}", file=sys.stderr)
        browser_version = browser.version

    ort_web = json.loads((REPO / "web" / "node_modules" / "onnxruntime-web" / "package.json").read_text())["version"]
    rows = []
    for name, samples in times.items():
        network = statistics.median(s[0] for s in samples)
        image = statistics.median(s[1] for s in samples)
        cpu = statistics.median(s[2] for s in samples)
        rows.append(f"| {name} | {network:.3f} | {image:.3f} | {cpu:.3f} |")
    python_default = physical_cores()
    body = (f"Machine: {platform.machine()}, {python_default} physical core(s) as fastnst counts them; "
            f"{datetime.date.today()}. Chromium {browser_version} headless (`{find_chromium()}`, "
            f"--disable-gpu: WASM only), onnxruntime-web {ort_web}; Python onnxruntime {onnxruntime.__version__}. "
            f"Model `exported/{args.style}.onnx` on a {SIZE}x{SIZE} photo; median of {args.repeats} interleaved "
            f"rounds after {args.warmup} warm-up; 1-minute load average {load_before:.1f} before and "
            f"{os.getloadavg()[0]:.1f} after on {os.cpu_count()} CPUs"
            # The bench itself loads the machine, so only the load before it says whether it was idle.
            f"{' (other work shared the machine)' if load_before >= 1 else ''}. "
            "Reproduce: `python -m bench.web`\n\n"
            "| runtime | network s/image | whole image s | CPU s/image |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")
    print(body)
    if not args.no_write:
        write_section(REPO / "BENCHMARKS.md", MARK_BEGIN, MARK_END, body,
                      heading="### Browser (onnxruntime-web) vs Python onnxruntime, 512²\n\n")


if __name__ == "__main__":
    main()
