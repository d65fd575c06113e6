"""Pose-from-latent probes (eval.probes): true factors score ~0 deg, noise scores ~chance."""

import numpy as np
import pytest

from eval.metrics import viewpoint_errors_deg
from eval.probes import chance_errors_deg, pose_probe, targets_to_viewpoints, viewpoint_targets


def _grid(instances: int, seed: int = 0):
    """Viewpoints of `instances` objects x 24 azimuths x 3 elevations, small random theta."""
    rng = np.random.default_rng(seed)
    az, el = np.meshgrid(np.arange(0, 360, 15.0), [0.0, 15.0, 30.0], indexing="ij")
    az = np.tile(az.ravel(), instances)
    el = np.tile(el.ravel(), instances)
    theta = rng.uniform(-10, 10, size=az.shape)
    group = np.repeat(np.arange(instances), 72)
    return np.stack([az, el, theta], axis=1), group


def test_targets_round_trip_against_independent_angles():
    rng = np.random.default_rng(1)
    viewpoints = np.stack([rng.uniform(0, 360, 200), rng.uniform(-80, 80, 200),
                           rng.uniform(-170, 170, 200)], axis=1)
    back = targets_to_viewpoints(viewpoint_targets(viewpoints))
    assert np.allclose(back, viewpoints, atol=1e-9)
    # sin/cos of azimuth agree with a hand check at 90 deg
    assert np.allclose(viewpoint_targets(np.array([[90.0, 5.0, -3.0]])), [[1.0, 0.0, 5.0, -3.0]], atol=1e-12)


def test_representation_equal_to_true_factors_is_near_perfect():
    viewpoints, group = _grid(12)
    latents = viewpoint_targets(viewpoints)  # the factors themselves, linearly readable
    train, test = group < 8, group >= 8  # unseen instances
    result = pose_probe(latents[train], viewpoints[train], latents[test], viewpoints[test])
    assert result["med_err_deg"] < 1e-3
    assert result["acc_pi_18"] == 1.0
    assert result["n"] == int(test.sum()) and result["n_train"] == int(train.sum())
    assert result["chance"]["med_err_deg"] > 60.0


@pytest.mark.parametrize("kind", ["ridge", "mlp"])
def test_random_noise_scores_near_chance(kind):
    viewpoints, group = _grid(12)
    latents = np.random.default_rng(2).normal(size=(len(group), 16))
    train, test = group < 8, group >= 8
    result = pose_probe(latents[train], viewpoints[train], latents[test], viewpoints[test], kind=kind)
    chance = result["chance"]["med_err_deg"]
    assert abs(result["med_err_deg"] - chance) < 20.0, (result["med_err_deg"], chance)
    assert result["med_err_deg"] > 60.0


def test_chance_baseline_matches_independent_geodesic():
    viewpoints, _ = _grid(2)
    errors = chance_errors_deg(viewpoints, viewpoints, seed=3)
    guess = viewpoints[np.random.default_rng(3).integers(0, len(viewpoints), len(viewpoints))]
    expected = viewpoint_errors_deg(*guess.T, *viewpoints.T)
    assert np.allclose(errors, expected)


def test_unlabelled_rows_are_ignored_and_categories_reported():
    viewpoints, group = _grid(6)
    latents = viewpoint_targets(viewpoints)
    viewpoints = viewpoints.copy()
    viewpoints[::5] = np.nan  # has_pose = 0
    categories = np.where(group % 2 == 0, "car", "chair")
    test = group >= 4
    result = pose_probe(latents[~test], viewpoints[~test], latents[test], viewpoints[test],
                        test_categories=categories[test])
    assert result["n"] == int(np.isfinite(viewpoints[test]).all(axis=1).sum())
    assert set(result["per_category"]) == {"car", "chair"}


def test_bad_inputs_raise_clear_errors():
    viewpoints, _ = _grid(2)
    with pytest.raises(ValueError, match="viewpoints must be"):
        pose_probe(np.zeros((len(viewpoints), 3)), viewpoints[:, :2], np.zeros((2, 3)), viewpoints[:2])
    with pytest.raises(ValueError, match="differ in width"):
        pose_probe(np.zeros((len(viewpoints), 3)), viewpoints, np.zeros((2, 4)), viewpoints[:2])
    with pytest.raises(ValueError, match="Unknown probe kind"):
        pose_probe(np.zeros((len(viewpoints), 3)), viewpoints, np.zeros((2, 3)), viewpoints[:2], kind="svm")
