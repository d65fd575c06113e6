"""The ML-VAE (Bouchacourt et al., "Multi-Level Variational Autoencoder", AAAI 2018) with a pose head.

For a group G of images x_1..x_n of one object instance the encoder gives, per image,
an observation (style) posterior q(s_i | x_i) = N(mu_obs_i, var_obs_i) and a content posterior
N(mu_c_i, var_c_i). The group's content posterior is their product (DESIGN.md section 3):

    1 / var_G = sum_i 1 / var_c_i,      mu_G = var_G * sum_i mu_c_i / var_c_i

computed in log space (logvar_G = -logsumexp_i(-logvar_c_i)) and vectorised over all groups of a
batch by group index (`group_product_of_gaussians`), with gradients flowing to every member.
The decoder reconstructs x_i from (s_i, c_G); the pose head reads mu_obs_i (the posterior mean,
in training too, so its prediction is deterministic and the same as at test time).

By default (ModelConfig.content_width > 0) the content posterior has its own small conv encoder:
with one shared trunk the pose loss makes every feature pose-dominated, and a pose probe on the
content latent then recovers the viewpoint (measured: 11-14 deg MedErr with a shared trunk vs
55-65 deg, near chance, with a separate one, on procedural cars).

Variants (ModelConfig.variant): "mlvae" as above; "vae" the same network with each image its own
group (a plain VAE, the baseline); "direct" the encoder + pose head only (no decoder, no KL).
The model takes images in [0, 1] (contract: data_tools.image.preprocess.to_model_input) and
normalises them inside its graph: ImageNet statistics, or for the pose trunk optionally each
image's own (ModelConfig.pose_input_norm).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from data_tools.image.moments import mean_and_std
from posenet_mlvae.config import ModelConfig
from posenet_mlvae.network.encoders import IMAGENET_MEAN, IMAGENET_STD, ConvDecoder, build_encoder
from posenet_mlvae.network.pose_head import PoseHead, PoseLogits

LOGVAR_MIN, LOGVAR_MAX = -12.0, 8.0
#: Floor of an image's own standard deviation (in [0, 1] units) when it normalises itself, so a
#: flat image is not amplified into noise.
STD_FLOOR = 0.02


class ModelOutput(NamedTuple):
    mu_obs: torch.Tensor  # (B, D_obs)
    logvar_obs: torch.Tensor  # (B, D_obs); zeros for the "direct" variant
    mu_content: Optional[torch.Tensor]  # (B, D_c) per-image content posterior
    logvar_content: Optional[torch.Tensor]  # (B, D_c)
    mu_group: Optional[torch.Tensor]  # (G, D_c) group content posterior (product)
    logvar_group: Optional[torch.Tensor]  # (G, D_c)
    group_of_image: torch.Tensor  # (B,) int64 in [0, G): row of mu_group for each image
    reconstruction: Optional[torch.Tensor]  # (B, 3, S, S) in [0, 1], S = config.reconstruction_size; None for "direct"
    pose: PoseLogits


def product_of_gaussians(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of the Gaussians stacked along dim 0: mu, logvar (k, ...) -> (mean, logvar) (...).

    The torch twin of data_tools.gaussians.product_of_gaussians (log-precisions shifted by their
    maximum), in elementwise ops only, so it exports to ONNX with any batch size; for groups of
    different sizes in one batch, `group_product_of_gaussians`.
    """
    log_precision = -logvar
    top = log_precision.max(dim=0).values
    weights = torch.exp(log_precision - top)  # (k, ...) precisions relative to the largest
    total = weights.sum(dim=0)
    return (weights * mu).sum(dim=0) / total, -(top + torch.log(total))


def group_product_of_gaussians(mu: torch.Tensor, logvar: torch.Tensor, group_of_image: torch.Tensor,
                               num_groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Product of the Gaussians N(mu_i, exp(logvar_i)) of each group, for all groups at once.

    mu, logvar: (B, D); group_of_image: (B,) int64 in [0, num_groups). Returns (mu_G, logvar_G),
    each (num_groups, D):  logvar_G = -logsumexp_{i in G}(-logvar_i),
    mu_G = sum_{i in G} w_i mu_i  with precision weights w_i = exp(logvar_G - logvar_i) (sum 1).
    The logsumexp subtracts the per-group max (detached: the identity holds for any shift), so it
    is stable for any precisions. A group of one returns its member's posterior exactly.
    """
    B, D = mu.shape
    index = group_of_image.view(B, 1).expand(B, D)  # (B, D)
    neg_logvar = -logvar.float()  # log precisions
    group_max = torch.full((num_groups, D), float("-inf"), device=mu.device).scatter_reduce(
        0, index, neg_logvar.detach(), reduce="amax", include_self=True)  # (G, D)
    shifted = torch.exp(neg_logvar - group_max[group_of_image])  # (B, D) in (0, 1]
    summed = torch.zeros(num_groups, D, device=mu.device).index_add(0, group_of_image, shifted)
    logvar_group = -(group_max + torch.log(summed))  # (G, D)
    weights = torch.exp(logvar_group[group_of_image] + neg_logvar)  # (B, D) precision shares
    mu_group = torch.zeros(num_groups, D, device=mu.device).index_add(0, group_of_image, weights * mu.float())
    return mu_group.to(mu.dtype), logvar_group.to(mu.dtype)


def leave_one_out_product(mu: torch.Tensor, logvar: torch.Tensor, mu_group: torch.Tensor,
                          logvar_group: torch.Tensor, group_of_image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per member, the product of its group-mates' Gaussians (all members but itself).

    Precisions subtract from the group's: 1/var_{-i} = 1/var_G - 1/var_i, and
    mu_{-i} = var_{-i} (mu_G / var_G - mu_i / var_i). A member alone in its group keeps its own
    posterior. Shapes: mu, logvar (B, D); mu_group, logvar_group (G, D); returns two (B, D).
    """
    precision = torch.exp(-logvar.float())  # (B, D)
    precision_group = torch.exp(-logvar_group.float())[group_of_image]  # (B, D)
    rest = precision_group - precision
    alone = rest <= 1e-6 * precision_group  # groups of one (up to rounding)
    rest = torch.where(alone, precision, rest)
    weighted = mu_group.float()[group_of_image] * precision_group - mu.float() * precision
    mu_rest = torch.where(alone, mu.float(), weighted / rest)
    return mu_rest.to(mu.dtype), (-torch.log(rest)).to(mu.dtype)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """A sample mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


class PoseMLVAE(nn.Module):
    """Encoder -> (observation, content) posteriors -> group product -> decoder; pose head."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("input_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("input_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.encoder = build_encoder(config.backbone, config.image_size, config.width, config.hidden_dim,
                                     config.imagenet_weights)
        generative = config.variant != "direct"
        self.obs_head = nn.Linear(config.hidden_dim, (2 if generative else 1) * config.obs_dim)
        self.content_head = nn.Linear(config.hidden_dim, 2 * config.content_dim) if generative else None
        # Optional separate content trunk: its features are shaped by the reconstruction through the
        # group product only, not by the pose loss (which makes shared features pose-dominated).
        self.content_encoder = (build_encoder("conv", config.image_size // config.content_downsample,
                                              config.content_width, config.hidden_dim)
                                if generative and config.content_width > 0 else None)
        self.decoder = (ConvDecoder(config.obs_dim + config.content_dim, config.reconstruction_size,
                                    config.decoder_width)
                        if generative else None)
        self.pose_head = PoseHead(config.obs_dim, config.hidden_dim, config.azimuth_bins)

    def _pose_input(self, images: torch.Tensor, normalised: torch.Tensor) -> torch.Tensor:
        """The pose trunk's input: `normalised` (fixed statistics), or `images` standardised by
        each image's own mean and std, over all channels or per channel (ModelConfig.pose_input_norm)."""
        norm = self.config.pose_input_norm
        if norm == "fixed":
            return normalised
        mean, std = mean_and_std(images, (1, 2, 3) if norm == "image" else (2, 3))
        return (images - mean) / std.clamp_min(STD_FLOOR)

    def _normalised(self, images: torch.Tensor) -> torch.Tensor:
        """images in [0, 1] normalised by the fixed (ImageNet) statistics: the content encoder's input."""
        return (images - self.input_mean) / self.input_std

    def _pose_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pose trunk's features (N, hidden) and the input normalised by the fixed statistics."""
        normalised = self._normalised(images)
        return self.encoder(self._pose_input(images, normalised)), normalised

    def encode(self, images: torch.Tensor, pose_images: Optional[torch.Tensor] = None
               ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]:
        """images (N, 3, H, W) in [0, 1] -> mu_obs, logvar_obs, mu_content, logvar_content.

        pose_images: what the pose trunk reads instead of `images` (training's random convolution:
        data_tools.image.augment), while the content posterior still reads `images`."""
        if pose_images is None:
            features, normalised = self._pose_features(images)  # (N, hidden); the content reads `normalised` too
        else:
            features = self._pose_features(pose_images)[0]
            normalised = self._normalised(images)
        if self.content_head is None:  # "direct": a deterministic feature, no posterior
            mu_obs = self.obs_head(features)
            return mu_obs, torch.zeros_like(mu_obs), None, None
        mu_obs, logvar_obs = self.obs_head(features).chunk(2, dim=1)  # (N, D_obs) each
        mu_c, logvar_c = self._content_posterior(features, normalised)  # (N, D_c) each
        return mu_obs, logvar_obs.clamp(LOGVAR_MIN, LOGVAR_MAX), mu_c, logvar_c

    def _content_posterior(self, pose_features: Optional[torch.Tensor], normalised: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, clamped logvar) of the content posterior: from the separate content encoder reading
        `normalised` (the fixed-statistics input), or from the pose trunk's features without one."""
        if self.content_encoder is None:
            features = pose_features
        else:
            factor = self.config.content_downsample
            features = self.content_encoder(F.avg_pool2d(normalised, factor) if factor > 1 else normalised)
        mu_c, logvar_c = self.content_head(features).chunk(2, dim=1)
        return mu_c, logvar_c.clamp(LOGVAR_MIN, LOGVAR_MAX)

    def encode_content(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images (N, 3, H, W) in [0, 1] -> mu_content, logvar_content (N, D_c): `encode` without
        the observation head, for the content's extra test-time view (the mirror)."""
        if self.content_head is None:
            raise ValueError("the 'direct' variant has no content latent")
        if self.content_encoder is None:
            features, normalised = self._pose_features(images)
        else:
            features, normalised = None, self._normalised(images)
        return self._content_posterior(features, normalised)

    def encode_obs(self, images: torch.Tensor) -> torch.Tensor:
        """images (N, 3, H, W) in [0, 1] -> mu_obs (N, D_obs) alone: `encode` without the content
        encoder, for the pose's extra test-time views."""
        mu_obs = self.obs_head(self._pose_features(images)[0])
        return mu_obs if self.content_head is None else mu_obs.chunk(2, dim=1)[0]

    def forward(self, images: torch.Tensor, group_index: Optional[torch.Tensor] = None,
                pose_images: Optional[torch.Tensor] = None) -> ModelOutput:
        """images (B, 3, H, W) in [0, 1]; group_index (B,) any int64 labels (None: each image alone);
        pose_images: the pose trunk's own view of the images (`encode`), None = `images`.

        Training mode draws s_i and a sample of c_G per member; eval mode decodes the means.
        """
        B = images.shape[0]
        mu_obs, logvar_obs, mu_c, logvar_c = self.encode(images, pose_images)
        pose = self.pose_head(mu_obs)
        if self.config.variant == "mlvae" and group_index is not None:
            _, group_of_image = torch.unique(group_index, return_inverse=True)  # (B,) in [0, G)
            num_groups = int(group_of_image.max()) + 1
        else:
            group_of_image, num_groups = torch.arange(B, device=images.device), B
        if mu_c is None:
            return ModelOutput(mu_obs, logvar_obs, None, None, None, None, group_of_image, None, pose)
        if num_groups == B:  # every image alone: the product is the image's own posterior
            mu_group, logvar_group = mu_c, logvar_c
        else:
            mu_group, logvar_group = group_product_of_gaussians(mu_c, logvar_c, group_of_image, num_groups)
        if self.training and self.config.decode_from == "others" and num_groups < B:
            mu_c_member, logvar_c_member = leave_one_out_product(mu_c, logvar_c, mu_group, logvar_group,
                                                                 group_of_image)  # (B, D_c)
        else:
            mu_c_member, logvar_c_member = mu_group[group_of_image], logvar_group[group_of_image]  # (B, D_c)
        if self.training:
            obs = reparameterize(mu_obs, logvar_obs)
            content = reparameterize(mu_c_member, logvar_c_member)  # each member its own sample
        else:
            obs, content = mu_obs, mu_c_member
        reconstruction = self.decoder(torch.cat([obs, content], dim=1))  # (B, 3, H, W)
        return ModelOutput(mu_obs, logvar_obs, mu_c, logvar_c, mu_group, logvar_group,
                           group_of_image, reconstruction, pose)


def build_model(config: ModelConfig) -> PoseMLVAE:
    """Construct the network described by `config` (random init, or local ImageNet weights)."""
    if not isinstance(config, ModelConfig):
        raise TypeError(f"build_model expects a ModelConfig, got {type(config).__name__}")
    return PoseMLVAE(config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
