"""A grouped dataset without pose labels from a folder of images per object (semi-supervised data).

    ROOT/mug-01/frame-0001.jpg, frame-0002.jpg, ...     one sub-folder per object instance
    ROOT/mug-02/...                                     (e.g. frames of one video of it)

Each sub-folder becomes one group (instance) of split train with `has_pose` 0, cut by a crop rule
(data_tools.image.preprocess.crop_to_square) around the object box given for the image in an
optional boxes CSV (columns file,x1,y1,x2,y2; file relative to ROOT), else around the whole
image: so frames already cropped to the object, or boxes from a detector or tracker. The rule is
recorded in the manifest (`crop_rule`), so training may mix the set with renders made by the
same rule (`train --data renders --data mine --label-fraction ...`). An unreadable image or bad
box is reported on one line, skipped and counted; nothing is written half (GroupedDatasetWriter).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from data_tools.dataset import GroupedDatasetWriter
from data_tools.image.header import IMAGE_SUFFIXES
from data_tools.image.preprocess import DEFAULT_CROP_RULE, CropRule, crop_to_square, load_image_rgb


@dataclass
class FolderBuild:
    """What `build_from_image_folders` wrote: the dataset folder, counts and the skipped files."""

    root: Path
    groups: int = 0
    images: int = 0
    skipped: list[str] = field(default_factory=list)  # one message per skipped file


def object_folders(root: Path) -> list[Path]:
    """The sub-folders of `root` that hold image files, sorted by name (one per object)."""
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir())
    return [f for f in folders if any(p.suffix.lower() in IMAGE_SUFFIXES for p in f.iterdir())]


def read_boxes(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """{file relative to ROOT: (x1, y1, x2, y2)} from a CSV with columns file,x1,y1,x2,y2."""
    boxes = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file", "x1", "y1", "x2", "y2"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: lacks the columns {sorted(missing)} (want file,x1,y1,x2,y2)")
        for line, row in enumerate(reader, 2):
            try:
                boxes[row["file"]] = tuple(float(row[k]) for k in ("x1", "y1", "x2", "y2"))
            except ValueError:
                raise ValueError(f"{path}, line {line}: box {row} is not 4 numbers") from None
    return boxes


def build_from_image_folders(root: str | Path, out: str | Path, size: int = 64, category: str = "object",
                             rule: CropRule = DEFAULT_CROP_RULE, boxes_csv: str | Path | None = None,
                             say: Callable[[str], None] = print) -> FolderBuild:
    """Write the unlabelled grouped dataset of `root` (module docstring) to `out`."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise ValueError(f"{root}: no such folder")
    folders = object_folders(root)
    if not folders:
        raise ValueError(f"{root}: no sub-folder holds image files ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                         "put each object's images in a folder of its own")
    boxes = read_boxes(Path(boxes_csv)) if boxes_csv else {}
    result = FolderBuild(out)
    writer = GroupedDatasetWriter(out, image_size=size, with_masks=False)
    for group, folder in enumerate(folders):
        kept = 0
        for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            name = path.relative_to(root).as_posix()
            try:
                image = load_image_rgb(path)
                crop = crop_to_square(image, box=boxes.get(name), margin=rule.margin, mode=rule.mode, size=size)
            except ValueError as error:
                message = str(error) if str(error).startswith(str(path)) else f"{path}: {error}"
                result.skipped.append(message)
                say(f"skipped {message}")
                continue
            writer.add(crop, {"group": group, "instance": folder.name, "category": category, "split": "train",
                              "source": name, "has_pose": 0})
            kept += 1
        result.groups += kept > 0
        result.images += kept
    if result.images == 0:
        raise ValueError(f"{root}: none of the images could be read ({len(result.skipped)} skipped)")
    writer.close({"source": "image folders", "root": str(root.resolve()), "crop_rule": rule.to_json(),
                  "boxes": str(boxes_csv) if boxes_csv else None})
    return result
