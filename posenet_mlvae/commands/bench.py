"""`posenet-mlvae bench WHAT`: benchmarks that print figures (never timed tests): speed,
`sim2real`, a checkpoint's accuracy and failures on a PASCAL3D+-format tree, `labels`, the
label-efficiency study, and `ablation`, what each appearance factor of the renders buys."""

from __future__ import annotations

import argparse

from posenet_mlvae.commands.benches import ablation, infer, labels, pascal3d, render, sim2real, train
from posenet_mlvae.commands.subcommands import add_subcommands

# Each module's docstring gives its help line (see commands/subcommands.py).
BENCHES = {
    "ablation": ablation,
    "infer": infer,
    "labels": labels,
    "pascal3d": pascal3d,
    "render": render,
    "sim2real": sim2real,
    "train": train,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_subcommands(parser, BENCHES, dest="bench", metavar="WHAT")
    parser.set_defaults(_bench_parser=parser)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "_bench_run", None) is None:
        args._bench_parser.print_help()
        return 2
    return int(args._bench_run(args) or 0)
