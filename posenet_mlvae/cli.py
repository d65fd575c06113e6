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
}

HELP: dict[str, str] = {
    "bench": "measure speed: render, train, infer, pascal3d",
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
