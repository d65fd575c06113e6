"""Tensor-in / tensor-out modules for deployment (handed to `export/` for ONNX).

`PoseInference` treats every image as its own group (a group of one: the product of Gaussians is
the image's own content posterior, so no scatter op is needed) and uses posterior means only
(no sampling node). Pre-processing stays outside: the input is the model input contract,
float32 (N, 3, H, W) RGB in [0, 1] (data_tools.image.preprocess.to_model_input); the ImageNet
normalisation is inside the graph.

    module, metadata = load_inference_module("runs/demo/best.pt")
    azimuth, elevation, theta, rotation, confidence, mu_obs, mu_content, logvar_content = module(images)

`mu_content` and `logvar_content` are each image's own content posterior (a group of one), not a
group's pooled one: an app multiplies several views' posteriors into the group's
(`export.runtime.PoseEstimator.predict_group`). Model format 3 (`MODEL_FORMAT_VERSION`, in the
ONNX metadata) added `logvar_content`; format 2 named the content mean `mu_content`; format 1
models (no version key) called it `mu_group`, and `export.runtime` reads them all.

`decode_pose` and `encode_pose` are THE way from a model's observation latent (or its input
images) to angles, rotation and confidence: the evaluation runner, validation during training
and the exported module all call them, so a change to the pose head's decoding
(`PoseHead.decode`) reaches every score and every app at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Optional

import torch
from torch import nn

from posenet_mlvae.training.checkpoint import load_checkpoint
from posenet_mlvae.config import to_dict
from posenet_mlvae.network.model import PoseMLVAE
from posenet_mlvae.network.pose_head import PoseDecoded

OUTPUT_NAMES = ("azimuth", "elevation", "theta", "rotation", "confidence", "mu_obs", "mu_content",
                "logvar_content")
#: Version of the exported graph's interface (its output names): 2 renamed mu_group to
#: mu_content, 3 added logvar_content.
MODEL_FORMAT_VERSION = 3


class EncodedPose(NamedTuple):
    """One image per group: the decoded pose and the posterior parameters it came from."""

    pose: PoseDecoded
    mu_obs: torch.Tensor  # (N, D_obs)
    logvar_obs: torch.Tensor  # (N, D_obs)
    mu_content: Optional[torch.Tensor]  # (N, D_c); None for the "direct" variant
    logvar_content: Optional[torch.Tensor]


def decode_pose(model: PoseMLVAE, mu_obs: torch.Tensor, mu_obs_mirrored: torch.Tensor | None = None) -> PoseDecoded:
    """Observation latent means (N, D_obs) -> angles (degrees), rotation (N, 3, 3), confidence (N,).

    The pose head reads the posterior MEAN (in training too), so this is what every caller sees.
    With the latent means of the horizontally mirrored images, the head's outputs for both are
    averaged by the flip rule first (`PoseHead.average_with_mirror`).
    """
    logits = model.pose_head(mu_obs)
    if mu_obs_mirrored is not None:
        logits = model.pose_head.average_with_mirror(logits, model.pose_head(mu_obs_mirrored))
    return model.pose_head.decode(logits)


def uses_mirror_average(model: PoseMLVAE) -> bool:
    """Whether poses average each image with its mirror: models of left-right symmetric objects
    (ModelConfig.mirror_average, off for runs with asymmetric categories or without flips)."""
    return bool(getattr(model, "config", None) is not None and model.config.mirror_average)


def encode_pose(model: PoseMLVAE, images: torch.Tensor) -> EncodedPose:
    """images (N, 3, H, W) in [0, 1], each its own group -> `EncodedPose` (no sampling).

    Pose: averaged with the horizontally mirrored images' when the model says so
    (`uses_mirror_average`); the latents returned are the images' own.
    """
    mu_obs, logvar_obs, mu_content, logvar_content = model.encode(images)
    mirrored = model.encode(torch.flip(images, dims=[3]))[0] if uses_mirror_average(model) else None
    return EncodedPose(decode_pose(model, mu_obs, mirrored), mu_obs, logvar_obs, mu_content, logvar_content)


def pose_angles(pose: PoseDecoded) -> torch.Tensor:
    """(N, 3) (azimuth, elevation, theta) in degrees, the column order of the evaluation tables."""
    return torch.stack([pose.azimuth, pose.elevation, pose.theta], dim=1)


class PoseInference(nn.Module):
    """images (N, 3, H, W) in [0, 1] -> (azimuth, elevation, theta (N,) degrees, rotation (N, 3, 3),
    confidence (N,) in [0, 1], mu_obs (N, D_obs), mu_content (N, D_c), logvar_content (N, D_c)).

    For the "direct" variant (no content latent) mu_content and logvar_content are zero columns (N, 1).
    """

    output_names = OUTPUT_NAMES

    def __init__(self, model: PoseMLVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pose, mu_obs, _, mu_content, logvar_content = encode_pose(self.model, images)
        if mu_content is None:
            mu_content = logvar_content = torch.zeros_like(mu_obs[:, :1])
        return (pose.azimuth, pose.elevation, pose.theta, pose.rotation, pose.confidence, mu_obs, mu_content,
                logvar_content)


class PoseDecoder(nn.Module):
    """(mu_obs (N, D_obs), mu_content (N, D_c)) -> images (N, 3, S, S) in [0, 1] (for --with-decoder),
    S = ModelConfig.reconstruction_size (image_size / recon_downsample)."""

    def __init__(self, model: PoseMLVAE) -> None:
        super().__init__()
        if model.decoder is None:
            raise ValueError("this model has no decoder (variant 'direct'); export it without --with-decoder")
        self.decoder = model.decoder

    def forward(self, mu_obs: torch.Tensor, mu_content: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([mu_obs, mu_content], dim=1))


def load_inference_module(checkpoint_path: str | Path) -> tuple[PoseInference, dict[str, Any]]:
    """Build `PoseInference` (eval mode, CPU) from a training checkpoint.

    metadata: {"image_size", "categories", "model_config" (dict), "input": description of the
    expected tensor, "outputs": OUTPUT_NAMES, "checkpoint": path, "step"}.
    """
    model, checkpoint = load_checkpoint(checkpoint_path, map_location="cpu")
    stored = checkpoint.get("metadata", {})
    metadata = {
        "image_size": int(stored.get("image_size", model.config.image_size)),
        "categories": list(stored.get("categories", [])),
        "model_config": to_dict(model.config),
        "input": "float32 (N, 3, H, W) RGB in [0, 1] (uint8 / 255); normalisation is inside the model",
        "outputs": list(OUTPUT_NAMES),
        "checkpoint": str(checkpoint_path),
        "step": int(checkpoint.get("step", 0)),
    }
    return PoseInference(model).eval(), metadata


def load_decoder_module(checkpoint_path: str | Path) -> PoseDecoder:
    """`PoseDecoder` (eval mode, CPU) of a training checkpoint."""
    model, _ = load_checkpoint(checkpoint_path, map_location="cpu")
    return PoseDecoder(model).eval()
