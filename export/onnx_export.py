"""Export a tensor-in/tensor-out torch module to ONNX and check it against torch with ONNX Runtime.

This module knows ONNX, not the ML-VAE (DESIGN.md sections 1 and 5): it takes any `nn.Module`
whose `forward(*inputs)` returns a tensor or a tuple of tensors, names the outputs, writes
string metadata into the model (`metadata_props`) and refuses graphs that sample (Random* ops),
because an app must get the same answer every time it runs the same image.

Export uses torch's dynamo exporter (`torch.onnx.export(..., dynamo=True)`, which goes through
`torch.export`), with a dynamic batch axis given by `dynamic_shapes`. Torch is imported inside the
functions: `export.runtime` (the app-side predictor) must stay importable without torch.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from data_tools.atomic_write import atomic_open

#: Outputs compared as angles in degrees (differences wrapped into [-180, 180) before the max).
ANGLE_OUTPUTS = ("azimuth", "elevation", "theta")

#: Largest fp32 angle difference between ONNX Runtime and torch that `check_parity` accepts.
FP32_ANGLE_TOLERANCE_DEG = 0.01

#: Op types that draw random numbers; an inference graph must contain none of them. Dropout is
#: random only in training mode, but an eval-mode export never needs it, so it is refused too.
RANDOM_OP_TYPES = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Multinomial",
     "Bernoulli", "Dropout"}
)


class ParityError(RuntimeError):
    """ONNX Runtime and torch disagree by more than the tolerance on the same inputs."""


def _float16_module(module):
    """A copy of `module` computing in float16 with float32 inputs and float32 outputs.

    The casts sit at the graph boundary, so apps feed and read float32 exactly as for the fp32
    model while the weights (half the file size) and the arithmetic are float16.
    """
    import torch

    class Float16Boundary(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = copy.deepcopy(inner).half().eval()

        def forward(self, *inputs: torch.Tensor):
            outputs = self.inner(*(x.to(torch.float16) for x in inputs))
            if isinstance(outputs, torch.Tensor):
                return outputs.float()
            return tuple(o.float() if o.is_floating_point() else o for o in outputs)

    return Float16Boundary(module).eval()


def _as_tuple(inputs) -> tuple:
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


def _nodes(graph_nodes):
    """Every node, descending into subgraphs (If/Loop/Scan bodies)."""
    for node in graph_nodes:
        yield node
        for attribute in node.attribute:
            subgraphs = ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)
            for graph in subgraphs:
                yield from _nodes(graph.node)


def random_op_types(model) -> list[str]:
    """Op types in `model` (an onnx ModelProto, with its local functions and subgraphs) that
    sample random numbers."""
    nodes = [*_nodes(model.graph.node)]
    for function in model.functions:
        nodes += [*_nodes(function.node)]
    return sorted({node.op_type for node in nodes if node.op_type in RANDOM_OP_TYPES})


def _strip_node_metadata(model) -> None:
    """Drop the exporter's per-node metadata (Python stack traces with this machine's file paths,
    module scopes): useful when debugging an export, noise and a path leak in a shipped model."""
    for node in model.graph.node:
        del node.metadata_props[:]
    for function in model.functions:
        for node in function.node:
            del node.metadata_props[:]


def export_onnx(
    module,
    example_input,
    out_path: str | os.PathLike,
    output_names: Sequence[str],
    metadata: dict[str, str],
    opset: int | None = None,
    fp16: bool = False,
    dynamic_batch: bool = True,
    input_names: Sequence[str] = ("images",),
) -> Path:
    """Export `module` to a single self-contained ONNX file and return its path.

    Args:
        module: torch module with `forward(*inputs) -> tensor or tuple of tensors`, one per
            `output_names`.
        example_input: float32 tensor (N, C, H, W), or a tuple of tensors (one per
            `input_names`), used to trace; with `dynamic_batch` a batch of 1 is repeated to 2,
            because torch.export specialises a size-1 axis to a constant.
        out_path: where the .onnx file goes (written whole or not at all, `data_tools.atomic_write`).
        output_names: names given to the graph outputs, in the order `forward` returns them.
        metadata: string key/value pairs stored as the model's `metadata_props`.
        opset: ONNX opset; None lets torch choose its recommended one.
        fp16: float16 weights and arithmetic, float32 inputs and outputs (casts at the boundary).
        dynamic_batch: make axis 0 of every input and output dynamic ("batch").
        input_names: names of the graph inputs, in `forward`'s argument order.

    Puts `module` in eval mode. Raises TypeError when the metadata is not str -> str, and
    ValueError when the graph contains a sampling op or `onnx.checker` rejects the result.
    """
    import onnx
    import torch

    bad = {k: type(v).__name__ for k, v in metadata.items()
           if not isinstance(k, str) or not isinstance(v, str)}
    if bad:
        raise TypeError(f"metadata must map str to str; these entries are not strings: {bad}. "
                        "Convert numbers and lists with str() or json.dumps() first.")
    out_path = Path(out_path)
    module = module.eval()
    if fp16:
        module = _float16_module(module)
    inputs = _as_tuple(example_input)
    if len(inputs) != len(input_names):
        raise ValueError(f"{len(inputs)} example inputs but input_names {list(input_names)}")
    dynamic_shapes = None
    if dynamic_batch:
        inputs = tuple(x.repeat(2, *([1] * (x.dim() - 1))) if x.shape[0] < 2 else x
                       for x in inputs)
        batch = torch.export.Dim("batch")
        dynamic_shapes = tuple({0: batch} for _ in inputs)
        if fp16:  # the wrapper's forward(*inputs) takes them as one variadic argument
            dynamic_shapes = (dynamic_shapes,)
    with torch.no_grad(), warnings.catch_warnings():
        # Several inputs share the one "batch" axis; torch says so once per extra input.
        warnings.filterwarnings("ignore", message=".*will not be used, since it shares")
        program = torch.onnx.export(
            module, inputs, dynamo=True, input_names=list(input_names),
            output_names=list(output_names), opset_version=opset,
            dynamic_shapes=dynamic_shapes, external_data=False, verbose=False,
        )
    model = program.model_proto
    if len(model.graph.output) != len(output_names):
        raise ValueError(f"the module returned {len(model.graph.output)} outputs but "
                         f"{len(output_names)} output_names were given: {list(output_names)}")
    sampling = random_op_types(model)
    if sampling:
        raise ValueError(f"the exported graph samples random numbers ({', '.join(sampling)}); "
                         "an inference module must use posterior means, not samples")
    _strip_node_metadata(model)
    onnx.helper.set_model_props(model, dict(metadata))
    model.doc_string = metadata.get("description", model.doc_string)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ValueError(f"onnx.checker rejected the exported model: {first_line}") from error
    with atomic_open(out_path, "wb") as handle:
        onnx.save_model(model, handle)
    return out_path


def read_metadata(onnx_path: str | os.PathLike) -> dict[str, str]:
    """The `metadata_props` of an ONNX file as a dict (reads the graph, not the weights)."""
    import onnx

    model = onnx.load_model(str(onnx_path), load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}


def angle_difference_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles in degrees, wrapped so 359.99 vs 0.0 counts as 0.01."""
    return np.abs((np.asarray(a, np.float64) - np.asarray(b, np.float64) + 180.0) % 360.0 - 180.0)


def check_parity(
    module,
    onnx_path: str | os.PathLike,
    inputs,
    angle_tolerance_deg: float | None = FP32_ANGLE_TOLERANCE_DEG,
    value_tolerance: float | None = None,
) -> dict[str, Any]:
    """Run `module` (torch, fp32) and the ONNX file (ONNX Runtime, CPU) on `inputs` and compare.

    inputs: one float32 array/tensor (N, ...) or a tuple of them, one per graph input.
    Outputs are matched by the graph's output names. Angle outputs (azimuth, elevation, theta,
    degrees) are compared with wrap-around; every other output by max absolute difference.

    Returns {"batch": N, "max_angle_diff_deg": float, "median_angle_diff_deg": float,
    "max_abs_diff": {output name: float}, "passed": bool, "tolerance_deg": float | None}.
    Raises ParityError when `angle_tolerance_deg` is not None and the largest angle difference
    exceeds it (pass None to only report, e.g. for a float16 model), or when `value_tolerance`
    is not None and a non-angle output differs by more than it (e.g. decoded pixels).
    """
    import onnxruntime
    import torch

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_names = [i.name for i in session.get_inputs()]
    names = [output.name for output in session.get_outputs()]
    tensors = tuple(torch.as_tensor(x, dtype=torch.float32) for x in _as_tuple(inputs))
    if len(tensors) != len(input_names):
        raise ValueError(f"{onnx_path} takes inputs {input_names}, got {len(tensors)} arrays")
    with torch.no_grad():
        expected = module.eval()(*tensors)
    expected = [t.detach().cpu().numpy() for t in _as_tuple(expected)]
    if len(expected) != len(names):
        raise ParityError(f"the torch module returns {len(expected)} outputs, {onnx_path} has "
                          f"{len(names)} ({names}): not the module that was exported")
    actual = session.run(names, {n: t.numpy() for n, t in zip(input_names, tensors)})
    diffs: dict[str, float] = {}
    for name, want, got in zip(names, expected, actual):
        if want.shape != got.shape:
            raise ParityError(f"output {name!r}: torch shape {want.shape} != ONNX Runtime shape "
                              f"{got.shape}")
        if name in ANGLE_OUTPUTS:
            diffs[name] = float(angle_difference_deg(want, got).max(initial=0.0))
        else:
            diffs[name] = float(np.abs(want.astype(np.float64) - got).max(initial=0.0))
    angle_diffs = [angle_difference_deg(want, got).ravel()
                   for name, want, got in zip(names, expected, actual) if name in ANGLE_OUTPUTS]
    angle_diffs = np.concatenate(angle_diffs) if angle_diffs else np.zeros(1)
    max_angle = float(angle_diffs.max())
    max_value = max((v for k, v in diffs.items() if k not in ANGLE_OUTPUTS), default=0.0)
    passed = ((angle_tolerance_deg is None or max_angle <= angle_tolerance_deg)
              and (value_tolerance is None or max_value <= value_tolerance))
    batch = int(tensors[0].shape[0])
    report = {"batch": batch, "max_angle_diff_deg": max_angle,
              "median_angle_diff_deg": float(np.median(angle_diffs)),
              "max_abs_diff": diffs, "passed": passed, "tolerance_deg": angle_tolerance_deg}
    if not passed:
        raise ParityError(
            f"ONNX Runtime and torch disagree on {onnx_path}: max angle difference "
            f"{max_angle:.4g} deg (tolerance {angle_tolerance_deg} deg), max other difference "
            f"{max_value:.4g} (tolerance {value_tolerance}) at batch {batch} ("
            f"per output: {', '.join(f'{k}={v:.3g}' for k, v in diffs.items())}). "
            "Do not ship this file; check the opset and ops the exporter warned about.")
    return report
