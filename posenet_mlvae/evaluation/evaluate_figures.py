"""Decoded figures of the evaluation report: the ML-VAE swap grid and observation-latent traversals.

The model side of `eval.report`: it picks images, decodes latent combinations with the model's
decoder and hands uint8 arrays to `eval.report.write_report`. Models without a decoder (variant
"direct") get the report without these two figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from data_tools.dataset import GroupedDataset
from eval.report import SwapGridImages, TraversalImages, write_report
from eval.retrieval import accumulate_views


@torch.no_grad()
def decode(model: torch.nn.Module, mu_obs: np.ndarray, mu_content: np.ndarray, device: str = "cpu") -> np.ndarray:
    """(N, D_obs), (N, D_c) latent means -> (N, H, W, 3) uint8 images from the model's decoder."""
    z = torch.from_numpy(np.hstack([mu_obs, mu_content]).astype(np.float32)).to(device)
    images = model.decoder(z).clamp(0.0, 1.0)  # (N, 3, H, W)
    return (images.permute(0, 2, 3, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def group_contents(predictions, groups: np.ndarray) -> np.ndarray:
    """(len(groups), D_c) content code of each group: the product of its views' posteriors."""
    codes = []
    for g in groups:
        rows = predictions.group == g
        codes.append(accumulate_views(predictions.mu_content[rows][None], predictions.logvar_content[rows][None])[0])
    return np.stack(codes)


def swap_grid_images(model, dataset: GroupedDataset, predictions, size: int = 6, device: str = "cpu",
                     seed: int = 0) -> SwapGridImages:
    """Rows: `size` random unseen groups (content = product over the group's views, shown by one view).
    Columns: `size` images spread over azimuth (their observation latent). Cell (i, j) decodes both."""
    rng = np.random.default_rng(seed)
    groups = np.unique(predictions.group)
    row_groups = np.sort(rng.choice(groups, size=min(size, len(groups)), replace=False))
    row_images = np.array([np.flatnonzero(predictions.group == g)[0] for g in row_groups])
    by_azimuth = np.argsort(np.where(predictions.has_pose, predictions.true[:, 0], np.inf), kind="stable")
    labelled = by_azimuth[: max(int(predictions.has_pose.sum()), 1)]
    cols = labelled[np.linspace(0, len(labelled) - 1, min(size, len(labelled))).round().astype(int)]
    content = group_contents(predictions, row_groups)  # (R, D_c)
    rows_n, cols_n = len(row_groups), len(cols)
    decoded = decode(model, np.tile(predictions.mu_obs[cols], (rows_n, 1)), np.repeat(content, cols_n, axis=0),
                     device)
    decoded = decoded.reshape(rows_n, cols_n, *decoded.shape[1:])
    return SwapGridImages(decoded, dataset.images(predictions.row[row_images]), dataset.images(predictions.row[cols]))


def traversal_images(model, predictions, steps: int = 7, max_dims: int = 8, device: str = "cpu",
                     base: int = 0) -> TraversalImages:
    """The `max_dims` observation dims of largest spread over the split, each set to mean + t * std
    (t in -2.5..2.5, `steps` values) with the other dims at image `base`'s means."""
    std = predictions.mu_obs.std(axis=0)
    mean = predictions.mu_obs.mean(axis=0)
    dims = tuple(int(d) for d in np.argsort(-std, kind="stable")[:max_dims])
    t = np.linspace(-2.5, 2.5, steps)
    obs = np.repeat(predictions.mu_obs[base][None], len(dims) * steps, axis=0).reshape(len(dims), steps, -1)
    for r, d in enumerate(dims):
        obs[r, :, d] = mean[d] + t * std[d]
    content = np.repeat(predictions.mu_content[base][None], len(dims) * steps, axis=0)
    decoded = decode(model, obs.reshape(len(dims) * steps, -1), content, device)
    return TraversalImages(decoded.reshape(len(dims), steps, *decoded.shape[1:]), t, dims)


def write_model_report(model, dataset: GroupedDataset, predictions, metrics: Mapping[str, Any], out_dir: Path,
                       device: str = "cpu", seed: int = 0) -> Path:
    """`eval.report.write_report` with the model's decoded swap grid and traversals when it has a decoder."""
    swap = traversal = None
    if getattr(model, "decoder", None) is not None and predictions.mu_content is not None:
        swap = swap_grid_images(model, dataset, predictions, device=device, seed=seed)
        traversal = traversal_images(model, predictions, device=device)
    labelled = predictions.has_pose
    rows = predictions.row[labelled]
    title = f"Viewpoint evaluation: {metrics.get('checkpoint', '')} on {metrics.get('split', '')}"
    return write_report(
        out_dir, metrics, predictions.errors_deg()[labelled], predictions.true[labelled], predictions.pred[labelled],
        image_lookup=lambda idx: dataset.images(rows[idx]), captions=predictions.category[labelled],
        swap=swap, traversal=traversal, confidence=predictions.confidence[labelled], title=title,
    )
