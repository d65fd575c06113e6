"""Tensor-in / tensor-out modules for deployment (handed to `export/` for ONNX).

`PoseInference` treats every image as its own group (a group of one: the product of Gaussians is
the image's own content posterior, so no scatter op is needed) and uses posterior means only
(no sampling node). Pre-processing stays outside: the input is the model input contract,
float32 (N, 3, H, W) RGB in [0, 1] (data_tools.preprocess.to_model_input); the ImageNet
normalisation is inside the graph.

    module, metadata = load_inference_module("runs/demo/best.pt")
    azimuth, elevation, theta, rotation, confidence, mu_obs, mu_group = module(images)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from posenet_mlvae.checkpoint import load_checkpoint
from posenet_mlvae.config import to_dict
from posenet_mlvae.model import PoseMLVAE

OUTPUT_NAMES = ("azimuth", "elevation", "theta", "rotation", "confidence", "mu_obs", "mu_group")


class PoseInference(nn.Module):
    """images (N, 3, H, W) in [0, 1] -> (azimuth, elevation, theta (N,) degrees, rotation (N, 3, 3),
    confidence (N,) in [0, 1], mu_obs (N, D_obs), mu_group (N, D_c)).

    For the "direct" variant (no content latent) mu_group is a zero column (N, 1).
    """

    output_names = OUTPUT_NAMES

    def __init__(self, model: PoseMLVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mu_obs, _, mu_content, _ = self.model.encode(images)
        pose = self.model.pose_head.decode(self.model.pose_head(mu_obs))
        mu_group = mu_content if mu_content is not None else torch.zeros_like(mu_obs[:, :1])
        return (pose.azimuth, pose.elevation, pose.theta, pose.rotation, pose.confidence, mu_obs, mu_group)


class PoseDecoder(nn.Module):
    """(mu_obs (N, D_obs), mu_group (N, D_c)) -> images (N, 3, H, W) in [0, 1] (for --with-decoder)."""

    def __init__(self, model: PoseMLVAE) -> None:
        super().__init__()
        if model.decoder is None:
            raise ValueError("this model has no decoder (variant 'direct'); export it without --with-decoder")
        self.decoder = model.decoder

    def forward(self, mu_obs: torch.Tensor, mu_group: torch.Tensor) -> torch.Tensor:
        return self.decoder(torch.cat([mu_obs, mu_group], dim=1))


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
