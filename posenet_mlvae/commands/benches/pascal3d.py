"""`posenet-mlvae bench pascal3d`: how long indexing PASCAL3D+ annotations takes, serial vs parallel.

    posenet-mlvae bench pascal3d [--files 10000] [--workers 1 2 4]

Generates `--files` annotation files in a temporary folder with the miniature tree's writer
(`data_tools.pascal3d.miniature.write_benchmark_tree`: car/chair, VOC and ImageNet, 1-4 objects
per record, empty image files), then times `data_tools.pascal3d.protocol.index_dataset` once per
worker count.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files", type=int, default=10_000, help="annotation files to generate")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="worker counts to time (default: 1 and the CPU count, at most 8)")


def run(args: argparse.Namespace) -> int:
    import os
    import tempfile
    import time

    from data_tools.pascal3d.miniature import write_benchmark_tree
    from data_tools.pascal3d.protocol import index_dataset
    from data_tools.workers import default_workers

    workers = args.workers or sorted({1, default_workers()})
    with tempfile.TemporaryDirectory(prefix="bench-pascal3d-") as tmp:
        start = time.perf_counter()
        write_benchmark_tree(tmp, args.files)
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
