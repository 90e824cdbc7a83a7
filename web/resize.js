// The "max size" shrink, as fastnst does it in Python: runtime.scaled_size picks the size and
// image.resize_max_side shrinks with Pillow's LANCZOS filter. A canvas drawImage would resample
// differently (the browser chooses the filter), so this reproduces Pillow's separable resampling
// in 8 bits (src/libImaging/Resample.c: precompute_coeffs, normalize_coeffs_8bpc, a horizontal
// pass then a vertical one, each rounded to uint8) and the same pixels come out.

const PRECISION_BITS = 32 - 8 - 2; // Resample.c's fixed-point precision for 8-bit images
const ONE = 2 ** PRECISION_BITS;
const SUPPORT = 3; // Lanczos-3

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

function lanczos(x) {
  return -3 <= x && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

// Python's round(): halves go to the even neighbour (Math.round would send them up).
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// runtime.scaled_size: [width, height] with the longer side shrunk to maxSize (never enlarged).
export function scaledSize(width, height, maxSize) {
  const scale = maxSize ? maxSize / Math.max(width, height) : 1;
  if (scale >= 1) return [width, height];
  return [Math.max(1, roundHalfEven(width * scale)), Math.max(1, roundHalfEven(height * scale))];
}

// Resample.c precompute_coeffs + normalize_coeffs_8bpc for one axis: for each output pixel, the
// first input pixel, the tap count, and integer weights scaled by 2^PRECISION_BITS.
function coefficients(inSize, outSize) {
  const scale = inSize / outSize, filterScale = Math.max(scale, 1);
  const support = SUPPORT * filterScale, ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(2 * outSize), weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = lanczos((x + xmin - center + 0.5) / filterScale);
      sum += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? k[x] / sum : k[x];
      weights[xx * ksize + x] = Math.trunc(w < 0 ? w * ONE - 0.5 : w * ONE + 0.5);
    }
    bounds[2 * xx] = xmin;
    bounds[2 * xx + 1] = xmax;
  }
  return { bounds, weights, ksize };
}

function clip8(sum) {
  if (sum <= 0) return 0;
  return Math.min(255, Math.floor(sum / ONE));
}

// One pass along x (stride 4 between taps) or y (stride 4·width): RGBA uint8 in, RGBA uint8 out.
function resamplePass(src, width, height, outWidth, outHeight, horizontal) {
  const { bounds, weights, ksize } = coefficients(horizontal ? width : height, horizontal ? outWidth : outHeight);
  const out = new Uint8ClampedArray(4 * outWidth * outHeight);
  const tapStride = horizontal ? 4 : 4 * width;
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      const i = horizontal ? x : y;
      const xmin = bounds[2 * i], xmax = bounds[2 * i + 1], k = i * ksize;
      const base = horizontal ? 4 * (y * width + xmin) : 4 * (xmin * width + x);
      for (let c = 0; c < 3; c++) {
        let sum = ONE / 2; // rounds the fixed-point result to nearest
        for (let t = 0; t < xmax; t++) sum += src[base + t * tapStride + c] * weights[k + t];
        out[4 * (y * outWidth + x) + c] = clip8(sum);
      }
      out[4 * (y * outWidth + x) + 3] = 255;
    }
  }
  return out;
}

// RGBA uint8 [height, width] -> [outHeight, outWidth], Pillow's Image.resize(..., LANCZOS) for an
// RGB image (alpha is set to opaque: fastnst composites transparency on white before this).
export function resizeLanczos(rgba, width, height, outWidth, outHeight) {
  let data = rgba, w = width;
  if (outWidth !== width) {
    data = resamplePass(data, width, height, outWidth, height, true);
    w = outWidth;
  }
  if (outHeight !== height) data = resamplePass(data, w, height, w, outHeight, false);
  return data;
}
