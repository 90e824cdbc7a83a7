// Pixels in and out of the network, and the post-processing, as fastnst's Python runtime does them:
// run_image and stylize_image in fastnst/runtime.py, postprocess() in fastnst/postprocess.py.
// The Python side computes in float32 numpy; Math.fround keeps each step here in float32 too, so
// the two agree to the last bit almost everywhere and to 1/255 at worst (tests/test_web.py).

export const MIN_SIZE = 16; // px: runtime.MIN_SIZE, the smallest side the exported graph takes

// BT.601 luma weights, postprocess.LUMA_WEIGHTS.
const [WR, WG, WB] = [0.299, 0.587, 0.114].map(Math.fround);
const f32 = Math.fround;

// RGBA uint8 [h, w, 4] -> the network's input: float32 [1, 3, H, W] in [0, 1], RGB planes.
// Images under MIN_SIZE are edge-padded (numpy's mode="edge", as runtime.run_image does); the
// output is cropped back with fromNetwork.
export function toNetwork(rgba, width, height) {
  const w = Math.max(width, MIN_SIZE), h = Math.max(height, MIN_SIZE);
  const data = new Float32Array(3 * h * w);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(y, height - 1);
    for (let x = 0; x < w; x++) {
      const s = 4 * (sy * width + Math.min(x, width - 1)), d = y * w + x;
      for (let c = 0; c < 3; c++) data[c * h * w + d] = f32(rgba[s + c] / 255);
    }
  }
  return { data, dims: [1, 3, h, w] };
}

// The photo as float32 RGB planes [3, h, w] in [0, 1] (the `original` of postprocess.py).
export function planes(rgba, width, height) {
  const n = width * height, out = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) out[c * n + i] = f32(rgba[4 * i + c] / 255);
  return out;
}

// The network's output [1, 3, H, W] cropped to [3, height, width] (undoes toNetwork's padding).
export function fromNetwork(output, dims, width, height) {
  const [, , h, w] = dims;
  if (w === width && h === height) return output;
  const out = new Float32Array(3 * width * height);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < height; y++)
      out.set(output.subarray(c * h * w + y * w, c * h * w + y * w + width), c * height * width + y * width);
  return out;
}

// postprocess.postprocess: colour preservation (luminance transfer), then the strength blend.
// Planes [3, n] float32 each; returns new planes, unclipped (clip once, in toImageData).
export function postprocess(stylized, original, { preserveColor, strength }) {
  const n = original.length / 3;
  let out = stylized;
  if (preserveColor) {
    // transfer_luminance: original + (Y(stylized) - Y(original)) on every channel.
    out = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      const ys = luma(stylized[i], stylized[n + i], stylized[2 * n + i]);
      const yo = luma(original[i], original[n + i], original[2 * n + i]);
      const dy = f32(ys - yo);
      for (let c = 0; c < 3; c++) out[c * n + i] = f32(original[c * n + i] + dy);
    }
  }
  // blend: 0 is exactly the photo and 1 exactly the stylized image, as in postprocess.blend.
  if (strength === 1) return out;
  if (strength === 0) return original.slice();
  const a = f32(strength), b = f32(1 - strength), mixed = new Float32Array(3 * n);
  for (let i = 0; i < 3 * n; i++) mixed[i] = f32(f32(out[i] * a) + f32(original[i] * b));
  return mixed;
}

function luma(r, g, b) {
  return f32(f32(f32(r * WR) + f32(g * WG)) + f32(b * WB));
}

// Planes [3, h, w] -> ImageData: clipped to [0, 1], then x·255 + 0.5 truncated, as
// stylize_image's `(out * 255.0 + 0.5).astype(np.uint8)`.
export function toImageData(rgbPlanes, width, height) {
  const n = width * height, image = new ImageData(width, height), px = image.data;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = Math.min(1, Math.max(0, rgbPlanes[c * n + i]));
      px[4 * i + c] = Math.trunc(f32(f32(v * 255) + 0.5));
    }
    px[4 * i + 3] = 255;
  }
  return image;
}
