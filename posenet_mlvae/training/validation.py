"""Validation during training: viewpoint error (eval.metrics) and the ELBO terms on a split.

The pose is decoded by `posenet_mlvae.inference.decode_pose`, the one decode that evaluation and
the exported ONNX module use too, so validation scores what those will report.

The split is processed in chunks of whole groups (so the group product sees every member), in
eval mode with posterior means; it uses no random numbers, so validating never changes the
course of training (needed for exact resume). Under DDP each rank validates a disjoint share of
the groups and the per-image errors and per-group sums are gathered before summarising.
"""

from __future__ import annotations

import numpy as np
import torch

from eval.metrics import summarize, viewpoint_errors_deg
from posenet_mlvae.training.data import SplitData, make_batch
from posenet_mlvae.training.distributed import all_gather_objects
from posenet_mlvae.inference import decode_pose, pose_angles, averaged_view_latents
from posenet_mlvae.network.losses import mlvae_loss


def validation_rows(data: SplitData, max_images: int, rank: int = 0, world_size: int = 1) -> list[np.ndarray]:
    """Row chunks (~256 images, whole groups) of a deterministic subset of at most max_images rows."""
    groups = np.unique(data.group)
    rng = np.random.default_rng(0)
    groups = groups[rng.permutation(len(groups))]  # a fixed, category-mixed subset
    rows_per_group = len(data.group) / max(len(groups), 1)
    groups = np.sort(groups[: max(1, int(max_images / rows_per_group))])[rank::world_size]
    rows = np.flatnonzero(np.isin(data.group, groups))
    rows = rows[np.argsort(data.group[rows], kind="stable")]
    boundaries = np.flatnonzero(np.diff(data.group[rows])) + 1
    chunks, start = [], 0
    for end in list(boundaries) + [len(rows)]:
        if end - start >= 256 or end == len(rows):
            chunks.append(rows[start:end])
            start = end
    return [c for c in chunks if len(c)]


@torch.no_grad()
def validate(model: torch.nn.Module, data: SplitData, device: torch.device, loss_weights: dict,
             max_images: int = 4096, rank: int = 0, world_size: int = 1,
             background_weight: float = 1.0) -> dict[str, float]:
    """{'med_err_deg', 'acc_pi_6', 'acc_pi_18', 'n', 'neg_elbo', 'recon', 'kl_obs', 'kl_content', 'pose'}."""
    was_training = model.training
    model.eval()
    head = model.pose_head
    errors, sums, groups_seen = [], {k: 0.0 for k in ("neg_elbo", "recon", "kl_obs", "kl_content")}, 0
    pose_sum, pose_n = 0.0, 0
    for rows in validation_rows(data, max_images, rank, world_size):
        batch = make_batch(data, rows, device, generator=None, background_weight=background_weight)
        output = model(batch.images, batch.group)
        terms = mlvae_loss(output, batch.images, batch.azimuth, batch.elevation, batch.theta, batch.has_pose,
                           head.angle_mean, head.angle_std, pixel_weights=batch.pixel_weights, **loss_weights)
        n_groups = output.mu_group.shape[0] if output.mu_group is not None else len(rows)
        for key in sums:
            sums[key] += float(getattr(terms, key)) * n_groups
        groups_seen += n_groups
        labelled = batch.has_pose.cpu().numpy()
        pose_sum += float(terms.pose) * int(labelled.sum())
        pose_n += int(labelled.sum())
        extra_views = averaged_view_latents(model, batch.images)
        pred = pose_angles(decode_pose(model, output.mu_obs, extra_views)).double().cpu().numpy()  # (B, 3)
        err = viewpoint_errors_deg(*pred.T, batch.azimuth.cpu().numpy(), batch.elevation.cpu().numpy(),
                                   batch.theta.cpu().numpy())
        errors.append(np.asarray(err)[labelled])
    model.train(was_training)
    gathered = all_gather_objects((np.concatenate(errors) if errors else np.zeros(0), sums, groups_seen,
                                   pose_sum, pose_n))
    all_errors = np.concatenate([g[0] for g in gathered])
    total_groups = max(sum(g[2] for g in gathered), 1)
    result = {k: sum(g[1][k] for g in gathered) / total_groups for k in sums}
    result["pose"] = sum(g[3] for g in gathered) / max(sum(g[4] for g in gathered), 1)
    if len(all_errors):
        summary = summarize(all_errors)
        result.update({k: float(summary[k]) for k in ("med_err_deg", "acc_pi_6", "acc_pi_18")})
    else:
        result.update({"med_err_deg": float("nan"), "acc_pi_6": float("nan"), "acc_pi_18": float("nan")})
    result = {k: float(v) for k, v in result.items()}  # plain floats: checkpoints hold plain data only
    result["n"] = int(len(all_errors))
    return result
