"""Viewpoints and framing for synthetic renders (PASCAL3D+ angles, RenderForCNN-style crops).

Distributions (`DISTRIBUTIONS`), each giving azimuth, elevation, theta (degrees) and distance:

- ``pascal``: like real photos and RenderForCNN's KDE on PASCAL3D+ (PASCAL3D.md section 4):
  80 % "regular" views with azimuth uniform, elevation mostly 0-30 deg (a category-specific
  normal, chairs seen from higher than cars), theta ~ N(0, 5 deg) clipped to +-15; 20 % outliers
  as RenderForCNN: elevation ~ N(mean, 20 deg) clipped to +-85, theta ~ N(0, 20 deg) clipped +-45.
- ``uniform``: azimuth uniform, elevation uniform on the sphere (arcsin of a uniform), theta small.
- ``grid``: Cars3D's fixed grid, 24 azimuths (15 deg apart) x 4 elevations (0, 10, 20, 30 deg),
  theta 0; view v is cell v mod 96, azimuth-major within an elevation ring.

Distance (object units, bounding-box diagonal 1) only sets the strength of perspective.

Framing is the project's one crop rule (`data_tools.image.preprocess.CropRule`, the rule `pascal3d`
crops and `predict` apply): the model input is `crop_box(box, margin, mode)` of the object's
tight visible box, resampled to the crop size. A render is that crop of a virtual, larger photo
whose camera has focal 1 and viewport 3000: since a crop of a pinhole image is again a pinhole
image (scaled focal, shifted principal point), `frame_views` renders the crop region directly,
supersampled, which costs no pixels outside the crop. Per view (`sample_framing`):

- RenderForCNN-style box jitter: each side of the box moves by a fraction of its width/height
  (annotation and detector noise); the crop is cut around the jittered box.
- Truncation (optional): the photo's border cuts the object: one side of the object's box is cut
  by 10-40 %; the visible box is clipped there and everything beyond the border is the border's
  pixels replicated, exactly as `crop_to_square` fills crops that leave a photo.
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

#: Regular-view elevation (mean, std) in degrees per category; PASCAL3D+ cars are seen from near
#: eye level, chairs from above.
ELEVATION_PRIOR = {"car": (8.0, 7.0), "chair": (15.0, 9.0)}
OUTLIER_FRACTION = 0.2
DISTANCE_RANGE = (1.5, 4.0)  # log-uniform; PASCAL3D+ distances / 3 as in RenderForCNN
TRUNCATION_FRACTION = 0.12  # views whose object is cut by the photo border (when enabled)
TRUNCATION_RANGE = (0.1, 0.4)  # the cut part of the box side
TRUNCATION_SIDES = ("left", "top", "right", "bottom")
#: Standard deviation of each side's shift for boxes that fit the object closely (80 % of views),
#: a fraction of the box side; shifts are clipped at 10/3 of it (0.1 for 0.03).
BOX_JITTER = 0.03


@dataclass(frozen=True)
class Viewpoint:
    """PASCAL3D+ viewpoint: degrees and a distance in object units."""

    azimuth: float
    elevation: float
    theta: float
    distance: float


@dataclass(frozen=True)
class Framing:
    """How one view's box is jittered (side shifts, fractions of the box's w or h; outward
    positive) and whether the photo border truncates the object (`truncate_side` one of
    TRUNCATION_SIDES or "" for none, `truncate_fraction` of the box side cut off)."""

    shift_left: float
    shift_top: float
    shift_right: float
    shift_bottom: float
    truncate_side: str = ""
    truncate_fraction: float = 0.0


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


def sample_framing(distribution: str, rng: np.random.Generator, truncation: bool = True,
                   box_jitter: float = BOX_JITTER) -> Framing:
    """RenderForCNN-style side shifts and (with `truncation`) a border cut; the grid is exact.
    `box_jitter`: the shifts' standard deviation for the boxes that fit the object closely."""
    _check_distribution(distribution)
    if distribution == "grid":
        return Framing(0.0, 0.0, 0.0, 0.0)
    if rng.random() < OUTLIER_FRACTION:  # RenderForCNN outliers: N(0, 0.1) clipped to +-0.5
        shifts = np.clip(rng.normal(0.0, 0.1, 4), -0.5, 0.5)
    else:  # boxes that fit the object closely
        limit = round(box_jitter * 10.0 / 3.0, 9)
        shifts = np.clip(rng.normal(0.0, box_jitter, 4), -limit, limit)
    side, fraction = "", 0.0
    cut = rng.random()  # drawn even without truncation, so the other draws stay the same
    which, amount = int(rng.integers(len(TRUNCATION_SIDES))), float(rng.uniform(*TRUNCATION_RANGE))
    if truncation and cut < TRUNCATION_FRACTION:
        side, fraction = TRUNCATION_SIDES[which], amount
    return Framing(*(float(s) for s in shifts), truncate_side=side, truncate_fraction=fraction)


def _visible_box(unit: np.ndarray, faces: np.ndarray | None, side: str, border: float) -> tuple:
    """The tight box of the part of the projected mesh (unit (P, 2), faces (F, 3)) on the photo's
    side of `border`: inside vertices plus the points where edges cross the border. Without
    faces, the vertices' box with its cut side clipped (exact only for convex outlines)."""
    axis = 0 if side in ("left", "right") else 1
    coord = unit[:, axis]
    inside = coord >= border if side in ("left", "top") else coord <= border
    points = [unit[inside]]
    if faces is not None:
        start, end = faces.reshape(-1), faces[:, [1, 2, 0]].reshape(-1)
        c0, c1 = coord[start], coord[end]
        crossing = (c0 - border) * (c1 - border) < 0
        t = (border - c0[crossing]) / (c1[crossing] - c0[crossing])
        points.append(unit[start[crossing]] + t[:, None] * (unit[end[crossing]] - unit[start[crossing]]))
    else:
        clipped = unit.copy()
        clipped[:, axis] = np.clip(coord, border, None) if side in ("left", "top") else np.minimum(coord, border)
        points = [clipped]
    visible = np.concatenate(points)
    return (*visible.min(axis=0), *visible.max(axis=0))


def frame_views(points: np.ndarray, viewpoints: list[Viewpoint], framings: list[Framing],
                size: int, rule, faces: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Camera intrinsics whose `size` x `size` image is the crop `rule` cuts around each view's
    object box.

    points: (P, 3) object points whose projection bounds the object (e.g. its vertices); rule:
    a `data_tools.image.preprocess.CropRule`; faces: (F, 3) the mesh's triangles over `points`, so a
    truncated view's visible box is exact (see `_visible_box`). Returns arrays (N,) in pixels of the crop:
    ``focal_px`` and ``focal_py`` (focal * viewport, horizontal and vertical: they differ only
    for 'stretch'), ``px``, ``py`` (the principal point, where the object origin lands); the
    object's tight visible box ``box_x1, box_y1, box_x2, box_y2`` (clipped at the photo border
    when truncated); the jittered box the crop was cut around ``jitter_x1 .. jitter_y2``; and
    the photo border ``border`` (a pixel coordinate on the side `truncate_side` names; NaN when
    not truncated): pixels beyond it replicate the border (see `replicate_beyond_border`).
    """
    from data_tools.image.preprocess import crop_box

    azimuth, elevation, theta, distance = (
        np.array([getattr(v, name) for v in viewpoints]) for name in ("azimuth", "elevation", "theta", "distance"))
    # Unit camera: focal 1, viewport 1, principal point at 0 (projection is linear in these).
    unit = project_points(points, azimuth, elevation, theta, distance, 0.0, 0.0, 1.0, 1.0)  # (N, P, 2)
    x1, y1 = unit[..., 0].min(axis=1), unit[..., 1].min(axis=1)
    x2, y2 = unit[..., 0].max(axis=1), unit[..., 1].max(axis=1)
    border = np.full(len(viewpoints), np.nan)
    for k, framing in enumerate(framings):  # the photo border cuts the object: its visible box
        cut, side = framing.truncate_fraction, framing.truncate_side
        if not side:
            continue
        low, high = (x1[k], x2[k]) if side in ("left", "right") else (y1[k], y2[k])
        border[k] = low + cut * (high - low) if side in ("left", "top") else high - cut * (high - low)
        x1[k], y1[k], x2[k], y2[k] = _visible_box(unit[k], faces, side, border[k])
    left, top, right, bottom = (np.array([getattr(f, name) for f in framings])
                                for name in ("shift_left", "shift_top", "shift_right", "shift_bottom"))
    width, height = x2 - x1, y2 - y1
    jx1, jx2 = x1 - left * width, x2 + right * width
    jy1, jy2 = y1 - top * height, y2 + bottom * height
    inverted = (jx2 <= jx1) | (jy2 <= jy1)  # RenderForCNN falls back to the tight box
    jx1, jx2 = np.where(inverted, x1, jx1), np.where(inverted, x2, jx2)
    jy1, jy2 = np.where(inverted, y1, jy1), np.where(inverted, y2, jy2)
    crops = np.array([crop_box(b, rule.margin, rule.mode) for b in zip(jx1, jy1, jx2, jy2)]).reshape(-1, 4)
    scale_x = size / (crops[:, 2] - crops[:, 0])  # crop pixels per unit-camera unit
    scale_y = size / (crops[:, 3] - crops[:, 1])
    px, py = -crops[:, 0] * scale_x, -crops[:, 1] * scale_y
    sides = np.array([f.truncate_side for f in framings])
    horizontal = np.isin(sides, ("left", "right"))
    border = np.where(horizontal, border * scale_x + px, border * scale_y + py)
    return {
        "focal_px": scale_x, "focal_py": scale_y, "px": px, "py": py,
        "box_x1": x1 * scale_x + px, "box_y1": y1 * scale_y + py,
        "box_x2": x2 * scale_x + px, "box_y2": y2 * scale_y + py,
        "jitter_x1": jx1 * scale_x + px, "jitter_y1": jy1 * scale_y + py,
        "jitter_x2": jx2 * scale_x + px, "jitter_y2": jy2 * scale_y + py,
        "border": border,
    }


def replicate_beyond_border(image: np.ndarray, side: str, border: float) -> np.ndarray:
    """Fill the pixels of `image` (H, W, ...) beyond the photo border at pixel coordinate
    `border` on `side` with the last row or column inside it, in place, as crops that leave a
    photo are filled (`crop_to_square` replicates the border). Returns the image."""
    if not side or not np.isfinite(border):
        return image
    height, width = image.shape[:2]
    if side in ("left", "top"):
        first = int(np.clip(np.ceil(border - 0.5), 0, (width if side == "left" else height) - 1))
        if side == "left":
            image[:, :first] = image[:, first:first + 1]
        else:
            image[:first] = image[first:first + 1]
    elif side in ("right", "bottom"):
        last = int(np.clip(np.floor(border - 0.5), 0, (width if side == "right" else height) - 1))
        if side == "right":
            image[:, last + 1:] = image[:, last:last + 1]
        else:
            image[last + 1:] = image[last:last + 1]
    else:
        raise ValueError(f"unknown border side {side!r}; choose one of {TRUNCATION_SIDES}")
    return image


__all__ = [
    "BOX_JITTER", "DISTRIBUTIONS", "Framing", "GRID_AZIMUTHS", "GRID_ELEVATIONS", "TRUNCATION_SIDES",
    "Viewpoint", "frame_views", "replicate_beyond_border", "sample_framing", "sample_viewpoint",
]
