"""Build a grouped dataset of synthetic renders: one group per object instance, many views each.

Layout of a build (a grouped dataset, `data_tools.dataset`): the instances are cut into fixed
chunks of `instances_per_chunk` consecutive instances; chunk c writes its image files
`DIR/images/chunk-<c>-<k>.npy` (and masks) and its table `DIR/chunks/chunk-<c>/`, finalised by
writing its manifest last, then all chunks are merged into `DIR/records.csv` and
`DIR/manifest.json`. Chunks depend only on the config, so

- shard i of n (one machine's share) builds the chunks c with c % n == i, and the merged result
  is byte-identical to an unsharded build (which builds every chunk, in worker processes when
  `workers` > 1);
- an interrupted build resumes: finished chunks (manifest present) are skipped, a half-built
  chunk is rebuilt after deleting its stale temporary files; no file is ever half-written (the
  writer writes under temporary names and renames).

What is rendered, and with which seeds, is `data_tools.render.plan`; one chunk's rendering is
`data_tools.render.chunks`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from data_tools.render.chunks import build_chunks
from data_tools.render.plan import BuildPlan, SyntheticConfig, chunk_name, make_plan


def other_build(config: SyntheticConfig, out_dir: Path) -> Path | None:
    """The manifest of a chunk in `out_dir` rendered with a config other than `config`, else None
    (no chunk yet, or all of this config, which a build resumes)."""
    expected = config.to_json()
    for manifest_path in sorted((Path(out_dir) / "chunks").glob("chunk-*/manifest.json")):
        if json.loads(manifest_path.read_text()).get("config") != expected:
            return manifest_path
    return None


def _check_resumable(plan: BuildPlan) -> None:
    """Refuse to mix chunks of a different config into the same directory."""
    manifest_path = other_build(plan.config, plan.out_dir)
    if manifest_path is not None:
        found = json.loads(manifest_path.read_text()).get("config")
        raise ValueError(f"{plan.out_dir} holds a build with a different config ({manifest_path}: "
                         f"{found}); use another --out or delete it")


def build_synthetic(config: SyntheticConfig, out_dir: Path, shard: int = 0, num_shards: int = 1,
                    progress: bool = True, workers: int = 1, merge: bool | None = None,
                    build: bool = True, report: Callable[[str], None] = print) -> dict:
    """Build (this shard's share of) a synthetic grouped dataset in `out_dir`; returns a summary.

    Chunks already finished are skipped. `merge` (default: when the build is unsharded) joins all
    chunks into the top-level records.csv and manifest.json; it needs every chunk finished.
    `build=False` only merges.
    `workers` > 1 builds chunks in that many processes (each with its own OpenGL context).
    """
    from tqdm import tqdm

    from data_tools.dataset import chunk_is_complete, merge_chunks
    from data_tools.render.backgrounds import photo_bank, procedural_bank

    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in 0..{num_shards - 1} (--shard i --num-shards n), got {shard}")
    merge = (num_shards == 1) if merge is None else merge
    started = time.perf_counter()
    plan = make_plan(config, out_dir)
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    _check_resumable(plan)
    mine = [c for c in range(plan.n_chunks) if c % num_shards == shard]
    todo = [c for c in mine if build and not chunk_is_complete(plan.out_dir, chunk_name(c))]
    photo_skipped = 0
    style = "photo" if config.uses("backgrounds") else "legacy"
    banks = {"procedural": procedural_bank(config.seed, config.size, style=style)} if todo else {}
    if todo and config.backgrounds:
        banks["photo"], photo_skipped = photo_bank(Path(config.backgrounds), config.size,
                                                   config.seed, report=report)
    total_images = sum(len(plan.chunk_range(c)) for c in todo) * config.views
    bar = tqdm(total=total_images, unit="img", disable=not progress, smoothing=0.05,
               desc=f"render {config.category} {config.size}px")
    chunk_stats = []
    if todo:
        for stats in build_chunks(plan, banks, todo, workers, on_images=bar.update):
            for line in stats["errors"]:
                report(line)
            chunk_stats.append(stats)
    bar.close()
    all_chunks = [chunk_name(c) for c in range(plan.n_chunks)]
    merged = False
    if merge:
        manifests = [json.loads((plan.out_dir / "chunks" / name / "manifest.json").read_text())
                     for name in all_chunks if chunk_is_complete(plan.out_dir, name)]
        errors = [line for m in manifests for line in m.get("mesh_errors", [])]
        merge_chunks(plan.out_dir, all_chunks, {**plan.manifest(), "mesh_errors": errors})
        merged = True
    seconds = time.perf_counter() - started
    images = sum(s["images"] for s in chunk_stats)
    my_splits = plan.splits[[i for c in mine for i in plan.chunk_range(c)]]
    per_split = {split: int(np.sum(my_splits == split)) for split in ("train", "val", "test")}
    return {
        "out_dir": str(plan.out_dir), "images": images, "instances_per_split": per_split,
        "chunks_built": len(todo), "chunks_skipped": len(mine) - len(todo), "chunks_total": plan.n_chunks,
        "skipped_meshes": sum(s["skipped"] for s in chunk_stats), "skipped_backgrounds": photo_skipped,
        "seconds": seconds, "images_per_second": images / seconds if seconds > 0 else 0.0,
        "worker_cpu_seconds": sum(s["cpu_seconds"] for s in chunk_stats),
        "merged": merged,
    }


__all__ = ["build_synthetic"]
