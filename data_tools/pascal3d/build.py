"""Crop indexed PASCAL3D+ objects with their ground-truth boxes into a grouped dataset.

The output has the format of the renders (data_tools.dataset; splits `train` and `test`, no
masks). Groups, which the ML-VAE pools its content latent over, are by default the CAD sub-type
the annotator chose: group = (split, category, cad_index), so a group never spans both splits;
`singletons` makes every object its own group. Objects without a cad_index become singletons.

Training objects can be augmented: `jitter` extra crops per object whose box sides move by up to
`jitter_fraction` of the box width/height (Tulsiani & Malik jitter each side by w/6, h/6), and
`flip` adds the mirror image of every training crop with the label (a, e, theta) ->
(360 - a, e, -theta) (RenderForCNN, PoseFromShape). Test crops are the ground-truth box only,
or, with `box_noise`, a noisy box as a detector would give (to measure how a model copes with
the boxes of an app rather than an annotator's).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from data_tools.dataset import GroupedDatasetWriter
from data_tools.geometry import flip_viewpoint
from data_tools.image.preprocess import CROP_MODES, DEFAULT_CROP_RULE, CropRule, crop_to_square, load_image_rgb
from data_tools.pascal3d.protocol import Pascal3DIndex, PascalObject, box_inside_image
from data_tools.workers import parallel_map

GROUPINGS = ("cad_index", "singletons")
#: Largest box noise (CropConfig.box_noise): at 0.3 the median IoU with the annotated box is about 0.42.
BOX_NOISE_MAX = 0.3
_SPLIT_ORDER = {"train": 0, "test": 1}
PROTOCOL = ("test: VOC2012 val objects of the class, non-empty continuous viewpoint, not a=e=theta=0, "
            "difficult=truncated=occluded=0; train: VOC2012 train (not difficult) + ImageNet "
            "train+val lists (not truncated, not occluded); ground-truth box crops "
            "(Tulsiani & Malik 2015)")


@dataclass(frozen=True)
class CropConfig:
    """How objects become images.

    size: output side in pixels. margin: context added on each side, as a fraction of the box
    side. resize: "pad" (square around the box centre, border replicated) or "stretch"
    (anisotropic resize of the box, RenderForCNN). jitter: extra jittered crops per training
    object. flip: add mirrored training crops. grouping: "cad_index" or "singletons".
    box_noise: cut each test object around its box with every side moved by N(0, box_noise) x
    the box width/height (`noisy_box`; 0 = the annotated box).
    """

    size: int = 64
    margin: float = DEFAULT_CROP_RULE.margin
    resize: str = DEFAULT_CROP_RULE.mode
    jitter: int = 0
    jitter_fraction: float = 1.0 / 6.0
    flip: bool = False
    grouping: str = "cad_index"
    seed: int = 0
    box_noise: float = 0.0

    def __post_init__(self) -> None:
        if self.size <= 0:
            raise ValueError(f"CropConfig.size={self.size}; use a positive pixel size such as 64")
        if not 0.0 <= self.margin <= 2.0:
            raise ValueError(f"CropConfig.margin={self.margin}; use a fraction in [0, 2], e.g. 0.1")
        if self.resize not in CROP_MODES:
            raise ValueError(f"CropConfig.resize={self.resize!r}; choose one of {CROP_MODES}")
        if self.jitter < 0:
            raise ValueError(f"CropConfig.jitter={self.jitter}; use 0 (none) or a positive count")
        if not 0.0 <= self.jitter_fraction < 0.5:
            raise ValueError(f"CropConfig.jitter_fraction={self.jitter_fraction}; use [0, 0.5)")
        if not 0.0 <= self.box_noise <= BOX_NOISE_MAX:
            raise ValueError(f"CropConfig.box_noise={self.box_noise}; use a fraction in [0, {BOX_NOISE_MAX:g}], "
                             f"e.g. 0.1")
        if self.grouping not in GROUPINGS:
            raise ValueError(f"CropConfig.grouping={self.grouping!r}; choose one of {GROUPINGS}")


@dataclass
class BuildResult:
    """What was written: images per split, objects per split, and every skip and problem."""

    out: Path
    images: Counter = field(default_factory=Counter)
    objects: Counter = field(default_factory=Counter)
    skipped: dict[str, Counter] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def assign_groups(objects: Sequence[PascalObject], grouping: str) -> tuple[list[int], list[str]]:
    """Group id (int, numbered in order of appearance) and instance name for every object."""
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping {grouping!r}; choose one of {GROUPINGS}")
    ids: dict[str, int] = {}
    groups, names = [], []
    for obj in objects:
        if grouping == "cad_index" and obj.cad_index > 0:
            name = f"{obj.split}/{obj.category}/cad{obj.cad_index:02d}"
        else:
            name = f"{obj.split}/{obj.category}/{obj.source}/{obj.image_id}#{obj.object_index}"
        groups.append(ids.setdefault(name, len(ids)))
        names.append(name)
    return groups, names


def moved_box(box: Sequence[float], shifts: Sequence[float]) -> tuple[float, ...]:
    """(x1, y1, x2, y2) with each side moved by its shift (dx1, dy1, dx2, dy2) x the box
    width/height; the box itself when that leaves under 1 px a side."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    dx1, dy1, dx2, dy2 = shifts
    moved = (x1 + dx1 * w, y1 + dy1 * h, x2 + dx2 * w, y2 + dy2 * h)
    return moved if moved[2] - moved[0] >= 1 and moved[3] - moved[1] >= 1 else tuple(box)


def jitter_box(box: Sequence[float], rng: np.random.Generator, fraction: float) -> tuple[float, ...]:
    """Move each side of (x1, y1, x2, y2) by U(-fraction, fraction) x the box width/height."""
    return moved_box(box, rng.uniform(-fraction, fraction, size=4))


def noisy_box(box: Sequence[float], rng: np.random.Generator, noise: float) -> tuple[float, ...]:
    """Move each side of (x1, y1, x2, y2) by N(0, noise) x the box width/height, as a detector's
    box differs from the annotated one."""
    return moved_box(box, rng.normal(0.0, noise, size=4))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class _ImageJob:
    image_path: str
    items: tuple[tuple[int, PascalObject], ...]  # (position in the sorted object list, object)
    config: CropConfig


def crop_views(image: np.ndarray, obj: PascalObject, config: CropConfig,
               rng: np.random.Generator) -> list[tuple[np.ndarray, dict]]:
    """The crops of one object and their labels: the box, its jitters, and mirrors when enabled.

    Each entry is (uint8 (size, size, 3) crop, {"azimuth", "elevation", "theta", "jitter",
    "flipped", "box_iou"}); jittered and flipped views only for training objects, a noisy box
    only for test objects (`box_iou`: the cut box's IoU with the annotated one).
    """
    box = obj.crop_box()
    height, width = image.shape[:2]
    boxes = [noisy_box(box, rng, config.box_noise) if obj.split == "test" and config.box_noise else box]
    if obj.split == "train":
        for _ in range(config.jitter):
            candidate = jitter_box(box, rng, config.jitter_fraction)
            boxes.append(candidate if box_inside_image(candidate, width, height) else box)
    label = {"azimuth": obj.azimuth, "elevation": obj.elevation, "theta": obj.theta, "flipped": 0}
    views = [(crop_to_square(image, b, config.margin, config.resize, config.size),
              {**label, "jitter": k, "box_iou": box_iou(b, box)}) for k, b in enumerate(boxes)]
    if obj.split == "train" and config.flip:
        a, e, t = (float(v) for v in flip_viewpoint(obj.azimuth, obj.elevation, obj.theta))
        flipped = {"azimuth": a, "elevation": e, "theta": t, "flipped": 1}
        views += [(np.ascontiguousarray(crop[:, ::-1]), {**flipped, "jitter": view["jitter"],
                                                          "box_iou": view["box_iou"]})
                  for crop, view in views]
    return views


def _crop_image(job: _ImageJob) -> tuple[list, Counter, list[str]]:
    """Load one image and crop all its kept objects (runs in worker processes)."""
    skipped: Counter = Counter()
    try:
        image = load_image_rgb(job.image_path)
    except ValueError as error:
        skipped["unreadable_image"] += len(job.items)
        return [], skipped, [str(error)]
    height, width = image.shape[:2]
    crops, problems = [], []
    for position, obj in job.items:
        if not box_inside_image(obj.crop_box(), width, height):
            skipped["box_outside_image"] += 1
            problems.append(f"{job.image_path}: object {obj.object_index} bbox {list(obj.bbox)} "
                            f"lies outside the {width}x{height} image")
            continue
        rng = np.random.default_rng([job.config.seed, position])
        crops.append((position, crop_views(image, obj, job.config, rng)))
    return crops, skipped, problems


def _record(obj: PascalObject, group: int, instance: str, view: dict, root: str) -> dict:
    x1, y1, x2, y2 = obj.bbox
    try:
        image = str(Path(obj.image_path).relative_to(root))
    except ValueError:
        image = obj.image_path
    return {"group": group, "instance": instance, "category": obj.category, "split": obj.split,
            "source": obj.source, "azimuth": view["azimuth"], "elevation": view["elevation"],
            "theta": view["theta"], "distance": obj.distance, "has_pose": 1,
            # `image_file` is a path, never a bare VOC id: "2008_000027" would read back as a number;
            # not `image`, which GroupedDataset samples use for the pixels.
            "image_file": image, "object_index": obj.object_index, "cad_index": obj.cad_index,
            "bbox_x1": x1, "bbox_y1": y1, "bbox_x2": x2, "bbox_y2": y2,
            "truncated": int(obj.truncated), "occluded": int(obj.occluded),
            "difficult": int(obj.difficult), "coarse_viewpoint": int(obj.coarse),
            "jitter": view["jitter"], "flipped": view["flipped"], "box_iou": view["box_iou"]}


def build_dataset(index: Pascal3DIndex, out: str | Path, config: CropConfig, workers: int = 1,
                  progress: bool = False, created_by: dict | None = None) -> BuildResult:
    """Crop every kept object of `index` into a new grouped dataset at `out`.

    Images that cannot be read and boxes outside the real image are skipped, counted (added to
    the index's skip counts) and listed in `problems`. Raises ValueError when `out` exists and
    is not empty. Shards, table and manifest are each written under a temporary name and renamed.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"--out {out} exists and is not empty; choose a new folder or delete it")
    objects = sorted(index.objects, key=lambda o: (_SPLIT_ORDER.get(o.split, 2), o.category,
                                                   o.source, o.image_id, o.object_index))
    groups, instances = assign_groups(objects, config.grouping)
    by_image: dict[str, list[tuple[int, PascalObject]]] = {}
    for position, obj in enumerate(objects):
        by_image.setdefault(obj.image_path, []).append((position, obj))
    jobs = [_ImageJob(path, tuple(items), config) for path, items in by_image.items()]
    result = BuildResult(out=out, problems=list(index.problems),
                         skipped={split: Counter(c) for split, c in index.skipped.items()})
    writer = GroupedDatasetWriter(out, config.size, with_masks=False)
    for job, (crops, skipped, problems) in zip(jobs, parallel_map(_crop_image, jobs, workers,
                                                                   progress, "crop", "image")):
        split = job.items[0][1].split
        for reason, n in skipped.items():
            result.skipped.setdefault(split, Counter())[reason] += n
        result.problems.extend(problems)
        for position, views in crops:
            obj = objects[position]
            result.objects[obj.split] += 1
            for crop, view in views:
                writer.add(crop, _record(obj, groups[position], instances[position], view, index.root))
                result.images[obj.split] += 1
    writer.close({
        "source": index.layout, "root": index.root, "grouping": config.grouping,
        "crop": asdict(config), "crop_rule": CropRule(config.resize, config.margin).to_json(),
        "protocol": PROTOCOL, "seed": config.seed,
        "objects": dict(result.objects),
        "skipped": {split: dict(sorted(c.items())) for split, c in sorted(result.skipped.items())},
        "problems": len(result.problems), "created_by": created_by or {"library": __name__},
    })
    return result


__all__ = ["BOX_NOISE_MAX", "BuildResult", "CropConfig", "GROUPINGS", "PROTOCOL", "assign_groups", "build_dataset",
           "box_iou", "crop_views", "jitter_box", "moved_box", "noisy_box"]
