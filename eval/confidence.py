"""Does the model's confidence know when it is wrong? AUROC and risk-coverage, pure numpy.

A confidence is useful when low values mark the failures: an app can then refuse to answer, or
ask for another view, instead of reporting a 180-degree flip as certain.

- `auroc(scores, positives)`: the probability that a random positive scores higher than a random
  negative, ties counting one half (the Mann-Whitney U statistic divided by n_pos * n_neg; equal
  to the area under the ROC curve). 1 = perfect ranking, 0.5 = chance.
- `failure_auroc(errors_deg, confidence)`: `auroc(-confidence, errors > 30 deg)`, i.e. how well
  a LOW confidence flags a miss at the Acc@pi/6 threshold.
- `risk_coverage(errors_deg, confidence)`: keep the most confident fraction c of the images
  (c = coverage) and score only those: MedErr and Acc@pi/6 as functions of c (Geifman &
  El-Yaniv 2017, "Selective classification for deep neural networks"). A useful confidence
  gives a MedErr that falls as c shrinks; a useless one gives a flat curve.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

#: Error above which a prediction counts as a miss (the Acc@pi/6 threshold), degrees.
MISS_THRESHOLD_DEG = 30.0
#: Coverages of the risk-coverage table in metrics.json: 10 %, 20 %, ..., 100 %.
TABLE_COVERAGES = tuple(round(0.1 * k, 1) for k in range(1, 11))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values` (ascending), tied values sharing their average rank."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    # Start of each run of equal values in sorted order, and the run each position belongs to.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]  # exclusive
    run_of_position = np.repeat(np.arange(len(starts)), ends - starts)
    mean_rank = (starts + 1 + ends) / 2.0  # average of ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = mean_rank[run_of_position]
    return ranks


def auroc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Area under the ROC curve of `scores` (higher = more likely positive) for the labels.

    Computed as the Mann-Whitney U statistic: U = (sum of the positives' average ranks)
    - n_pos (n_pos + 1) / 2, AUROC = U / (n_pos n_neg); a positive tied with a negative counts
    1/2. Returns NaN when there is no positive or no negative (the area is undefined).
    Raises ValueError for non-finite scores or mismatched lengths.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    positives = np.asarray(positives).reshape(-1)
    if scores.shape != positives.shape:
        raise ValueError(f"auroc: {scores.size} scores for {positives.size} labels")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"auroc: {int((~np.isfinite(scores)).sum())} non-finite scores")
    positives = positives.astype(bool)
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    u_statistic = ranks[positives].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u_statistic / (n_pos * n_neg))


def failure_auroc(errors_deg: Sequence[float], confidence: Sequence[float],
                  threshold_deg: float = MISS_THRESHOLD_DEG) -> float:
    """AUROC of low confidence as a detector of errors > `threshold_deg` (NaN if all hit or all miss)."""
    errors = np.asarray(errors_deg, dtype=np.float64).reshape(-1)
    return auroc(-np.asarray(confidence, dtype=np.float64).reshape(-1), errors > threshold_deg)


class RiskCoverage(NamedTuple):
    """Scores of the most confident fraction of images, one entry per requested coverage."""

    coverage: np.ndarray  # (K,) requested fraction kept, in (0, 1]
    n_kept: np.ndarray  # (K,) images kept: ceil(coverage * N), at least 1
    med_err_deg: np.ndarray  # (K,) median error of the kept images, degrees
    acc_pi_6: np.ndarray  # (K,) fraction of the kept images with error <= 30 deg

    def to_json(self) -> list[dict[str, Any]]:
        """One row per coverage, plain floats and ints (for metrics.json)."""
        return [{"coverage": float(c), "n_kept": int(n), "med_err_deg": float(m), "acc_pi_6": float(a)}
                for c, n, m, a in zip(self.coverage, self.n_kept, self.med_err_deg, self.acc_pi_6)]


def risk_coverage(errors_deg: Sequence[float], confidence: Sequence[float],
                  coverages: Sequence[float] = TABLE_COVERAGES) -> RiskCoverage:
    """MedErr and Acc@pi/6 of the ceil(c * N) most confident images for each coverage c.

    errors_deg: (N,) geodesic errors in degrees; confidence: (N,) the model's scores (higher =
    surer). Images with equal confidence keep their input order, so a cut through a tie is
    deterministic. Raises ValueError for no images, non-finite values or a coverage outside (0, 1].
    """
    errors = np.asarray(errors_deg, dtype=np.float64).reshape(-1)
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    coverage = np.asarray(coverages, dtype=np.float64).reshape(-1)
    if errors.shape != confidence.shape:
        raise ValueError(f"risk_coverage: {errors.size} errors for {confidence.size} confidences")
    if errors.size == 0:
        raise ValueError("risk_coverage: no images to score")
    if not (np.all(np.isfinite(errors)) and np.all(np.isfinite(confidence))):
        raise ValueError("risk_coverage: errors and confidence must be finite")
    if coverage.size == 0 or np.any(coverage <= 0.0) or np.any(coverage > 1.0):
        raise ValueError(f"risk_coverage: coverages {coverage.tolist()} must lie in (0, 1]")
    ranked = errors[np.argsort(-confidence, kind="stable")]  # most confident first
    n_kept = np.maximum(1, np.ceil(coverage * len(errors) - 1e-9).astype(np.int64))
    med = np.array([np.median(ranked[:n]) for n in n_kept])
    acc = np.array([np.mean(ranked[:n] <= MISS_THRESHOLD_DEG) for n in n_kept])
    return RiskCoverage(coverage, n_kept, med, acc)


def confidence_summary(errors_deg: Sequence[float], confidence: Sequence[float]) -> dict[str, Any]:
    """The "confidence" block of metrics.json: {"auroc_err_gt_30", "n_err_gt_30", "risk_coverage"}.

    auroc_err_gt_30 is None (JSON null) when every image is a hit or every one a miss.
    """
    errors = np.asarray(errors_deg, dtype=np.float64).reshape(-1)
    value = failure_auroc(errors, confidence)
    return {"auroc_err_gt_30": None if np.isnan(value) else value,
            "n_err_gt_30": int((errors > MISS_THRESHOLD_DEG).sum()),
            "risk_coverage": risk_coverage(errors, confidence).to_json()}


__all__ = ["MISS_THRESHOLD_DEG", "TABLE_COVERAGES", "RiskCoverage", "auroc", "confidence_summary",
           "failure_auroc", "risk_coverage"]
