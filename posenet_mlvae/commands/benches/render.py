"""`posenet-mlvae bench render`: synthetic rendering speed, end to end.

Times `data_tools.render.build.build_synthetic` (procedural meshes, rendering, backgrounds,
compositing and writing the dataset, merge included) into a temporary folder at each size, in
one process and with several worker processes, and prints wall-clock images/s plus images per
CPU-second (CPU time of this process and its workers' chunk building, without worker start-up;
a load-independent measure when other jobs share the machine). Target on a 2-core CPU machine: 1,500 images/s at 64 px, 1,000 at 128.
"""

from __future__ import annotations

import argparse
import os


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128], choices=(64, 128, 224))
    parser.add_argument("--images", type=int, default=4800, help="images per measurement")
    parser.add_argument("--views", type=int, default=24, help="views per instance")
    parser.add_argument("--category", default="car", choices=("car", "chair"))
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="worker counts to measure (default: 1 and the CPU count)")
    parser.add_argument("--supersample", type=int, default=2, choices=(1, 2, 3, 4))


def measure(size: int, workers: int, images: int, views: int, category: str, supersample: int) -> dict:
    """Build a throwaway dataset; returns images, wall seconds and CPU seconds."""
    import shutil
    import tempfile
    import time
    from pathlib import Path

    from data_tools.render.build import build_synthetic
    from data_tools.render.plan import SyntheticConfig

    config = SyntheticConfig(category=category, instances=max(1, images // views), views=views,
                             size=size, supersample=supersample)
    folder = Path(tempfile.mkdtemp(prefix="bench-render-"))
    try:
        cpu_before = time.process_time()
        started = time.perf_counter()
        summary = build_synthetic(config, folder / "data", progress=False, workers=workers)
        wall = time.perf_counter() - started
        # This process's CPU time, plus the workers' own (worker start-up not included).
        parent_cpu = time.process_time() - cpu_before
        cpu = parent_cpu + (summary["worker_cpu_seconds"] if workers > 1 else 0.0)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"images": summary["images"], "wall": wall, "cpu": cpu}


def run(args: argparse.Namespace) -> int:
    cores = os.cpu_count() or 1
    worker_counts = args.workers or sorted({1, cores})
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"bench render: {args.category}, {args.views} views/instance, supersample {args.supersample}, "
          f"{cores} CPU cores, load average {load:.1f} (other jobs lower the wall-clock figures)")
    for size in args.sizes:
        for workers in worker_counts:
            result = measure(size, workers, args.images, args.views, args.category, args.supersample)
            print(f"  {size:>3} px  {workers} worker(s): {result['images']} images in {result['wall']:.1f} s "
                  f"= {result['images'] / result['wall']:.0f} images/s "
                  f"({result['images'] / max(result['cpu'], 1e-9):.0f} images per CPU-second)")
    return 0
