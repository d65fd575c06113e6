"""Report figures (matplotlib, Agg backend), each written atomically as a PNG of a fixed size.

Every figure has a fixed size in inches (`FIGURE_SIZES`) and is saved at `DPI` without tight
bounding boxes, so its pixel size is known in advance (width = inches * DPI). matplotlib is
imported inside the functions: importing `eval` stays light.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from data_tools.atomic_write import atomic_write_bytes
from data_tools.image.draw import AXIS_COLORS, AXIS_NAMES, object_axes_pixels
from eval.confidence import failure_auroc, risk_coverage

DPI = 100
#: (width, height) in inches of each figure; pixels = inches * DPI.
FIGURE_SIZES = {
    "cumulative_error": (6.0, 4.0),
    "error_histogram": (6.0, 4.0),
    "azimuth_polar": (6.0, 6.0),
    "risk_coverage": (6.0, 4.0),
    "worst_gallery": (10.0, 8.0),
    "swap_grid": (8.0, 8.0),
    "traversals": (10.0, 8.0),
    "label_efficiency": (10.0, 4.0),
    "ablation": (10.0, 4.0),
}


def _figure(name: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(figsize=FIGURE_SIZES[name], dpi=DPI)


def _save(fig, path: Path) -> Path:
    """Render `fig` to PNG bytes and write them atomically; closes the figure."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def cumulative_error_curve(errors_by_method: Mapping[str, np.ndarray], path: Path) -> Path:
    """Fraction of images with error <= x, for x in 0..180 deg, one curve per method."""
    fig = _figure("cumulative_error")
    ax = fig.add_subplot(1, 1, 1)
    thresholds = np.linspace(0.0, 180.0, 361)
    for name, errors in errors_by_method.items():
        errors = np.sort(np.asarray(errors, dtype=np.float64))
        fraction = np.searchsorted(errors, thresholds, side="right") / max(len(errors), 1)
        ax.plot(thresholds, fraction, label=f"{name} (MedErr {np.median(errors):.1f} deg)")
    for limit, label in ((10.0, "pi/18"), (30.0, "pi/6")):
        ax.axvline(limit, color="gray", linestyle=":", linewidth=1)
        ax.text(limit + 1, 0.02, label, color="gray")
    ax.set(xlim=(0, 180), ylim=(0, 1), xlabel="geodesic error (deg)", ylabel="fraction of images",
           title="Cumulative viewpoint error")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def error_histogram(errors: np.ndarray, path: Path, bins: int = 36) -> Path:
    """Histogram of geodesic errors over 0..180 deg (log counts: the flip bump near 180 shows)."""
    fig = _figure("error_histogram")
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(np.asarray(errors, dtype=np.float64), bins=bins, range=(0.0, 180.0), color="tab:blue")
    ax.set_yscale("log")
    ax.set(xlim=(0, 180), xlabel="geodesic error (deg)", ylabel="images (log)",
           title="Viewpoint error histogram")
    return _save(fig, path)


def azimuth_error_polar(errors: np.ndarray, true_azimuth: np.ndarray, path: Path, bins: int = 24) -> Path:
    """Per-image errors (dots) and the median per true-azimuth bin (bars) on a polar axis.

    Azimuth 0 (front view) points up and grows counter-clockwise, as the camera moves (DESIGN.md).
    Front/rear confusions show as dots near the 180 deg radius.
    """
    errors = np.asarray(errors, dtype=np.float64)
    azimuth = np.mod(np.asarray(true_azimuth, dtype=np.float64), 360.0)
    fig = _figure("azimuth_polar")
    ax = fig.add_subplot(1, 1, 1, projection="polar")
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(1)
    width = 360.0 / bins
    code = np.floor(np.mod(azimuth + width / 2.0, 360.0) / width).astype(np.int64)
    medians = np.array([np.median(errors[code == b]) if np.any(code == b) else 0.0 for b in range(bins)])
    centres = np.deg2rad(np.arange(bins) * width)
    ax.scatter(np.deg2rad(azimuth), errors, s=3, alpha=0.3, color="tab:blue", label="image", zorder=2)
    ax.bar(centres, medians, width=np.deg2rad(width) * 0.9, alpha=0.7, color="tab:orange",
           label="median per bin", zorder=3)
    # Square-root radius: typical errors of a few degrees and 180-degree flips both stay readable.
    ax.set_rscale("function", functions=(np.sqrt, np.square))
    ax.set_rlim(0, 180)
    ax.set_rticks([5, 15, 30, 60, 90, 180])
    ax.set_title("Error (deg, sqrt radius) by true azimuth (angle; 0 = front view)")
    ax.legend(loc="lower left", bbox_to_anchor=(-0.1, -0.1))
    return _save(fig, path)


def risk_coverage_points(n_images: int, max_points: int = 200) -> np.ndarray:
    """Coverages at which `risk_coverage_curve` draws MedErr: k / n for up to `max_points` k."""
    counts = np.unique(np.linspace(1, n_images, min(n_images, max_points)).round().astype(np.int64))
    return counts / float(n_images)


def risk_coverage_curve(errors: np.ndarray, confidence: np.ndarray, path: Path) -> Path:
    """MedErr of the most confident fraction of images vs that fraction (eval.confidence).

    The dashed line is the MedErr of all images: what keeping a random fraction gives on average.
    A confidence that flags the misses makes the curve fall as fewer images are kept.
    """
    errors = np.asarray(errors, dtype=np.float64)
    curve = risk_coverage(errors, confidence, risk_coverage_points(len(errors)))
    area = failure_auroc(errors, confidence)
    fig = _figure("risk_coverage")
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(curve.coverage, curve.med_err_deg, color="tab:blue", label="most confident first")
    ax.axhline(float(np.median(errors)), color="gray", linestyle="--", linewidth=1, label="all images")
    ax.set(xlim=(0, 1), ylim=(0, None), xlabel="fraction of images kept (most confident first)",
           ylabel="MedErr of kept images (deg)",
           title=f"Risk-coverage (AUROC of confidence for error > 30 deg: {area:.3f})")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path)


def _grid_axes(fig, rows: int, cols: int):
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def worst_gallery(
    images: np.ndarray,
    true_viewpoints: np.ndarray,
    pred_viewpoints: np.ndarray,
    errors: np.ndarray,
    path: Path,
    captions: Sequence[str] | None = None,
) -> Path:
    """A gallery of chosen predictions (the worst ones, see `report.worst_indices`), in order.

    Each image is drawn with its true (solid) and predicted (dashed) object axes. images:
    (n, H, W, 3) uint8; viewpoints (n, 3) degrees (azimuth, elevation, theta); errors (n,) degrees.
    Axis colours: front red, left green, up blue (data_tools.image.draw).
    """
    errors = np.asarray(errors, dtype=np.float64)
    count = max(len(errors), 1)
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    fig = _figure("worst_gallery")
    axes = _grid_axes(fig, rows, cols)
    fig.subplots_adjust(hspace=0.5)
    for i, ax in enumerate(axes.ravel()[: len(errors)]):
        image = np.asarray(images[i])
        ax.imshow(image, interpolation="nearest")
        for viewpoint, style in ((true_viewpoints[i], "-"), (pred_viewpoints[i], "--")):
            pixels = object_axes_pixels(*np.asarray(viewpoint, dtype=np.float64), image.shape[:2])
            for tip, color in zip(pixels[1:], AXIS_COLORS):
                ax.plot([pixels[0, 0], tip[0]], [pixels[0, 1], tip[1]], style,
                        color=np.array(color) / 255.0, linewidth=2)
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(image.shape[0] - 0.5, -0.5)
        caption = (f"err {errors[i]:.0f} deg\n"
                   f"a true {true_viewpoints[i][0] % 360:.0f} pred {pred_viewpoints[i][0] % 360:.0f}")
        if captions is not None:
            caption = f"{captions[i]} {caption}"
        ax.set_title(caption, fontsize=7)
    for ax in axes.ravel()[len(errors):]:
        ax.axis("off")
    fig.suptitle("Worst predictions: true axes solid, predicted dashed "
                 f"({', '.join(f'{n} {c}' for n, c in zip(AXIS_NAMES, ('red', 'green', 'blue')))})",
                 fontsize=9)
    return _save(fig, path)


def swap_grid(decoded: np.ndarray, content_images: np.ndarray, view_images: np.ndarray, path: Path) -> Path:
    """The ML-VAE swap figure: cell (i, j) decodes content of row image i with the view of column j.

    decoded: (R, C, H, W, 3) uint8; content_images: (R, H, W, 3) shown in the first column;
    view_images: (C, H, W, 3) shown in the first row.
    """
    decoded = np.asarray(decoded)
    rows, cols = decoded.shape[:2]
    fig = _figure("swap_grid")
    axes = _grid_axes(fig, rows + 1, cols + 1)
    axes[0, 0].axis("off")
    for j in range(cols):
        axes[0, j + 1].imshow(view_images[j])
    for i in range(rows):
        axes[i + 1, 0].imshow(content_images[i])
        for j in range(cols):
            axes[i + 1, j + 1].imshow(decoded[i, j])
    axes[0, 1].set_title("view from column image ->", fontsize=8, loc="left")
    axes[1, 0].set_ylabel("content\nfrom row", fontsize=8)
    fig.suptitle("Swap grid: content (group latent) of row x view (observation latent) of column")
    return _save(fig, path)


def latent_traversals(decoded: np.ndarray, values: np.ndarray, dims: Sequence[int], path: Path) -> Path:
    """Row d decodes the base image with observation latent dimension dims[d] set to each value.

    decoded: (D, S, H, W, 3) uint8; values: (S,) the latent values used (shown as column titles).
    """
    decoded = np.asarray(decoded)
    rows, cols = decoded.shape[:2]
    fig = _figure("traversals")
    axes = _grid_axes(fig, rows, cols)
    for r in range(rows):
        axes[r, 0].set_ylabel(f"obs z{dims[r]}", fontsize=8)
        for c in range(cols):
            axes[r, c].imshow(decoded[r, c])
            if r == 0:
                axes[r, c].set_title(f"{values[c]:+.1f}", fontsize=8)
    fig.suptitle("Observation latent traversals: row dim set to mean + t * std over the split (column: t)")
    return _save(fig, path)


def label_efficiency_plot(curves: Mapping[str, Mapping[str, Sequence[tuple[float, float, float, float]]]],
                          path: Path, title: str = "") -> Path:
    """MedErr against the fraction of labelled groups (log axis), one panel per domain.

    curves: {domain: {method: [(fraction, mean, min, max), ...]}}; the bars span min..max over seeds.
    """
    fig = _figure("label_efficiency")
    domains = list(curves)
    for column, domain in enumerate(domains, 1):
        ax = fig.add_subplot(1, max(1, len(domains)), column)
        for method, points in curves[domain].items():
            points = sorted(points)
            x = np.array([p[0] for p in points]) * 100.0
            mean = np.array([p[1] for p in points])
            spread = np.array([[p[1] - p[2] for p in points], [p[3] - p[1] for p in points]])
            ax.errorbar(x, mean, yerr=spread, marker="o", capsize=3, label=method)
        ax.set_xscale("log")
        ticks = sorted({100.0 * p[0] for points in curves[domain].values() for p in points})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labelled training groups (%)")
        ax.set_ylabel("MedErr (deg)")
        ax.set_title(f"{domain}" + (f" ({title})" if title else ""), fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.9, wspace=0.25)
    return _save(fig, path)


def ablation_plot(panels: Mapping[str, Mapping[str, Sequence[float]]], path: Path, title: str = "") -> Path:
    """Per row the mean over seeds (a diamond), each seed (a dot) and their range (a line), one
    panel per figure; the axis spans the values, so differences of a fraction of a degree show.

    panels: {panel title: {row label: per-seed values}}, rows top to bottom in the given order;
    the first row (the reference, e.g. everything on) is also drawn as a dashed line across.
    """
    fig = _figure("ablation")
    for column, (panel, rows) in enumerate(panels.items(), 1):
        ax = fig.add_subplot(1, max(1, len(panels)), column)
        labels = list(rows)
        for index, label in enumerate(labels):
            values = np.asarray(rows[label], dtype=np.float64)
            colour = "tab:green" if index == 0 else "tab:blue"
            ax.plot([values.min(), values.max()], [-index, -index], color=colour, linewidth=2)
            ax.plot(values, np.full(len(values), -index), "o", color="k", markersize=3)
            ax.plot([values.mean()], [-index], "D", color=colour, markersize=7)
        ax.axvline(float(np.mean(rows[labels[0]])), color="tab:green", linestyle="--", linewidth=0.8)
        ax.set_yticks(-np.arange(len(labels)), labels if column == 1 else [""] * len(labels))
        ax.set_ylim(-len(labels) + 0.5, 0.5)
        ax.set_xlabel("MedErr (deg)")
        ax.set_title(f"{panel}" + (f" ({title})" if title else ""), fontsize=9)
        ax.grid(True, axis="x", alpha=0.3)
    fig.subplots_adjust(left=0.17, right=0.98, bottom=0.14, top=0.9, wspace=0.1)
    return _save(fig, path)
