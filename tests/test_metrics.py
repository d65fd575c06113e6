"""eval.metrics on hand-computed cases, a scipy reference and numpy/torch agreement."""

import numpy as np
import pytest
import torch

from eval.metrics import (azimuth_breakdown, failure_counts, format_table, label_breakdown, summarize,
                          view_conditions, viewpoint_errors_deg)


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


def test_errors_match_an_independent_scipy_rotation_reference():
    # R = Rz(theta) Rx(e - 90) Rz(-a) (DESIGN.md) is scipy's intrinsic "ZXZ" with those angles;
    # the error is the magnitude of the relative rotation, computed without data_tools.geometry.
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(5)
    pred = np.stack([rng.uniform(0, 360, 500), rng.uniform(-90, 90, 500), rng.uniform(-180, 180, 500)], 1)
    true = np.stack([rng.uniform(0, 360, 500), rng.uniform(-90, 90, 500), rng.uniform(-180, 180, 500)], 1)

    def rotation(v):
        return Rotation.from_euler("ZXZ", np.stack([v[:, 2], v[:, 1] - 90.0, -v[:, 0]], 1), degrees=True)

    reference = np.rad2deg((rotation(true).inv() * rotation(pred)).magnitude())
    np.testing.assert_allclose(viewpoint_errors_deg(*pred.T, *true.T), reference, atol=1e-6)


def test_failure_counts_split_flips_from_gross_errors():
    errors = np.array([0.0, 60.0, 60.5, 150.0, 150.5, 179.9, 12.0])
    assert failure_counts(errors) == {"flips": 2, "errors_60_150": 2}  # (60, 150] and > 150
    assert failure_counts([]) == {"flips": 0, "errors_60_150": 0}


def test_azimuth_breakdown_hand_computed():
    azimuth = np.array([0.0, 44.9, 45.0, 359.99, -10.0, 720.0, 100.0])
    errors = np.array([10.0, 170.0, 20.0, 40.0, 155.0, 30.0, 5.0])
    rows = azimuth_breakdown(errors, azimuth)
    assert [r["n"] for r in rows] == [3, 1, 1, 0, 0, 0, 0, 2]  # -10 -> 350, 720 -> 0
    assert rows[0] == {"azimuth_from": 0.0, "azimuth_to": 45.0, "n": 3, "med_err_deg": 30.0,
                       "acc_pi_6": 2 / 3, "flips": 1}
    assert rows[7]["flips"] == 1 and rows[7]["med_err_deg"] == pytest.approx(97.5)
    assert rows[3]["flips"] == 0 and np.isnan(rows[3]["med_err_deg"])
    assert len(azimuth_breakdown(errors, azimuth, bins=4)) == 4
    with pytest.raises(ValueError, match="7 errors for 2 azimuths"):
        azimuth_breakdown(errors, azimuth[:2])


def test_label_breakdown_hand_computed():
    errors = np.array([10.0, 170.0, 20.0, 40.0, 155.0, 5.0])
    rows = label_breakdown(errors, np.array([3, 1, 3, 1, 1, 2]))
    assert [r["label"] for r in rows] == [1, 2, 3]  # sorted, as plain Python values
    assert rows[0] == {"label": 1, "n": 3, "med_err_deg": 155.0, "acc_pi_6": 0.0, "flips": 2}
    assert rows[1] == {"label": 2, "n": 1, "med_err_deg": 5.0, "acc_pi_6": 1.0, "flips": 0}
    assert rows[2] == {"label": 3, "n": 2, "med_err_deg": 15.0, "acc_pi_6": 1.0, "flips": 0}
    with pytest.raises(ValueError, match="6 errors for 2 labels"):
        label_breakdown(errors, [1, 2])


def test_view_conditions_by_hand():
    occluded = np.array([0.0, 0.3, 0.0, 1.0, np.nan])  # a fraction (renders) or a flag (PASCAL3D+)
    truncated = np.array([0, 0, 1, 1, 0])
    assert view_conditions(occluded, truncated).tolist() == [
        "clean", "occluded", "truncated", "occluded+truncated", "clean"]
    with pytest.raises(ValueError, match="5 occlusion flags for 2 truncation flags"):
        view_conditions(occluded, [0, 1])
    # a small object's crop is "small" only when nothing else is wrong with the view
    shrink = np.array([2.0, 2.0, 1.0, 3.0, 1.0])
    assert view_conditions(occluded, truncated, shrink).tolist() == [
        "small", "occluded", "truncated", "occluded+truncated", "clean"]
    with pytest.raises(ValueError, match="and 2 sizes"):
        view_conditions(occluded, truncated, [1.0, 2.0])


def test_format_table_lists_conditions_only_when_there_are_several():
    block = {"med_err_deg": 4.0, "acc_pi_6": 0.9, "acc_pi_18": 0.5, "n": 3}
    both = format_table({**block, "per_condition": {"clean": {**block, "n": 2}, "occluded": {**block, "n": 1}}})
    assert [line.split()[:2] for line in both.splitlines()[2:]] == [["clean", "2"], ["occluded", "1"]]
    alone = format_table({**block, "per_condition": {"clean": block}})  # PASCAL3D+'s test: all clean
    assert "clean" not in alone and len(alone.splitlines()) == 2


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


def test_over_seeds_gives_mean_extremes_and_values_hand_computed():
    from eval.metrics import over_seeds

    assert over_seeds([6.5, 4.0, 5.0]) == {"mean": 5.166666666666667, "min": 4.0, "max": 6.5, "values": [6.5, 4.0, 5.0]}
    assert over_seeds(np.array([[3]]))["values"] == [3.0]  # one seed: no spread
