"""The one worker-pool helper: map a function over items in worker processes, and how many to use.

Indexing PASCAL3D+ annotations and cropping its images both fan out over files with
`parallel_map`; every command that takes `--workers` defaults to `default_workers()`.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Sequence


def parallel_map(function: Callable, items: Sequence, workers: int, progress: bool = False,
                 description: str = "", unit: str = "file") -> Iterable:
    """map(function, items) in order, over `workers` processes (1 = in this process, debuggable).

    Items go to the workers in chunks, so per-item overhead stays small for thousands of files.
    """
    from tqdm import tqdm

    bar = tqdm(total=len(items), desc=description, disable=not progress, unit=unit)
    if workers <= 1 or len(items) < 2:
        for item in items:
            yield function(item)
            bar.update()
    else:
        chunksize = max(1, min(256, len(items) // (workers * 8)))
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(function, items, chunksize=chunksize):
                yield result
                bar.update()
    bar.close()


def default_workers() -> int:
    """Worker processes used when none are asked for: the CPU count, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


__all__ = ["default_workers", "parallel_map"]
