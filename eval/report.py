"""`report.md` plus its PNG figures, from arrays: what a person opens to judge a model.

`write_report` draws every figure it has inputs for (`eval.plots`) into `out_dir` and writes
`report.md` with the metrics table, the confidence block (AUROC and risk-coverage table, when
present in `metrics`), the diagnostics (when present) and the figures. All files are written
atomically (data_tools.atomic_write).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from data_tools.atomic_write import atomic_write_text
from eval import plots
from eval.metrics import listed_conditions

#: File name of each figure inside the report folder.
FIGURE_FILES = {
    "cumulative_error": "cumulative_error.png",
    "error_histogram": "error_histogram.png",
    "azimuth_polar": "azimuth_error_polar.png",
    "risk_coverage": "risk_coverage.png",
    "worst_gallery": "worst_predictions.png",
    "swap_grid": "swap_grid.png",
    "traversals": "obs_latent_traversals.png",
}


@dataclass(frozen=True)
class SwapGridImages:
    """decoded (R, C, H, W, 3) uint8: content of content_images[i] with the view of view_images[j]."""

    decoded: np.ndarray
    content_images: np.ndarray  # (R, H, W, 3)
    view_images: np.ndarray  # (C, H, W, 3)


@dataclass(frozen=True)
class TraversalImages:
    """decoded (D, S, H, W, 3) uint8: observation latent dims[d] set to values[s]."""

    decoded: np.ndarray
    values: np.ndarray  # (S,)
    dims: tuple[int, ...]


def worst_indices(errors: np.ndarray, count: int = 16) -> np.ndarray:
    """Indices of the `count` largest errors, largest first (ties keep dataset order)."""
    errors = np.asarray(errors, dtype=np.float64)
    return np.argsort(-errors, kind="stable")[: min(count, len(errors))]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """Markdown table: overall, each category, the mean over categories and each view condition
    (clean, occluded, truncated) when the metrics hold more than one."""
    lines = ["| subset | n | MedErr (deg) | Acc@pi/6 | Acc@pi/18 |", "|---|---:|---:|---:|---:|"]

    def row(name: str, block: Mapping[str, Any]) -> None:
        lines.append(
            f"| {name} | {block.get('n', '')} | {block['med_err_deg']:.2f} | "
            f"{block['acc_pi_6']:.3f} | {block['acc_pi_18']:.3f} |"
        )

    row("all", metrics)
    for category, block in sorted(metrics.get("per_category", {}).items()):
        row(category, block)
    if "mean_over_categories" in metrics:
        row("mean over categories", metrics["mean_over_categories"])
    for condition, block in listed_conditions(metrics).items():
        row(f"{condition} views", block)
    return "\n".join(lines)


def confidence_markdown(confidence: Mapping[str, Any]) -> str:
    """Markdown for the `confidence` block of metrics.json (eval.confidence.confidence_summary)."""
    lines = ["## Confidence", "",
             f"AUROC of low confidence as a detector of errors > 30 deg: {_fmt(confidence.get('auroc_err_gt_30'))} "
             f"({confidence.get('n_err_gt_30', '-')} such errors; 0.5 = chance, 1 = perfect).", "",
             "| kept (most confident first) | n | MedErr (deg) | Acc@pi/6 |", "|---:|---:|---:|---:|"]
    for row in confidence.get("risk_coverage", []):
        lines.append(f"| {100 * row['coverage']:.0f} % | {row['n_kept']} | {row['med_err_deg']:.2f} | "
                     f"{row['acc_pi_6']:.3f} |")
    return "\n".join(lines + [""])


def diagnostics_markdown(diagnostics: Mapping[str, Any]) -> str:
    """Markdown for the `diagnostics` block of metrics.json (probes, retrieval, grid scores)."""
    parts: list[str] = []
    probes = diagnostics.get("probes", {})
    if probes:
        parts += ["### Pose from latents (probe fitted on train instances, scored on unseen ones)", "",
                  "| latent | probe | MedErr (deg) | Acc@pi/6 | chance MedErr |", "|---|---|---:|---:|---:|"]
        for latent, block in probes.items():
            parts.append(f"| {latent} | {block['kind']} | {block['med_err_deg']:.1f} | "
                         f"{block['acc_pi_6']:.3f} | {block['chance']['med_err_deg']:.1f} |")
        parts.append("")
    retrieval = diagnostics.get("retrieval", {})
    runtime = diagnostics.get("retrieval_runtime", {}).get("by_views", {})
    enrolled = diagnostics.get("retrieval_enrolled", {})
    if retrieval:
        parts += ["### Identity retrieval from the group latent (unseen instances)", "",
                  "Each query accumulates k views (product of Gaussians) and is matched to the nearest "
                  "gallery code: one view per instance, or (enrolled) the product of k other views."]
        if runtime:
            parts += ["The runtime column encodes the views with the exported ONNX model (ONNX Runtime) "
                      "and multiplies their content posteriors as `PoseEstimator.predict_group` does."]
        parts += ["", "| views accumulated | top-1 | " + ("top-1 through ONNX Runtime | " if runtime else "")
                  + ("top-1, gallery enrolled from k views | " if enrolled else "") + "chance | instances |",
                  "|---:|---:|" + ("---:|" if runtime else "") + ("---:|" if enrolled else "") + "---:|---:|"]
        for k, block in retrieval.items():
            through = f"{_fmt(runtime.get(k, {}).get('top1'))} | " if runtime else ""
            enrolled_top1 = f"{_fmt(enrolled.get(k, {}).get('top1'))} | " if enrolled else ""
            parts.append(f"| {k} | {_fmt(block.get('top1'))} | {through}{enrolled_top1}{_fmt(block.get('chance'))} | "
                         f"{block.get('n_instances', block.get('reason', ''))} |")
        parts.append("")
    grid = diagnostics.get("grid_scores")
    if grid:
        fov = grid["fov_regression"]
        parts += ["### Grid-set scores", "", "| score | value | chance |", "|---|---:|---:|",
                  f"| FactorVAE (Kim & Mnih 2018) | {_fmt(grid['factor_vae']['eval_accuracy'])} | "
                  f"{_fmt(grid['factor_vae']['chance'])} |",
                  f"| BetaVAE (Higgins et al. 2017) | {_fmt(grid['beta_vae']['eval_accuracy'])} | "
                  f"{_fmt(grid['beta_vae']['chance'])} |",
                  f"| FoV R^2 azimuth (sin, cos) | {_fmt(fov['azimuth_r2'])} | 0 |",
                  f"| FoV R^2 elevation | {_fmt(fov['elevation_r2'])} | 0 |",
                  f"| instance accuracy (logistic) | {_fmt(fov['instance_accuracy'])} | "
                  f"{_fmt(fov['instance_chance'])} |", ""]
    return "\n".join(parts)


def write_report(
    out_dir: Path,
    metrics: Mapping[str, Any],
    errors: np.ndarray,
    true_viewpoints: np.ndarray,
    pred_viewpoints: np.ndarray,
    image_lookup: Callable[[np.ndarray], np.ndarray] | None = None,
    captions: Sequence[str] | None = None,
    other_methods: Mapping[str, np.ndarray] | None = None,
    swap: SwapGridImages | None = None,
    traversal: TraversalImages | None = None,
    confidence: np.ndarray | None = None,
    title: str = "Viewpoint evaluation",
    gallery_count: int = 16,
) -> Path:
    """Write the figures and `report.md` into `out_dir`; returns the report's path.

    Args:
        metrics: the metrics.json dict (summary keys, per_category, optional diagnostics).
        errors: (N,) geodesic errors in degrees; true_viewpoints, pred_viewpoints: (N, 3) degrees.
        image_lookup: maps an index array into (n, H, W, 3) uint8 images (e.g. a GroupedDataset's
            `images`); without it the worst-prediction gallery is skipped.
        captions: optional (N,) strings shown in the gallery (e.g. category).
        other_methods: extra name -> errors curves on the cumulative plot (baselines).
        swap, traversal: decoded images for the swap grid and latent traversals (skipped if None).
        confidence: (N,) the model's confidence per image, for the risk-coverage curve (skipped if None).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    errors = np.asarray(errors, dtype=np.float64)
    true_viewpoints = np.asarray(true_viewpoints, dtype=np.float64)
    pred_viewpoints = np.asarray(pred_viewpoints, dtype=np.float64)
    figures: dict[str, str] = {}

    curves = {"model": errors, **(other_methods or {})}
    plots.cumulative_error_curve(curves, out_dir / FIGURE_FILES["cumulative_error"])
    figures["Cumulative error curve"] = FIGURE_FILES["cumulative_error"]
    plots.error_histogram(errors, out_dir / FIGURE_FILES["error_histogram"])
    figures["Error histogram"] = FIGURE_FILES["error_histogram"]
    plots.azimuth_error_polar(errors, true_viewpoints[:, 0], out_dir / FIGURE_FILES["azimuth_polar"])
    figures["Error by true azimuth (polar)"] = FIGURE_FILES["azimuth_polar"]
    if confidence is not None and len(errors):
        plots.risk_coverage_curve(errors, np.asarray(confidence, dtype=np.float64),
                                  out_dir / FIGURE_FILES["risk_coverage"])
        figures["Risk-coverage: MedErr of the most confident fraction"] = FIGURE_FILES["risk_coverage"]
    if image_lookup is not None and len(errors):
        worst = worst_indices(errors, gallery_count)
        plots.worst_gallery(
            image_lookup(worst), true_viewpoints[worst], pred_viewpoints[worst], errors[worst],
            out_dir / FIGURE_FILES["worst_gallery"],
            captions=None if captions is None else [str(captions[i]) for i in worst],
        )
        figures["Worst predictions"] = FIGURE_FILES["worst_gallery"]
    if swap is not None:
        plots.swap_grid(swap.decoded, swap.content_images, swap.view_images,
                        out_dir / FIGURE_FILES["swap_grid"])
        figures["Swap grid (content of row, view of column)"] = FIGURE_FILES["swap_grid"]
    if traversal is not None:
        plots.latent_traversals(traversal.decoded, traversal.values, traversal.dims,
                                out_dir / FIGURE_FILES["traversals"])
        figures["Observation latent traversals"] = FIGURE_FILES["traversals"]

    lines = [f"# {title}", "", metrics_table(metrics), ""]
    if metrics.get("confidence"):
        lines += [confidence_markdown(metrics["confidence"])]
    if metrics.get("diagnostics"):
        lines += ["## Disentanglement diagnostics", "", diagnostics_markdown(metrics["diagnostics"])]
    lines += ["## Figures", ""]
    for caption, name in figures.items():
        lines += [f"### {caption}", "", f"![{caption}]({name})", ""]
    path = out_dir / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
