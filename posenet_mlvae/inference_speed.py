"""Torch eager vs ONNX Runtime inference speed, measured side by side in one process.

Used by `posenet-mlvae bench infer` and the demo's summary. Backends are timed in turns, so on a
shared machine every backend sees the same load and the ratios stay fair.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class BackendTiming:
    name: str
    latency_ms: float  # median batch-1 latency
    images_per_s: float  # median throughput at the large batch


def interleaved_medians(calls: list[Callable[[], object]], runs: int, warmup: int,
                        block: int = 25) -> list[float]:
    """Median wall time in seconds of each call, timed in turns of `block` runs per backend.

    Taking turns exposes every backend to the same load on a shared machine, so the ratios
    stay fair when the absolute figures drift. Each turn starts with `warmup` untimed calls,
    which also absorb the previous backend's idle threads still spinning (both torch's OpenMP
    pool and ONNX Runtime's spin-wait for a while after each call).
    """
    times: list[list[float]] = [[] for _ in calls]
    while len(times[0]) < runs:
        for k, call in enumerate(calls):
            for _ in range(warmup):
                call()
            for _ in range(min(block, runs - len(times[k]))):
                start = time.perf_counter()
                call()
                times[k].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def _torch_module(model_path: str, checkpoint: str | None):
    """(PoseInference module, description) from a checkpoint or the ONNX model config."""
    import json

    from export.onnx_export import read_metadata
    from posenet_mlvae.config import model_config_from_dict
    from posenet_mlvae.inference import PoseInference, load_inference_module
    from posenet_mlvae.network.model import build_model

    if checkpoint:
        module, _ = load_inference_module(checkpoint)
        return module, f"weights from {checkpoint}"
    metadata = read_metadata(model_path)
    if "model_config" not in metadata:
        raise ValueError(f"{model_path}: no model_config in the metadata; pass --checkpoint")
    config = model_config_from_dict({**json.loads(metadata["model_config"]), "imagenet_weights": ""})
    return PoseInference(build_model(config)).eval(), "random weights, config from the model"


def compare_backends(model_path: str, checkpoint: str | None = None, threads: int = 0, runs: int = 200,
                     batch: int = 64, batch_runs: int = 10) -> tuple[list[BackendTiming], str]:
    """Time torch eager CPU (first row, the reference), ONNX Runtime CPU, and any GPU backends.

    Returns the timings and a one-line description of the set-up. Raises ValueError for an
    unusable model or checkpoint.
    """
    import numpy as np
    import onnxruntime
    import torch

    from export.runtime import PoseEstimator, choose_providers

    if threads > 0:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    module, weights = _torch_module(model_path, checkpoint)
    cpu = PoseEstimator(model_path, providers=["CPUExecutionProvider"], threads=threads)
    size = cpu.image_size
    rng = np.random.default_rng(0)
    one = rng.random((1, 3, size, size), dtype=np.float32)
    many = rng.random((batch, 3, size, size), dtype=np.float32)

    def torch_call(device: str):
        model = module if device == "cpu" else copy.deepcopy(module).to(device)

        def call(images: np.ndarray):
            with torch.inference_mode():
                out = model(torch.from_numpy(images).to(device))
                if device == "cuda":
                    torch.cuda.synchronize()
                return out
        return call

    backends: list[tuple[str, Callable[[np.ndarray], object]]] = [
        ("torch eager CPU", torch_call("cpu")), ("ONNX Runtime CPU", cpu.run)]
    for provider in choose_providers(onnxruntime.get_available_providers()):
        if provider == "CPUExecutionProvider":
            continue
        try:
            gpu = PoseEstimator(model_path, providers=[provider, "CPUExecutionProvider"])
        except ValueError as error:
            print(f"skipping {provider}: {error}")
            continue
        if gpu.provider == provider:
            backends.append((f"ONNX Runtime {provider.replace('ExecutionProvider', '')}", gpu.run))
    if torch.cuda.is_available():
        backends.append(("torch eager CUDA", torch_call("cuda")))
    latencies = interleaved_medians([lambda c=call: c(one) for _, call in backends], runs, warmup=5)
    per_batch = interleaved_medians([lambda c=call: c(many) for _, call in backends], batch_runs,
                                    warmup=1, block=5)
    timings = [BackendTiming(name, latency * 1e3, batch / seconds)
               for (name, _), latency, seconds in zip(backends, latencies, per_batch)]
    description = (f"model {model_path} ({size}x{size}); torch side: {weights}; {threads} CPU threads "
                   f"for torch and ONNX Runtime; batch-1 median over {runs} runs, batch {batch} "
                   f"median over {batch_runs} runs, backends timed in turns after warm-up")
    return timings, description
