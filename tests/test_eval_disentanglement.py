"""FactorVAE / BetaVAE / FoV regression scores (eval.disentanglement) on synthetic grids."""

import numpy as np
import pytest

from eval.disentanglement import (beta_vae_score, factor_codes, factor_vae_score, fov_regression,
                                  grid_scores)


@pytest.fixture(scope="module")
def grid():
    """A complete grid: 24 azimuths x 5 elevations x 60 instances = 7200 images."""
    A, E, I = np.meshgrid(np.arange(0, 360, 15.0), np.arange(-10, 40, 10.0), np.arange(60), indexing="ij")
    return A.ravel(), E.ravel(), I.ravel()


def test_factor_codes_grid_and_circular_bins():
    codes = factor_codes([0, 15, 345, 0], [0, 0, 10, 10], ["b", "a", "a", "b"])
    assert codes.tolist() == [[0, 0, 1], [1, 0, 0], [2, 1, 0], [0, 1, 1]]
    binned = factor_codes([359.0, 1.0, 180.0, 14.0], [0, 0, 0, 0], [0, 0, 0, 0], azimuth_bins=12)
    assert binned[:, 0].tolist() == [0, 0, 6, 0]  # 359 and 1 share the bin centred on 0


def test_identity_representation_scores_one(grid):
    codes = factor_codes(*grid)
    latents = codes.astype(np.float64)  # one dimension per factor
    fvae = factor_vae_score(latents, codes, num_train=2000, num_eval=1000)
    bvae = beta_vae_score(latents, codes, num_train=2000, num_eval=1000)
    assert fvae["eval_accuracy"] == 1.0 and fvae["num_active_dims"] == 3
    assert bvae["eval_accuracy"] > 0.99


def test_noise_representation_scores_near_chance(grid):
    codes = factor_codes(*grid)
    latents = np.random.default_rng(0).normal(size=(len(codes), 10))
    fvae = factor_vae_score(latents, codes, num_train=2000, num_eval=1000)
    bvae = beta_vae_score(latents, codes, num_train=2000, num_eval=1000)
    assert abs(fvae["eval_accuracy"] - 1 / 3) < 0.12, fvae
    assert abs(bvae["eval_accuracy"] - 1 / 3) < 0.12, bvae


def test_factor_vae_prunes_collapsed_dimensions(grid):
    codes = factor_codes(*grid)
    latents = np.hstack([codes.astype(np.float64), np.full((len(codes), 2), 0.3)])
    result = factor_vae_score(latents, codes, num_train=500, num_eval=500)
    assert result["num_active_dims"] == 3 and result["eval_accuracy"] == 1.0
    empty = factor_vae_score(np.zeros((len(codes), 2)), codes, num_train=10, num_eval=10)
    assert empty["eval_accuracy"] == 0.0 and empty["num_active_dims"] == 0


def test_fov_regression_true_factors_and_noise(grid):
    azimuth, elevation, instance = grid
    a = np.deg2rad(azimuth)
    perfect = np.column_stack([np.sin(a), np.cos(a), elevation, np.eye(60)[instance]])
    good = fov_regression(perfect, azimuth, elevation, instance, num_train=3000, num_test=1500)
    assert good["azimuth_r2"] > 0.999 and good["elevation_r2"] > 0.999
    assert good["instance_accuracy"] == 1.0
    noise = np.random.default_rng(1).normal(size=(len(azimuth), 8))
    bad = fov_regression(noise, azimuth, elevation, instance, num_train=3000, num_test=1500)
    assert bad["azimuth_r2"] < 0.02 and bad["elevation_r2"] < 0.02
    assert bad["instance_accuracy"] < 0.05


def test_grid_scores_bundle_and_bad_factors(grid):
    azimuth, elevation, instance = grid
    latents = factor_codes(*grid).astype(np.float64)
    scores = grid_scores(latents, azimuth, elevation, instance, sample_counts=(500, 300))
    assert scores["factors"] == ["azimuth", "elevation", "instance"]
    assert scores["factor_vae"]["num_train"] == 500 and scores["beta_vae"]["eval_accuracy"] > 0.95
    with pytest.raises(ValueError, match="integer codes"):
        factor_vae_score(latents, latents)
    with pytest.raises(ValueError, match="same N"):
        beta_vae_score(latents[:10], factor_codes(*grid))
