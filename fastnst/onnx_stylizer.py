"""An exported fastnst ONNX model in an onnxruntime session, as a stylizer. Torch-free.

The file contract is in onnx_contract.py; opening a file checks it, so a wrong file fails before
any image is read.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fastnst.errors import FastNSTError
from fastnst.memory import bytes_per_pixel
from fastnst.models import MAX_MODEL_BYTES, check_meta
from fastnst.onnx_contract import INPUT_NAME, METADATA_PREFIX, ONNX_FORMAT, OUTPUT_NAME

# The memory estimate's guess of the first-layer width when a model does not say its own: the
# paper's 32, the larger of the widths we train, so the guess errs on the safe side.
ASSUMED_WIDTH = 32


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (os.sched_getaffinity).

    onnxruntime's default thread count looks at the whole machine, which oversubscribes inside
    containers and under taskset; and SMT siblings share one core's vector units, so convolution
    gains nothing from a second thread per core, only contention. Falls back to the logical CPU
    count where the topology is unknown.
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            cores.add((package, (topology / "core_id").read_text().strip()))
        except OSError:
            return max(1, len(cpus))
    return max(1, len(cores))


def session_options(threads: int | None = None):
    """onnxruntime SessionOptions for CPU inference; ``threads`` defaults to physical_cores()."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Each setting below is the fastest measured (docs/onnx.md, "CPU settings"). All graph
    # optimisations: constant folding, conv fusions, the NCHWc layout.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # One thread per physical core; a second thread on a core, or ORT_PARALLEL, is slower.
    options.intra_op_num_threads = threads or physical_cores()
    # The CPU arena keeps the largest image's buffers for the next image instead of faulting fresh
    # pages in every run; memory.bytes_per_pixel's estimate covers it. onnxruntime's default, explicit.
    options.enable_cpu_mem_arena = True
    options.log_severity_level = 3  # errors only: no warnings about initializers on every load
    return options


def read_metadata(props: dict[str, str]) -> dict:
    """ONNX metadata_props -> the stylizers' one meta layout: {"style_name", "style_sha256",
    "image_size", "style_size", "loss", "model", "fastnst_version"} (as checkpoint.py's meta, plus
    "model"); a missing or unparsable field is None. fastnst_version is the training run's where the
    file records it (fastnst.meta), else the exporter's."""

    def get(key: str, parse: Callable | None = None):
        value = props.get(METADATA_PREFIX + key)
        if value is None or parse is None:
            return value
        try:
            return parse(value)
        except (ValueError, TypeError):
            return None

    run = get("meta", json.loads)
    version = run.get("fastnst_version") if isinstance(run, dict) else None
    return {"style_name": get("style_name"), "style_sha256": get("style_sha256"),
            "image_size": get("image_size", int), "style_size": get("style_size", int),
            "loss": get("loss", json.loads), "model": get("model", json.loads),
            "fastnst_version": version or get("version")}


class OnnxStylizer:
    """An exported fastnst model: float32 [N, 3, H, W] in [0, 1] -> [N, 3, H, W] in [0, 1].

    ``meta``: see read_metadata. Opening checks the file is a fastnst export (names, ranks, format
    key) and raises FastNSTError otherwise.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None, providers: list[str] | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FastNSTError(f"{path}: no such model file")
        if path.stat().st_size > MAX_MODEL_BYTES:  # its initializers, inline: onnxruntime would load them all
            raise FastNSTError(f"{path}: refused: {path.stat().st_size / 2**20:.0f} MiB, more than a fastnst model "
                               f"file may hold ({MAX_MODEL_BYTES / 2**20:.0f} MiB)")
        try:
            self.session = ort.InferenceSession(str(path), session_options(threads),
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for corrupt files
            reason = (str(e).strip().splitlines() or [type(e).__name__])[-1][:200]
            raise FastNSTError(f"{path}: not a readable ONNX model ({reason})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        signature = [(t.name, t.type, len(t.shape or ())) for t in inputs + outputs]
        expected = [(INPUT_NAME, "tensor(float)", 4), (OUTPUT_NAME, "tensor(float)", 4)]
        if len(inputs) != 1 or len(outputs) != 1 or signature != expected:
            got = ", ".join(f"{n}: {t} rank {r}" for n, t, r in signature)
            raise FastNSTError(f"{path}: not a fastnst style model (expected input 'image' and output 'stylized', "
                               f"float32 [N, 3, H, W]; got {got})")
        props = self.session.get_modelmeta().custom_metadata_map
        found = props.get(METADATA_PREFIX + "format")
        if found != ONNX_FORMAT:
            raise FastNSTError(f"{path}: not a fastnst export (metadata fastnst.format is {found!r}, "
                               f"expected {ONNX_FORMAT!r})")
        self.path = path
        self.meta = check_meta(read_metadata(props), path)
        self.bytes_per_pixel = bytes_per_pixel((self.meta["model"] or {}).get("width", ASSUMED_WIDTH))

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return run_interruptibly(self.session, {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})


def run_interruptibly(session, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """session.run in a worker thread, so that Ctrl-C and SIGTERM end it within moments.

    Python runs signal handlers in the main thread between bytecodes, never inside session.run: a
    large photo would finish its pass before honouring SIGTERM, and a model with a huge Loop would
    need SIGKILL. The main thread waits instead; on an exception there (KeyboardInterrupt from
    the handler) it sets the run's terminate flag, which onnxruntime checks between nodes and loop
    iterations, lets the worker finish and re-raises.
    """
    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # the terminated run's "Exiting due to terminate flag" is ours: not an error
    result: dict = {}
    done = threading.Event()

    def work() -> None:
        try:
            result["out"] = session.run([OUTPUT_NAME], feeds, options)[0]
        except BaseException as e:  # handed to the main thread
            result["error"] = e
        finally:
            done.set()

    # Waited for with an Event, not Thread.join: Python 3.11's join, interrupted by a signal
    # handler's exception, marks a still running thread as stopped (bpo-45274's fix), and the
    # interpreter then exits under onnxruntime's feet (std::terminate, exit status 134).
    threading.Thread(target=work, name="fastnst-onnxruntime", daemon=True).start()
    try:
        while not done.wait(0.1):  # a timed wait: signal handlers run in between
            pass
    except BaseException:
        options.terminate = True
        while True:  # ends within moments; a second Ctrl-C must not leave the worker running
            try:
                done.wait()
                break
            except KeyboardInterrupt:
                continue
        raise
    error = result.get("error")
    if error is not None and type(error).__module__.startswith("onnxruntime"):  # the model failed, not fastnst
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise FastNSTError(f"the model failed while running ({reason})") from None
    if error is not None:
        raise error
    return result["out"]
