"""Losses of the ML-VAE with a pose head: pure functions of tensors, every term returned.

Group ELBO of the ML-VAE (Bouchacourt, Tomioka & Nowozin, "Multi-Level Variational
Autoencoder", AAAI 2018, arXiv:1705.08841, Section 3): for a group G with members x_1..x_n,

    -ELBO(G) = sum_i E_q[-log p(x_i | s_i, c_G)]              (reconstruction of every member)
             + beta_s * sum_i KL(q(s_i | x_i) || N(0, I))      (one observation KL per member)
             + beta_c * KL(q(c_G | x_1..x_n) || N(0, I))       (ONE content KL per group)

with q(c_G | ...) the product of the members' content posteriors (model.group_product_of_gaussians);
beta_s = beta_c = 1 is the paper's bound, other values the beta-VAE weighting (Higgins et al. 2017).
The batch value is the mean over groups. The likelihood is Gaussian with a fixed variance:
-log p(x | s, c) = recon_weight * sum_pixels (x - x_hat)^2 (+ const), recon_weight = 1 / (2 sigma^2).
With object masks (synthetic renders) the squared errors can be weighted per pixel, 1 on the
object and `background_weight` < 1 elsewhere: a Gaussian likelihood whose variance is larger on
the background. Random per-view backgrounds otherwise dominate the pixel error and the
per-image latents fill up with background instead of the object's identity.
The Gaussian KL to N(0, I) is the closed form of Kingma & Welling 2014, Appendix B.

On by default (TrainConfig.lambda_contrast > 0; 0 is the paper's objective): a supervised
contrastive term on the per-image content means (`content_contrast`), which pulls the views of
one group together and pushes other groups away, so a single view's content code identifies
its instance. The ELBO alone only asks the content to help the reconstruction.

The optimised total is  -ELBO / mean_group_size + lambda_pose * pose + lambda_contrast * contrast
(the division by the constant mean group size n = B / G makes lambda_pose weigh the same per
image whatever M is, and makes the "vae" baseline, groups of one, comparable). The pose loss is
averaged over the images that carry a viewpoint (has_pose); the others train the ELBO only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from posenet_mlvae.network.model import ModelOutput
from posenet_mlvae.network.pose_head import PoseLogits


class PoseTerms(NamedTuple):
    total: torch.Tensor  # sum of the four terms below
    azimuth_ce: torch.Tensor
    azimuth_offset: torch.Tensor
    elevation: torch.Tensor
    theta: torch.Tensor


class LossTerms(NamedTuple):
    total: torch.Tensor  # what is minimised
    neg_elbo: torch.Tensor  # weighted -ELBO per group (recon + beta_s KL_s + beta_c KL_c), mean over groups
    recon: torch.Tensor  # sum over members of -log p(x_i | s_i, c_G), mean over groups
    kl_obs: torch.Tensor  # sum over members of KL(q(s_i) || N(0, I)), mean over groups
    kl_content: torch.Tensor  # KL(q(c_G) || N(0, I)) once per group, mean over groups
    contrast: torch.Tensor  # content_contrast of the per-image content means (unweighted)
    pose: torch.Tensor
    azimuth_ce: torch.Tensor
    azimuth_offset: torch.Tensor
    elevation: torch.Tensor
    theta: torch.Tensor


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over the last dim: (N, D) -> (N,).

    = 0.5 * sum(mu^2 + exp(logvar) - 1 - logvar)   (Kingma & Welling 2014, Appendix B).
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def reconstruction_sse(reconstruction: torch.Tensor, images: torch.Tensor,
                       pixel_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image (weighted) sum of squared pixel errors: (N, 3, s, s), (N, 3, H, W)
    [, (N, 1, H, W)] -> (N,).

    A reconstruction smaller than the images (ModelConfig.recon_downsample f: H = f x s) is
    compared with the images and weights area-averaged over f x f blocks, and each of its pixels
    counts f^2 times: the sum stays on the scale of the full-size image's, so the loss weights
    keep their meaning whatever the reconstruction size.
    """
    factor = images.shape[-1] // reconstruction.shape[-1]
    if tuple(images.shape[-2:]) != (factor * reconstruction.shape[-2], factor * reconstruction.shape[-1]):
        raise ValueError(f"reconstruction {tuple(reconstruction.shape[-2:])} is not the images' "
                         f"{tuple(images.shape[-2:])} shrunk by a whole factor")
    if factor > 1:
        images = F.avg_pool2d(images.float(), factor)
        pixel_weights = None if pixel_weights is None else F.avg_pool2d(pixel_weights.float(), factor)
    squared = F.mse_loss(reconstruction.float(), images.float(), reduction="none")
    if pixel_weights is not None:
        squared = squared * pixel_weights
    return squared.flatten(1).sum(1) * factor**2


def sum_per_group(values: torch.Tensor, group_of_image: torch.Tensor, num_groups: int) -> torch.Tensor:
    """(B,) per-image values -> (G,) sums over each group's members."""
    return torch.zeros(num_groups, device=values.device, dtype=values.dtype).index_add(0, group_of_image, values)


def azimuth_targets(azimuth: torch.Tensor, bins: int, smoothing: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Target bin (N,), soft label distribution (N, bins) and in-bin offset (N,) in bin widths.

    Bin k is centred on k * 360 / bins. The soft label keeps 1 - smoothing on the true bin and
    moves smoothing / 2 to each circular neighbour; the offset lies in [-0.5, 0.5).
    """
    width = 360.0 / bins
    position = torch.remainder(azimuth.float(), 360.0) / width  # (N,) in [0, bins)
    nearest = torch.floor(position + 0.5)
    offset = position - nearest  # (N,) in [-0.5, 0.5)
    target = torch.remainder(nearest, bins).long()
    soft = torch.zeros(azimuth.shape[0], bins, device=azimuth.device)
    soft.scatter_(1, target[:, None], 1.0 - smoothing)
    soft.scatter_add_(1, torch.remainder(target - 1, bins)[:, None], torch.full_like(soft[:, :1], smoothing / 2))
    soft.scatter_add_(1, torch.remainder(target + 1, bins)[:, None], torch.full_like(soft[:, :1], smoothing / 2))
    return target, soft, offset


def pose_loss(logits: PoseLogits, azimuth: torch.Tensor, elevation: torch.Tensor, theta: torch.Tensor,
              has_pose: torch.Tensor, angle_mean: torch.Tensor, angle_std: torch.Tensor,
              smoothing: float = 0.2, offset_bins: int = 3) -> PoseTerms:
    """Mean over labelled images of: azimuth-bin cross-entropy (soft labels) + smooth-L1 of the
    bin offsets (bin widths) + smooth-L1 of standardised elevation and theta.

    offset_bins 3 trains the offsets of the true bin and of its two neighbours (targets offset,
    offset + 1 and offset - 1: the same angle seen from each bin's centre), so that an argmax
    one bin off near a bin border still decodes the right angle; 1 trains the true bin's only.
    Angles in degrees, (N,) each; has_pose (N,) bool/0-1; angle_mean/std (2,) (elevation, theta)
    from the pose head's buffers. With no labelled image every term is a graph-connected zero.
    """
    labelled = has_pose.bool()
    count = labelled.sum().clamp_min(1).float()
    weight = labelled.float()
    bins = logits.azimuth_logits.shape[1]
    safe = lambda x: torch.where(labelled, x.float(), torch.zeros_like(x.float()))  # NaN angles of unlabelled
    target, soft, offset = azimuth_targets(safe(azimuth), bins, smoothing)
    ce = -(soft * torch.log_softmax(logits.azimuth_logits.float(), dim=1)).sum(1)  # (N,)
    shifts = torch.arange(offset_bins, device=target.device) - offset_bins // 2  # (S,) 0 or -1, 0, 1
    trained_bins = torch.remainder(target[:, None] + shifts, bins)  # (N, S)
    predicted_offset = torch.gather(logits.azimuth_offset.float(), 1, trained_bins)
    offset_err = F.smooth_l1_loss(predicted_offset, offset[:, None] - shifts, reduction="none", beta=0.1).sum(1)
    true_std = (torch.stack([safe(elevation), safe(theta)], dim=1) - angle_mean) / angle_std  # (N, 2)
    angle_err = F.smooth_l1_loss(logits.angles_std.float(), true_std, reduction="none", beta=0.1)
    terms = [(t * weight).sum() / count for t in (ce, offset_err, angle_err[:, 0], angle_err[:, 1])]
    return PoseTerms(terms[0] + terms[1] + terms[2] + terms[3], *terms)


def content_contrast(mu: torch.Tensor, group_of_image: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020) with similarity -||mu_i - mu_j||^2 / temperature.

    mu (B, D) per-image content means; group_of_image (B,). For every image with a group-mate:
    minus the mean log-probability of its group-mates among all other images of the batch. The
    squared Euclidean distance is the one identity retrieval ranks by (eval.retrieval). A batch
    without group-mates gives a graph-connected zero.
    """
    mu = mu.float()
    squared = mu.pow(2).sum(1)
    distance = (squared[:, None] + squared[None, :] - 2.0 * mu @ mu.T).clamp_min(0.0)  # (B, B)
    alone = torch.eye(len(mu), dtype=torch.bool, device=mu.device)
    logits = (-distance / temperature).masked_fill(alone, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positive = (group_of_image[:, None] == group_of_image[None, :]) & ~alone
    count = positive.sum(1)
    has_mate = count > 0
    if not bool(has_mate.any()):
        return mu.sum() * 0.0
    per_image = -torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(1) / count.clamp_min(1)
    return per_image[has_mate].mean()


def mlvae_loss(output: ModelOutput, images: torch.Tensor, azimuth: torch.Tensor, elevation: torch.Tensor,
               theta: torch.Tensor, has_pose: torch.Tensor, angle_mean: torch.Tensor, angle_std: torch.Tensor,
               *, recon_weight: float = 1.0, beta_obs: float = 1.0, beta_content: float = 1.0,
               lambda_pose: float = 1.0, kl_scale: float = 1.0, azimuth_smoothing: float = 0.2,
               azimuth_offset_bins: int = 3, pixel_weights: torch.Tensor | None = None, lambda_contrast: float = 0.0,
               contrast_temperature: float = 1.0) -> LossTerms:
    """All loss terms for one batch (module docstring has the equations).

    output: the model's forward output on `images` (B, 3, H, W) in [0, 1]. kl_scale in [0, 1]
    multiplies both betas (KL warm-up). pixel_weights (B, 1, H, W) weighs each pixel's squared
    error (object 1, background less: see the module docstring); None = all 1. lambda_contrast
    weighs `content_contrast` at `contrast_temperature` (computed only when > 0). For the
    "direct" variant (no reconstruction) the ELBO terms are zero and only the pose loss is
    optimised.
    """
    pose = pose_loss(output.pose, azimuth, elevation, theta, has_pose, angle_mean, angle_std, azimuth_smoothing,
                     azimuth_offset_bins)
    zero = pose.total * 0.0
    if output.reconstruction is None:
        return LossTerms(lambda_pose * pose.total, zero, zero, zero, zero, zero, *pose)
    num_groups = output.mu_group.shape[0]
    group = output.group_of_image
    recon = recon_weight * sum_per_group(reconstruction_sse(output.reconstruction, images, pixel_weights), group, num_groups)
    kl_obs = sum_per_group(kl_to_standard_normal(output.mu_obs.float(), output.logvar_obs.float()), group, num_groups)
    kl_content = kl_to_standard_normal(output.mu_group.float(), output.logvar_group.float())  # (G,) once per group
    neg_elbo_groups = recon + kl_scale * (beta_obs * kl_obs + beta_content * kl_content)  # (G,)
    neg_elbo = neg_elbo_groups.mean()
    mean_group_size = images.shape[0] / num_groups
    total = neg_elbo / mean_group_size + lambda_pose * pose.total
    contrast = content_contrast(output.mu_content, group, contrast_temperature) if lambda_contrast > 0 else zero
    if lambda_contrast > 0:
        total = total + lambda_contrast * contrast
    return LossTerms(total, neg_elbo, recon.mean(), kl_obs.mean(), kl_content.mean(), contrast, *pose)
