"""`posenet-mlvae bench pascal3d`: how long indexing PASCAL3D+ annotations takes, serial vs parallel.

    posenet-mlvae bench pascal3d [--files 10000] [--workers 1 2 4]

Generates `--files` annotation files in a temporary folder with the test fixture's writer
(tests/pascal3d_fixture.py: car/chair, VOC and ImageNet, 1-4 objects per record, empty image
files), then times `data_tools.pascal3d.index_dataset` once per worker count. Needs a source
checkout (the fixture lives in tests/).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, default=10_000, help="annotation files to generate")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="worker counts to time (default: 1 and the CPU count, at most 8)")


def _load_fixture():
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "tests" / "pascal3d_fixture.py"
    if not path.is_file():
        raise ValueError(f"{path} not found: this benchmark needs a source checkout of posenet-mlvae")
    spec = importlib.util.spec_from_file_location("pascal3d_fixture", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run(args: argparse.Namespace) -> int:
    import os
    import sys
    import tempfile
    import time

    from data_tools.pascal3d import default_workers, index_dataset

    try:
        fixture = _load_fixture()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    workers = args.workers or sorted({1, default_workers()})
    with tempfile.TemporaryDirectory(prefix="bench-pascal3d-") as tmp:
        start = time.perf_counter()
        fixture.write_benchmark_tree(tmp, args.files)
        print(f"generated {args.files} annotation files in {time.perf_counter() - start:.1f} s")
        for n in workers:
            start = time.perf_counter()
            index = index_dataset(tmp, ["car", "chair"], workers=n)
            seconds = time.perf_counter() - start
            skipped = sum(sum(c.values()) for c in index.skipped.values())
            print(f"workers={n}: {seconds:.2f} s ({args.files / seconds:.0f} files/s), "
                  f"{len(index.objects)} objects kept, {skipped} skipped")
    print(f"({os.cpu_count()} CPU cores; shared machines give pessimistic figures)")
    return 0
