// The model's input contract in JavaScript: the same steps as data_tools/image/preprocess.py
// (crop_to_square, to_model_input), which call OpenCV 5.0 (pyproject.toml pins it). Each
// resampling step reproduces the arithmetic of the OpenCV kernel it stands for (float32
// rounding, fused multiply-adds, fixed point), so a crop made here equals Python's crop pixel for
// pixel (tests/test_web_page.py).
//
//   image {width, height, data: Uint8Array RGB}  --cropToSquare(box, margin, mode, size)-->
//   Uint8Array (size * size * 3)  --toModelInput-->  Float32Array NCHW in [0, 1]
//
// Pure functions, no DOM: node runs them in the tests.

export const CROP_MODES = ["pad", "stretch"];

const f32 = Math.fround;

/** Round half to even, as OpenCV's cvRound / SIMD rounding and Python's round() do. */
export function roundHalfEven(value) {
  const nearest = Math.round(value); // halves go up
  return nearest - value === 0.5 && nearest % 2 !== 0 ? nearest - 1 : nearest;
}

function clamp(value, low, high) {
  return value < low ? low : value > high ? high : value;
}

/** The region cropToSquare cuts: the box grown by `margin` of its side, squared for "pad". */
export function cropBox(box, margin, mode) {
  const [x1, y1, x2, y2] = box;
  let w = x2 - x1;
  let h = y2 - y1;
  const cx = (x1 + x2) / 2.0;
  const cy = (y1 + y2) / 2.0;
  if (mode === "pad") {
    w = h = Math.max(w, h);
  }
  w = w * (1.0 + 2.0 * margin);
  h = h * (1.0 + 2.0 * margin);
  return [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0];
}

/** Checks a box (x1, y1, x2, y2) against an image; throws an Error naming the problem. */
export function checkBox(box, width, height) {
  if (!Array.isArray(box) || box.length !== 4 || !box.every(Number.isFinite)) {
    throw new Error(`box must be 4 finite numbers (x1, y1, x2, y2), got ${JSON.stringify(box)}`);
  }
  const [x1, y1, x2, y2] = box;
  if (x2 <= x1 || y2 <= y1) {
    throw new Error(`box ${box.join(", ")} is empty: need x2 > x1 and y2 > y1`);
  }
  if (x2 <= 0 || y2 <= 0 || x1 >= width || y1 >= height) {
    throw new Error(`box ${box.join(", ")} lies outside the ${width}x${height} image`);
  }
}

/** The pixels [x0, x0 + width) x [y0, y0 + height) of an RGB image, borders replicated (cv2.BORDER_REPLICATE). */
function replicatedPatch(image, x0, y0, width, height) {
  const out = new Uint8Array(width * height * 3);
  const rowLength = width * 3;
  const insideStart = clamp(-x0, 0, width); // first column that lies inside the image
  const insideEnd = clamp(image.width - x0, insideStart, width);
  for (let y = 0; y < height; y++) {
    const sourceRow = clamp(y0 + y, 0, image.height - 1) * image.width;
    const row = y * rowLength;
    if (insideEnd > insideStart) {
      out.set(image.data.subarray((sourceRow + x0 + insideStart) * 3, (sourceRow + x0 + insideEnd) * 3),
        row + insideStart * 3);
    }
    const copyColumn = (x) => {
      const from = (sourceRow + clamp(x0 + x, 0, image.width - 1)) * 3;
      out[row + x * 3] = image.data[from];
      out[row + x * 3 + 1] = image.data[from + 1];
      out[row + x * 3 + 2] = image.data[from + 2];
    };
    for (let x = 0; x < insideStart; x++) copyColumn(x); // left of the image
    for (let x = insideEnd; x < width; x++) copyColumn(x); // right of the image
  }
  return { width, height, data: out };
}

/**
 * cv2.warpAffine(image, matrix, (size, size), INTER_LINEAR, BORDER_REPLICATE) for uint8 RGB.
 *
 * matrix maps image to output coordinates; OpenCV inverts it in double precision, then its
 * vectorised kernel works in float32: source x = fma(M0, x, M1 * y + M2), alpha = x - floor(x),
 * two fused lerps along x and one along y, rounded half to even.
 */
export function warpAffineLinear(image, matrix, size) {
  const [[a, b, c], [d, e, f]] = matrix;
  const det = 1.0 / (a * e - b * d);
  const m0 = e * det;
  const m4 = a * det;
  const m1 = b * -det;
  const m3 = d * -det;
  const m2 = -m0 * c - m1 * f;
  const m5 = -m3 * c - m4 * f;
  const [M0, M1, M2, M3, M4, M5] = [m0, m1, m2, m3, m4, m5].map(f32);
  const { width, height, data } = image;
  const out = new Uint8Array(size * size * 3);
  const fetch = (x, y, channel) =>
    data[(clamp(y, 0, height - 1) * width + clamp(x, 0, width - 1)) * 3 + channel];
  for (let y = 0; y < size; y++) {
    const rowX = f32(f32(y * M1) + M2);
    const rowY = f32(f32(y * M4) + M5);
    for (let x = 0; x < size; x++) {
      const sx = f32(M0 * x + rowX);
      const sy = f32(M3 * x + rowY);
      const ix = Math.floor(sx);
      const iy = Math.floor(sy);
      const alpha = f32(sx - ix);
      const beta = f32(sy - iy);
      for (let channel = 0; channel < 3; channel++) {
        const p00 = fetch(ix, iy, channel);
        const p01 = fetch(ix + 1, iy, channel);
        const p10 = fetch(ix, iy + 1, channel);
        const p11 = fetch(ix + 1, iy + 1, channel);
        const top = f32(alpha * (p01 - p00) + p00);
        const bottom = f32(alpha * (p11 - p10) + p10);
        const value = f32(beta * f32(bottom - top) + top);
        out[(y * size + x) * 3 + channel] = clamp(roundHalfEven(value), 0, 255);
      }
    }
  }
  return { width: size, height: size, data: out };
}

/** OpenCV's computeResizeAreaTab along one axis: destination, source and float32 weight per entry. */
function areaTable(sourceSize, destSize, scale) {
  const dest = [];
  const source = [];
  const weight = [];
  const push = (d, s, w) => {
    dest.push(d);
    source.push(s);
    weight.push(w);
  };
  for (let dx = 0; dx < destSize; dx++) {
    const fsx1 = dx * scale;
    const fsx2 = fsx1 + scale;
    const cellWidth = Math.min(scale, sourceSize - fsx1);
    let sx1 = Math.ceil(fsx1);
    let sx2 = Math.floor(fsx2);
    sx2 = Math.min(sx2, sourceSize - 1);
    sx1 = Math.min(sx1, sx2);
    if (sx1 - fsx1 > 1e-3) push(dx, sx1 - 1, f32((sx1 - fsx1) / cellWidth));
    for (let sx = sx1; sx < sx2; sx++) push(dx, sx, f32(1.0 / cellWidth));
    if (fsx2 - sx2 > 1e-3) push(dx, sx2, f32(Math.min(Math.min(fsx2 - sx2, 1.0), cellWidth) / cellWidth));
  }
  return { dest: Int32Array.from(dest), source: Int32Array.from(source), weight: Float32Array.from(weight) };
}

/**
 * INTER_AREA for non-integer shrink factors: per source row (in OpenCV's order), a float32
 * weighted sum along x into a row buffer, then a float32 weighted sum of those rows.
 */
function resizeAreaGeneric(image, destWidth, destHeight, scaleX, scaleY) {
  const xs = areaTable(image.width, destWidth, scaleX);
  const ys = areaTable(image.height, destHeight, scaleY);
  const rowLength = destWidth * 3;
  const buffer = new Float32Array(rowLength);
  const sum = new Float32Array(rowLength);
  const out = new Uint8Array(destHeight * rowLength);
  const data = image.data;
  const flush = (dy) => {
    for (let i = 0; i < rowLength; i++) out[dy * rowLength + i] = clamp(roundHalfEven(sum[i]), 0, 255);
  };
  let previous = -1;
  for (let j = 0; j < ys.dest.length; j++) {
    const dy = ys.dest[j];
    const beta = ys.weight[j];
    const rowStart = ys.source[j] * image.width * 3;
    buffer.fill(0);
    for (let k = 0; k < xs.dest.length; k++) {
      const to = xs.dest[k] * 3;
      const from = rowStart + xs.source[k] * 3;
      const alpha = xs.weight[k];
      buffer[to] += f32(data[from] * alpha); // a Float32Array store rounds the sum to float32
      buffer[to + 1] += f32(data[from + 1] * alpha);
      buffer[to + 2] += f32(data[from + 2] * alpha);
    }
    if (dy !== previous) {
      if (previous >= 0) flush(previous);
      for (let i = 0; i < rowLength; i++) sum[i] = f32(beta * buffer[i]);
      previous = dy;
    } else {
      for (let i = 0; i < rowLength; i++) sum[i] = f32(sum[i] + f32(beta * buffer[i]));
    }
  }
  flush(previous);
  return { width: destWidth, height: destHeight, data: out };
}

/** INTER_AREA for integer shrink factors: block means (the 2x2 case rounds half up). */
function resizeAreaFast(image, destWidth, destHeight, factorX, factorY) {
  const out = new Uint8Array(destWidth * destHeight * 3);
  const scale = f32(1.0 / (factorX * factorY));
  for (let dy = 0; dy < destHeight; dy++) {
    for (let dx = 0; dx < destWidth; dx++) {
      for (let channel = 0; channel < 3; channel++) {
        let sum = 0;
        for (let ky = 0; ky < factorY; ky++) {
          const row = (dy * factorY + ky) * image.width;
          for (let kx = 0; kx < factorX; kx++) {
            sum += image.data[(row + dx * factorX + kx) * 3 + channel];
          }
        }
        const value = factorX === 2 && factorY === 2 ? (sum + 2) >> 2
          : roundHalfEven(f32(sum * scale));
        out[(dy * destWidth + dx) * 3 + channel] = clamp(value, 0, 255);
      }
    }
  }
  return { width: destWidth, height: destHeight, data: out };
}

/** The fixed-point weights OpenCV's INTER_AREA uses along an axis that it enlarges. */
function areaLinearCoefficients(sourceSize, destSize, scale, inverseScale) {
  const offsets = new Int32Array(destSize);
  const weights = new Int32Array(destSize * 2);
  let limit = destSize; // from here on the row repeats its last pixel
  for (let d = 0; d < destSize; d++) {
    let s = Math.floor(d * scale);
    let fraction = f32((d + 1) - (s + 1) * inverseScale);
    fraction = fraction <= 0 ? 0 : f32(fraction - Math.floor(fraction));
    if (s + 1 >= sourceSize) {
      limit = Math.min(limit, d);
      if (s >= sourceSize - 1) {
        fraction = 0;
        s = sourceSize - 1;
      }
    }
    offsets[d] = s;
    weights[2 * d] = roundHalfEven(f32(f32(1 - fraction) * 2048));
    weights[2 * d + 1] = roundHalfEven(f32(fraction * 2048));
  }
  return { offsets, weights, limit };
}

/** INTER_AREA when one axis is enlarged: OpenCV's bilinear emulation in 11-bit fixed point. */
function resizeAreaEnlarging(image, destWidth, destHeight, scaleX, scaleY) {
  const xs = areaLinearCoefficients(image.width, destWidth, scaleX, destWidth / image.width);
  const ys = areaLinearCoefficients(image.height, destHeight, scaleY, destHeight / image.height);
  const rowLength = destWidth * 3;
  const horizontal = (sy) => {
    const row = new Int32Array(rowLength);
    const start = sy * image.width * 3;
    for (let dx = 0; dx < destWidth; dx++) {
      const sx = xs.offsets[dx];
      for (let channel = 0; channel < 3; channel++) {
        const left = image.data[start + sx * 3 + channel];
        row[dx * 3 + channel] = dx < xs.limit
          ? left * xs.weights[2 * dx] + image.data[start + (sx + 1) * 3 + channel] * xs.weights[2 * dx + 1]
          : left * 2048;
      }
    }
    return row;
  };
  const out = new Uint8Array(destHeight * rowLength);
  // OpenCV's SIMD vertical pass: (((r0 >> 4) * b0) >> 16) + (((r1 >> 4) * b1) >> 16), then
  // a rounding shift by 2; int16 saturation never triggers for 8-bit rows.
  const highProduct = (value, weight) => Math.floor((value >> 4) * weight / 65536);
  for (let dy = 0; dy < destHeight; dy++) {
    const sy = ys.offsets[dy];
    const row0 = horizontal(sy);
    const row1 = horizontal(Math.min(sy + 1, image.height - 1));
    const b0 = ys.weights[2 * dy];
    const b1 = ys.weights[2 * dy + 1];
    for (let i = 0; i < rowLength; i++) {
      const sum = highProduct(row0[i], b0) + highProduct(row1[i], b1);
      out[dy * rowLength + i] = clamp((sum + 2) >> 2, 0, 255);
    }
  }
  return { width: destWidth, height: destHeight, data: out };
}

/** cv2.resize(image, (destWidth, destHeight), interpolation=cv2.INTER_AREA) for uint8 RGB. */
export function resizeArea(image, destWidth, destHeight) {
  const scaleX = 1.0 / (destWidth / image.width);
  const scaleY = 1.0 / (destHeight / image.height);
  if (scaleX >= 1 && scaleY >= 1) {
    const factorX = Math.round(scaleX);
    const factorY = Math.round(scaleY);
    if (Math.abs(scaleX - factorX) < Number.EPSILON && Math.abs(scaleY - factorY) < Number.EPSILON) {
      return resizeAreaFast(image, destWidth, destHeight, factorX, factorY);
    }
    return resizeAreaGeneric(image, destWidth, destHeight, scaleX, scaleY);
  }
  return resizeAreaEnlarging(image, destWidth, destHeight, scaleX, scaleY);
}

/**
 * Crop `box` (x1, y1, x2, y2; pixels, x2/y2 exclusive; null = whole image) from an RGB image
 * and resize it to size x size: data_tools.image.preprocess.crop_to_square, step for step.
 *
 * The box grows by `margin` of its side on each side; "pad" squares it around its centre and
 * replicates the border outside the image, "stretch" resizes it anisotropically. Shrinking
 * averages areas (INTER_AREA at full resolution, then a sub-pixel bilinear warp); enlarging is
 * bilinear with pixel centres aligned.
 */
export function cropToSquare(image, box, margin, mode, size) {
  if (!CROP_MODES.includes(mode)) {
    throw new Error(`crop mode must be one of ${CROP_MODES.join(", ")}, got ${JSON.stringify(mode)}`);
  }
  if (!(size > 0)) throw new Error(`size must be positive, got ${size}`);
  const { width, height } = image;
  const region = box ?? [0, 0, width, height];
  checkBox(region, width, height);
  const [cx1, cy1, cx2, cy2] = cropBox(region, margin, mode);
  const sx = size / (cx2 - cx1);
  const sy = size / (cy2 - cy1);
  if (Math.min(sx, sy) >= 1.0) {
    return warpAffineLinear(image, [[sx, 0.0, -cx1 * sx + 0.5 * sx - 0.5],
      [0.0, sy, -cy1 * sy + 0.5 * sy - 0.5]], size);
  }
  // INTER_AREA needs a resize: cut the whole pixels covering the region first.
  const ix1 = Math.floor(cx1);
  const iy1 = Math.floor(cy1);
  const ix2 = Math.ceil(cx2);
  const iy2 = Math.ceil(cy2);
  const patch = replicatedPatch(image, ix1, iy1, ix2 - ix1, iy2 - iy1);
  if (ix1 === cx1 && iy1 === cy1 && ix2 === cx2 && iy2 === cy2) {
    return resizeArea(patch, size, size);
  }
  const shrunk = resizeArea(patch, Math.max(1, roundHalfEven((ix2 - ix1) * sx)),
    Math.max(1, roundHalfEven((iy2 - iy1) * sy)));
  const psx = shrunk.width / (ix2 - ix1);
  const psy = shrunk.height / (iy2 - iy1);
  return warpAffineLinear(shrunk, [[sx / psx, 0.0, (ix1 - cx1) * sx + 0.5 * sx / psx - 0.5],
    [0.0, sy / psy, (iy1 - cy1) * sy + 0.5 * sy / psy - 0.5]], size);
}

/** uint8 RGB crops (each size * size * 3) -> float32 NCHW in [0, 1]: to_model_input. */
export function toModelInput(crops, size) {
  const plane = size * size;
  const out = new Float32Array(crops.length * 3 * plane);
  crops.forEach((crop, n) => {
    for (let i = 0; i < plane; i++) {
      for (let channel = 0; channel < 3; channel++) {
        out[(n * 3 + channel) * plane + i] = crop.data[i * 3 + channel] / 255;
      }
    }
  });
  return out;
}
