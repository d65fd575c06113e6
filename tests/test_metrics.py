"""eval.metrics on hand-computed cases, batch invariance and numpy/torch agreement."""

import numpy as np
import pytest
import torch

from eval.metrics import format_table, summarize, viewpoint_errors_deg


def test_errors_of_pure_azimuth_and_theta_offsets():
    # At elevation 0 an azimuth offset of x degrees is a rotation of x degrees about the up axis.
    err = viewpoint_errors_deg([10.0, 0.0, 350.0, 0.0], 0.0, [0.0, 0.0, 0.0, 25.0],
                               [0.0, 180.0, 10.0, 0.0], 0.0, 0.0)
    np.testing.assert_allclose(err, [10.0, 180.0, 20.0, 25.0], atol=1e-9)


def test_elevation_offset_and_identity():
    np.testing.assert_allclose(viewpoint_errors_deg(30.0, 40.0, 5.0, 30.0, 10.0, 5.0), 30.0, atol=1e-9)
    np.testing.assert_allclose(viewpoint_errors_deg(123.0, -20.0, 7.0, 123.0, -20.0, 7.0), 0.0, atol=1e-6)


def test_summary_hand_computed():
    errors = np.array([1.0, 5.0, 10.0, 29.0, 30.0, 31.0, 90.0])
    s = summarize(errors)
    assert s == {"med_err_deg": 29.0, "acc_pi_6": 5 / 7, "acc_pi_18": 3 / 7, "n": 7}


def test_per_category_and_unweighted_mean():
    errors = np.array([2.0, 4.0, 100.0, 1.0, 3.0, 5.0, 7.0])
    cats = ["car", "car", "car", "chair", "chair", "chair", "chair"]
    s = summarize(errors, cats)
    assert s["per_category"]["car"] == {"med_err_deg": 4.0, "acc_pi_6": 2 / 3, "acc_pi_18": 2 / 3, "n": 3}
    assert s["per_category"]["chair"] == {"med_err_deg": 4.0, "acc_pi_6": 1.0, "acc_pi_18": 1.0, "n": 4}
    assert s["mean_over_categories"]["med_err_deg"] == pytest.approx(4.0)
    assert s["mean_over_categories"]["acc_pi_6"] == pytest.approx((2 / 3 + 1.0) / 2)
    assert s["med_err_deg"] == 4.0 and s["n"] == 7  # pooled values on top
    assert "car" in format_table(s) and "mean(classes)" in format_table(s)


def test_two_batches_summarised_together_equal_concatenation():
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 360, (3, 400))
    true = rng.uniform(0, 360, (3, 400))
    e1 = viewpoint_errors_deg(pred[0, :150], pred[1, :150] / 8, pred[2, :150] / 20,
                              true[0, :150], true[1, :150] / 8, true[2, :150] / 20)
    e2 = viewpoint_errors_deg(pred[0, 150:], pred[1, 150:] / 8, pred[2, 150:] / 20,
                              true[0, 150:], true[1, 150:] / 8, true[2, 150:] / 20)
    whole = viewpoint_errors_deg(pred[0], pred[1] / 8, pred[2] / 20, true[0], true[1] / 8, true[2] / 20)
    np.testing.assert_allclose(np.concatenate([e1, e2]), whole)
    assert summarize(np.concatenate([e1, e2])) == summarize(whole)


def test_numpy_and_torch_paths_agree():
    rng = np.random.default_rng(3)
    args = [rng.uniform(0, 360, 1000), rng.uniform(-90, 90, 1000), rng.uniform(-180, 180, 1000),
            rng.uniform(0, 360, 1000), rng.uniform(-90, 90, 1000), rng.uniform(-180, 180, 1000)]
    ref = viewpoint_errors_deg(*args)
    out64 = viewpoint_errors_deg(*[torch.tensor(a) for a in args])
    out32 = viewpoint_errors_deg(*[torch.tensor(a, dtype=torch.float32) for a in args])
    np.testing.assert_allclose(out64.numpy(), ref, atol=1e-9)
    np.testing.assert_allclose(out32.numpy(), ref, atol=2e-3)
    assert summarize(out64) == summarize(ref)


def test_bad_inputs():
    with pytest.raises(ValueError, match="non-finite"):
        summarize([1.0, np.nan])
    with pytest.raises(ValueError, match="categories"):
        summarize([1.0, 2.0], ["car"])
    with pytest.raises(ValueError, match="azimuth"):
        viewpoint_errors_deg(np.inf, 0, 0, 0, 0, 0)
    assert summarize([])["n"] == 0
