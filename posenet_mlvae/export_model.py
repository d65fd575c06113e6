"""Checkpoint -> ONNX model with its preprocessing metadata, checked against torch.

The glue between the model (`posenet_mlvae.inference`, tensor in / tensor out) and `export/`
(which knows ONNX, not the ML-VAE). The file only lands at `out_path` after ONNX Runtime has
reproduced torch's angles within 0.01 deg (fp32) on real images: training images from the
checkpoint's own datasets when they are on disk, else drawn test scenes.

    result = export_checkpoint("runs/demo/best.pt", "model.onnx", ExportOptions())
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from data_tools.image import preprocess
from export.onnx_export import FP32_ANGLE_TOLERANCE_DEG, check_parity, export_onnx
from export.runtime import preprocessing_metadata

#: Largest fp32 difference accepted between ONNX Runtime's and torch's decoded pixels (in [0, 1]).
DECODER_PIXEL_TOLERANCE = 1e-3

ANGLE_CONVENTION = "PASCAL3D+ degrees: R = Rz(theta) Rx(e-90) Rz(-a)"
OUTPUTS_DOC = ("azimuth (N,) deg in [0, 360); elevation (N,) deg; theta (N,) deg; rotation "
               "(N, 3, 3) object-to-camera; confidence (N,) in [0, 1]; mu_obs (N, D_obs) "
               "observation latent mean; mu_content, logvar_content (N, D_c) the image's own content "
               "posterior (mean, log-variance); a group's is their product of Gaussians")


@dataclass(frozen=True)
class ExportOptions:
    """How to export.

    crop_mode/crop_margin: the crop rule recorded in the metadata, which must match how the
    training crops were made; None takes it from the checkpoint (`checkpoint["crop_rule"]`),
    falling back to `data_tools.image.preprocess.DEFAULT_CROP_RULE` for checkpoints without one.
    """

    fp16: bool = False
    opset: int | None = None
    with_decoder: bool = False
    crop_mode: str | None = None
    crop_margin: float | None = None
    parity_images: int = 8  # images for the batch-N parity check (batch 1 is checked too)
    parity_data: str = ""  # grouped dataset dir for parity images; "" = the checkpoint's data
    zoom_average: float | None = None  # test-time zooms baked into the graph; None = the checkpoint's


@dataclass(frozen=True)
class ExportResult:
    model_path: Path
    precision: str
    crop_rule: preprocess.CropRule  # recorded in the metadata
    crop_rule_source: str  # where the rule came from: see resolve_crop_rule
    parity: list[dict[str, Any]]  # one report per checked batch size, for the file written
    parity_source: str  # where the parity images came from
    fp32_parity: list[dict[str, Any]] = field(default_factory=list)  # --fp16: the fp32 reference
    decoder_path: Path | None = None
    decoder_parity: dict[str, Any] | None = None


def resolve_crop_rule(checkpoint_rule: dict[str, Any] | None, mode: str | None = None,
                      margin: float | None = None) -> tuple[preprocess.CropRule, str]:
    """The crop rule to record and where it came from.

    checkpoint_rule: `checkpoint.get("crop_rule")` ({"mode", "margin"}, None for checkpoints
    made before rules were recorded); mode/margin: explicit overrides (None: keep). Returns
    (rule, source) with source "checkpoint", "default" (DEFAULT_CROP_RULE), "flags", or one of
    the first two + " + flags". ValueError for a mode or margin CropRule refuses.
    """
    stored = preprocess.CropRule.from_json(checkpoint_rule)
    base = stored or preprocess.DEFAULT_CROP_RULE
    rule = preprocess.CropRule(base.mode if mode is None else mode,
                               base.margin if margin is None else margin)
    source = "checkpoint" if stored is not None else "default"
    if mode is not None and margin is not None:
        source = "flags"
    elif mode is not None or margin is not None:
        source += " + flags"
    return rule, source


def model_metadata(inference_metadata: dict[str, Any], options: ExportOptions,
                   crop_rule: preprocess.CropRule) -> dict[str, str]:
    """The ONNX metadata_props: preprocessing contract, angle convention, provenance."""
    from posenet_mlvae import __version__
    from posenet_mlvae.inference import MODEL_FORMAT_VERSION

    metadata = preprocessing_metadata(inference_metadata["image_size"], crop_rule.mode,
                                      crop_rule.margin)
    metadata.update({
        "model_format_version": str(MODEL_FORMAT_VERSION),
        "angle_convention": ANGLE_CONVENTION,
        "outputs": OUTPUTS_DOC,
        "categories": json.dumps(list(inference_metadata.get("categories", []))),
        "model_config": json.dumps(inference_metadata["model_config"], sort_keys=True),
        "precision": "float16 weights and arithmetic, float32 inputs and outputs"
                     if options.fp16 else "float32",
        "project": "posenet-mlvae",
        "project_version": __version__,
        "training_step": str(inference_metadata.get("step", 0)),
        "description": "Object viewpoint (azimuth, elevation, in-plane rotation) from one image "
                       "crop; ML-VAE with a pose head (posenet-mlvae).",
    })
    return metadata


def drawn_scenes(count: int, size: int, seed: int = 0) -> np.ndarray:
    """Deterministic (count, size, size, 3) uint8 test pictures: gradients with filled shapes."""
    import cv2

    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:size, 0:size]
    images = []
    for _ in range(count):
        base = rng.integers(0, 256, 3)
        image = np.stack([(base[0] + xs * 2) % 256, (base[1] + ys * 2) % 256,
                          np.full_like(xs, base[2])], axis=-1).astype(np.uint8)
        for _ in range(3):
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            center = tuple(int(c) for c in rng.integers(size // 4, 3 * size // 4, 2))
            axes = tuple(int(a) for a in rng.integers(size // 8, size // 3, 2))
            cv2.ellipse(image, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
        images.append(image)
    return np.stack(images)


def parity_inputs(checkpoint_path: Path, image_size: int, count: int, data_dir: str = ""
                  ) -> tuple[np.ndarray, str]:
    """float32 (count, 3, S, S) model inputs for the parity check, and where they came from.

    Real images first: `data_dir`, else the data_dirs recorded in the checkpoint (validation
    split, else any), spread over the dataset; drawn scenes when none is on disk.
    """
    from data_tools.dataset import GroupedDataset
    from posenet_mlvae.training.checkpoint import read_checkpoint

    candidates = [data_dir] if data_dir else list(
        read_checkpoint(checkpoint_path).get("data_config", {}).get("data_dirs", []))
    for candidate in candidates:
        root = Path(candidate)
        if not (root / "manifest.json").is_file():
            continue
        for split in ("val", None):
            dataset = GroupedDataset(root, split=split)
            if len(dataset) == 0 or dataset.image_size != image_size:
                continue
            indices = np.linspace(0, len(dataset) - 1, min(count, len(dataset))).astype(np.int64)
            return preprocess.to_model_input(dataset.images(indices)), f"{root} ({split or 'all'})"
    return preprocess.to_model_input(drawn_scenes(count, image_size)), "drawn test scenes"


def _checked_export(module, inputs: tuple[np.ndarray, ...], out_path: Path, output_names,
                    metadata: dict[str, str], options: ExportOptions, fp16: bool,
                    input_names=("images",), value_tolerance: float | None = None
                    ) -> list[dict[str, Any]]:
    """Export to a hidden temporary file, check parity at batch 1 and N, then rename into place.

    fp32 parity is enforced (ParityError, nothing written); fp16 parity is only reported.
    """
    out_path.parent.mkdir(parents=True, exist_ok=True)
    unchecked = out_path.with_name(f".{out_path.name}.unchecked-{os.getpid()}")
    tensors = tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs)
    try:
        export_onnx(module, tensors, unchecked, list(output_names), metadata, opset=options.opset,
                    fp16=fp16, input_names=input_names)
        reports = [check_parity(module, unchecked, tuple(t[:n] for t in tensors),
                                angle_tolerance_deg=None if fp16 else FP32_ANGLE_TOLERANCE_DEG,
                                value_tolerance=None if fp16 else value_tolerance)
                   for n in sorted({1, len(tensors[0])})]
        os.replace(unchecked, out_path)
        return reports
    finally:
        unchecked.unlink(missing_ok=True)


def export_checkpoint(checkpoint_path: str | Path, out_path: str | Path,
                      options: ExportOptions = ExportOptions()) -> ExportResult:
    """Export a training checkpoint's pose model (and optionally its decoder) to ONNX.

    With options.fp16 the fp32 graph is exported to a temporary file first and its parity
    enforced, so a float16 file is only written for a model that exports correctly; the fp16
    file's own parity is reported, not enforced.
    """
    from posenet_mlvae.training.checkpoint import read_checkpoint
    from posenet_mlvae.inference import OUTPUT_NAMES, load_decoder_module, load_inference_module

    checkpoint_path, out_path = Path(checkpoint_path), Path(out_path)
    module, info = load_inference_module(checkpoint_path, options.zoom_average)
    crop_rule, crop_rule_source = resolve_crop_rule(
        read_checkpoint(checkpoint_path).get("crop_rule"), options.crop_mode, options.crop_margin)
    metadata = model_metadata(info, options, crop_rule)
    images, source = parity_inputs(checkpoint_path, info["image_size"], options.parity_images,
                                   options.parity_data)
    fp32_reports: list[dict[str, Any]] = []
    if options.fp16:
        with tempfile.TemporaryDirectory() as scratch:
            fp32_metadata = model_metadata(info, replace(options, fp16=False), crop_rule)
            fp32_reports = _checked_export(module, (images,), Path(scratch) / "fp32.onnx",
                                           OUTPUT_NAMES, fp32_metadata, options, fp16=False)
    reports = _checked_export(module, (images,), out_path, OUTPUT_NAMES, metadata, options,
                              fp16=options.fp16)
    decoder_path, decoder_report = None, None
    if options.with_decoder:
        decoder = load_decoder_module(checkpoint_path)
        with torch.no_grad():
            latents = tuple(t.numpy() for t in module(torch.from_numpy(images))[5:7])
        decoder_path = out_path.with_name(f"{out_path.stem}_decoder.onnx")
        decoder_metadata = {
            "project": "posenet-mlvae", "project_version": metadata["project_version"],
            "model_config": metadata["model_config"], "precision": metadata["precision"],
            "pose_model": out_path.name, "model_format_version": metadata["model_format_version"],
            "inputs": "mu_obs (N, D_obs), mu_content (N, D_c): latent means from the pose model",
            "outputs": "images (N, 3, S, S) RGB in [0, 1], S = image_size / recon_downsample of model_config",
        }
        decoder_report = _checked_export(decoder, latents, decoder_path, ["images"],
                                         decoder_metadata, options, fp16=options.fp16,
                                         input_names=("mu_obs", "mu_content"),
                                         value_tolerance=DECODER_PIXEL_TOLERANCE)[-1]
    return ExportResult(model_path=out_path, precision=metadata["precision"],
                        crop_rule=crop_rule, crop_rule_source=crop_rule_source, parity=reports,
                        parity_source=source, fp32_parity=fp32_reports,
                        decoder_path=decoder_path, decoder_parity=decoder_report)
