"""The product of diagonal Gaussians in numpy: how a group's content evidence is accumulated.

The ML-VAE's group posterior is the product of its members' posteriors N(mu_i, exp(logvar_i))
(DESIGN.md section 3; the torch version is posenet_mlvae.network.model.group_product_of_gaussians):

    1 / var = sum_i 1 / var_i,      mu = var * sum_i mu_i / var_i

computed with log-precisions shifted by their maximum, so any precisions are safe. Apps
(export.runtime.PoseEstimator.predict_group) and the retrieval diagnostic (eval.retrieval) call
this one function, without torch.
"""

from __future__ import annotations

import numpy as np


def product_of_gaussians(mu: np.ndarray, logvar: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(mean, log-variance) of the product of the Gaussians along `axis` (float64, that axis removed).

    mu, logvar: arrays of one shape, e.g. (k, D) for k views of one object or (Q, k, D) with axis=1.
    A product of one Gaussian is that Gaussian.
    """
    mu = np.asarray(mu, dtype=np.float64)
    logvar = np.asarray(logvar, dtype=np.float64)
    if mu.shape != logvar.shape:
        raise ValueError(f"logvar shape {logvar.shape} must equal mu shape {mu.shape}")
    if mu.ndim == 0 or mu.shape[axis] == 0:
        raise ValueError(f"no Gaussians to multiply along axis {axis} of shape {mu.shape}")
    log_precision = -logvar
    top = log_precision.max(axis=axis, keepdims=True)
    weights = np.exp(log_precision - top)  # precisions relative to the largest, in (0, 1]
    total = weights.sum(axis=axis, keepdims=True)
    mean = (weights * mu).sum(axis=axis) / np.squeeze(total, axis)
    group_logvar = -(np.squeeze(top, axis) + np.log(np.squeeze(total, axis)))
    return mean, group_logvar
