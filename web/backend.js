// Which onnxruntime-web build and execution provider run the model, and the sessions they open.
//
// Two builds from the npm package (web/package.json), both served from web/node_modules, never a
// CDN: ort.wasm.min.mjs (CPU kernels in WebAssembly, SIMD, threads) and ort.webgpu.min.mjs (the
// WebGPU provider, with WASM as its fallback for any op it lacks). Each is imported only when
// needed, so a browser without WebGPU never downloads the larger one.

const DIST = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url);
const BUILDS = { wasm: "ort.wasm.min.mjs", webgpu: "ort.webgpu.min.mjs" };
const modules = {};
const sessions = new Map();

let webgpu = null;

// True when this browser can give us a WebGPU adapter (headless and GPU-less ones cannot). Asked
// once: each failed request logs a console warning.
export function hasWebGPU() {
  webgpu ??= (async () => {
    try {
      return Boolean(navigator.gpu) && (await navigator.gpu.requestAdapter()) !== null;
    } catch {
      return false;
    }
  })();
  return webgpu;
}

// "auto" picks WebGPU when it is there, WASM otherwise.
export async function resolveBackend(requested) {
  if (requested === "wasm") return "wasm";
  const gpu = await hasWebGPU();
  if (requested === "webgpu" && !gpu) throw new Error("this browser has no WebGPU adapter: choose WASM");
  return gpu ? "webgpu" : "wasm";
}

// WASM threads: onnxruntime-web uses more than one only when the page is cross-origin isolated
// (SharedArrayBuffer; the server sends COOP/COEP). Default: the logical CPUs, at most 4 (its own
// cap), not its default of half of them, which is one thread on a 2-CPU machine. A page cannot see
// load: on a busy machine a second thread can lose (the same pass costs ~10% more CPU, and there
// may be no core to spend it on); on an idle one it can nearly halve the time (not measured: the
// machine this was written on never had an idle core), so the default bets on idle.
// `?threads=N` in the page URL overrides it (bench/web.py uses it).
export function wasmThreads() {
  if (!self.crossOriginIsolated) return 1;
  const asked = Number(new URLSearchParams(location.search).get("threads"));
  if (Number.isInteger(asked) && asked > 0) return asked;
  return Math.min(4, navigator.hardwareConcurrency || 1);
}

async function loadOrt(backend) {
  if (!modules[backend]) {
    modules[backend] = import(new URL(BUILDS[backend], DIST).href).then((ort) => {
      ort.env.wasm.numThreads = wasmThreads();
      // WASM runs in onnxruntime-web's worker, not on the page's thread: the page stays live during
      // a pass (the camera preview, Stop), and the page's thread, which may not block on a lock,
      // no longer busy-waits for the pool's threads. Not for WebGPU, which the proxy cannot run.
      ort.env.wasm.proxy = backend === "wasm";
      return ort;
    });
  }
  return modules[backend];
}

// [backend, session] for the requested backend ("auto", "wasm" or "webgpu"). In "auto", a WebGPU
// adapter that then fails to run the model (driver trouble, lost device) falls back to WASM.
export async function sessionFor(style, requested) {
  const backend = await resolveBackend(requested);
  try {
    return [backend, await openSession(style, backend)];
  } catch (error) {
    if (requested !== "auto" || backend === "wasm") throw error;
    console.warn("WebGPU could not open the model; using WASM instead.", error);
    return ["wasm", await openSession(style, "wasm")];
  }
}

// An InferenceSession for models/<style>.onnx on `backend`, opened once and kept.
async function openSession(style, backend) {
  const key = `${backend}:${style}`;
  if (!sessions.has(key)) {
    const opening = (async () => {
      const ort = await loadOrt(backend);
      const response = await fetch(`models/${encodeURIComponent(style)}.onnx`);
      if (!response.ok) throw new Error(`models/${style}.onnx: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const providers = backend === "webgpu" ? ["webgpu", "wasm"] : ["wasm"];
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: providers,
        graphOptimizationLevel: "all", // as runtime.session_options: all graph optimisations,
        logSeverityLevel: 3, // and errors only (the WebGPU provider warns about CPU-placed shape ops)
        // Idle pool threads sleep instead of spinning: on a busy machine a spinning thread takes the
        // core from the one still working (measured: 2 threads 1.34 -> 1.23 s per 512² pass, loaded).
        extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
      });
      return { ort, session };
    })();
    sessions.set(key, opening);
    opening.catch(() => sessions.delete(key)); // a failed open may be retried
  }
  return sessions.get(key);
}

// One forward pass: {data, dims} float32 [1, 3, H, W] -> Float32Array of the same shape. Passes
// run one at a time, whatever the session: the camera and a photo may ask at once, and two passes
// at once would only split the same cores (and a session may not run twice at once on WebGPU).
let queue = Promise.resolve();
export function run({ ort, session }, { data, dims }) {
  const pass = queue.then(async () => {
    const image = new ort.Tensor("float32", data, dims);
    const { stylized } = await session.run({ image });
    return stylized.data; // on the CPU: outputs' default location, on WebGPU too
  });
  queue = pass.catch(() => {});
  return pass;
}
