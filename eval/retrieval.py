"""Identity retrieval from the group (content) latent: does the code generalise to unseen groups?

This is the ML-VAE's claim (Bouchacourt et al. 2018, "Multi-Level Variational Autoencoder",
section 4): accumulating evidence from more views of an unseen instance gives a content code that
identifies the instance better. Protocol, for each group size k in (1, 2, 4, 8):

1. Among the instances with at least k + 1 views, each instance gets a random permutation of its
   views. Its first view is held out into the GALLERY (one view per instance); the next k views
   form its QUERY.
2. The query code is the product of the k Gaussians q(c | x_i) when log-variances are given
   (precisions add: 1/var = sum 1/var_i, mu = var * sum mu_i / var_i, as the model accumulates a
   group), else the mean of the k latent means.
3. Top-1 is correct when the gallery view nearest (Euclidean, on means) to the query belongs to the
   same instance. Chance is 1 / (number of gallery instances).

Steps 1-3 are repeated `n_repeats` times with fresh permutations and the accuracies averaged.

With `gallery="enrolled"` each instance is enrolled from k views too (its first k views, product
of Gaussians as for the query; the next k form the query): an app that registers each object from
several views. With a one-view gallery, a query of many views is still matched against single,
noisy gallery codes, which bounds what accumulating the query can show.

Everything is vectorised: queries are gathered as (Q, k, D) arrays and distances computed in
blocks, no loop per instance.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from data_tools.gaussians import product_of_gaussians

DEFAULT_GROUP_SIZES = (1, 2, 4, 8)
#: Gallery protocols: one view per instance, or as many views as the query (`retrieval_top1`).
GALLERIES = ("one", "enrolled")


def accumulate_views(mu: np.ndarray, logvar: np.ndarray | None = None) -> np.ndarray:
    """Combine (Q, k, D) per-view latent means into (Q, D) query codes.

    With `logvar` (same shape): the mean of the product of Gaussians
    (data_tools.gaussians.product_of_gaussians, what apps' `PoseEstimator.predict_group` returns).
    Without: the plain mean over the k views.
    """
    mu = np.asarray(mu, dtype=np.float64)
    if logvar is None:
        return mu.mean(axis=1)
    return product_of_gaussians(mu, logvar, axis=1)[0]


def _codes(mu: np.ndarray, logvar: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """(G, D) codes of the (G, k) `rows`, each accumulated over its k views (`accumulate_views`)."""
    return accumulate_views(mu[rows], None if logvar is None else np.asarray(logvar)[rows])


def _nearest_gallery(queries: np.ndarray, gallery: np.ndarray, block: int = 2048) -> np.ndarray:
    """Index (Q,) of the nearest gallery row (squared Euclidean) for each query row, in blocks."""
    gallery_sq = (gallery**2).sum(axis=1)
    nearest = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), block):
        q = queries[start : start + block]
        # ||q - g||^2 = ||q||^2 - 2 q.g + ||g||^2; ||q||^2 is constant per row and drops out.
        distances = gallery_sq[None, :] - 2.0 * q @ gallery.T  # (block, G)
        nearest[start : start + block] = distances.argmin(axis=1)
    return nearest


def _permute_within_groups(groups: np.ndarray, rng: np.random.Generator):
    """Order rows by group with a random order inside each group.

    Returns (order, group_start, group_count): `order` lists row indices group by group, and
    group g's rows are order[group_start[g] : group_start[g] + group_count[g]].
    """
    order = np.lexsort((rng.random(len(groups)), groups))
    _, group_start, group_count = np.unique(groups[order], return_index=True, return_counts=True)
    return order, group_start, group_count


def retrieval_top1(
    mu: np.ndarray,
    groups: np.ndarray,
    logvar: np.ndarray | None = None,
    group_sizes: Sequence[int] = DEFAULT_GROUP_SIZES,
    n_repeats: int = 10,
    seed: int = 0,
    gallery: str = "one",
) -> dict[str, Any]:
    """Top-1 identity retrieval among unseen instances for several numbers of accumulated views.

    Args:
        mu: (N, D) per-image content (group) latent means of the evaluation split's images, each
            image encoded as its own group of one.
        groups: (N,) instance ids.
        logvar: optional (N, D) log-variances of the same posteriors (product-of-Gaussians query).
        group_sizes: numbers k of views accumulated into a query.
        n_repeats: random permutations averaged.
        seed: seeds the permutations.
        gallery: "one" (each instance's gallery code is one view) or "enrolled" (the product of k
            views, k as for the query).

    Returns:
        {"k": {"top1": accuracy, "chance": 1 / n_instances, "n_instances": int, "n_repeats": int,
        "gallery_views": int}, ...} keyed by str(k). A k for which fewer than 2 instances have
        enough views (k + 1, or 2k enrolled) gets {"top1": None, "reason": ...}.
    """
    mu = np.asarray(mu, dtype=np.float64)
    groups = np.asarray(groups)
    if mu.ndim != 2 or groups.shape != (mu.shape[0],):
        raise ValueError(
            f"mu must be (N, D) and groups (N,), got shapes {mu.shape} and {groups.shape}"
        )
    if logvar is not None and np.shape(logvar) != mu.shape:
        raise ValueError(f"logvar must have mu's shape {mu.shape}, got {np.shape(logvar)}")
    if gallery not in GALLERIES:
        raise ValueError(f"gallery={gallery!r}; choose one of {GALLERIES}")
    if any(int(k) < 1 for k in group_sizes):
        raise ValueError(f"group sizes must be >= 1, got {list(group_sizes)}")
    rng = np.random.default_rng(seed)
    gallery_views = {int(k): 1 if gallery == "one" else int(k) for k in group_sizes}
    correct = {int(k): 0 for k in group_sizes}
    totals = {int(k): 0 for k in group_sizes}
    instances = {int(k): 0 for k in group_sizes}
    for _ in range(n_repeats):
        order, group_start, group_count = _permute_within_groups(groups, rng)
        for k in correct:
            gallery_k = gallery_views[k]
            eligible = group_count >= k + gallery_k
            if eligible.sum() < 2:
                continue
            start = group_start[eligible]  # (G,)
            gallery_rows = order[start[:, None] + np.arange(gallery_k)[None, :]]  # (G, gallery_k)
            query_rows = order[start[:, None] + gallery_k + np.arange(k)[None, :]]  # (G, k)
            queries = _codes(mu, logvar, query_rows)  # (G, D)
            gallery_codes = mu[gallery_rows[:, 0]] if gallery_k == 1 else _codes(mu, logvar, gallery_rows)
            nearest = _nearest_gallery(queries, gallery_codes)
            correct[k] += int((nearest == np.arange(len(start))).sum())
            totals[k] += len(start)
            instances[k] = len(start)
    result: dict[str, Any] = {}
    for k in correct:
        if totals[k] == 0:
            result[str(k)] = {
                "top1": None,
                "reason": f"fewer than 2 instances have {k + gallery_views[k]} or more views",
            }
        else:
            result[str(k)] = {
                "top1": correct[k] / totals[k],
                "chance": 1.0 / instances[k],
                "n_instances": instances[k],
                "n_repeats": n_repeats,
                "gallery_views": gallery_views[k],
            }
    return result
