"""Read one PASCAL3D+ / ObjectNet3D annotation `.mat` file into plain Python.

Each file holds a MATLAB struct `record` whose `objects` field is a 1xN struct array (spec
PASCAL3D.md section 2). scipy.io.loadmat presents it differently by option: by default every
struct is a (1,1) or (1,N) structured array and every leaf a 2-D array; with squeeze_me=True a
record with a single object is a 0-d struct rather than a list of one (the "squeeze pitfall");
with struct_as_record=False structs are `mat_struct` objects. MATLAB logicals come back as uint8,
empty matrices as (0,0) arrays. `read_record` accepts all of these and returns lists, floats and
strings, so the protocol code never indexes scipy arrays.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

FILE_NOT_MAT = "file_not_mat"
FILE_WITHOUT_OBJECTS = "file_without_objects"


class AnnotationError(ValueError):
    """A whole annotation file is unusable; `reason` is one of the FILE_* reasons."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def _structs(value: Any) -> list[dict[str, Any]]:
    """A MATLAB struct (array) in any scipy layout -> list of {field: raw value}; [] if none."""
    from scipy.io.matlab import mat_struct

    if isinstance(value, dict):
        return [value]
    if isinstance(value, mat_struct):
        return [{name: getattr(value, name) for name in value._fieldnames}]
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            return [{name: item[name] for name in value.dtype.names} for item in value.reshape(-1)]
        if value.dtype == object:
            return [s for item in value.reshape(-1) for s in _structs(item)]
    return []  # [] (0x0 double) or anything that is not a struct


def _unwrap(value: Any) -> Any:
    """Peel the one-element object arrays scipy wraps struct fields in."""
    while isinstance(value, np.ndarray) and value.dtype == object and value.size == 1:
        value = value.reshape(-1)[0]
    return value


def _text(value: Any) -> str:
    value = _unwrap(value)
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "US":
        return "".join(str(s) for s in value.reshape(-1))
    return ""


def _numbers(value: Any) -> np.ndarray:
    """Numeric leaf (scalar, (1,1), (1,N), uint8 logical) -> float64 1-D; empty if not numeric."""
    value = _unwrap(value)
    if isinstance(value, str) or value is None:
        return np.zeros(0)
    try:
        return np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return np.zeros(0)


def _number(value: Any, default: float = math.nan) -> float:
    values = _numbers(value)
    return float(values[0]) if values.size else default


def read_record(path: str | Path, squeeze_me: bool = False, struct_as_record: bool = True) -> dict:
    """Read one annotation file into plain Python, the same for every scipy layout.

    squeeze_me / struct_as_record are passed to scipy.io.loadmat (the defaults are fastest);
    the result does not depend on them.

    Returns {"filename": str, "width": float, "height": float (NaN if the record has no size),
    "objects": [{"class", "bbox" (list of 4 floats or None), "truncated", "occluded",
    "difficult" (bool), "viewpoint" ({field: float, NaN if empty} or None), "cad_index" (int,
    0 if none)}]}. Raises AnnotationError (a ValueError) for a file that is not a MAT file or
    whose record has no objects.
    """
    from scipy.io import loadmat

    try:
        mat = loadmat(path, squeeze_me=squeeze_me, struct_as_record=struct_as_record)
    except Exception as error:  # scipy raises many types (ValueError, MatReadError, OSError, ...)
        raise AnnotationError(f"{path}: not a readable MAT file ({error})", FILE_NOT_MAT) from error
    records = _structs(mat.get("record"))
    if not records:
        raise AnnotationError(f"{path}: no 'record' struct in the MAT file", FILE_WITHOUT_OBJECTS)
    record = records[0]
    if "objects" not in record:
        raise AnnotationError(f"{path}: record has no 'objects' field", FILE_WITHOUT_OBJECTS)
    raw_objects = _structs(record["objects"])
    if not raw_objects:
        raise AnnotationError(f"{path}: record.objects is empty", FILE_WITHOUT_OBJECTS)
    size = _numbers(record.get("imgsize"))  # [width height depth]
    if size.size < 2:
        sizes = _structs(record.get("size"))
        size = np.array([_number(sizes[0].get("width")), _number(sizes[0].get("height"))]
                        if sizes else [math.nan, math.nan])
    return {"filename": _text(record.get("filename")), "width": float(size[0]),
            "height": float(size[1]), "objects": [_object_fields(o) for o in raw_objects]}


def _object_fields(raw: dict[str, Any]) -> dict:
    bbox = _numbers(raw.get("bbox"))
    viewpoints = _structs(raw.get("viewpoint"))
    return {
        "class": _text(raw.get("class")),
        "bbox": bbox.tolist() if bbox.size == 4 and np.isfinite(bbox).all() else None,
        "truncated": _number(raw.get("truncated"), 0.0) != 0,
        "occluded": _number(raw.get("occluded"), 0.0) != 0,
        "difficult": _number(raw.get("difficult"), 0.0) != 0,
        "viewpoint": ({name: _number(v) for name, v in viewpoints[0].items()} if viewpoints else None),
        "cad_index": int(_number(raw.get("cad_index"), 0.0)),
    }



__all__ = ["AnnotationError", "FILE_NOT_MAT", "FILE_WITHOUT_OBJECTS", "read_record"]
