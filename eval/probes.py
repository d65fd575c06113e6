"""Pose-from-latent probes: how much viewpoint information a latent code carries.

A probe is a simple regressor fitted on the latents of TRAIN instances and scored on the latents of
unseen (test) instances, so it measures what the representation exposes rather than what a
powerful regressor can memorise. For the ML-VAE the expected picture is: the observation latent
gives a low MedErr, the group (content) latent stays near chance.

Targets are (sin a, cos a, e, theta) in degrees for e and theta: the azimuth wraps around, so it
is regressed through its sine and cosine and read back with atan2; elevation and in-plane rotation
stay small in practice and are regressed directly. Errors are the geodesic angles of
`eval.metrics`, summarised with `eval.metrics.summarize` (MedErr, Acc@pi/6, Acc@pi/18).

Chance level: each test image gets the viewpoint of a random train image (the prior of the train
viewpoints); its MedErr is what a probe that learned nothing scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from data_tools.geometry import wrap_azimuth, wrap_theta
from eval.metrics import summarize, viewpoint_errors_deg

PROBE_KINDS = ("ridge", "mlp")


def viewpoint_targets(viewpoints: np.ndarray) -> np.ndarray:
    """(N, 3) degrees (azimuth, elevation, theta) -> (N, 4) probe targets (sin a, cos a, e, theta)."""
    viewpoints = np.asarray(viewpoints, dtype=np.float64)
    azimuth = np.deg2rad(viewpoints[:, 0])
    return np.stack([np.sin(azimuth), np.cos(azimuth), viewpoints[:, 1], viewpoints[:, 2]], axis=1)


def targets_to_viewpoints(targets: np.ndarray) -> np.ndarray:
    """(N, 4) probe outputs -> (N, 3) degrees: azimuth by atan2 in [0, 360), e clipped, theta wrapped."""
    targets = np.asarray(targets, dtype=np.float64)
    azimuth = wrap_azimuth(np.rad2deg(np.arctan2(targets[:, 0], targets[:, 1])))
    elevation = np.clip(targets[:, 2], -90.0, 90.0)
    theta = wrap_theta(targets[:, 3])
    return np.stack([azimuth, elevation, theta], axis=1)


def _check_latents(name: str, latents: np.ndarray, viewpoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    latents = np.asarray(latents, dtype=np.float64)
    viewpoints = np.asarray(viewpoints, dtype=np.float64)
    if latents.ndim != 2:
        raise ValueError(f"{name} latents must be (N, D), got shape {latents.shape}")
    if viewpoints.shape != (latents.shape[0], 3):
        raise ValueError(
            f"{name} viewpoints must be (N, 3) (azimuth, elevation, theta) with N = {latents.shape[0]}"
            f" rows to match the latents, got shape {viewpoints.shape}"
        )
    return latents, viewpoints


def _labelled(latents: np.ndarray, viewpoints: np.ndarray, categories: np.ndarray | None):
    """Keep rows whose viewpoint is finite (has_pose = 1) and whose latent is finite."""
    keep = np.isfinite(viewpoints).all(axis=1) & np.isfinite(latents).all(axis=1)
    categories = None if categories is None else np.asarray(categories)[keep]
    return latents[keep], viewpoints[keep], categories


def make_probe(kind: str = "ridge", seed: int = 0):
    """An unfitted scikit-learn regressor for `kind`.

    "ridge": standardised inputs + RidgeCV (alpha chosen by efficient leave-one-out over 1e-3..1e3);
    "mlp": standardised inputs + MLPRegressor with one hidden layer of 128 ReLU units, Adam,
    early stopping on 10 % of the train rows, targets standardised.
    """
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "ridge":
        return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 7)))
    if kind == "mlp":
        mlp = MLPRegressor(
            hidden_layer_sizes=(128,),
            max_iter=300,
            early_stopping=True,
            validation_fraction=0.1,
            random_state=seed,
        )
        return TransformedTargetRegressor(
            regressor=make_pipeline(StandardScaler(), mlp), transformer=StandardScaler()
        )
    raise ValueError(f"Unknown probe kind {kind!r}; choose one of {PROBE_KINDS}.")


def chance_errors_deg(
    train_viewpoints: np.ndarray, test_viewpoints: np.ndarray, seed: int = 0
) -> np.ndarray:
    """Errors (N_test,) of predicting, for each test image, the viewpoint of a random train image."""
    rng = np.random.default_rng(seed)
    train_viewpoints = np.asarray(train_viewpoints, dtype=np.float64)
    test_viewpoints = np.asarray(test_viewpoints, dtype=np.float64)
    guess = train_viewpoints[rng.integers(0, len(train_viewpoints), size=len(test_viewpoints))]
    return viewpoint_errors_deg(
        guess[:, 0], guess[:, 1], guess[:, 2],
        test_viewpoints[:, 0], test_viewpoints[:, 1], test_viewpoints[:, 2],
    )


def pose_probe(
    train_latents: np.ndarray,
    train_viewpoints: np.ndarray,
    test_latents: np.ndarray,
    test_viewpoints: np.ndarray,
    kind: str = "ridge",
    test_categories: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit a viewpoint probe on train latents and score it on unseen instances' latents.

    Args:
        train_latents: (N_train, D) latent means of train-split images (train instances).
        train_viewpoints: (N_train, 3) true (azimuth, elevation, theta) in degrees; rows with NaN
            (images without a pose label) are ignored, as are rows with non-finite latents.
        test_latents, test_viewpoints: the same for the evaluation split (unseen instances).
        kind: "ridge" (linear) or "mlp" (one hidden layer), see `make_probe`.
        test_categories: optional (N_test,) category names for per-category blocks.
        seed: seeds the MLP and the chance baseline.

    Returns:
        `eval.metrics.summarize` of the probe's errors (med_err_deg, acc_pi_6, acc_pi_18, n, and
        per_category / mean_over_categories when categories are given), plus `kind`, `n_train`,
        and `chance`: the summary of the random-train-viewpoint baseline.
    """
    train_latents, train_viewpoints = _check_latents("train", train_latents, train_viewpoints)
    test_latents, test_viewpoints = _check_latents("test", test_latents, test_viewpoints)
    if train_latents.shape[1] != test_latents.shape[1]:
        raise ValueError(
            f"train and test latents differ in width ({train_latents.shape[1]} vs "
            f"{test_latents.shape[1]}); pass latents from the same model and latent."
        )
    train_latents, train_viewpoints, _ = _labelled(train_latents, train_viewpoints, None)
    test_latents, test_viewpoints, test_categories = _labelled(
        test_latents, test_viewpoints, test_categories
    )
    if len(train_latents) < 2 or len(test_latents) < 1:
        raise ValueError(
            f"a pose probe needs >= 2 labelled train rows and >= 1 labelled test row, got "
            f"{len(train_latents)} and {len(test_latents)}; check has_pose in the dataset."
        )
    probe = make_probe(kind, seed=seed)
    probe.fit(train_latents, viewpoint_targets(train_viewpoints))
    predicted = targets_to_viewpoints(probe.predict(test_latents))
    errors = viewpoint_errors_deg(
        predicted[:, 0], predicted[:, 1], predicted[:, 2],
        test_viewpoints[:, 0], test_viewpoints[:, 1], test_viewpoints[:, 2],
    )
    result = summarize(errors, test_categories)
    chance = summarize(chance_errors_deg(train_viewpoints, test_viewpoints, seed=seed), test_categories)
    result.update({"kind": kind, "n_train": int(len(train_latents)), "chance": chance})
    return result
