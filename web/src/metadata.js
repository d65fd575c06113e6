// The preprocessing contract an exported model carries in its ONNX metadata (written by
// export/runtime.py preprocessing_metadata), read straight from the .onnx bytes so that a
// model exported with another crop rule or input size works without touching this page.

import { CROP_MODES } from "./preprocess.js";

/** Metadata keys the page needs; export/runtime.py REQUIRED_METADATA. */
export const REQUIRED_METADATA = ["input_size", "color_order", "normalization", "crop_mode", "crop_margin"];

/** Graph outputs a pose model has (export/runtime.py POSE_OUTPUTS). */
export const POSE_OUTPUTS = ["azimuth", "elevation", "theta", "rotation", "confidence"];

/**
 * Names of the image's own content latent mean, newest first (export/runtime.py CONTENT_OUTPUT):
 * `mu_content` from model format 2 on, `mu_group` in format-1 models.
 */
export const CONTENT_OUTPUTS = ["mu_content", "mu_group"];

/** A protobuf reader over the top level of a message (enough for ModelProto's fields). */
class ProtoReader {
  constructor(bytes, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.position = start;
    this.end = end;
  }

  varint() {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.position >= this.end) throw new Error("truncated varint");
      const byte = this.bytes[this.position++];
      value += (byte & 0x7f) * scale; // no bit shifts: lengths may pass 2^31
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new Error("varint longer than 10 bytes");
  }

  /** The next field as {field, wire, start, end} (start/end of a length-delimited payload). */
  next() {
    const key = this.varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    let start = this.position;
    if (wire === 0) this.varint();
    else if (wire === 1) this.position += 8;
    else if (wire === 5) this.position += 4;
    else if (wire === 2) {
      const length = this.varint();
      start = this.position;
      this.position += length;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    if (this.position > this.end) throw new Error("truncated field");
    return { field, wire, start, end: this.position };
  }

  get done() {
    return this.position >= this.end;
  }
}

const MODEL_METADATA_PROPS = 14; // ModelProto.metadata_props (StringStringEntryProto key=1, value=2)
const MODEL_GRAPH = 7;

/** metadata_props of an ONNX file as an object; throws an Error if the bytes are not a model. */
export function readOnnxMetadata(bytes) {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const reader = new ProtoReader(bytes);
  const metadata = {};
  let sawGraph = false;
  while (!reader.done) {
    const { field, wire, start, end } = reader.next();
    if (field === MODEL_GRAPH && wire === 2) sawGraph = true;
    if (field !== MODEL_METADATA_PROPS || wire !== 2) continue;
    const entry = new ProtoReader(bytes, start, end);
    let key = "";
    let value = "";
    while (!entry.done) {
      const part = entry.next();
      if (part.wire !== 2) continue;
      const text = decoder.decode(bytes.subarray(part.start, part.end));
      if (part.field === 1) key = text;
      if (part.field === 2) value = text;
    }
    metadata[key] = value;
  }
  if (!sawGraph) throw new Error("no graph in the file: not an ONNX model");
  return metadata;
}

/**
 * The preprocessing contract from the metadata, checked as export.runtime.PoseEstimator does.
 * Returns {inputName, size, cropMode, cropMargin, categories}; throws an Error naming the fix.
 */
export function preprocessingContract(metadata) {
  const missing = REQUIRED_METADATA.filter((key) => !(key in metadata));
  if (missing.length) {
    throw new Error(`the model's metadata lacks ${missing.join(", ")}; export it with ` +
      "`posenet-mlvae export` so it records its preprocessing");
  }
  const size = Number.parseInt(metadata.input_size, 10);
  if (!(size > 0)) throw new Error(`metadata input_size ${JSON.stringify(metadata.input_size)} is not a positive integer`);
  if (metadata.color_order.toUpperCase() !== "RGB") {
    throw new Error(`color_order ${JSON.stringify(metadata.color_order)} is not supported; this page feeds RGB`);
  }
  if (!metadata.normalization.startsWith("x/255")) {
    throw new Error(`normalization ${JSON.stringify(metadata.normalization)} is not supported; expected x/255`);
  }
  if (!CROP_MODES.includes(metadata.crop_mode)) {
    throw new Error(`crop_mode ${JSON.stringify(metadata.crop_mode)} is not one of ${CROP_MODES.join(", ")}`);
  }
  const cropMargin = Number.parseFloat(metadata.crop_margin);
  if (!Number.isFinite(cropMargin)) {
    throw new Error(`crop_margin ${JSON.stringify(metadata.crop_margin)} is not a number`);
  }
  let categories = [];
  try {
    categories = JSON.parse(metadata.categories ?? "[]");
  } catch {
    categories = [];
  }
  return {
    inputName: metadata.input_name || "images",
    size,
    cropMode: metadata.crop_mode,
    cropMargin,
    categories: Array.isArray(categories) ? categories : [],
  };
}
