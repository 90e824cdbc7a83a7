// The page: wires the controls to decode -> shrink -> network -> post-process -> canvas.
//
// body[data-state] is "loading", "ready", "busy", "done" or "error", and body[data-outcomes]
// counts the times it became "done" (a result drawn) or "error", so a test or a script can wait
// for the outcome of what it did (tests/browser.py), not for a state left over from before.

import { resolveBackend, run, sessionFor, wasmThreads } from "./backend.js";
import { BadPhotoError, decodePhoto } from "./decode.js";
import { setupCamera } from "./live.js";
import { fromNetwork, planes, postprocess, toImageData, toNetwork } from "./pipeline.js";
import { resizeLanczos, scaledSize } from "./resize.js";

const $ = (id) => document.getElementById(id);
const MAX_SIDE = 2048; // px: onnxruntime-web's WASM memory is 4 GB at most (wasm32); a
                       // width-16 net needs ~770 B/px (fastnst/memory.py), 2048x1536 ~2.4 GB

const state = {
  style: null,
  source: null, // the decoded photo at full size: {rgba, width, height, name}
  photo: null, // what the network saw: {rgba, width, height}, after the max-size shrink
  network: null, // the network's output planes [3, h, w], kept so strength/colour need no rerun
  generation: 0, // bumped by every new run; a run that finds it changed drops its result
  outcomes: 0,
};

function setState(name) {
  document.body.dataset.state = name;
  if (name === "done" || name === "error") document.body.dataset.outcomes = String(++state.outcomes);
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  setState("error");
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function options() {
  return { strength: Number($("strength").value), preserveColor: $("preserve-color").checked };
}

function maxSize() {
  const value = Math.round(Number($("max-size").value));
  return Math.min(MAX_SIDE, Math.max(16, Number.isFinite(value) && value > 0 ? value : MAX_SIDE));
}

function drawTo(canvas, imageData) {
  canvas.width = imageData.width;
  canvas.height = imageData.height;
  canvas.getContext("2d").putImageData(imageData, 0, 0);
}

// Post-process the kept network output with the current strength and colour options and draw it.
function render() {
  const { photo, network } = state;
  if (!photo || !network) return;
  const original = planes(photo.rgba, photo.width, photo.height);
  const out = postprocess(network, original, options());
  drawTo($("stylized"), toImageData(out, photo.width, photo.height));
  $("download").disabled = false;
  setState("done");
}

async function stylize() {
  const { source, style } = state;
  if (!source || !style) return;
  const generation = ++state.generation;
  clearError();
  setState("busy");
  $("status").textContent = `Stylizing with ${style}…`;
  try {
    const tLoad = performance.now();
    const [backend, model] = await sessionFor(style, $("backend").value);
    const loadSeconds = (performance.now() - tLoad) / 1000;

    const t0 = performance.now();
    const [width, height] = scaledSize(source.width, source.height, maxSize());
    const rgba = width === source.width && height === source.height
      ? source.rgba : resizeLanczos(source.rgba, source.width, source.height, width, height);
    const input = toNetwork(rgba, width, height);
    const t1 = performance.now();
    const output = await run(model, input);
    const networkSeconds = (performance.now() - t1) / 1000;
    if (generation !== state.generation) return; // a newer run has started: it draws
    state.photo = { rgba, width, height };
    state.network = fromNetwork(output, input.dims, width, height);
    drawTo($("original"), new ImageData(new Uint8ClampedArray(rgba), width, height));
    render();
    const seconds = (performance.now() - t0) / 1000;
    const engine = backend === "webgpu" ? "WebGPU" : `WASM, ${wasmThreads()} thread${wasmThreads() > 1 ? "s" : ""}`;
    document.body.dataset.seconds = seconds.toFixed(4);
    document.body.dataset.networkSeconds = networkSeconds.toFixed(4);
    document.body.dataset.backend = backend;
    $("status").textContent = `${style}, ${width}×${height} px: ${seconds.toFixed(2)} s per image ` +
      `(network ${networkSeconds.toFixed(2)} s; ${engine})` +
      (loadSeconds > 0.05 ? `; model loaded in ${loadSeconds.toFixed(2)} s` : "");
  } catch (error) {
    if (generation !== state.generation) return;
    console.error(error);
    const hint = /memory|allocat/i.test(String(error)) ? " Try a smaller max size." : "";
    showError(`Stylizing failed: ${error.message || error}.${hint}`);
    $("status").textContent = "";
  }
}

async function choosePhoto(file) {
  if (!file) return;
  clearError();
  state.generation++; // whatever was running was for the previous photo
  state.source = state.photo = state.network = null;
  $("download").disabled = true;
  for (const id of ["original", "stylized"]) $(id).width = $(id).height = 0;
  try {
    state.source = { ...(await decodePhoto(file)), name: file.name };
  } catch (error) {
    if (!(error instanceof BadPhotoError)) console.error(error);
    showError(error instanceof BadPhotoError ? error.message : `${file.name}: ${error.message || error}`);
    $("status").textContent = "";
    return;
  }
  await stylize();
}

function chooseStyle(name) {
  state.style = name;
  for (const button of $("styles").children) button.setAttribute("aria-checked", String(button.dataset.style === name));
  stylize();
}

function download() {
  const stem = state.source.name.replace(/\.[^.]*$/, "") || "photo";
  $("stylized").toBlob((blob) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${stem}_${state.style}.png`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }, "image/png");
}

async function listStyles() {
  const styles = await (await fetch("styles.json")).json();
  for (const { name, title, credit } of styles) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.style = name;
    button.setAttribute("role", "radio");
    button.setAttribute("aria-checked", "false");
    button.title = credit;
    button.innerHTML = `<img src="thumbs/${name}.jpg" alt=""><span></span>`;
    button.querySelector("span").textContent = title;
    button.addEventListener("click", () => chooseStyle(name));
    $("styles").append(button);
  }
  $("credits").textContent = styles.map((s) => s.credit).join("; ");
  return styles;
}

async function main() {
  const styles = await listStyles();
  $("file").addEventListener("change", (e) => choosePhoto(e.target.files[0]));
  // Drops anywhere on the page: a drop that misses the box would otherwise open the photo
  // in the tab and leave the page.
  window.addEventListener("dragover", (e) => {
    e.preventDefault();
    $("drop").classList.add("over");
  });
  window.addEventListener("dragleave", () => $("drop").classList.remove("over"));
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    $("drop").classList.remove("over");
    choosePhoto(e.dataTransfer.files[0]);
  });
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = Number($("strength").value).toFixed(2);
    render();
  });
  $("preserve-color").addEventListener("change", render);
  $("max-size").addEventListener("change", stylize);
  $("backend").addEventListener("change", stylize);
  $("download").addEventListener("click", download);
  setupCamera({ style: () => state.style, backend: () => $("backend").value, options });
  chooseStyle(styles[0].name);
  const backend = await resolveBackend("auto");
  const isolation = self.crossOriginIsolated ? "" : " (not cross-origin isolated: one thread)";
  $("status").textContent = `Ready: choose a photo. Runs on ${backend === "webgpu" ? "WebGPU" : "WASM"}${isolation}.`;
  setState("ready");
}

main().catch((error) => {
  console.error(error);
  showError(`The page failed to start: ${error.message || error}`);
});
