// The page: open, drop or capture images, draw a box on each, and show the predicted viewpoint
// as a table and as an overlay. Every failure becomes a visible message (#messages).
//
// Query parameters: ?model=URL (default model.onnx), ?threads=N (WASM threads; more than one
// needs a cross-origin-isolated server such as serve.py beside this page).

import { captureFrame, decodeImage } from "./decode.js";
import { PoseModel } from "./model.js";
import { DEFAULT_EXTENT, drawBox, drawPose } from "./overlay.js";
import { checkBox } from "./preprocess.js";

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const state = { model: null, extent: DEFAULT_EXTENT, entries: [], nextId: 0 };

function showMessage(text) {
  const paragraph = document.createElement("p");
  paragraph.className = "error";
  paragraph.textContent = text;
  $("#messages").append(paragraph);
}

window.addEventListener("error", (event) => showMessage(`Unexpected error: ${event.message}`));
window.addEventListener("unhandledrejection", (event) =>
  showMessage(`Unexpected error: ${event.reason?.message ?? event.reason}`));

function setStatus(text, kind) {
  const status = $("#status");
  status.textContent = text;
  status.dataset.state = kind;
}

function formatBox(box) {
  return box ? box.map((v) => String(Math.round(v * 100) / 100)).join(", ") : "whole image";
}

/** "x1,y1,x2,y2" -> numbers; "" -> null (whole image). Throws for anything else. */
function parseBox(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  const values = trimmed.split(/[\s,]+/).map(Number);
  if (values.length !== 4 || !values.every(Number.isFinite)) {
    throw new Error(`box ${JSON.stringify(text)}: expected 4 numbers x1,y1,x2,y2 (pixels, x2/y2 exclusive)`);
  }
  return values;
}

// ---------------------------------------------------------------- one image: card + table row

function createEntry(name, image) {
  const entry = { id: state.nextId++, name, image, box: null, prediction: null, error: null };
  const figure = document.createElement("figure");
  figure.dataset.name = name;
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const caption = document.createElement("figcaption");
  const title = document.createElement("strong");
  title.textContent = name;
  const boxInput = document.createElement("input");
  boxInput.className = "box-input";
  boxInput.placeholder = "box x1,y1,x2,y2 (empty: whole image)";
  boxInput.setAttribute("aria-label", `box of ${name}`);
  const clear = document.createElement("button");
  clear.type = "button";
  clear.textContent = "whole image";
  const boxError = document.createElement("span");
  boxError.className = "box-error";
  const pose = document.createElement("span");
  pose.className = "pose";
  caption.append(title, document.createElement("br"), boxInput, " ", clear, boxError, pose);
  figure.append(canvas, caption);
  $("#images").append(figure);

  const row = document.createElement("tr");
  row.dataset.name = name;
  row.dataset.state = "pending";
  $("#results tbody").append(row);
  $("#results").hidden = false;
  Object.assign(entry, { figure, canvas, boxInput, boxError, pose, row });

  boxInput.addEventListener("change", () => {
    try {
      setBox(entry, parseBox(boxInput.value));
    } catch (error) {
      boxError.textContent = error.message;
      showMessage(`${name}: ${error.message}`);
    }
  });
  clear.addEventListener("click", () => setBox(entry, null));
  enableBoxDrawing(entry);
  state.entries.push(entry);
  return entry;
}

function setBox(entry, box) {
  if (box !== null) checkBox(box, entry.image.width, entry.image.height);
  entry.box = box;
  entry.boxInput.value = box ? box.map((v) => String(Math.round(v * 100) / 100)).join(",") : "";
  entry.boxError.textContent = "";
  predict(entry);
}

/** Drag on the image to draw its box; the preview follows the pointer. */
function enableBoxDrawing(entry) {
  const { canvas } = entry;
  let start = null;
  const toImage = (event) => {
    const rect = canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * canvas.width;
    const y = ((event.clientY - rect.top) / rect.height) * canvas.height;
    return [Math.min(Math.max(x, 0), canvas.width), Math.min(Math.max(y, 0), canvas.height)];
  };
  const dragged = (event) => {
    const end = toImage(event);
    return [Math.min(start[0], end[0]), Math.min(start[1], end[1]),
      Math.max(start[0], end[0]), Math.max(start[1], end[1])].map((v) => Math.round(v));
  };
  canvas.addEventListener("pointerdown", (event) => {
    start = toImage(event);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (start) render(entry, dragged(event));
  });
  canvas.addEventListener("pointerup", (event) => {
    if (!start) return;
    const box = dragged(event);
    start = null;
    if (box[2] - box[0] >= 3 && box[3] - box[1] >= 3) setBox(entry, box);
    else render(entry);
  });
}

function pixelScale(canvas) {
  const shown = canvas.getBoundingClientRect().width || canvas.width;
  return canvas.width / shown;
}

/** Draw the image, its box and (when on) the predicted pose. */
function render(entry, draftBox = null) {
  const { canvas, image, prediction } = entry;
  const context = canvas.getContext("2d");
  context.drawImage(image.bitmap, 0, 0);
  const scale = pixelScale(canvas);
  const box = draftBox ?? entry.box;
  if (prediction && !draftBox && $("#overlay-toggle").checked) {
    drawPose(context, prediction, entry.box ?? [0, 0, image.width, image.height], state.extent, scale);
  }
  if (box) drawBox(context, box, scale);
}

function showPrediction(entry) {
  const { row, prediction, error, name } = entry;
  row.replaceChildren();
  const cell = (text) => {
    const td = document.createElement("td");
    td.textContent = text;
    row.append(td);
    return td;
  };
  cell(name);
  cell(formatBox(entry.box));
  if (error) {
    row.dataset.state = "error";
    const td = cell(error);
    td.colSpan = 5;
    entry.pose.textContent = error;
    return;
  }
  row.dataset.state = "done";
  for (const key of ["azimuth", "elevation", "theta", "confidence"]) {
    row.dataset[key] = String(prediction[key]);
  }
  row.dataset.box = entry.box ? entry.box.join(",") : "";
  row.dataset.ms = String(prediction.ms);
  cell(prediction.azimuth.toFixed(1));
  cell(prediction.elevation.toFixed(1));
  cell(prediction.theta.toFixed(1));
  cell(prediction.confidence.toFixed(2));
  cell(prediction.ms.toFixed(1));
  entry.pose.textContent = `azimuth ${prediction.azimuth.toFixed(1)}°, elevation ` +
    `${prediction.elevation.toFixed(1)}°, theta ${prediction.theta.toFixed(1)}°, ` +
    `confidence ${prediction.confidence.toFixed(2)}`;
}

async function predict(entry) {
  entry.row.dataset.state = "pending";
  entry.request = (entry.request ?? 0) + 1;
  const request = entry.request;
  try {
    const prediction = await state.model.predict(entry.image, entry.box);
    if (request !== entry.request) return; // a newer box superseded this run
    Object.assign(entry, { prediction, error: null });
  } catch (error) {
    if (request !== entry.request) return;
    Object.assign(entry, { prediction: null, error: `prediction failed: ${error.message}` });
    showMessage(`${entry.name}: prediction failed: ${error.message}`);
  }
  showPrediction(entry);
  render(entry);
}

// ---------------------------------------------------------------- inputs: files, drop, webcam

async function addFiles(files) {
  for (const file of files) {
    try {
      const image = await decodeImage(file, file.name);
      if (!image.exact) {
        showMessage(`${file.name}: this browser has no WebGL2, so translucent pixels were read ` +
          "premultiplied; colours under transparency may differ slightly from Python");
      }
      const entry = createEntry(file.name, image);
      render(entry);
      await predict(entry);
    } catch (error) {
      showMessage(error.message);
    }
  }
}

async function webcamFrame() {
  const video = $("#webcam");
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    video.srcObject = stream;
    await video.play();
    if (!video.videoWidth) await new Promise((resolve) => video.addEventListener("loadeddata", resolve, { once: true }));
    const image = await captureFrame(video);
    const entry = createEntry(`webcam-${new Date().toISOString().slice(11, 19).replaceAll(":", "")}.png`, image);
    render(entry);
    await predict(entry);
  } catch (error) {
    showMessage(`Webcam: ${error.message || error.name} (allow camera access, or open images instead)`);
  } finally {
    stream?.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
  }
}

function enableInputs() {
  const input = $("#file-input");
  input.disabled = false;
  input.addEventListener("change", async () => {
    await addFiles([...input.files]);
    input.value = "";
  });
  const webcam = $("#webcam-button");
  webcam.disabled = !navigator.mediaDevices?.getUserMedia;
  webcam.title = webcam.disabled ? "no camera API here (needs https or localhost)" : "";
  webcam.addEventListener("click", webcamFrame);
  $("#overlay-toggle").addEventListener("change", () => state.entries.forEach((entry) => render(entry)));
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    document.body.classList.remove("dragging");
    addFiles([...event.dataTransfer.files]);
  });
}

async function loadExtent(categories) {
  // extents.json: the typical 3-D box of each category (data_tools.image.draw.TYPICAL_EXTENT).
  try {
    const response = await fetch("extents.json");
    if (!response.ok) return DEFAULT_EXTENT;
    const table = await response.json();
    return (categories.length === 1 && table.categories[categories[0]]) || table.default || DEFAULT_EXTENT;
  } catch {
    return DEFAULT_EXTENT;
  }
}

async function main() {
  const url = params.get("model") || "model.onnx";
  const threads = Number.parseInt(params.get("threads") ?? "0", 10) || 0;
  try {
    state.model = await PoseModel.load(url, threads);
  } catch (error) {
    setStatus("The model could not be loaded: the page cannot predict.", "error");
    showMessage(error.message);
    return;
  }
  const { size, cropMode, cropMargin, categories } = state.model.contract;
  state.extent = await loadExtent(categories);
  setStatus(`Model ${url}${categories.length ? ` (${categories.join(", ")})` : ""}: ${size}x${size} ` +
    `input, crop ${cropMode} with margin ${cropMargin}; onnxruntime-web WASM, ` +
    `${state.model.threads} thread${state.model.threads === 1 ? "" : "s"}.`, "ready");
  enableInputs();
}

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

// For tests and the curious: the state, a speed measurement on the first image, and the bytes
// the model saw (base64 float32 NCHW per image; base64 RGB of an image as decoded).
window.poseApp = {
  state,
  ready: main(),
  benchmark: (runs = 50) => state.model.benchmark(state.entries[0].image, runs),
  modelInputs: () => state.entries.map((entry) =>
    toBase64(new Uint8Array(state.model.input(entry.image, entry.box).buffer))),
  imageRgb: (index) => toBase64(state.entries[index].image.data),
  contentMean: (index) => state.model.contentMean(state.entries[index].image, state.entries[index].box),
};
