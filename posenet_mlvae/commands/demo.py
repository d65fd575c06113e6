"""`posenet-mlvae demo`: render, train, evaluate, export and predict, end to end, in ~12 minutes.

    posenet-mlvae demo [--category car|chair] [--minutes 12] [--out runs/demo] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--category", choices=("car", "chair"), default="car",
                        help="procedural category to render and learn (default car)")
    parser.add_argument("--minutes", type=float, default=12.0,
                        help="wall-time budget of the whole demo; training gets what is left (default 12)")
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="train and evaluate on this device (default cpu)")
    parser.add_argument("--instances", type=int, default=480,
                        help="procedural instances rendered (80/5/15 %% train/val/unseen test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of rendering and training")


def run(args: argparse.Namespace) -> int:
    from posenet_mlvae.demo import DemoConfig, run_demo

    try:
        config = DemoConfig(category=args.category, minutes=args.minutes, out=args.out, device=args.device,
                            instances=args.instances, seed=args.seed)
    except ValueError as error:
        print(f"demo: {error}")
        return 2
    if config.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("demo: --device cuda but torch sees no CUDA device; run without it to use the CPU")
            return 2
    return run_demo(config)
