"""`posenet-mlvae bench infer`: torch eager vs ONNX Runtime, measured side by side in one run.

    posenet-mlvae bench infer --model model.onnx [--checkpoint RUN/best.pt] [--threads N]

Reports the median latency at batch 1 (after warm-up) and images/s at batch 64 for torch eager
(CPU, and CUDA when present) and ONNX Runtime (CPU, and CUDA/TensorRT when onnxruntime-gpu and a
GPU are present), with the speed-up over torch eager CPU. Both CPU backends get the same number
of intra-op threads. Without --checkpoint the torch model is rebuilt from the model config in
the ONNX metadata with random weights: the speed is the same, the outputs are not compared.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="ONNX file from `posenet-mlvae export`")
    parser.add_argument("--checkpoint", default=None,
                        help="checkpoint for the torch side (default: random weights, same net)")
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads for torch and ONNX Runtime (0: torch's default)")
    parser.add_argument("--runs", type=int, default=200, help="timed batch-1 runs (median)")
    parser.add_argument("--batch", type=int, default=64, help="throughput batch size")
    parser.add_argument("--batch-runs", type=int, default=10, help="timed large-batch runs")


def run(args: argparse.Namespace) -> int:
    from posenet_mlvae.inference_speed import compare_backends

    try:
        timings, description = compare_backends(args.model, args.checkpoint, args.threads, args.runs,
                                                args.batch, args.batch_runs)
    except ValueError as error:
        print(f"error: {error}")
        return 2
    print(description)
    base = timings[0]
    print(f"{'backend':<26} {'batch-1 ms':>10} {'x torch':>8} {f'batch-{args.batch} img/s':>15} "
          f"{'x torch':>8}")
    for t in timings:
        print(f"{t.name:<26} {t.latency_ms:10.3f} {base.latency_ms / t.latency_ms:7.2f}x "
              f"{t.images_per_s:15.0f} {t.images_per_s / base.images_per_s:7.2f}x")
    ort_speedup = base.latency_ms / timings[1].latency_ms
    verdict = "meets" if ort_speedup >= 3.0 else "misses"
    print(f"ONNX Runtime CPU is {ort_speedup:.2f}x torch eager at batch 1 ({verdict} the 3x "
          "target); figures on a shared or loaded machine are pessimistic")
    return 0
