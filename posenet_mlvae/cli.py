"""The `posenet-mlvae` console script: a thin argparse shell over the library.

Each subcommand is a module in `posenet_mlvae/commands/` with `add_arguments(parser)` and
`run(args) -> int` (see `commands/subcommands.py`), registered in COMMANDS below. User errors
(ValueError, OSError such as a missing file or a full disk, a missing optional dependency) end
as one line on stderr and exit code 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from posenet_mlvae.commands import (bench, demo, evaluate, export, image_folders, pascal3d, predict, render,
                                    train)
from posenet_mlvae.commands.subcommands import DEBUG_HELP, add_subcommands

COMMANDS = {
    "render": render,
    "pascal3d": pascal3d,
    "image-folders": image_folders,
    "train": train,
    "evaluate": evaluate,
    "export": export,
    "predict": predict,
    "bench": bench,
    "demo": demo,
}

#: What to install when an optional dependency is missing, by top-level module name.
TRAIN_EXTRA = "pip install 'posenet-mlvae[train,cpu]'"
INSTALL_HINTS = {
    **{name: f"needs the training extra: {TRAIN_EXTRA}"
       for name in ("torch", "torchvision", "scipy", "onnx", "onnxscript", "trimesh", "moderngl",
                    "tqdm", "matplotlib", "sklearn", "tensorboard")},
    "onnxruntime": "needs ONNX Runtime: pip install 'posenet-mlvae[cpu]' (or [gpu] with CUDA)",
}
#: Exit code of a command stopped by a user error.
USAGE_ERROR = 2


def get_args_parser() -> argparse.ArgumentParser:
    """The top-level parser with one subparser per registered command."""
    from posenet_mlvae import __version__

    parser = argparse.ArgumentParser(
        prog="posenet-mlvae",
        description="Object viewpoint estimation from grouped images with a Multi-Level VAE.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    add_subcommands(parser, COMMANDS, dest="command", metavar="COMMAND")
    return parser


def error_line(error: BaseException) -> str:
    """One line for a user error: the message with newlines folded, OSError as 'file: cause'."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        text = f"{where}{error.strerror}"
        if error.errno == 28:  # ENOSPC
            text += " (free some space and run the command again)"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: sys.argv[1:]) and run the chosen subcommand; returns the exit code."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return USAGE_ERROR
    prefix = " ".join(["posenet-mlvae", args.command, getattr(args, "bench", None) or ""]).strip()
    try:
        return int(args._command_run(args) or 0)
    except ModuleNotFoundError as error:
        hint = INSTALL_HINTS.get((error.name or "").split(".")[0])
        if args.debug or hint is None:  # not an optional dependency: a real bug, show it
            raise
        print(f"{prefix} {hint} ({error.name} is not installed)", file=sys.stderr)
    except (ValueError, OSError) as error:
        if args.debug:
            raise
        print(f"{prefix}: error: {error_line(error)}", file=sys.stderr)
    return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
