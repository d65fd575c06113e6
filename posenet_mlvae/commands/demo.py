"""`posenet-mlvae demo`: render, train, evaluate, export and predict, end to end, in ~12 minutes.

    posenet-mlvae demo [--category car|chair] [--minutes 12] [--out runs/demo] [--device cpu|cuda|auto]
        [--pascal-root DIR]      # also score photographs: a PASCAL3D+-format tree
        [--compile]              # torch.compile the training step (train --compile)
"""

from __future__ import annotations

import argparse

from posenet_mlvae.commands.options import add_device_argument, resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from posenet_mlvae.demo import TRAIN_INSTANCES_PER_MINUTE

    parser.add_argument("--category", choices=("car", "chair"), default="car",
                        help="procedural category to render and learn (default car)")
    parser.add_argument("--minutes", type=float, default=12.0,
                        help="wall-time budget of the whole demo; training gets what is left (default 12)")
    parser.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    add_device_argument(parser, default="cpu")  # the demo's budget is calibrated on CPU
    parser.add_argument("--instances", type=int, default=None,
                        help="procedural training instances rendered, besides 24 validation and 72 unseen "
                             f"test ones (default: {TRAIN_INSTANCES_PER_MINUTE} per minute of --minutes)")
    parser.add_argument("--views", type=int, default=24, help="rendered views per instance (default 24; "
                        "at least 9, so that identity retrieval can query 8 views)")
    parser.add_argument("--seed", type=int, default=0, help="seed of rendering and training")
    parser.add_argument("--pascal-root", metavar="DIR", default=None,
                        help="also score the model on this PASCAL3D+-format tree (the real dataset, or "
                             "a look-alike such as ../shared/sim2real_dev), split test, by its crop rule")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training step (`train --compile`): about a minute of "
                             "compiling, then 1.1-1.2x faster steps; in 12 minutes about 1.1x the steps, "
                             "measured no more accurate")


def run(args: argparse.Namespace) -> int:
    from posenet_mlvae.demo import DemoConfig, run_demo

    try:
        config = DemoConfig(category=args.category, minutes=args.minutes, out=args.out,
                            device=resolve_device(args.device), instances=args.instances, views=args.views,
                            seed=args.seed, pascal_root=args.pascal_root, compile=args.compile)
    except ValueError as error:
        print(f"demo: {error}")
        return 2
    return run_demo(config)
