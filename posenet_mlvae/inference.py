"""Tensor-in / tensor-out modules for deployment (handed to `export/` for ONNX).

`PoseInference` treats every image as its own group (a group of one: the product of Gaussians is
the image's own content posterior, so no scatter op is needed) and uses posterior means only
(no sampling node). Pre-processing stays outside: the input is the model input contract,
float32 (N, 3, H, W) RGB in [0, 1] (data_tools.image.preprocess.to_model_input); the ImageNet
normalisation is inside the graph.

    module, metadata = load_inference_module("runs/demo/best.pt")
    azimuth, elevation, theta, rotation, confidence, mu_obs, mu_content, logvar_content = module(images)

`mu_content` and `logvar_content` are each image's own content posterior, not a group's pooled
one (for left-right symmetric objects, the product of the image's and its mirror's posteriors:
`encode_latents`): an app multiplies several views' posteriors into the group's
(`export.runtime.PoseEstimator.predict_group`). Model format 3 (`MODEL_FORMAT_VERSION`, in the
ONNX metadata) added `logvar_content`; format 2 named the content mean `mu_content`; format 1
models (no version key) called it `mu_group`, and `export.runtime` reads them all.

`decode_pose` and `encode_pose` are THE way from a model's observation latent (or its input
images) to angles, rotation and confidence: the evaluation runner, validation during training
and the exported module all call them, so a change to the pose head's decoding
(`PoseHead.decode`) reaches every score and every app at once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from posenet_mlvae.training.checkpoint import load_checkpoint
from posenet_mlvae.config import to_dict
from posenet_mlvae.network.model import PoseMLVAE, product_of_gaussians
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


def decode_pose(model: PoseMLVAE, mu_obs: torch.Tensor,
                extra_views: Sequence[tuple[torch.Tensor, bool]] = ()) -> PoseDecoded:
    """Observation latent means (N, D_obs) -> angles (degrees), rotation (N, 3, 3), confidence (N,).

    The pose head reads the posterior MEAN (in training too), so this is what every caller sees.
    `extra_views`: (latent means, mirrored) of the same images' other test-time views
    (`averaged_view_latents`); the head's outputs for all views are averaged first
    (`PoseHead.average`, mirrored views mapped back by the flip rule).
    """
    logits = model.pose_head(mu_obs)
    if extra_views:
        head = model.pose_head
        logits = head.average([logits, *(head(mu) for mu, _ in extra_views)],
                              [False, *(flipped for _, flipped in extra_views)])
    return model.pose_head.decode(logits)


def uses_mirror_average(model: PoseMLVAE) -> bool:
    """Whether poses average each image with its mirror: models of left-right symmetric objects
    (ModelConfig.mirror_average, off for runs with asymmetric categories or without flips)."""
    return bool(getattr(model, "config", None) is not None and model.config.mirror_average)


def zoom_about_centre(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Square images (N, C, S, S) magnified by `factor` about their centre, same size: resized
    (bilinear) to S + 2k pixels a side, k = round(S (factor - 1) / 2), then cut to the centre
    (factor > 1) or padded by repeating the border pixels (factor < 1). Exports to ONNX Resize,
    Slice and Pad."""
    height, width = int(images.shape[-2]), int(images.shape[-1])
    k = round(height * (factor - 1.0) / 2.0)
    if k == 0:
        return images
    resized = F.interpolate(images, size=(height + 2 * k, width + 2 * k), mode="bilinear",
                            align_corners=False)
    if k > 0:
        return resized[..., k:k + height, k:k + width]
    return F.pad(resized, (-k, -k, -k, -k), mode="replicate")


def averaged_views(model: PoseMLVAE, images: torch.Tensor) -> list[tuple[torch.Tensor, bool]]:
    """The views of `images` a pose averages besides the images themselves, as (views, mirrored):
    the horizontal mirror (`uses_mirror_average`), and with ModelConfig.zoom_average = z > 0 the
    images zoomed by 1 - z and 1 + z (`zoom_about_centre`), each with its mirror too."""
    config = getattr(model, "config", None)  # stand-in modules in tests may have none
    zoom = config.zoom_average if config is not None else 0.0
    factors = (1.0 - zoom, 1.0 + zoom) if zoom > 0 else ()
    extra = [(zoom_about_centre(images, f), False) for f in factors]
    if uses_mirror_average(model):
        mirrored = torch.flip(images, dims=[3])
        extra += [(mirrored, True)] + [(zoom_about_centre(mirrored, f), True) for f in factors]
    return extra


def set_zoom_average(model: PoseMLVAE, zoom: float | None) -> PoseMLVAE:
    """`model` with ModelConfig.zoom_average replaced by `zoom` (None: keep its own): zoom
    averaging is a test-time choice, so any checkpoint can be scored or exported with or without
    it. ValueError for a zoom ModelConfig refuses."""
    if zoom is not None:
        model.config = dataclasses.replace(model.config, zoom_average=float(zoom))
    return model


def averaged_view_latents(model: PoseMLVAE, images: torch.Tensor) -> list[tuple[torch.Tensor, bool]]:
    """(observation latent means, mirrored) of each of `averaged_views`, for `decode_pose`; all
    views go through the encoder as one batch."""
    views = averaged_views(model, images)
    if not views:
        return []
    mu_obs = model.encode_obs(torch.cat([view for view, _ in views]))
    parts = mu_obs.reshape(len(views), -1, mu_obs.shape[-1]).unbind(0)
    return [(part, flipped) for part, (_, flipped) in zip(parts, views)]


def encode_pose(model: PoseMLVAE, images: torch.Tensor) -> EncodedPose:
    """images (N, 3, H, W) in [0, 1], each its own group -> `EncodedPose` (no sampling).

    Pose: averaged over the images' test-time views (`averaged_views`: the mirror for
    symmetric objects, zooms when the model says so). The observation latents returned are the
    images' own; the content posterior of a symmetric object's image is multiplied with its
    mirror's (`encode_latents`).
    """
    mu_obs, logvar_obs, mu_content, logvar_content = encode_latents(model, images)
    pose = decode_pose(model, mu_obs, averaged_view_latents(model, images))
    return EncodedPose(pose, mu_obs, logvar_obs, mu_content, logvar_content)


def encode_latents(model: PoseMLVAE, images: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
    """images (N, 3, H, W) in [0, 1], each its own group -> mu_obs, logvar_obs, mu_content,
    logvar_content at test time: `PoseMLVAE.encode`, with a symmetric object's content posterior
    multiplied by its mirror's (the group product of two views: the mirror is another view of
    the same instance, evidence for the same content as it is for the pose). Identity retrieval
    from one view gained 0.6-2.4 points with it (README, model section)."""
    mu_obs, logvar_obs, mu_content, logvar_content = model.encode(images)
    if mu_content is not None and uses_mirror_average(model):
        mu_mirror, logvar_mirror = model.encode_content(torch.flip(images, dims=[3]))
        mu_content, logvar_content = product_of_gaussians(torch.stack([mu_content, mu_mirror]),
                                                          torch.stack([logvar_content, logvar_mirror]))
    return mu_obs, logvar_obs, mu_content, logvar_content


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


def load_inference_module(checkpoint_path: str | Path, zoom_average: float | None = None
                          ) -> tuple[PoseInference, dict[str, Any]]:
    """Build `PoseInference` (eval mode, CPU) from a training checkpoint (`zoom_average`: see
    `set_zoom_average`).

    metadata: {"image_size", "categories", "model_config" (dict), "input": description of the
    expected tensor, "outputs": OUTPUT_NAMES, "checkpoint": path, "step"}.
    """
    model, checkpoint = load_checkpoint(checkpoint_path, map_location="cpu")
    set_zoom_average(model, zoom_average)
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
