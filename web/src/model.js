// The pose model in onnxruntime-web (WASM): load, check the graph, predict one image.
// The browser-side twin of export/runtime.py PoseEstimator.

import { CONTENT_OUTPUTS, POSE_OUTPUTS, preprocessingContract, readOnnxMetadata } from "./metadata.js";
import { cropToSquare, toModelInput } from "./preprocess.js";

/** onnxruntime-web, imported on demand so a missing runtime is a message, not a dead page. */
async function loadRuntime(threads) {
  let ort;
  try {
    ort = await import("onnxruntime-web");
  } catch (error) {
    throw new Error(`could not load onnxruntime-web from ./ort/ (${error.message}); ` +
      "write this folder with `posenet-mlvae export --web DIR`");
  }
  ort.env.wasm.wasmPaths = new URL("./ort/", document.baseURI).href;
  // Threads need SharedArrayBuffer, which browsers only give cross-origin-isolated pages.
  const available = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  ort.env.wasm.numThreads = threads > 0 ? Math.min(threads, available) : available;
  return ort;
}

/** Azimuth into [0, 360) and theta into (-180, 180], as export/runtime.py wraps the graph's outputs. */
export function wrapAzimuth(azimuth) {
  const wrapped = azimuth - 360 * Math.floor(azimuth / 360);
  return wrapped >= 360 ? wrapped - 360 : wrapped;
}

export function wrapTheta(theta) {
  const shifted = 180 - theta;
  return 180 - (shifted - 360 * Math.floor(shifted / 360));
}

export class PoseModel {
  /** Fetch, check and start the model at `url`; throws an Error with a one-line reason. */
  static async load(url, threads = 0) {
    let bytes;
    try {
      const response = await fetch(url);
      if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (error) {
      throw new Error(`could not fetch the model ${url}: ${error.message}`);
    }
    let contract;
    try {
      contract = preprocessingContract(readOnnxMetadata(bytes));
    } catch (error) {
      throw new Error(`${url} is not a usable pose model: ${error.message}`);
    }
    const ort = await loadRuntime(threads);
    let session;
    try {
      session = await ort.InferenceSession.create(bytes, {
        executionProviders: ["wasm"], graphOptimizationLevel: "all",
      });
    } catch (error) {
      throw new Error(`onnxruntime-web could not load ${url}: ${error.message ?? error}`);
    }
    const absent = POSE_OUTPUTS.filter((name) => !session.outputNames.includes(name));
    if (absent.length) {
      throw new Error(`${url}: graph outputs ${session.outputNames.join(", ")} lack ${absent.join(", ")}; not a pose model`);
    }
    if (!session.inputNames.includes(contract.inputName)) {
      throw new Error(`${url}: the graph has no input ${contract.inputName} (inputs: ${session.inputNames.join(", ")})`);
    }
    return new PoseModel(ort, session, contract, url);
  }

  constructor(ort, session, contract, url) {
    this.ort = ort;
    this.session = session;
    this.contract = contract;
    this.url = url;
    this.threads = ort.env.wasm.numThreads;
    this.queue = Promise.resolve(); // one run at a time on the session
    // The content latent mean's name in this graph (null when it has none).
    this.contentOutput = CONTENT_OUTPUTS.find((name) => session.outputNames.includes(name)) ?? null;
  }

  /** The model input for one image and box (null = whole image): Float32Array NCHW. */
  input(image, box) {
    const { size, cropMargin, cropMode } = this.contract;
    return toModelInput([cropToSquare(image, box, cropMargin, cropMode, size)], size);
  }

  /** Run the graph on a prepared input; resolves to the raw outputs (`names`, default the
   * pose outputs). Runs are serialised. */
  run(input, names = POSE_OUTPUTS) {
    const { size, inputName } = this.contract;
    const tensor = new this.ort.Tensor("float32", input, [1, 3, size, size]);
    const result = this.queue.then(() => this.session.run({ [inputName]: tensor }, names));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Viewpoint of the object in `image` inside `box`: {azimuth, elevation, theta, confidence, rotation, ms}. */
  async predict(image, box) {
    const started = performance.now();
    const outputs = await this.run(this.input(image, box));
    const ms = performance.now() - started;
    const value = (name) => Number(outputs[name].data[0]);
    return {
      azimuth: wrapAzimuth(value("azimuth")),
      elevation: value("elevation"),
      theta: wrapTheta(value("theta")),
      confidence: value("confidence"),
      rotation: Array.from(outputs.rotation.data.slice(0, 9)),
      ms,
    };
  }

  /** The image's own content latent mean (an Array of D_c numbers), whichever name the graph gives it. */
  async contentMean(image, box) {
    if (this.contentOutput === null) throw new Error(`${this.url}: the graph has no ${CONTENT_OUTPUTS.join(" or ")} output`);
    const outputs = await this.run(this.input(image, box), [this.contentOutput]);
    return Array.from(outputs[this.contentOutput].data);
  }

  /** Median ms of `runs` batch-1 runs (after warm-up): {inferenceMs, pipelineMs} for `image`. */
  async benchmark(image, runs = 50) {
    const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
    const input = this.input(image, null);
    for (let i = 0; i < 5; i++) await this.run(input);
    const inference = [];
    const pipeline = [];
    for (let i = 0; i < runs; i++) {
      let started = performance.now();
      await this.run(input);
      inference.push(performance.now() - started);
      started = performance.now();
      await this.predict(image, null);
      pipeline.push(performance.now() - started);
    }
    return { inferenceMs: median(inference), pipelineMs: median(pipeline), runs, threads: this.threads };
  }
}
