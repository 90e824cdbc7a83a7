// Camera mode: the camera's frames stylized one after another at the chosen size, the fps shown,
// Start/Stop, and a PNG snapshot of the frame on screen. One pass is in flight at a time and each
// takes the newest frame: the camera is faster than any network here, so frames are dropped, not queued.
//
// body[data-camera] is "off", "starting", "running", "stopping" (a pass still finishing), "stopped"
// or "error"; body[data-camera-frames]
// counts the frames drawn and body[data-camera-fps] is the fps shown (tests, bench/web.py --camera).

import { run, sessionFor, wasmThreads } from "./backend.js";
import { CameraError, cameraUnavailable, grabFrame, openCamera } from "./camera.js";
import { FpsMeter } from "./fps.js";
import { fromNetwork, planes, postprocess, toImageData, toNetwork } from "./pipeline.js";

const $ = (id) => document.getElementById(id);

// `app` gives what the photo mode shares: {style(), backend(), options()}.
export function setupCamera(app) {
  let camera = null; // {video, stop, resize} while open
  let loopToken = null; // the running loop's; Stop replaces it, so an old loop ends
  let frames = 0;
  const meter = new FpsMeter();
  const grabCanvas = new OffscreenCanvas(1, 1);

  const chosenSize = () => $("camera-size").value.split("x").map(Number);
  const setState = (name) => (document.body.dataset.camera = name);

  function showMessage(message) {
    $("camera-message").textContent = message;
    $("camera-message").hidden = !message;
  }

  async function start() {
    $("camera-start").disabled = true;
    showMessage("");
    setState("starting");
    try {
      camera = await openCamera(...chosenSize());
    } catch (error) {
      if (!(error instanceof CameraError)) console.error(error);
      fail(error instanceof CameraError ? error.message : `The camera failed: ${error.message || error}`);
      return;
    }
    $("camera-stop").disabled = false;
    setState("running");
    meter.reset();
    const token = (loopToken = {});
    loop(token).catch((error) => {
      if (token !== loopToken) return; // stopped meanwhile: the error is of no interest
      console.error(error);
      stop();
      fail(`Stylizing the camera failed: ${error.message || error}`);
    }).finally(() => {
      if (!loopToken && document.body.dataset.camera === "stopping") setState("stopped");
    });
  }

  async function loop(token) {
    while (token === loopToken) {
      const [width, height] = chosenSize();
      const rgba = grabFrame(camera.video, width, height, grabCanvas);
      const [backend, model] = await sessionFor(app.style(), app.backend());
      const input = toNetwork(rgba, width, height);
      const t = performance.now();
      const output = await run(model, input);
      const networkSeconds = (performance.now() - t) / 1000;
      if (token !== loopToken) return; // stopped meanwhile: leave the last frame as it was
      const out = postprocess(fromNetwork(output, input.dims, width, height), planes(rgba, width, height), app.options());
      const canvas = $("camera-output");
      [canvas.width, canvas.height] = [width, height];
      canvas.getContext("2d").putImageData(toImageData(out, width, height), 0, 0);
      $("camera-snapshot").disabled = false;
      const fps = meter.tick();
      document.body.dataset.cameraFrames = String(++frames);
      document.body.dataset.cameraFps = fps.toFixed(3);
      const engine = backend === "webgpu" ? "WebGPU" : `WASM, ${wasmThreads()} thread${wasmThreads() > 1 ? "s" : ""}`;
      $("camera-fps").textContent = `${fps ? fps.toFixed(1) : "–"} fps at ${width}×${height} ` +
        `(network ${networkSeconds.toFixed(2)} s per frame; ${engine})`;
    }
  }

  function stop() {
    loopToken = null;
    camera?.stop();
    camera = null;
    $("camera-start").disabled = Boolean(cameraUnavailable());
    $("camera-stop").disabled = true;
    setState("stopping"); // "stopped" once the pass in flight has ended (the loop's exit)
  }

  function fail(message) {
    showMessage(message);
    $("camera-start").disabled = Boolean(cameraUnavailable());
    setState("error");
  }

  function snapshot() {
    $("camera-output").toBlob((blob) => {
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `camera_${app.style()}.png`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    }, "image/png");
  }

  $("camera-start").addEventListener("click", start);
  $("camera-stop").addEventListener("click", stop);
  $("camera-snapshot").addEventListener("click", snapshot);
  $("camera-size").addEventListener("change", () => camera?.resize(...chosenSize()));
  setState("off");
  const unavailable = cameraUnavailable();
  if (unavailable) fail(unavailable); // said at once, not after a click that cannot work
}
