"""The `posenet-mlvae` console script: a thin argparse shell over the library.

Each subcommand lives in `posenet_mlvae/commands/<name>.py` with `add_arguments(parser)` and
`run(args) -> int`. Modules are imported when the parser is built, so they keep heavy imports
(torch, moderngl, onnxruntime) inside `run` and `--help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

# Subcommand name -> module implementing it. Only commands that work are listed.
COMMANDS: dict[str, str] = {
    "bench": "posenet_mlvae.commands.bench",
    "demo": "posenet_mlvae.commands.demo",
    "evaluate": "posenet_mlvae.commands.evaluate",
    "export": "posenet_mlvae.commands.export",
    "pascal3d": "posenet_mlvae.commands.pascal3d",
    "predict": "posenet_mlvae.commands.predict",
    "render": "posenet_mlvae.commands.render",
    "train": "posenet_mlvae.commands.train",
}

HELP: dict[str, str] = {
    "bench": "measure speed: render, train, infer, pascal3d",
    "demo": "the whole job end to end on procedural renders: render, train, evaluate, export, predict",
    "evaluate": "score checkpoints on a dataset split: metrics.json, diagnostics, report",
    "export": "export a checkpoint to ONNX (+ preprocessing metadata), checked against torch",
    "predict": "viewpoints of objects in images with an exported ONNX model (no torch)",
    "pascal3d": "crop PASCAL3D+ (or ObjectNet3D) objects into a grouped dataset (standard protocol)",
    "render": "render synthetic grouped datasets (procedural cars/chairs or your meshes)",
    "train": "train the ML-VAE + pose head on grouped datasets (torchrun for DDP)",
}


def get_args_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with one subparser per registered command."""
    from posenet_mlvae import __version__

    parser = argparse.ArgumentParser(
        prog="posenet-mlvae",
        description="Object viewpoint estimation from grouped images with a Multi-Level VAE.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_path in COMMANDS.items():
        module = importlib.import_module(module_path)
        sub = subparsers.add_parser(name, help=HELP.get(name), description=HELP.get(name))
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and run the chosen subcommand; returns the exit code."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
