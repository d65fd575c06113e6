"""Supervised disentanglement scores on a grid set (azimuth x elevation x instance, like Cars3D).

Inputs are plain arrays: `latents` (N, D), one representation per image (e.g. the concatenation of
the observation and the group latent means), and `factors` (N, K) integer codes of the ground-truth
factors of each image (see `factor_codes`). Sampling "a batch with factor k fixed" draws an anchor
image uniformly, keeps its value v of factor k and draws the batch uniformly among the images with
value v. On a complete grid this is exactly disentanglement_lib's sampling (uniform factors, then
the observation with those factors); on a grid with holes it stays well defined.

Standard sample counts are those of disentanglement_lib (Locatello et al. 2019, "Challenging
Common Assumptions in the Unsupervised Learning of Disentangled Representations", configs
`beta_vae_sklearn.gin` and `factor_vae_metric.gin`):
- BetaVAE score: batch 64, 10,000 train and 5,000 eval points.
- FactorVAE score: batch 64, 10,000 train and 5,000 eval votes, 10,000 points for the global
  variances, dimensions with std < 0.05 pruned.
- FoV regression (downstream_task style): 10,000 train and 5,000 test images, capped at 2/3 and
  1/3 of the set when it is smaller (images are split, never shared between fit and score).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

FACTOR_NAMES = ("azimuth", "elevation", "instance")


def factor_codes(
    azimuth: np.ndarray,
    elevation: np.ndarray,
    instance: np.ndarray,
    azimuth_bins: int | None = None,
    elevation_bins: int | None = None,
) -> np.ndarray:
    """(N, 3) int codes of (azimuth, elevation, instance) for the scores in this module.

    Azimuth is circular: with `azimuth_bins` it is cut into equal bins centred on 0 deg, 360/B, ...
    (so 359 and 1 deg share a bin); without, each distinct value (rounded to 0.01 deg, wrapped into
    [0, 360)) is its own code, right for a rendered grid. Elevation likewise with `elevation_bins`
    equal bins over the observed range. Instances get codes 0..I-1 in sorted order.
    """
    azimuth = np.mod(np.asarray(azimuth, dtype=np.float64), 360.0)
    elevation = np.asarray(elevation, dtype=np.float64)
    if azimuth_bins is None:
        az_code = np.unique(np.round(azimuth, 2) % 360.0, return_inverse=True)[1]
    else:
        width = 360.0 / azimuth_bins
        az_code = np.floor(np.mod(azimuth + width / 2.0, 360.0) / width).astype(np.int64)
    if elevation_bins is None:
        el_code = np.unique(np.round(elevation, 2), return_inverse=True)[1]
    else:
        edges = np.linspace(elevation.min(), elevation.max(), elevation_bins + 1)[1:-1]
        el_code = np.digitize(elevation, edges)
    inst_code = np.unique(np.asarray(instance), return_inverse=True)[1]
    return np.stack([az_code, el_code, inst_code], axis=1).astype(np.int64)


class _FactorSampler:
    """Draws image indices uniformly, or uniformly among images sharing one factor's value."""

    def __init__(self, factors: np.ndarray, rng: np.random.Generator):
        self.factors = factors
        self.rng = rng
        self.num_images, self.num_factors = factors.shape
        # For factor k: images sorted by value; value v occupies rows start[k][v] : +count[k][v].
        self.order, self.start, self.count = [], [], []
        for k in range(self.num_factors):
            order = np.argsort(factors[:, k], kind="stable")
            values, start, count = np.unique(factors[order, k], return_index=True, return_counts=True)
            start_full = np.zeros(values.max() + 1, dtype=np.int64)
            count_full = np.zeros(values.max() + 1, dtype=np.int64)
            start_full[values], count_full[values] = start, count
            self.order.append(order)
            self.start.append(start_full)
            self.count.append(count_full)

    def uniform(self, shape) -> np.ndarray:
        return self.rng.integers(0, self.num_images, size=shape)

    def sharing(self, factor: int, anchors: np.ndarray, batch: int) -> np.ndarray:
        """(len(anchors), batch) images with the same value of `factor` as each anchor image."""
        values = self.factors[anchors, factor]
        start, count = self.start[factor][values], self.count[factor][values]
        offsets = np.floor(self.rng.random((len(anchors), batch)) * count[:, None]).astype(np.int64)
        return self.order[factor][start[:, None] + offsets]


def _check(latents: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    latents = np.asarray(latents, dtype=np.float64)
    factors = np.asarray(factors)
    if latents.ndim != 2 or factors.ndim != 2 or len(latents) != len(factors):
        raise ValueError(
            f"latents must be (N, D) and factors (N, K) with the same N, got {latents.shape} and "
            f"{factors.shape}"
        )
    if not np.issubdtype(factors.dtype, np.integer) or factors.min() < 0:
        raise ValueError("factors must be non-negative integer codes; build them with factor_codes()")
    return latents, factors.astype(np.int64)


def _beta_vae_points(latents, sampler, num_points, batch, chunk=500):
    """BetaVAE training points: label k and mean |z1 - z2| over `batch` pairs sharing factor k."""
    labels = sampler.rng.integers(0, sampler.num_factors, size=num_points)
    features = np.empty((num_points, latents.shape[1]))
    for begin in range(0, num_points, chunk):
        rows = slice(begin, min(begin + chunk, num_points))
        first = sampler.uniform((rows.stop - begin, batch))  # (n, batch)
        second = np.empty_like(first)
        for k in range(sampler.num_factors):
            pick = labels[rows] == k
            second[pick] = sampler.sharing(k, first[pick].ravel(), 1).reshape(-1, batch)
        features[rows] = np.abs(latents[first] - latents[second]).mean(axis=1)  # (n, D)
    return features, labels


def beta_vae_score(
    latents: np.ndarray,
    factors: np.ndarray,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    seed: int = 0,
) -> dict[str, Any]:
    """BetaVAE disentanglement score (Higgins et al. 2017, "beta-VAE: Learning Basic Visual
    Concepts with a Constrained Variational Framework", ICLR, section 3), as in disentanglement_lib.

    One point: draw a factor k uniformly; draw `batch_size` pairs of images whose factor k agrees
    (everything else random); the feature is the mean over pairs of |z1 - z2| per latent dimension.
    A linear classifier (scikit-learn LogisticRegression) learns k from the feature on `num_train`
    points; the score is its accuracy on `num_eval` fresh points. Chance is 1 / K.
    """
    from sklearn.linear_model import LogisticRegression

    latents, factors = _check(latents, factors)
    sampler = _FactorSampler(factors, np.random.default_rng(seed))
    train_x, train_y = _beta_vae_points(latents, sampler, num_train, batch_size)
    eval_x, eval_y = _beta_vae_points(latents, sampler, num_eval, batch_size)
    classifier = LogisticRegression(max_iter=1000).fit(train_x, train_y)
    return {
        "train_accuracy": float(classifier.score(train_x, train_y)),
        "eval_accuracy": float(classifier.score(eval_x, eval_y)),
        "chance": 1.0 / factors.shape[1],
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
    }


def _factor_vae_votes(latents, sampler, num_points, batch, global_std, active, chunk=500):
    """(K, D_active) vote counts: fixed factor k vs the active dim of least normalised variance."""
    votes = np.zeros((sampler.num_factors, int(active.sum())), dtype=np.int64)
    labels = sampler.rng.integers(0, sampler.num_factors, size=num_points)
    anchors = sampler.uniform(num_points)
    scaled = latents[:, active] / global_std[active]  # var(z / s) = var(z) / s^2
    for begin in range(0, num_points, chunk):
        rows = slice(begin, min(begin + chunk, num_points))
        batches = np.empty((rows.stop - begin, batch), dtype=np.int64)
        for k in range(sampler.num_factors):
            pick = labels[rows] == k
            batches[pick] = sampler.sharing(k, anchors[rows][pick], batch)
        local_var = scaled[batches].var(axis=1, ddof=1)  # (n, D_active)
        np.add.at(votes, (labels[rows], local_var.argmin(axis=1)), 1)
    return votes


def factor_vae_score(
    latents: np.ndarray,
    factors: np.ndarray,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", ICML,
    section 4), as in disentanglement_lib.

    Each latent dimension is divided by its global standard deviation (over
    `num_variance_estimate` random images); dimensions whose global std is below `prune_threshold`
    are dropped (collapsed). One vote: draw a factor k, draw `batch_size` images sharing one value
    of k, take the dimension d with the least variance in the batch; vote (k, d). A majority-vote
    classifier maps each dimension to the factor it was most often voted for on `num_train` votes;
    the score is its accuracy on `num_eval` fresh votes. Chance is about 1 / K.
    """
    latents, factors = _check(latents, factors)
    sampler = _FactorSampler(factors, np.random.default_rng(seed))
    global_std = latents[sampler.uniform(num_variance_estimate)].std(axis=0, ddof=1)
    active = global_std >= prune_threshold
    result: dict[str, Any] = {
        "chance": 1.0 / factors.shape[1],
        "num_active_dims": int(active.sum()),
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
    }
    if not active.any():
        result.update({"train_accuracy": 0.0, "eval_accuracy": 0.0})
        return result
    train_votes = _factor_vae_votes(latents, sampler, num_train, batch_size, global_std, active)
    eval_votes = _factor_vae_votes(latents, sampler, num_eval, batch_size, global_std, active)
    classifier = train_votes.argmax(axis=0)  # (D_active,) factor assigned to each dimension
    dims = np.arange(train_votes.shape[1])
    result["train_accuracy"] = float(train_votes[classifier, dims].sum() / train_votes.sum())
    result["eval_accuracy"] = float(eval_votes[classifier, dims].sum() / eval_votes.sum())
    return result


def fov_regression(
    latents: np.ndarray,
    azimuth: np.ndarray,
    elevation: np.ndarray,
    instance: np.ndarray,
    num_train: int = 10_000,
    num_test: int = 5_000,
    seed: int = 0,
) -> dict[str, Any]:
    """How well each factor of variation (FoV) can be read linearly from the latent.

    In the style of the "FoV regression" of Locatello et al. 2020 ("Weakly-Supervised
    Disentanglement Without Compromises", ICML; disentanglement_lib's downstream tasks): fit on
    `num_train` images, score on `num_test` other images, inputs standardised.
    - azimuth: RidgeCV on (sin a, cos a) -> R^2 (uniform average of the two outputs); circular, so
      it is never regressed as raw degrees.
    - elevation: RidgeCV on e -> R^2.
    - instance: a categorical factor has no R^2; we report the test accuracy of a logistic
      regression classifier (and its chance, the frequency of the commonest instance).
    R^2 is 1 for a perfect linear read-out, ~0 (or below) when the latent carries nothing.
    """
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    latents = np.asarray(latents, dtype=np.float64)
    n = len(latents)
    if n < 6:
        raise ValueError(f"FoV regression needs at least 6 images, got {n}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_train = min(num_train, (2 * n) // 3)
    n_test = min(num_test, n - n_train)
    train, test = order[:n_train], order[n_train : n_train + n_test]
    a = np.deg2rad(np.asarray(azimuth, dtype=np.float64))
    targets = {
        "azimuth": np.stack([np.sin(a), np.cos(a)], axis=1),
        "elevation": np.asarray(elevation, dtype=np.float64)[:, None],
    }
    result: dict[str, Any] = {"n_train": int(n_train), "n_test": int(n_test)}
    for name, y in targets.items():
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 7)))
        model.fit(latents[train], y[train])
        result[f"{name}_r2"] = float(r2_score(y[test], model.predict(latents[test])))
    instance = np.unique(np.asarray(instance), return_inverse=True)[1]
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    classifier.fit(latents[train], instance[train])
    result["instance_accuracy"] = float(classifier.score(latents[test], instance[test]))
    result["instance_chance"] = float(np.bincount(instance[test]).max() / len(test))
    return result


def grid_scores(
    latents: np.ndarray,
    azimuth: np.ndarray,
    elevation: np.ndarray,
    instance: np.ndarray,
    azimuth_bins: int | None = None,
    seed: int = 0,
    sample_counts: Sequence[int] = (10_000, 5_000),
) -> dict[str, Any]:
    """FactorVAE, BetaVAE and FoV regression of one representation on a grid set, in one dict.

    `sample_counts` = (train, eval) points for all three (the standard 10,000 / 5,000); tests pass
    smaller counts to stay fast.
    """
    factors = factor_codes(azimuth, elevation, instance, azimuth_bins=azimuth_bins)
    num_train, num_eval = sample_counts
    return {
        "factors": list(FACTOR_NAMES),
        "factor_vae": factor_vae_score(latents, factors, num_train=num_train, num_eval=num_eval, seed=seed),
        "beta_vae": beta_vae_score(latents, factors, num_train=num_train, num_eval=num_eval, seed=seed),
        "fov_regression": fov_regression(
            latents, azimuth, elevation, instance, num_train=num_train, num_test=num_eval, seed=seed
        ),
    }
