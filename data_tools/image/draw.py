"""Draw an object's viewpoint on an image (numpy + OpenCV), in two styles.

* `draw_object_axes`: three arrows for the object's FRONT, LEFT and UP (the evaluation gallery
  overlays true and predicted arrows on small crops).
* `draw_pose`: the object's x/y/z axes and a 3-D box of the category's typical extent fitted
  into the object's 2-D box (the overlay of `posenet-mlvae predict` on photos).

Both project object-frame points (DESIGN.md section 2: +z up, front toward -y, +x the object's
left) with `geometry.project_points`. The arrows' camera puts the object origin at the image
centre (or `center`) and scales an axis of `length` to about `fraction` of the image side; the
box overlay centres on the 2-D box and scales the projected 3-D box to fit it: only the pose is
predicted, position and scale come from the box.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from data_tools.geometry import project_points

#: Object-frame directions drawn, in order, with their names and default RGB colours.
AXIS_NAMES = ("front", "left", "up")
AXIS_DIRECTIONS = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
AXIS_COLORS = ((230, 40, 40), (40, 200, 40), (40, 90, 255))


def object_axes_pixels(
    azimuth: float,
    elevation: float,
    theta: float,
    image_size: tuple[int, int],
    center: tuple[float, float] | None = None,
    length: float = 0.5,
    fraction: float = 0.4,
    distance: float = 4.0,
) -> np.ndarray:
    """(4, 2) pixel x, y of the origin and the tips of the front, left and up axes.

    image_size: (height, width). center: pixel (x, y) of the object origin; default the centre.
    """
    height, width = image_size
    cx, cy = center if center is not None else (width / 2.0, height / 2.0)
    # An axis of `length` perpendicular to the view at depth `distance` spans viewport*length/distance.
    viewport = fraction * min(height, width) * distance / length
    points = np.vstack([np.zeros((1, 3)), length * AXIS_DIRECTIONS])  # (4, 3)
    return np.asarray(
        project_points(points, azimuth, elevation, theta, distance, cx, cy, viewport=viewport)
    )


def draw_object_axes(
    image: np.ndarray,
    azimuth: float,
    elevation: float,
    theta: float,
    colors: Sequence[tuple[int, int, int]] = AXIS_COLORS,
    thickness: int = 2,
    center: tuple[float, float] | None = None,
    fraction: float = 0.4,
) -> np.ndarray:
    """A copy of `image` (H, W, 3) uint8 RGB with the object's axes drawn as arrows."""
    import cv2

    image = np.ascontiguousarray(np.asarray(image, dtype=np.uint8)).copy()
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got shape {image.shape}")
    pixels = object_axes_pixels(
        azimuth, elevation, theta, image.shape[:2], center=center, fraction=fraction
    )
    origin = tuple(int(round(v)) for v in pixels[0])
    for tip, color in zip(pixels[1:], colors):
        end = tuple(int(round(v)) for v in tip)
        cv2.arrowedLine(image, origin, end, tuple(int(c) for c in color), thickness,
                        line_type=cv2.LINE_AA, tipLength=0.2)
    return image


# --- 3-D box overlay (x red, y green, z blue) -------------------------------------------

#: Typical extent (x width, y length, z height) of each PASCAL3D+ category in object units
#: (bounding-box diagonal about 1). Approximate: only used to draw a plausible box.
TYPICAL_EXTENT: dict[str, tuple[float, float, float]] = {
    "aeroplane": (0.68, 0.68, 0.22),
    "bicycle": (0.22, 0.83, 0.51),
    "boat": (0.30, 0.87, 0.39),
    "bottle": (0.33, 0.33, 0.88),
    "bus": (0.27, 0.91, 0.32),
    "car": (0.37, 0.87, 0.28),
    "chair": (0.52, 0.52, 0.68),
    "diningtable": (0.49, 0.77, 0.41),
    "motorbike": (0.25, 0.84, 0.48),
    "sofa": (0.85, 0.40, 0.35),
    "train": (0.20, 0.96, 0.21),
    "tvmonitor": (0.78, 0.25, 0.57),
}

#: Used for a category not in TYPICAL_EXTENT: a cube with diagonal 1.
DEFAULT_EXTENT = (0.577, 0.577, 0.577)

#: Camera distance in object units used for the perspective of the drawing (mild perspective).
DRAW_DISTANCE = 5.0

_AXIS_COLORS_RGB = ((255, 0, 0), (0, 255, 0), (0, 0, 255))  # x red, y green, z blue
_BOX_COLOR_RGB = (255, 255, 0)
# The 12 edges of a box whose 8 corners are numbered by bits (x, y, z) = (i & 1, i & 2, i & 4).
_BOX_EDGES = [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1]


def typical_extent(category: str | None) -> tuple[float, float, float]:
    """(x, y, z) extent for a category name, DEFAULT_EXTENT when unknown or None."""
    return TYPICAL_EXTENT.get(category or "", DEFAULT_EXTENT)


def _box_corners(extent: Sequence[float]) -> np.ndarray:
    half = np.asarray(extent, dtype=np.float64) / 2.0
    bits = np.array([[(i >> k) & 1 for k in range(3)] for i in range(8)], dtype=np.float64)
    return (bits * 2.0 - 1.0) * half  # (8, 3)


def pose_outline(azimuth: float, elevation: float, theta: float, box: Sequence[float],
                 extent: Sequence[float] = DEFAULT_EXTENT) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions of the 3-D box corners (8, 2) and of the axes [origin, x, y, z] (4, 2).

    The principal point is the centre of `box` (x1, y1, x2, y2) and the viewport is the largest
    that keeps the projected corners inside the box (they touch two of its sides).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    px, py = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    corners = _box_corners(extent)
    axis_length = 0.5 * float(np.max(extent))
    axes = np.vstack([np.zeros(3), np.eye(3) * axis_length])  # (4, 3)
    points = np.vstack([corners, axes])  # (12, 3)
    unit = project_points(points, azimuth, elevation, theta, DRAW_DISTANCE, px, py, viewport=1.0)
    span = np.maximum(unit[:8].max(axis=0) - unit[:8].min(axis=0), 1e-9)  # (2,) x, y
    viewport = float(min((x2 - x1) / span[0], (y2 - y1) / span[1]))
    pixels = project_points(points, azimuth, elevation, theta, DRAW_DISTANCE, px, py,
                            viewport=viewport)
    return pixels[:8], pixels[8:]


def draw_pose(image: np.ndarray, azimuth: float, elevation: float, theta: float,
              box: Sequence[float] | None = None, extent: Sequence[float] = DEFAULT_EXTENT,
              color_order: str = "rgb") -> np.ndarray:
    """A copy of `image` (H, W, 3) uint8 with the object's axes and 3-D box drawn in the pose.

    box: (x1, y1, x2, y2) pixels around the object; None uses the whole image. extent: the
    box's (x, y, z) size in object units, e.g. `typical_extent("car")`. color_order says how
    `image` stores its channels ("rgb", or "bgr" as OpenCV reads them), so red stays red.
    """
    import cv2

    if color_order not in ("rgb", "bgr"):
        raise ValueError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    image = np.array(image, dtype=np.uint8, copy=True)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"draw_pose needs an (H, W, 3) uint8 image, got shape {image.shape}")
    height, width = image.shape[:2]
    box = (0, 0, width, height) if box is None else box
    corners, axes = pose_outline(azimuth, elevation, theta, box, extent)

    def color(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
        return rgb[::-1] if color_order == "bgr" else rgb

    def to_pixel(point: np.ndarray) -> tuple[int, int]:
        return int(round(point[0])), int(round(point[1]))

    thickness = max(1, round(max(height, width) / 200))
    for a, b in _BOX_EDGES:
        cv2.line(image, to_pixel(corners[a]), to_pixel(corners[b]), color(_BOX_COLOR_RGB),
                 thickness, cv2.LINE_AA)
    for k in range(3):
        cv2.line(image, to_pixel(axes[0]), to_pixel(axes[k + 1]), color(_AXIS_COLORS_RGB[k]),
                 thickness + 1, cv2.LINE_AA)
    return image
