"""Read PASCAL3D+ release 1.1 annotations and select objects by the standard viewpoint protocol.

Layout (spec /work/shared/PASCAL3D.md sections 1-2)::

    ROOT/Annotations/{cls}_{pascal,imagenet}/{id}.mat    one MATLAB `record` per image
    ROOT/Images/{cls}_pascal/{id}.jpg, ROOT/Images/{cls}_imagenet/{id}.JPEG
    ROOT/Image_sets/{cls}_imagenet_{train,val}.txt
    ROOT/PASCAL/VOCdevkit/VOC2012/ImageSets/Main/{train,val}.txt

`record.objects` lists every object of the image, of all VOC classes; only objects of the
folder's class carry a `viewpoint` (azimuth, elevation, theta in degrees, distance, principal
point px/py, focal, viewport) and a `cad_index` (1-based CAD sub-type).

Standard protocol (Tulsiani & Malik 2015, used by RenderForCNN, StarMap, PoseFromShape):
* test  = VOC2012 `val` objects of the class, non-empty viewpoint, not a = e = theta = 0,
  difficult = truncated = occluded = 0;
* train = VOC2012 `train` objects (not difficult) + ImageNet objects of the `train` and `val`
  lists (not truncated, not occluded), also not a = e = theta = 0: that is the annotation tool's
  placeholder, and Tulsiani's `readVpsData*` and StarMap drop it from both splits (PASCAL3D.md
  section 3.2 table; section 3.4 lists it for the test set). Training objects whose viewpoint
  has only the coarse fields take them with theta = 0 (Tulsiani); test objects need the
  continuous fit.
Every object that is not kept is counted under one reason (checked in the order of
`OBJECT_REASONS`); files that cannot be used at all are counted under a `file_*` reason.

ObjectNet3D (same record schema, `Annotations/{id}.mat` holding all classes, `Images/{id}.JPEG`,
`Image_sets/{train,val}.txt`) goes through the same code path: its `train` list is the training
split and its `val` list the test split, with the same object filters as ImageNet (train) and
VOC val (test); negative azimuths are wrapped into [0, 360).

Reading one `.mat` file (every scipy layout, every variant of the record) is
`data_tools.pascal3d.mat.read_record`.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from data_tools.geometry import wrap_azimuth, wrap_theta
from data_tools.pascal3d.mat import (FILE_NOT_MAT, FILE_WITHOUT_OBJECTS, AnnotationError,
                                     read_record)
from data_tools.workers import default_workers, parallel_map

CATEGORIES = ("aeroplane", "bicycle", "boat", "bottle", "bus", "car", "chair", "diningtable",
              "motorbike", "sofa", "train", "tvmonitor")
LAYOUTS = ("pascal3d", "objectnet3d")
VOC_LISTS = Path("PASCAL/VOCdevkit/VOC2012/ImageSets/Main")

# File-level reasons (FILE_*) count files; object-level reasons count objects.
FILE_NOT_IN_SPLITS = "file_not_in_split_lists"
OBJECT_REASONS = ("other_class", "no_bbox", "empty_viewpoint", "coarse_only_viewpoint",
                  "zero_viewpoint", "difficult", "truncated", "occluded", "box_outside_image",
                  "missing_image", "unreadable_image")


@dataclass(frozen=True)
class PascalObject:
    """One annotated object kept by the protocol. Angles in degrees (PASCAL3D+ convention).

    bbox is as stored in the file: (x1, y1, x2, y2), 1-based, inclusive (VOC); `crop_box` gives
    the 0-based, end-exclusive box that `data_tools.image.preprocess.crop_to_square` takes.
    distance is NaN when only coarse angles exist (`coarse` True, theta 0).
    """

    category: str
    source: str  # "pascal" | "imagenet" | "objectnet3d"
    image_id: str
    image_path: str
    object_index: int  # 0-based position in record.objects
    bbox: tuple[float, float, float, float]
    truncated: bool
    occluded: bool
    difficult: bool
    azimuth: float
    elevation: float
    theta: float
    distance: float
    px: float
    py: float
    focal: float
    viewport: float
    cad_index: int  # 1-based into CAD/{cls}.mat; 0 when the file gives none
    split: str  # "train" | "test"
    coarse: bool = False

    def crop_box(self) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = self.bbox
        return (x1 - 1.0, y1 - 1.0, x2, y2)


@dataclass
class Pascal3DIndex:
    """The result of indexing: kept objects, skip counts per split and one line per bad input."""

    root: str
    layout: str
    categories: tuple[str, ...]
    objects: list[PascalObject] = field(default_factory=list)
    skipped: dict[str, Counter] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def kept(self) -> dict[str, Counter]:
        """Kept objects per split, per category."""
        counts: dict[str, Counter] = {}
        for obj in self.objects:
            counts.setdefault(obj.split, Counter())[obj.category] += 1
        return counts

    def count_skip(self, split: str, reason: str, n: int = 1) -> None:
        self.skipped.setdefault(split, Counter())[reason] += n


# --------------------------------------------------------------------------- protocol

def _pose(viewpoint: dict[str, float]) -> tuple[dict[str, float], bool] | None:
    """Angles and camera of a viewpoint: continuous fit, else the coarse angles with theta 0."""
    get = viewpoint.get
    camera = {"px": get("px", math.nan), "py": get("py", math.nan),
              "focal": get("focal", math.nan), "viewport": get("viewport", math.nan)}
    azimuth, elevation = get("azimuth", math.nan), get("elevation", math.nan)
    if math.isfinite(azimuth) and math.isfinite(elevation):
        theta = get("theta", math.nan)
        return {"azimuth": azimuth, "elevation": elevation,
                "theta": theta if math.isfinite(theta) else 0.0,
                "distance": get("distance", math.nan), **camera}, False
    azimuth, elevation = get("azimuth_coarse", math.nan), get("elevation_coarse", math.nan)
    if math.isfinite(azimuth) and math.isfinite(elevation):
        return {"azimuth": azimuth, "elevation": elevation, "theta": 0.0,
                "distance": math.nan, **camera}, True
    return None


def _flag_reason(obj: dict, split: str, source: str) -> str | None:
    """The protocol's flag filters: test needs a clean object; train filters depend on the source."""
    if split == "test":
        flags = ("difficult", "truncated", "occluded")
    elif source == "pascal":
        flags = ("difficult",)
    else:
        flags = ("truncated", "occluded")
    return next((flag for flag in flags if obj[flag]), None)


def box_inside_image(box: Sequence[float], width: float, height: float) -> bool:
    """Whether a 0-based end-exclusive box overlaps the image by at least one pixel each way."""
    x1, y1, x2, y2 = box
    if not (math.isfinite(width) and math.isfinite(height)):
        return x2 - x1 >= 1 and y2 - y1 >= 1  # size unknown here: checked again on the pixels
    return min(x2, width) - max(x1, 0.0) >= 1 and min(y2, height) - max(y1, 0.0) >= 1


@dataclass(frozen=True)
class _FileJob:
    annotation: str
    image_dir: str
    image_ext: str  # used when the record has no `filename`
    source: str
    split: str
    categories: tuple[str, ...]


@dataclass
class _FileResult:
    objects: list[PascalObject] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def _index_file(job: _FileJob) -> _FileResult:
    """Parse one annotation file and keep the objects that pass the protocol (runs in workers)."""
    result = _FileResult()
    try:
        record = read_record(job.annotation)
    except AnnotationError as error:
        result.skipped[error.reason] += 1
        result.problems.append(str(error))
        return result
    image_id = Path(job.annotation).stem
    image_path = os.path.join(job.image_dir, record["filename"] or image_id + job.image_ext)
    for index, obj in enumerate(record["objects"]):
        reason, pose = _object_reason(obj, job, record)
        if reason is None:
            angles, coarse = pose
            result.objects.append(PascalObject(
                category=obj["class"], source=job.source, image_id=image_id, image_path=image_path,
                object_index=index, bbox=tuple(obj["bbox"]), truncated=obj["truncated"],
                occluded=obj["occluded"], difficult=obj["difficult"], cad_index=obj["cad_index"],
                split=job.split, coarse=coarse, **angles))
            continue
        result.skipped[reason] += 1
        if reason == "no_bbox":
            result.problems.append(f"{job.annotation}: object {index} ({obj['class']}) has no usable bbox")
        elif reason == "box_outside_image":
            result.problems.append(f"{job.annotation}: object {index} ({obj['class']}) bbox "
                                   f"{obj['bbox']} lies outside the {record['width']:g}x"
                                   f"{record['height']:g} image")
    if result.objects and not os.path.isfile(image_path):
        result.skipped["missing_image"] += len(result.objects)
        result.problems.append(f"{image_path}: image missing (annotation {job.annotation})")
        result.objects = []
    return result


def _object_reason(obj: dict, job: _FileJob, record: dict) -> tuple[str | None, Any]:
    """(skip reason, None) or (None, (pose dict, coarse flag)), checked in OBJECT_REASONS order."""
    if obj["class"] not in job.categories:
        return "other_class", None
    if obj["bbox"] is None:
        return "no_bbox", None
    if obj["viewpoint"] is None:
        return "empty_viewpoint", None
    pose = _pose(obj["viewpoint"])
    if pose is None:
        return "empty_viewpoint", None
    if pose[1] and job.split == "test":
        return "coarse_only_viewpoint", None
    angles = pose[0]
    if angles["azimuth"] == 0 and angles["elevation"] == 0 and angles["theta"] == 0:
        return "zero_viewpoint", None
    flag = _flag_reason(obj, job.split, job.source)
    if flag is not None:
        return flag, None
    x1, y1, x2, y2 = obj["bbox"]
    if not box_inside_image((x1 - 1, y1 - 1, x2, y2), record["width"], record["height"]):
        return "box_outside_image", None
    if not 0.0 <= angles["azimuth"] < 360.0:  # ObjectNet3D has negative azimuths
        angles["azimuth"] = float(wrap_azimuth(angles["azimuth"]))
    if not -180.0 < angles["theta"] <= 180.0:
        angles["theta"] = float(wrap_theta(angles["theta"]))
    return None, pose


# --------------------------------------------------------------------------- listing files

def _read_ids(path: Path) -> set[str]:
    """Ids of a list file: first token per line (VOC `{cls}_val.txt` lines carry a label too)."""
    return {line.split()[0] for line in path.read_text().splitlines() if line.strip()}


def _require(root: Path, relative: str | Path, what: str) -> Path:
    path = root / relative
    if not path.exists():
        raise ValueError(f"{root}: missing {relative} ({what}); --root must be the "
                         "PASCAL3D+_release1.1 folder (with Annotations/, Images/, Image_sets/, "
                         "PASCAL/) or an ObjectNet3D folder (Annotations/, Images/, Image_sets/train.txt)")
    return path


def detect_layout(root: str | Path) -> str:
    """"pascal3d" or "objectnet3d", from the folders present; ValueError naming what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"--root {root} is not a folder; pass the PASCAL3D+_release1.1 folder")
    if not (root / "PASCAL").exists() and (root / "Image_sets" / "train.txt").is_file():
        return "objectnet3d"
    return "pascal3d"


def _pascal3d_jobs(root: Path, categories: Sequence[str], index: Pascal3DIndex) -> list[_FileJob]:
    for relative in ("Annotations", "Images", "Image_sets"):
        _require(root, relative, "PASCAL3D+ folder")
    _require(root, VOC_LISTS, "VOC2012 split lists")
    val_ids = _read_ids(_require(root, VOC_LISTS / "val.txt", "VOC2012 val list"))
    train_ids = _read_ids(_require(root, VOC_LISTS / "train.txt", "VOC2012 train list")) - val_ids
    jobs = []
    for cls in categories:
        imagenet_ids: set[str] = set()
        for part in ("train", "val"):
            imagenet_ids |= _read_ids(_require(root, f"Image_sets/{cls}_imagenet_{part}.txt",
                                               "ImageNet split list"))
        for source, ext, splits in (("pascal", ".jpg", {"test": val_ids, "train": train_ids}),
                                    ("imagenet", ".JPEG", {"train": imagenet_ids})):
            folder = _require(root, f"Annotations/{cls}_{source}", f"{cls} annotations")
            image_dir = str(root / "Images" / f"{cls}_{source}")
            for path in sorted(folder.glob("*.mat")):
                split = next((s for s, ids in splits.items() if path.stem in ids), None)
                if split is None:
                    index.count_skip("unassigned", FILE_NOT_IN_SPLITS)
                    continue
                jobs.append(_FileJob(str(path), image_dir, ext, source, split, (cls,)))
    return jobs


def _objectnet3d_jobs(root: Path, categories: Sequence[str], index: Pascal3DIndex) -> list[_FileJob]:
    folder = _require(root, "Annotations", "ObjectNet3D annotations")
    _require(root, "Images", "ObjectNet3D images")
    splits = {"test": _read_ids(_require(root, "Image_sets/val.txt", "ObjectNet3D val list")),
              "train": _read_ids(_require(root, "Image_sets/train.txt", "ObjectNet3D train list"))}
    jobs = []
    for path in sorted(folder.glob("*.mat")):
        split = next((s for s, ids in splits.items() if path.stem in ids), None)
        if split is None:
            index.count_skip("unassigned", FILE_NOT_IN_SPLITS)
            continue
        jobs.append(_FileJob(str(path), str(root / "Images"), ".JPEG", "objectnet3d", split,
                             tuple(categories)))
    return jobs


def index_dataset(root: str | Path, categories: Sequence[str], workers: int | None = None,
                  progress: bool = False, layout: str = "auto") -> Pascal3DIndex:
    """Index PASCAL3D+ (or ObjectNet3D) annotations of `categories` under the standard protocol.

    workers: processes parsing files in parallel (None = up to 8 CPU cores, 1 = serial).
    layout: "auto" (ObjectNet3D when ROOT has Image_sets/train.txt and no PASCAL/), "pascal3d"
    or "objectnet3d". Raises ValueError for a wrong root (naming the missing folder) or an
    unknown category; bad files are counted and listed in `problems`, never raised.
    """
    root = Path(root)
    if layout == "auto":
        layout = detect_layout(root)
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}; choose 'auto' or one of {LAYOUTS}")
    categories = tuple(dict.fromkeys(categories))
    if not categories:
        raise ValueError("no category given; choose from " + ", ".join(CATEGORIES))
    unknown = [c for c in categories if c not in CATEGORIES]
    if layout == "pascal3d" and unknown:
        raise ValueError(f"unknown PASCAL3D+ categories {unknown}; choose from {', '.join(CATEGORIES)}")
    index = Pascal3DIndex(root=str(root), layout=layout, categories=categories)
    make_jobs = _pascal3d_jobs if layout == "pascal3d" else _objectnet3d_jobs
    jobs = make_jobs(root, categories, index)
    workers = default_workers() if workers is None else max(1, int(workers))
    for job, result in zip(jobs, parallel_map(_index_file, jobs, workers, progress, "index")):
        index.objects.extend(result.objects)
        index.problems.extend(result.problems)
        for reason, n in result.skipped.items():
            index.count_skip(job.split, reason, n)
    return index


__all__ = ["AnnotationError", "CATEGORIES", "FILE_NOT_IN_SPLITS", "FILE_NOT_MAT",
           "FILE_WITHOUT_OBJECTS", "LAYOUTS", "OBJECT_REASONS", "Pascal3DIndex",
           "PascalObject", "box_inside_image", "detect_layout", "index_dataset", "read_record"]
