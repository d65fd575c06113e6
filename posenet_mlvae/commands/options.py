"""Options several subcommands share, each decided here once: --device, --workers and --zoom-average."""

from __future__ import annotations

import argparse

DEVICES = ("auto", "cpu", "cuda")


def add_device_argument(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    """--device auto|cpu|cuda; `resolve_device` turns it into the device to use."""
    parser.add_argument("--device", choices=DEVICES, default=default,
                        help=f"auto = cuda when torch sees a GPU, else cpu (default {default})")


def resolve_device(requested: str) -> str:
    """"cpu" or "cuda" for a --device value; ValueError for cuda without a CUDA device."""
    import torch

    if requested not in DEVICES:
        raise ValueError(f"--device {requested!r}: choose one of {DEVICES}")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA device; use --device cpu or auto")
    return requested


def add_workers_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """--workers N (default: `resolve_workers(None)`, the CPU count, at most 8)."""
    parser.add_argument("--workers", type=int, default=None,
                        help=f"{what} (default: CPU cores, at most 8)")


def resolve_workers(requested: int | None) -> int:
    """The worker count for a --workers value: as given (>= 1), else the library default."""
    from data_tools.workers import default_workers

    if requested is None:
        return default_workers()
    if requested < 1:
        raise ValueError(f"--workers {requested}: give 1 or more worker processes")
    return requested


def zoom_fraction(text: str) -> float:
    """argparse type of --zoom-average: a number in ModelConfig's range, [0, MAX_ZOOM_AVERAGE)."""
    from posenet_mlvae.config import MAX_ZOOM_AVERAGE

    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < MAX_ZOOM_AVERAGE:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number in [0, {MAX_ZOOM_AVERAGE}) "
                                         "(0 = off; 0.1 zooms by 0.9 and 1.1)")
    return value


def add_zoom_average_argument(parser: argparse.ArgumentParser) -> None:
    """--zoom-average Z: override the checkpoint's test-time zoom averaging (ModelConfig.zoom_average)."""
    parser.add_argument("--zoom-average", type=zoom_fraction, default=None, metavar="Z",
                        help="each pose also averages the image zoomed by 1 - Z and 1 + Z (0 = off; "
                             "default: the checkpoint's own setting)")
