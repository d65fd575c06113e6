"""Viewpoint accuracy metrics of the field's standard protocol (Tulsiani & Malik 2015).

Error of one prediction: the geodesic angle between the true and predicted object-to-camera
rotations, arccos((trace(R_true^T R_pred) - 1) / 2) in degrees (data_tools.geometry).
Summary: MedErr = median error (deg); Acc@pi/6 = fraction with error <= 30 deg; Acc@pi/18 = fraction
<= 10 deg (RenderForCNN counts `< 30`: on float errors the two differ only on exact ties). Per
category, and the unweighted mean over categories as RenderForCNN and Tulsiani report.

Failure anatomy (`failure_counts`, `azimuth_breakdown`, `label_breakdown`): front/rear flips
(error > 150 deg, the near-180-degree confusions of near-symmetric objects), gross errors in
(60, 150] deg, and the figures per bin of the TRUE azimuth, which show which views are read
wrong, or per label (e.g. CAD model), which show which objects are.

`viewpoint_errors_deg` takes numpy arrays (the reference path) or torch tensors (batched, on any
device, differentiable); the two agree to float precision (tests/test_metrics.py).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from data_tools.geometry import geodesic_deg, viewpoint_to_rotation

ACC_THRESHOLDS_DEG = {"acc_pi_6": 30.0, "acc_pi_18": 10.0}
#: An error above this many degrees counts as a flip (front read as rear, or the reverse).
FLIP_THRESHOLD_DEG = 150.0
#: Errors in (GROSS_ERROR_FROM_DEG, FLIP_THRESHOLD_DEG] are gross errors that are not flips.
GROSS_ERROR_FROM_DEG = 60.0


def viewpoint_errors_deg(pred_azimuth, pred_elevation, pred_theta,
                         true_azimuth, true_elevation, true_theta):
    """Per-sample geodesic error in degrees between predicted and true viewpoints (degrees in).

    All six inputs broadcast to one shape (N,); numpy in -> numpy out, torch in -> torch out.
    """
    pred = viewpoint_to_rotation(pred_azimuth, pred_elevation, pred_theta)
    true = viewpoint_to_rotation(true_azimuth, true_elevation, true_theta)
    return geodesic_deg(true, pred)


def _summary(errors: np.ndarray) -> dict:
    if errors.size == 0:
        return {"med_err_deg": float("nan"), "acc_pi_6": float("nan"), "acc_pi_18": float("nan"), "n": 0}
    out = {"med_err_deg": float(np.median(errors))}
    for key, threshold in ACC_THRESHOLDS_DEG.items():
        out[key] = float(np.mean(errors <= threshold))
    out["n"] = int(errors.size)
    return out


def summarize(errors_deg, categories: Sequence[str] | None = None) -> dict:
    """MedErr, Acc@pi/6, Acc@pi/18 and n of per-sample errors (degrees).

    With `categories` (one label per error) the result also holds `per_category` (the same keys
    per category, sorted by name) and `mean_over_categories` (the unweighted mean of the
    per-category MedErr and accuracies, the field's headline number). The top-level keys are
    always the pooled values over all samples. NaN errors are rejected.
    """
    errors = _to_numpy(errors_deg).astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(errors)):
        raise ValueError(f"errors_deg has {int((~np.isfinite(errors)).sum())} non-finite values; "
                         "drop unlabelled samples before summarising")
    result = _summary(errors)
    if categories is None:
        return result
    labels = np.asarray(categories, dtype=object).reshape(-1)
    if labels.shape != errors.shape:
        raise ValueError(f"categories has {labels.size} labels for {errors.size} errors")
    per_category = {str(c): _summary(errors[labels == c]) for c in sorted(set(labels.tolist()))}
    result["per_category"] = per_category
    result["mean_over_categories"] = {
        key: float(np.mean([block[key] for block in per_category.values()]))
        for key in ("med_err_deg", *ACC_THRESHOLDS_DEG)
    } | {"categories": len(per_category)}
    return result


def failure_counts(errors_deg) -> dict[str, int]:
    """{"flips": errors > 150 deg, "errors_60_150": errors in (60, 150] deg} of per-sample errors."""
    errors = _to_numpy(errors_deg).astype(np.float64).reshape(-1)
    return {"flips": int((errors > FLIP_THRESHOLD_DEG).sum()),
            "errors_60_150": int(((errors > GROSS_ERROR_FROM_DEG) & (errors <= FLIP_THRESHOLD_DEG)).sum())}


def azimuth_breakdown(errors_deg, true_azimuth_deg, bins: int = 8) -> list[dict]:
    """n, MedErr, Acc@pi/6 and flips per bin of the TRUE azimuth (degrees, any real value).

    Bin k covers [k * 360 / bins, (k + 1) * 360 / bins) after wrapping the azimuth into [0, 360);
    with the default 8 bins of 45 deg, bin 0 holds the front views [0, 45). Empty bins have
    n = 0, flips = 0 and NaN figures.
    """
    errors = _to_numpy(errors_deg).astype(np.float64).reshape(-1)
    azimuth = np.mod(_to_numpy(true_azimuth_deg).astype(np.float64).reshape(-1), 360.0)
    if errors.shape != azimuth.shape:
        raise ValueError(f"azimuth_breakdown: {errors.size} errors for {azimuth.size} azimuths")
    if bins < 1:
        raise ValueError(f"azimuth_breakdown: bins={bins}; use a positive count such as 8")
    width = 360.0 / bins
    code = np.minimum((azimuth // width).astype(np.int64), bins - 1)  # 359.99999 stays in the last bin
    rows = []
    for k in range(bins):
        block = errors[code == k]
        summary = _summary(block)
        rows.append({"azimuth_from": k * width, "azimuth_to": (k + 1) * width, "n": summary["n"],
                     "med_err_deg": summary["med_err_deg"], "acc_pi_6": summary["acc_pi_6"],
                     "flips": failure_counts(block)["flips"]})
    return rows


def label_breakdown(errors_deg, labels) -> list[dict]:
    """n, MedErr, Acc@pi/6 and flips per distinct label (e.g. the CAD model PASCAL3D+ matched to
    each object), one row {"label", ...} per label in sorted order: which objects are read wrong."""
    errors = _to_numpy(errors_deg).astype(np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if errors.shape != labels.shape:
        raise ValueError(f"label_breakdown: {errors.size} errors for {labels.size} labels")
    rows = []
    for label in np.unique(labels):
        block = errors[labels == label]
        summary = _summary(block)
        rows.append({"label": label.item(), "n": summary["n"], "med_err_deg": summary["med_err_deg"],
                     "acc_pi_6": summary["acc_pi_6"], "flips": failure_counts(block)["flips"]})
    return rows


#: The views' conditions, in the order tables list them ("small": a small object's crop that is
#: neither occluded nor truncated; occluded or truncated views count as such whatever their size).
VIEW_CONDITIONS = ("clean", "small", "occluded", "truncated", "occluded+truncated")


def view_conditions(occluded, truncated, shrink=None) -> np.ndarray:
    """Each view's condition, one of `VIEW_CONDITIONS`: whether something hides part of the object
    (`occluded`: a fraction or a 0/1 flag, > 0), whether the image border cuts it (`truncated`)
    and, given `shrink` (the factor a render was shrunk by as a small object's crop, 1 = full
    size), whether it is small. PASCAL3D+'s usual protocol scores only the clean objects, so
    tables show them apart."""
    occluded = _to_numpy(occluded).astype(np.float64).reshape(-1) > 0
    truncated = _to_numpy(truncated).astype(np.float64).reshape(-1) > 0
    small = np.zeros_like(occluded) if shrink is None else _to_numpy(shrink).astype(np.float64).reshape(-1) > 1
    if not occluded.shape == truncated.shape == small.shape:
        raise ValueError(f"view_conditions: {occluded.size} occlusion flags for {truncated.size} truncation "
                         f"flags and {small.size} sizes")
    index = np.where(occluded | truncated, 1 + occluded.astype(int) + 2 * truncated.astype(int), small.astype(int))
    return np.array(VIEW_CONDITIONS, dtype=object)[index]


def over_seeds(values) -> dict:
    """{"mean", "min", "max", "values"} of one figure from several seeds' runs (the studies' tables
    print "mean (max - min)")."""
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    return {"mean": float(array.mean()), "min": float(array.min()), "max": float(array.max()),
            "values": array.tolist()}


def _to_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        return values.detach().cpu().numpy()
    return np.asarray(values)


def listed_conditions(summary: Mapping) -> dict:
    """The `per_condition` rows worth listing: all of them when there are several, none when the
    set holds one condition (PASCAL3D+'s test objects are all clean: that row is "all" again)."""
    conditions = summary.get("per_condition", {})
    return dict(conditions) if len(conditions) > 1 else {}


def format_table(summary: dict, title: str = "") -> str:
    """A short fixed-width text table of a `summarize` result for terminals and reports, then
    its `per_condition` rows (clean, occluded, truncated views) when it has more than one."""
    lines = [title] if title else []
    conditions = listed_conditions(summary)
    names = [*summary.get("per_category", {}), *(f" {c}" for c in conditions)]
    width = max([14, *(len(name) + 1 for name in names)])
    lines.append(f"{'category':<{width}}{'n':>7}{'MedErr':>9}{'Acc@pi/6':>10}{'Acc@pi/18':>11}")

    def row(name: str, block: dict) -> str:
        n = block.get("n", "")
        return (f"{name:<{width}}{n!s:>7}{block['med_err_deg']:>8.2f}\u00b0"
                f"{100 * block['acc_pi_6']:>9.1f}%{100 * block['acc_pi_18']:>10.1f}%")

    for name, block in summary.get("per_category", {}).items():
        lines.append(row(name, block))
    if "mean_over_categories" in summary and len(summary["per_category"]) > 1:
        lines.append(row("mean(classes)", {**summary["mean_over_categories"], "n": ""}))
    lines.append(row("all", summary))
    for name, block in conditions.items():
        lines.append(row(f" {name}", block))
    return "\n".join(lines)


__all__ = ["ACC_THRESHOLDS_DEG", "FLIP_THRESHOLD_DEG", "GROSS_ERROR_FROM_DEG", "VIEW_CONDITIONS",
           "azimuth_breakdown", "failure_counts", "format_table", "listed_conditions", "over_seeds", "summarize",
           "view_conditions", "viewpoint_errors_deg"]
