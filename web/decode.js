// A photo File -> RGBA pixels, decoded by the browser, the way fastnst.image.open_image reads it
// in Python: upright per EXIF, transparency composited on white, and no colour-profile conversion
// (Pillow ignores embedded ICC profiles too, so both sides see the file's own RGB values).

export class BadPhotoError extends Error {}

export async function decodePhoto(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image", colorSpaceConversion: "none" });
  } catch {
    // The browser says only "could not be decoded"; say which file and what it takes.
    const what = file.size === 0 ? "is empty" : "is not an image this browser can decode";
    throw new BadPhotoError(`${file.name} ${what}. Choose a JPEG, PNG, WebP, GIF, BMP or AVIF photo.`);
  }
  const { width, height } = bitmap;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return { rgba: ctx.getImageData(0, 0, width, height).data, width, height };
}
