// The camera as a source of frames: opened at a chosen size, its newest frame copied out as RGBA,
// and when it cannot be had, one line that says why.

export class CameraError extends Error {}

// getUserMedia's error names -> what the person can do about it.
const REASONS = {
  NotAllowedError: "Camera permission was denied: allow the camera for this page and press Start again.",
  SecurityError: "Camera permission was denied: allow the camera for this page and press Start again.",
  NotFoundError: "No camera found: connect one and press Start again.",
  OverconstrainedError: "No camera found that can give video.",
  NotReadableError: "The camera could not be started: another program may be using it.",
  AbortError: "The camera could not be started: another program may be using it.",
};

// Why there is no camera API at all, or null. Browsers define navigator.mediaDevices only in a
// secure context: a page served to other machines over plain http has no camera.
export function cameraUnavailable() {
  if (navigator.mediaDevices?.getUserMedia) return null;
  return "No camera on this page: browsers offer it only over https or on localhost.";
}

// {video, stop(), resize(w, h)}: a playing <video> of the camera, asked for width x height (a
// camera gives its nearest mode; grabFrame crops and scales to the size exactly).
export async function openCamera(width, height) {
  const unavailable = cameraUnavailable();
  if (unavailable) throw new CameraError(unavailable);
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: size(width, height), audio: false });
  } catch (error) {
    throw new CameraError(REASONS[error.name] ?? `The camera could not be opened: ${error.message || error}.`);
  }
  const video = document.createElement("video");
  video.muted = video.playsInline = true;
  video.srcObject = stream;
  const [track] = stream.getVideoTracks();
  const stop = () => stream.getTracks().forEach((t) => t.stop());
  try {
    await video.play();
  } catch (error) {
    stop();
    throw new CameraError(`The camera's video would not play: ${error.message || error}.`);
  }
  // A failed re-ask keeps the current mode: grabFrame scales whatever arrives.
  const resize = (w, h) => track.applyConstraints(size(w, h)).catch(() => {});
  return { video, stop, resize };
}

function size(width, height) {
  return { width: { ideal: width }, height: { ideal: height } };
}

// The video's current frame as RGBA [height, width]: its centre at the size's aspect ratio, scaled
// by the browser. Not resize.js's Lanczos, which matches Pillow for photos but costs more per frame
// than a camera can spare; no Python result is compared with these frames.
export function grabFrame(video, width, height, canvas = new OffscreenCanvas(width, height)) {
  if (canvas.width !== width || canvas.height !== height) [canvas.width, canvas.height] = [width, height];
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const { videoWidth: vw, videoHeight: vh } = video;
  const scale = Math.max(width / vw, height / vh);
  const sw = width / scale, sh = height / scale;
  ctx.drawImage(video, (vw - sw) / 2, (vh - sh) / 2, sw, sh, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height).data;
}
