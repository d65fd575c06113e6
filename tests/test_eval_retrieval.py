"""Identity retrieval from the group latent (eval.retrieval)."""

import numpy as np
import pytest

from eval.retrieval import accumulate_views, retrieval_top1


def _groups(instances: int, views: int) -> np.ndarray:
    return np.repeat(np.arange(instances), views)


def test_identity_coding_latent_retrieves_perfectly():
    groups = _groups(30, 12)
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(30, 8))
    mu = codes[groups] + 0.05 * rng.normal(size=(len(groups), 8))
    result = retrieval_top1(mu, groups)
    for k in ("1", "2", "4", "8"):
        assert result[k]["top1"] == 1.0
        assert result[k]["chance"] == pytest.approx(1 / 30)
        assert result[k]["n_instances"] == 30


def test_noise_latent_is_near_one_over_instances():
    groups = _groups(40, 10)
    mu = np.random.default_rng(1).normal(size=(len(groups), 8))
    result = retrieval_top1(mu, groups, n_repeats=50)
    for k in ("1", "2", "4", "8"):
        assert abs(result[k]["top1"] - 1 / 40) < 0.02, result[k]


def test_more_views_help_a_noisy_identity_code():
    groups = _groups(50, 10)
    rng = np.random.default_rng(2)
    mu = rng.normal(size=(50, 8))[groups] + 1.5 * rng.normal(size=(len(groups), 8))
    result = retrieval_top1(mu, groups, n_repeats=20)
    assert result["1"]["top1"] < result["4"]["top1"] < result["8"]["top1"]


def test_product_of_gaussians_matches_hand_computation():
    mu = np.array([[[0.0, 2.0], [4.0, 2.0]]])  # (1 query, 2 views, 2 dims)
    logvar = np.log(np.array([[[1.0, 1.0], [3.0, 1.0]]]))
    # dim 0: precisions 1 and 1/3 -> (0*1 + 4/3) / (4/3) = 1; dim 1: equal -> 2
    assert np.allclose(accumulate_views(mu, logvar), [[1.0, 2.0]])
    assert np.allclose(accumulate_views(mu), [[2.0, 2.0]])
    # the product uses the variances: a confident view dominates the query
    mu = np.random.default_rng(3).normal(size=(5, 3, 4))
    logvar = np.zeros((5, 3, 4))
    logvar[:, 0] = -20.0
    assert np.allclose(accumulate_views(mu, logvar), mu[:, 0], atol=1e-6)


def test_groups_too_small_are_reported_not_scored():
    groups = _groups(5, 3)  # 3 views: k = 1, 2 possible, k = 4, 8 not
    mu = np.random.default_rng(4).normal(size=(15, 4))
    result = retrieval_top1(mu, groups)
    assert result["2"]["top1"] is not None
    assert result["4"]["top1"] is None and "fewer than 2 instances" in result["4"]["reason"]


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="groups"):
        retrieval_top1(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="logvar"):
        retrieval_top1(np.zeros((4, 2)), np.zeros(4), logvar=np.zeros((4, 3)))


def test_an_enrolled_gallery_lifts_many_view_queries_of_a_noisy_code():
    groups = _groups(50, 20)
    rng = np.random.default_rng(5)
    mu = rng.normal(size=(50, 8))[groups] + 1.5 * rng.normal(size=(len(groups), 8))
    one = retrieval_top1(mu, groups, n_repeats=20)
    enrolled = retrieval_top1(mu, groups, n_repeats=20, gallery="enrolled")
    # k = 1: the same protocol (one view each side), so the same accuracy up to the draws.
    assert abs(enrolled["1"]["top1"] - one["1"]["top1"]) < 0.05
    # k = 8: both sides average the noise away, so far more than a one-view gallery allows.
    assert enrolled["8"]["top1"] > one["8"]["top1"] + 0.2
    assert enrolled["8"]["gallery_views"] == 8 and one["8"]["gallery_views"] == 1


def test_an_enrolled_gallery_needs_twice_the_views():
    # Two instances, 2 views each: k = 1 enrols one view and queries the other, whichever way
    # round, and each query's nearest gallery code is its own instance's.
    groups = np.array([0, 0, 1, 1])
    mu = np.array([[0.0], [0.1], [5.0], [5.1]])
    assert retrieval_top1(mu, groups, group_sizes=(1,), gallery="enrolled")["1"]["top1"] == 1.0
    # k = 2 needs 4 views per instance: reported, not scored.
    assert retrieval_top1(mu, groups, group_sizes=(2,), gallery="enrolled")["2"]["top1"] is None


def test_unknown_gallery_is_refused():
    with pytest.raises(ValueError, match="gallery"):
        retrieval_top1(np.zeros((4, 2)), np.zeros(4), gallery="all")
