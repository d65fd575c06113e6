// Decode an image file to 8-bit RGB as data_tools.image.preprocess.load_image_rgb does: gray is
// replicated, alpha is dropped (not composited), no colour-profile conversion.
//
// A 2-D canvas stores premultiplied alpha, which would change the colour of translucent pixels,
// so the pixels are read back through a WebGL2 texture (exact, unpremultiplied); the 2-D canvas
// is the fallback where WebGL2 is missing, exact for opaque images.

const BITMAP_OPTIONS = { premultiplyAlpha: "none", colorSpaceConversion: "none" };

function rgbaToRgb(rgba, width, height) {
  const rgb = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = rgba[j];
    rgb[i + 1] = rgba[j + 1];
    rgb[i + 2] = rgba[j + 2];
  }
  return rgb;
}

let glContext; // one WebGL2 context for all images (null once known to be unavailable)

function webgl() {
  if (glContext === undefined) {
    const canvas = document.createElement("canvas");
    glContext = canvas.getContext("webgl2", { premultipliedAlpha: false, antialias: false }) ?? null;
  }
  return glContext;
}

/** RGBA bytes of a bitmap through a WebGL2 texture, or null when WebGL2 cannot take it. */
function readWithWebgl(bitmap) {
  const gl = webgl();
  if (!gl || gl.isContextLost()) return null;
  const limit = gl.getParameter(gl.MAX_TEXTURE_SIZE);
  if (bitmap.width > limit || bitmap.height > limit) return null;
  const texture = gl.createTexture();
  const framebuffer = gl.createFramebuffer();
  try {
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
    gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, gl.RGBA, gl.UNSIGNED_BYTE, bitmap);
    gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
    if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) return null;
    const rgba = new Uint8Array(bitmap.width * bitmap.height * 4);
    gl.pixelStorei(gl.PACK_ALIGNMENT, 1);
    // Framebuffer row 0 is texture row 0, the image's top row: no flip needed.
    gl.readPixels(0, 0, bitmap.width, bitmap.height, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
    return gl.getError() === gl.NO_ERROR ? rgba : null;
  } finally {
    gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    gl.deleteFramebuffer(framebuffer);
    gl.deleteTexture(texture);
  }
}

function readWith2d(source, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0);
  return context.getImageData(0, 0, width, height).data;
}

/**
 * Decode a File/Blob: {width, height, data: Uint8Array RGB, bitmap, exact}.
 * exact is false when translucent pixels went through a premultiplied 2-D canvas.
 * Throws an Error "<name>: not a decodable image (...)" for a bad file.
 */
export async function decodeImage(blob, name) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, BITMAP_OPTIONS);
  } catch (error) {
    throw new Error(`${name}: not a decodable image (${error.message || error.name}); ` +
      "is it a complete PNG, JPEG, WebP, GIF or BMP file?");
  }
  if (bitmap.width === 0 || bitmap.height === 0) {
    throw new Error(`${name}: the image is empty (${bitmap.width}x${bitmap.height})`);
  }
  let rgba = readWithWebgl(bitmap);
  let exact = rgba !== null;
  if (rgba === null) {
    rgba = readWith2d(bitmap, bitmap.width, bitmap.height);
    exact = rgba.every((value, index) => index % 4 !== 3 || value === 255);
  }
  return { width: bitmap.width, height: bitmap.height, data: rgbaToRgb(rgba, bitmap.width, bitmap.height), bitmap, exact };
}

/** The current frame of a playing <video> (a webcam) as an RGB image (opaque: 2-D canvas is exact). */
export async function captureFrame(video) {
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height) throw new Error("webcam: no video frame yet");
  const rgba = readWith2d(video, width, height);
  const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(rgba), width, height));
  return { width, height, data: rgbaToRgb(rgba, width, height), bitmap, exact: true };
}
