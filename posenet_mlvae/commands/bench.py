"""`posenet-mlvae bench WHAT`: speed benchmarks that print figures (never timed tests)."""

from __future__ import annotations

import argparse
import importlib

# Benchmark name -> module with add_arguments(parser) and run(args) -> int.
BENCHES: dict[str, str] = {
    "infer": "posenet_mlvae.commands.bench_infer",
    "pascal3d": "posenet_mlvae.commands.bench_pascal3d",
    "render": "posenet_mlvae.commands.bench_render",
    "train": "posenet_mlvae.commands.bench_train",
}

HELP: dict[str, str] = {
    "infer": "torch eager vs ONNX Runtime: batch-1 latency and batch-64 images/s, ratios",
    "pascal3d": "index generated PASCAL3D+ annotations: serial vs parallel seconds",
    "render": "synthetic renders end to end (meshes, rendering, writing): images/s at 64 and 128 px",
    "train": "training images/s, ML-VAE/VAE step ratio, data loading images/s, peak memory",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    subparsers = parser.add_subparsers(dest="bench", metavar="WHAT")
    for name, module_path in BENCHES.items():
        module = importlib.import_module(module_path)
        sub = subparsers.add_parser(name, help=HELP.get(name), description=HELP.get(name))
        module.add_arguments(sub)
        sub.set_defaults(_bench_run=module.run)
    parser.set_defaults(_bench_parser=parser)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_bench_run", None) is None:
        args._bench_parser.print_help()
        return 2
    return int(args._bench_run(args) or 0)
