"""Checks on an .onnx file before ONNX Runtime opens it: external data stays beside the model.

A tensor stored outside the .onnx file names its data file in `external_data` ("location").
A model from elsewhere could point that at `../../home/user/.ssh/id_rsa` or `/etc/shadow`, and
the runtime would read it. `external_data_locations` lists those names by walking the protobuf
wire format directly (no `onnx` package, so the torch-free predictor needs nothing more), and
`check_external_data` refuses any that is absolute or resolves (symlinks followed) outside the
model's own folder.
"""

from __future__ import annotations

import os
from pathlib import Path

# Field numbers of onnx.proto (onnx/onnx.proto3), only those on the way to a TensorProto.
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_FUNCTION_NODE = 7
_NODE_ATTRIBUTE = 5
_ATTRIBUTE_TENSOR, _ATTRIBUTE_GRAPH, _ATTRIBUTE_TENSORS, _ATTRIBUTE_GRAPHS = 5, 6, 10, 11
_ATTRIBUTE_SPARSE_TENSOR, _ATTRIBUTE_SPARSE_TENSORS = 22, 23
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("corrupt protobuf varint")
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position += 1
        if not byte & 0x80:
            return value, position
        shift += 7


def _fields(data: memoryview) -> list[tuple[int, int | memoryview]]:
    """(field number, value) of one protobuf message: varints as int, length-delimited as views."""
    out, position = [], 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(data, position)
        elif wire == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ValueError("corrupt protobuf: a field runs past the end of the file")
            value, position = data[position:position + length], position + length
        elif wire in (1, 5):
            value, position = 0, position + (8 if wire == 1 else 4)
        else:
            raise ValueError(f"corrupt protobuf: wire type {wire}")
        out.append((number, value))
    return out


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8", "replace")


def _tensor_locations(tensor: memoryview) -> list[tuple[str, str]]:
    fields = _fields(tensor)
    if not any(n == _TENSOR_DATA_LOCATION and v == _EXTERNAL for n, v in fields):
        return []
    name = next((_text(v) for n, v in fields if n == _TENSOR_NAME), "")
    for number, entry in fields:
        if number == _TENSOR_EXTERNAL_DATA:
            entry_fields = dict(_fields(entry))
            if entry_fields.get(_ENTRY_KEY) == b"location":
                return [(name, _text(entry_fields.get(_ENTRY_VALUE, memoryview(b""))))]
    return [(name, "")]


def _sparse_locations(sparse: memoryview) -> list[tuple[str, str]]:
    return [loc for n, v in _fields(sparse) if n in (_SPARSE_VALUES, _SPARSE_INDICES)
            for loc in _tensor_locations(v)]


def _node_locations(node: memoryview) -> list[tuple[str, str]]:
    found = []
    for number, attribute in _fields(node):
        if number != _NODE_ATTRIBUTE:
            continue
        for field, value in _fields(attribute):
            if field in (_ATTRIBUTE_TENSOR, _ATTRIBUTE_TENSORS):
                found += _tensor_locations(value)
            elif field in (_ATTRIBUTE_GRAPH, _ATTRIBUTE_GRAPHS):
                found += _graph_locations(value)  # subgraphs of If / Loop / Scan
            elif field in (_ATTRIBUTE_SPARSE_TENSOR, _ATTRIBUTE_SPARSE_TENSORS):
                found += _sparse_locations(value)
    return found


def _graph_locations(graph: memoryview) -> list[tuple[str, str]]:
    found = []
    for number, value in _fields(graph):
        if number == _GRAPH_INITIALIZER:
            found += _tensor_locations(value)
        elif number == _GRAPH_SPARSE_INITIALIZER:
            found += _sparse_locations(value)
        elif number == _GRAPH_NODE:
            found += _node_locations(value)
    return found


def external_data_locations(model_bytes: bytes) -> list[tuple[str, str]]:
    """(tensor name, location) of every tensor of a serialized ModelProto kept in external data.

    Looks in initializers, sparse initializers, node attributes, subgraphs and functions.
    ValueError for bytes that are not a well-formed protobuf message.
    """
    found = []
    for number, value in _fields(memoryview(model_bytes)):
        if number == _MODEL_GRAPH:
            found += _graph_locations(value)
        elif number == _MODEL_FUNCTIONS:
            found += [loc for n, node in _fields(value) if n == _FUNCTION_NODE
                      for loc in _node_locations(node)]
    return found


def check_external_data(model_path: str | os.PathLike) -> None:
    """Refuse a model whose external data lies outside its folder (ValueError naming the tensor).

    A location must be relative, and the file it names (symlinks resolved) must lie inside the
    folder that holds the .onnx file. A model that is not a parsable protobuf passes through:
    ONNX Runtime then reports it as not loadable.
    """
    path = Path(model_path)
    try:
        locations = external_data_locations(path.read_bytes())
    except ValueError:  # not an ONNX model at all: ONNX Runtime says so when it opens it
        return
    except RecursionError:
        raise ValueError(f"{path}: refused: subgraphs nested too deeply to check where its "
                         "tensors' data comes from") from None
    folder = path.resolve().parent
    for tensor, location in locations:
        target = (folder / location).resolve()
        if not location or Path(location).is_absolute() or not target.is_relative_to(folder):
            raise ValueError(
                f"{path}: refused: tensor {tensor!r} reads its external data from {location!r}, "
                f"outside the model's folder {folder}; a model may only use data files beside "
                "it (re-export it, or copy the data file next to the .onnx and fix the location)")


__all__ = ["check_external_data", "external_data_locations"]
