"""eval.confidence: AUROC (Mann-Whitney, ties 1/2) and risk-coverage on hand cases and sklearn."""

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from eval.confidence import (TABLE_COVERAGES, auroc, confidence_summary, failure_auroc,
                             risk_coverage)


def test_auroc_hand_computed_with_ties():
    # positives 0.4, 0.8, 0.9 vs negatives 0.1, 0.4, 0.8, pair by pair:
    # 0.4: beats 0.1, ties 0.4 -> 1.5; 0.8: beats 0.1 and 0.4, ties 0.8 -> 2.5; 0.9: beats all -> 3
    scores = [0.1, 0.4, 0.4, 0.8, 0.8, 0.9]
    positives = [0, 1, 0, 1, 0, 1]
    assert auroc(scores, positives) == pytest.approx(7.0 / 9.0)
    assert auroc([1.0, 2.0, 3.0], [0, 0, 1]) == 1.0 and auroc([1.0, 2.0, 3.0], [1, 0, 0]) == 0.0
    assert auroc([5.0, 5.0, 5.0, 5.0], [1, 0, 1, 0]) == 0.5  # all tied: chance


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_matches_sklearn_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    positives = rng.random(300) < 0.3
    continuous = rng.normal(size=300) + positives
    coarse = np.round(continuous * 2) / 2  # many ties
    for scores in (continuous, coarse):
        assert auroc(scores, positives) == pytest.approx(roc_auc_score(positives, scores), abs=1e-12)


def test_auroc_is_nan_without_both_classes_and_rejects_bad_input():
    assert np.isnan(auroc([0.1, 0.2], [1, 1])) and np.isnan(auroc([0.1, 0.2], [0, 0]))
    with pytest.raises(ValueError, match="3 scores for 2 labels"):
        auroc([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="non-finite"):
        auroc([0.1, np.nan], [0, 1])


def test_failure_auroc_rewards_low_confidence_on_misses():
    errors = np.array([2.0, 5.0, 170.0, 45.0, 8.0])
    assert failure_auroc(errors, [0.9, 0.8, 0.2, 0.3, 0.95]) == 1.0  # misses least confident
    assert failure_auroc(errors, [0.1, 0.2, 0.9, 0.8, 0.05]) == 0.0  # misses most confident
    # threshold is "> 30": an error of exactly 30 is a hit
    assert failure_auroc([30.0, 31.0], [0.4, 0.6]) == 0.0


def test_risk_coverage_hand_computed():
    errors = [5.0, 100.0, 20.0, 40.0, 2.0]
    confidence = [0.9, 0.1, 0.8, 0.5, 0.95]  # most confident first: 2, 5, 20, 40, 100
    curve = risk_coverage(errors, confidence, coverages=[0.2, 0.5, 0.7, 1.0])
    assert curve.n_kept.tolist() == [1, 3, 4, 5]  # ceil(c * 5)
    assert curve.med_err_deg.tolist() == [2.0, 5.0, 12.5, 20.0]
    assert curve.acc_pi_6.tolist() == [1.0, 1.0, 0.75, 0.6]
    tied = risk_coverage([10.0, 50.0], [0.5, 0.5], coverages=[0.5])
    assert tied.med_err_deg.tolist() == [10.0]  # equal confidence keeps the input order


def test_risk_coverage_table_is_exact_at_round_fractions():
    # 0.3 * 10 is 3.0000000000000004 in floats: the table must still keep 3 of 10, not 4
    curve = risk_coverage(np.arange(10.0), np.linspace(1.0, 0.0, 10))
    assert curve.coverage.tolist() == list(TABLE_COVERAGES)
    assert curve.n_kept.tolist() == list(range(1, 11))
    assert curve.med_err_deg.tolist() == [np.median(np.arange(k)) for k in range(1, 11)]


def test_risk_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="no images"):
        risk_coverage([], [])
    with pytest.raises(ValueError, match="2 errors for 1"):
        risk_coverage([1.0, 2.0], [0.5])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        risk_coverage([1.0], [0.5], coverages=[0.0])
    with pytest.raises(ValueError, match="finite"):
        risk_coverage([np.nan], [0.5])


def test_confidence_summary_is_plain_json():
    summary = json.loads(json.dumps(confidence_summary([1.0, 2.0, 90.0], [0.9, 0.8, 0.1]), allow_nan=False))
    assert summary["auroc_err_gt_30"] == 1.0 and summary["n_err_gt_30"] == 1
    assert [row["coverage"] for row in summary["risk_coverage"]] == list(TABLE_COVERAGES)
    assert confidence_summary([1.0, 2.0], [0.3, 0.4])["auroc_err_gt_30"] is None  # no miss: undefined
