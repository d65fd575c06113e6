"""`posenet-mlvae bench WHAT`: benchmarks that print figures (never timed tests): speed, and
`sim2real`, a checkpoint's accuracy and failures on a PASCAL3D+-format tree."""

from __future__ import annotations

import argparse

from posenet_mlvae.commands import bench_infer, bench_pascal3d, bench_render, bench_sim2real, bench_train
from posenet_mlvae.commands.subcommands import add_subcommands

# Each module's docstring gives its help line (see commands/subcommands.py).
BENCHES = {
    "infer": bench_infer,
    "pascal3d": bench_pascal3d,
    "render": bench_render,
    "sim2real": bench_sim2real,
    "train": bench_train,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_subcommands(parser, BENCHES, dest="bench", metavar="WHAT")
    parser.set_defaults(_bench_parser=parser)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_bench_run", None) is None:
        args._bench_parser.print_help()
        return 2
    return int(args._bench_run(args) or 0)
