"""How `posenet-mlvae` and `posenet-mlvae bench` attach their command modules to argparse.

A command module has three things: a docstring whose first line reads
"`posenet-mlvae NAME`: what it does" (the text after the colon is its line in --help, the whole
docstring its description), `add_arguments(parser)` and `run(args) -> int`. Modules keep heavy
imports (torch, cv2, onnxruntime, moderngl) inside `run`, so building the parser stays instant.
To add a command: write the module and add it to the dict in `cli.py` (or `commands/bench.py`).
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Mapping

DEBUG_HELP = "on an error, show the full Python traceback instead of one line"


def summary(module: ModuleType) -> str:
    """The help line of a command module: its docstring's first sentence after "`...`: "."""
    first = (module.__doc__ or "").strip().split("\n\n", 1)[0]
    head, colon, text = first.partition("`: ")
    assert colon and head.startswith("`posenet-mlvae "), \
        f"{module.__name__}: the docstring must start with \"`posenet-mlvae NAME`: summary\""
    return " ".join(text.split())


def add_subcommands(parser: argparse.ArgumentParser, commands: Mapping[str, ModuleType],
                    dest: str, metavar: str) -> None:
    """One subparser per module; the chosen module's `run` lands in args as `_<dest>_run`."""
    subparsers = parser.add_subparsers(dest=dest, metavar=metavar)
    for name, module in commands.items():
        sub = subparsers.add_parser(name, help=summary(module), description=module.__doc__,
                                    formatter_class=argparse.RawDescriptionHelpFormatter)
        # SUPPRESS: given after the subcommand it sets args.debug; absent, the top level's stays.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        module.add_arguments(sub)
        sub.set_defaults(**{f"_{dest}_run": module.run})
