"""Viewpoints and framing for synthetic renders (PASCAL3D+ angles, RenderForCNN-style crops).

Distributions (`DISTRIBUTIONS`), each giving azimuth, elevation, theta (degrees) and distance:

- ``pascal``: like real photos and RenderForCNN's KDE on PASCAL3D+ (PASCAL3D.md section 4):
  80 % "regular" views with azimuth uniform, elevation mostly 0-30 deg (a category-specific
  normal, chairs seen from higher than cars), theta ~ N(0, 5 deg) clipped to +-15; 20 % outliers
  as RenderForCNN: elevation ~ N(mean, 20 deg) clipped to +-85, theta ~ N(0, 20 deg) clipped +-45.
- ``uniform``: azimuth uniform, elevation uniform on the sphere (arcsin of a uniform), theta small.
- ``grid``: Cars3D's fixed grid, 24 azimuths (15 deg apart) x 4 elevations (0, 10, 20, 30 deg),
  theta 0; view v is cell v mod 96, azimuth-major within an elevation ring.

Distance (object units, bounding-box diagonal 1) only sets the strength of perspective: the
rendered image IS the final crop, so the focal length in pixels and the principal point are
chosen (`frame_views`) so that the object's projected box, jittered, fills the crop. Framing
follows RenderForCNN's truncation model: each side of the tight projected box moves by a fraction
of the box's width/height (outward adds margin, inward truncates), then a square crop of side
max(w, h) / fill is centred on the jittered box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_tools.geometry import project_points

DISTRIBUTIONS = ("pascal", "uniform", "grid")

#: Cars3D grid: 24 azimuths x these elevations.
GRID_AZIMUTHS = 24
GRID_ELEVATIONS = (0.0, 10.0, 20.0, 30.0)
GRID_DISTANCE = 2.5
GRID_FILL = 0.8

#: Regular-view elevation (mean, std) in degrees per category; PASCAL3D+ cars are seen from near
#: eye level, chairs from above.
ELEVATION_PRIOR = {"car": (8.0, 7.0), "chair": (15.0, 9.0)}
OUTLIER_FRACTION = 0.2
DISTANCE_RANGE = (1.5, 4.0)  # log-uniform; PASCAL3D+ distances / 3 as in RenderForCNN
FILL_RANGE = (0.55, 0.95)  # the jittered box's longer side over the crop side


@dataclass(frozen=True)
class Viewpoint:
    """PASCAL3D+ viewpoint: degrees and a distance in object units."""

    azimuth: float
    elevation: float
    theta: float
    distance: float


@dataclass(frozen=True)
class Framing:
    """Where the object sits in the crop: fill fraction and side shifts (fractions of w or h)."""

    fill: float
    shift_left: float
    shift_top: float
    shift_right: float
    shift_bottom: float


def _check_distribution(distribution: str) -> None:
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown viewpoint distribution {distribution!r}; choose one of {DISTRIBUTIONS}")


def _clipped_normal(rng: np.random.Generator, mean: float, std: float, limit_low: float,
                    limit_high: float) -> float:
    return float(np.clip(rng.normal(mean, std), limit_low, limit_high))


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def sample_viewpoint(distribution: str, category: str, rng: np.random.Generator,
                     view_index: int) -> Viewpoint:
    """One viewpoint of `distribution` for `category` (the grid uses only `view_index`)."""
    _check_distribution(distribution)
    if distribution == "grid":
        cell = view_index % (GRID_AZIMUTHS * len(GRID_ELEVATIONS))
        azimuth = (cell % GRID_AZIMUTHS) * 360.0 / GRID_AZIMUTHS
        elevation = GRID_ELEVATIONS[cell // GRID_AZIMUTHS]
        return Viewpoint(azimuth, elevation, 0.0, GRID_DISTANCE)
    azimuth = float(rng.uniform(0.0, 360.0))
    if distribution == "uniform":
        elevation = float(np.degrees(np.arcsin(rng.uniform(-1.0, 1.0))))
        theta = _clipped_normal(rng, 0.0, 5.0, -15.0, 15.0)
    else:
        mean, std = ELEVATION_PRIOR.get(category, (10.0, 8.0))
        if rng.random() < OUTLIER_FRACTION:
            elevation = _clipped_normal(rng, mean, 20.0, -85.0, 85.0)
            theta = _clipped_normal(rng, 0.0, 20.0, -45.0, 45.0)
        else:
            elevation = _clipped_normal(rng, mean, std, -20.0, 60.0)
            theta = _clipped_normal(rng, 0.0, 5.0, -15.0, 15.0)
    return Viewpoint(azimuth, elevation, theta, _log_uniform(rng, *DISTANCE_RANGE))


def sample_framing(distribution: str, rng: np.random.Generator) -> Framing:
    """Fill and RenderForCNN-style side shifts; the grid is centred with a fixed fill."""
    _check_distribution(distribution)
    if distribution == "grid":
        return Framing(GRID_FILL, 0.0, 0.0, 0.0, 0.0)
    fill = float(rng.uniform(*FILL_RANGE))
    if rng.random() < OUTLIER_FRACTION:  # RenderForCNN outliers: N(0, 0.1) clipped to +-0.5
        shifts = np.clip(rng.normal(0.0, 0.1, 4), -0.5, 0.5)
    else:  # boxes that fit the object closely
        shifts = np.clip(rng.normal(0.0, 0.03, 4), -0.1, 0.1)
    return Framing(fill, *(float(s) for s in shifts))


def frame_views(points: np.ndarray, viewpoints: list[Viewpoint], framings: list[Framing],
                size: int) -> dict[str, np.ndarray]:
    """Camera intrinsics that place each view's object in a `size` x `size` crop.

    points: (P, 3) object points whose projection bounds the object (e.g. convex hull vertices).
    Returns arrays (N,): ``focal_px`` (focal * viewport in crop pixels), ``px``, ``py`` (the
    principal point, where the object origin lands) and the object's tight projected box
    ``box_x1, box_y1, box_x2, box_y2`` in crop pixels (it extends past the crop when truncated).
    """
    azimuth, elevation, theta, distance = (
        np.array([getattr(v, name) for v in viewpoints]) for name in ("azimuth", "elevation", "theta", "distance"))
    fill, left, top, right, bottom = (
        np.array([getattr(f, name) for f in framings])
        for name in ("fill", "shift_left", "shift_top", "shift_right", "shift_bottom"))
    # Unit camera: focal 1, viewport 1, principal point at 0 (projection is linear in these).
    unit = project_points(points, azimuth, elevation, theta, distance, 0.0, 0.0, 1.0, 1.0)  # (N, P, 2)
    x1, y1 = unit[..., 0].min(axis=1), unit[..., 1].min(axis=1)
    x2, y2 = unit[..., 0].max(axis=1), unit[..., 1].max(axis=1)
    width, height = x2 - x1, y2 - y1
    jx1, jx2 = x1 + left * width, x2 + right * width
    jy1, jy2 = y1 + top * height, y2 + bottom * height
    inverted = (jx2 <= jx1) | (jy2 <= jy1)  # RenderForCNN falls back to the tight box
    jx1, jx2 = np.where(inverted, x1, jx1), np.where(inverted, x2, jx2)
    jy1, jy2 = np.where(inverted, y1, jy1), np.where(inverted, y2, jy2)
    side = np.maximum(jx2 - jx1, jy2 - jy1) / fill
    scale = size / side  # crop pixels per unit-camera unit = focal * viewport
    px = (side / 2.0 - (jx1 + jx2) / 2.0) * scale
    py = (side / 2.0 - (jy1 + jy2) / 2.0) * scale
    return {
        "focal_px": scale, "px": px, "py": py,
        "box_x1": x1 * scale + px, "box_y1": y1 * scale + py,
        "box_x2": x2 * scale + px, "box_y2": y2 * scale + py,
    }


__all__ = [
    "DISTRIBUTIONS", "Framing", "GRID_AZIMUTHS", "GRID_ELEVATIONS", "Viewpoint", "frame_views",
    "sample_framing", "sample_viewpoint",
]
