"""The grouped dataset on disk: uint8 image files, a CSV table of records and a JSON manifest.

A dataset DIR is readable without this project (numpy + csv + json)::

    DIR/manifest.json          format, version, image_size, categories, counts per split, the
                               image files (`files`: name and image count), how it was made
    DIR/records.csv            one row per image: RECORD_COLUMNS, then any extra columns
    DIR/images/{file}.npy      uint8 (n, H, W, 3) RGB, memory-mappable (np.load(mmap_mode="r"))
    DIR/masks/{file}.npy       uint8 (n, H, W), 255 = object (absent for real photos)
    DIR/chunks/{chunk}/        records.csv and manifest.json of each chunk of a chunked build

{file} is `file-00000`, `file-00001`, ... for a dataset written in one go, and
`chunk-00003-00000`, ... (chunk, then file within it) for a build in chunks.
Row i of records.csv is image `offset` of file `file`. `group` is an int unique over the dataset
(one object instance); splits are by group, so test instances are never seen in training. Angles
are degrees in the PASCAL3D+ convention (data_tools.geometry); `has_pose` 0 means "no label".

Builds in chunks (`chunk="chunk-00003"`, see data_tools.render.build) write each chunk's files
to DIR/images and its table and manifest to DIR/chunks/{chunk}/; `merge_chunks` then writes the
top-level table. Every file goes through `data_tools.atomic_write` (temporary name, fsync,
rename, folder fsync), so a killed build never leaves a half file under a final name, only
temporaries that `remove_temporaries` deletes; the manifest is written last, so a chunk without
one is unfinished.

Format versions: 2 names the records column `file` (version 1 called it `shard`, and the
manifest's list `shards`); the reader reads both.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from data_tools.atomic_write import atomic_open, atomic_save_npy, atomic_write_json

FORMAT_NAME = "posenet-mlvae-grouped"
FORMAT_VERSION = 2
#: What format version 1 called the records column `file`.
VERSION_1_FILE_COLUMN = "shard"

#: Columns every records.csv starts with, in this order.
RECORD_COLUMNS = (
    "index", "file", "offset", "group", "instance", "category", "split", "source",
    "azimuth", "elevation", "theta", "distance", "has_pose",
)
_INT_COLUMNS = {"index", "offset", "group", "has_pose"}
_FLOAT_COLUMNS = {"azimuth", "elevation", "theta", "distance"}
_STR_COLUMNS = {"file", "instance", "category", "split", "source"}
SPLITS = ("train", "val", "test")


def _write_table(path: Path, rows: Sequence[dict]) -> None:
    """Write records.csv: RECORD_COLUMNS first, then every extra column in order of appearance."""
    columns = list(RECORD_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    with atomic_open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _format_cell(v) for k, v in row.items()})


def _format_cell(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if not math.isfinite(value) else repr(float(value))
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    return str(value)


def _parse_column(name: str, values: list[str]) -> np.ndarray:
    if name in _INT_COLUMNS:
        return np.asarray(values, dtype=np.int64)
    if name in _FLOAT_COLUMNS:
        return np.asarray([v if v != "" else "nan" for v in values], dtype=np.float64)
    if name in _STR_COLUMNS:
        return np.asarray(values, dtype=object)
    # Extra columns: numbers when every cell is one, else strings. Python's float() accepts
    # "2008_000027" (PEP 515 digit grouping), so cells with underscores stay text (VOC ids).
    if not any("_" in v for v in values):
        try:
            return np.asarray([v if v != "" else "nan" for v in values], dtype=np.float64)
        except ValueError:
            pass
    return np.asarray(values, dtype=object)


def read_table(path: Path) -> dict[str, np.ndarray]:
    """Read a records.csv into a dict of numpy column arrays (ints, floats or str objects).

    A version-1 table (a `shard` column, no `file` column) is read with that column as `file`."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            header = next(reader)
        except StopIteration:
            raise ValueError(f"{path}: empty records table (no header)") from None
        if "file" not in header:
            header = ["file" if name == VERSION_1_FILE_COLUMN else name for name in header]
        missing = [c for c in RECORD_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: records table lacks columns {missing}")
        cells: list[list[str]] = [[] for _ in header]
        for line_no, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path}:{line_no}: expected {len(header)} cells, got {len(row)}")
            for column, cell in zip(cells, row):
                column.append(cell)
    return {name: _parse_column(name, column) for name, column in zip(header, cells)}


def read_manifest(root: Path) -> dict:
    """The manifest.json of a dataset directory, checked for format and version."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{root}: not a grouped dataset (no manifest.json); build one with "
                         "`posenet-mlvae render` or `posenet-mlvae pascal3d`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: format is {manifest.get('format')!r}, expected {FORMAT_NAME!r}")
    if manifest.get("version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: format version {manifest['version']} is newer than this "
                         f"reader ({FORMAT_VERSION}); upgrade posenet-mlvae")
    return manifest


def read_records(root: Path) -> dict[str, np.ndarray]:
    """All rows of DIR/records.csv as numpy columns (format version 1 or 2)."""
    return read_table(Path(root) / "records.csv")


def count_splits(records: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Images and groups per split, as stored in the manifest's `counts`."""
    counts = {}
    for split in sorted(set(records["split"].tolist())):
        rows = records["split"] == split
        counts[split] = {"images": int(rows.sum()), "groups": int(len(np.unique(records["group"][rows])))}
    return counts


class GroupedDatasetWriter:
    """Stream images and records into a grouped dataset with constant memory.

    >>> writer = GroupedDatasetWriter(out_dir, image_size=64)
    >>> writer.add(image, {"group": 0, "instance": "car-0", "category": "car", "split": "train",
    ...                    "azimuth": 30.0, "elevation": 10.0, "theta": 0.0, "distance": 5.0})
    >>> writer.close({"source": "synthetic", "seed": 0})
    """

    def __init__(self, root: Path, image_size: int, file_images: int = 4096, with_masks: bool = True,
                 chunk: str | None = None):
        """`file_images`: images per .npy file; `chunk`: write as that chunk of a chunked build."""
        if image_size <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.root = Path(root)
        self.image_size = int(image_size)
        self.file_images = int(file_images)
        self.with_masks = with_masks
        self.chunk = chunk
        self.table_dir = self.root if chunk is None else self.root / "chunks" / chunk
        self.file_prefix = "file" if chunk is None else chunk
        for folder in (self.root / "images", self.table_dir) + ((self.root / "masks",) if with_masks else ()):
            folder.mkdir(parents=True, exist_ok=True)
        size = self.image_size
        self._images = np.zeros((self.file_images, size, size, 3), np.uint8)
        self._masks = np.zeros((self.file_images, size, size), np.uint8) if with_masks else None
        self._fill = 0
        self._files: list[dict] = []
        self._rows: list[dict] = []
        self._closed = False

    def add(self, image: np.ndarray, record: dict, mask: np.ndarray | None = None) -> None:
        """Append one (H, W, 3) uint8 RGB image, its record and, if the dataset has masks, its mask."""
        size = self.image_size
        if image.shape != (size, size, 3) or image.dtype != np.uint8:
            raise ValueError(f"image must be uint8 ({size}, {size}, 3), got {image.dtype} {image.shape}")
        if self.with_masks:
            if mask is None or mask.shape != (size, size):
                got = None if mask is None else mask.shape
                raise ValueError(f"mask must be ({size}, {size}) for a dataset with masks, got {got}")
        for key in ("group", "category", "split"):
            if key not in record:
                raise ValueError(f"record lacks {key!r}: {record}")
        if record["split"] not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {record['split']!r}")
        self._images[self._fill] = image
        if self.with_masks:
            self._masks[self._fill] = mask
        pose = {k: float(record.get(k, math.nan)) for k in ("azimuth", "elevation", "theta", "distance")}
        has_pose = int(record.get("has_pose", all(math.isfinite(pose[k]) for k in ("azimuth", "elevation", "theta"))))
        row = {
            "index": len(self._rows), "file": self._file_name(len(self._files)), "offset": self._fill,
            "group": int(record["group"]), "instance": record.get("instance", str(record["group"])),
            "category": record["category"], "split": record["split"], "source": record.get("source", ""),
            **pose, "has_pose": has_pose,
        }
        row.update({k: v for k, v in record.items() if k not in row})
        self._rows.append(row)
        self._fill += 1
        if self._fill == self.file_images:
            self._flush()

    def _file_name(self, k: int) -> str:
        return f"{self.file_prefix}-{k:05d}"

    def _flush(self) -> None:
        if self._fill == 0:
            return
        name = self._file_name(len(self._files))
        atomic_save_npy(self.root / "images" / f"{name}.npy", self._images[: self._fill])
        if self.with_masks:
            atomic_save_npy(self.root / "masks" / f"{name}.npy", self._masks[: self._fill])
        self._files.append({"name": name, "count": self._fill})
        self._fill = 0

    def close(self, manifest: dict | None = None) -> Path:
        """Flush the last file, then write records.csv and manifest.json (the manifest last)."""
        if self._closed:
            raise ValueError("GroupedDatasetWriter.close() called twice")
        self._flush()
        _write_table(self.table_dir / "records.csv", self._rows)
        categories = sorted({row["category"] for row in self._rows})
        counts = count_splits({"split": np.asarray([r["split"] for r in self._rows], dtype=object),
                               "group": np.asarray([r["group"] for r in self._rows], dtype=np.int64)})
        full = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "image_size": self.image_size,
                "categories": categories, "counts": counts, "has_masks": self.with_masks,
                "files": self._files, **(manifest or {})}
        atomic_write_json(self.table_dir / "manifest.json", full)
        self._closed = True
        return self.table_dir


def chunk_is_complete(root: Path, chunk: str) -> bool:
    """True when a chunk of a build finished (its manifest, written last, exists)."""
    return (Path(root) / "chunks" / chunk / "manifest.json").is_file()


def merge_chunks(root: Path, chunks: Iterable[str], manifest: dict | None = None) -> Path:
    """Join finished chunks of a build into DIR/records.csv and DIR/manifest.json.

    Rows keep their chunk's order, chunks are taken in the given order, and `index` is renumbered.
    Raises ValueError naming any chunk that has not finished.
    """
    root = Path(root)
    chunks = list(chunks)
    unfinished = [c for c in chunks if not chunk_is_complete(root, c)]
    if unfinished:
        raise ValueError(f"{root}: chunks not finished: {unfinished}; build them before merging")
    rows: list[dict] = []
    files: list[dict] = []
    base: dict = {}
    for chunk in chunks:
        chunk_dir = root / "chunks" / chunk
        chunk_manifest = json.loads((chunk_dir / "manifest.json").read_text())
        base = base or chunk_manifest
        files.extend(chunk_manifest["files"])
        with open(chunk_dir / "records.csv", newline="", encoding="utf-8") as f:
            rows.extend(csv.DictReader(f))
    for i, row in enumerate(rows):
        row["index"] = i
    _write_table(root / "records.csv", rows)
    records = read_records(root)
    merged = {**base, **(manifest or {}), "files": files, "counts": count_splits(records),
              "categories": sorted(set(records["category"].tolist())), "chunks": chunks}
    atomic_write_json(root / "manifest.json", merged)
    return root


class GroupedDataset:
    """Read a grouped dataset: filtered records as numpy columns, images memory-mapped.

    `dataset[i]` gives one sample as a dict; `dataset.images(indices)` gathers a batch of uint8
    images (n, H, W, 3) in one call, which is what training loops should use.
    """

    def __init__(self, root: Path, split: str | Sequence[str] | None = None,
                 categories: Sequence[str] | None = None, in_memory: bool = False):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        records = read_records(self.root)
        keep = np.ones(len(records["index"]), bool)
        if split is not None:
            splits = [split] if isinstance(split, str) else list(split)
            unknown = [s for s in splits if s not in SPLITS]
            if unknown:
                raise ValueError(f"unknown split {unknown}; choose from {SPLITS}")
            keep &= np.isin(records["split"], splits)
        if categories is not None:
            keep &= np.isin(records["category"], list(categories))
        self.records = {name: column[keep] for name, column in records.items()}
        self.image_size = int(self.manifest["image_size"])
        self.has_masks = bool(self.manifest.get("has_masks", (self.root / "masks").is_dir()))
        self._in_memory = in_memory
        self._arrays: dict[tuple[str, str], np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.records["index"])

    def _array(self, kind: str, file: str) -> np.ndarray:
        key = (kind, file)
        if key not in self._arrays:
            path = self.root / kind / f"{file}.npy"
            if not path.is_file():
                raise ValueError(f"{path}: image file listed in records.csv is missing")
            array = np.load(path, mmap_mode="r")
            self._arrays[key] = np.ascontiguousarray(array) if self._in_memory else array
        return self._arrays[key]

    def _gather(self, kind: str, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        files = self.records["file"][indices]
        offsets = self.records["offset"][indices]
        unique = np.unique(files)
        if len(unique) == 1:
            return np.asarray(self._array(kind, unique[0])[offsets])
        first = self._array(kind, unique[0])
        out = np.empty((len(indices),) + first.shape[1:], first.dtype)
        for file in unique:
            rows = files == file
            out[rows] = self._array(kind, file)[offsets[rows]]
        return out

    def images(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (n, H, W, 3) RGB images of the given rows (positions in this filtered dataset)."""
        return self._gather("images", indices)

    def masks(self, indices: Sequence[int]) -> np.ndarray | None:
        """uint8 (n, H, W) masks of the given rows, or None for datasets without masks."""
        return self._gather("masks", indices) if self.has_masks else None

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} images")
        i = i % len(self)
        sample = {name: column[i] for name, column in self.records.items()}
        sample["image"] = self.images([i])[0]
        sample["mask"] = self.masks([i])[0] if self.has_masks else None
        return sample


__all__ = [
    "GroupedDataset", "GroupedDatasetWriter", "RECORD_COLUMNS", "SPLITS", "chunk_is_complete",
    "count_splits", "merge_chunks", "read_manifest", "read_records", "read_table",
]
