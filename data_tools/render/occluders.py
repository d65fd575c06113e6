"""Distractor objects drawn partly in front of the rendered object, as occluders are in PASCAL3D+.

In photos the object is often partly hidden by a pole, a bush, a box, another car or a person,
mostly entering the crop from a side or from the bottom; renders of a lone object never are, so a
model trained on them has never seen a partial car. `add_occluders` draws one or two such shapes
over a composite, each sized (by a short bracketed search) to hide a drawn fraction of the
object's box, with anti-aliased edges, and returns the object's visible mask. Labels (the
viewpoint) are unchanged. Runs per view on S x S crops, so it works on 2-D planes with OpenCV.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from data_tools.render.procedural.canvas import accent, fixed_point, near
from data_tools.render.procedural.scenes import car_outline

OCCLUDER_KINDS = ("pole", "foliage", "box", "car", "person")
DEFAULT_PROBABILITY = 0.3  # suggested share of occluded views (many PASCAL cars are partly hidden)
COVERAGE = (0.1, 0.5)  # fraction of the object's box area hidden, drawn uniformly
_ENTRIES = ("left", "right", "bottom", "top")  # where an occluder enters the image from
_ENTRY_CUMULATIVE = np.cumsum([0.3, 0.3, 0.35, 0.05])
_SHIFT = 4  # sub-pixel bits for cv2 drawing, as `fixed_point` makes them
_ONE = 1 << _SHIFT

Planes = list  # three (S, S) float32 colour planes (R, G, B): channel-last broadcasting is slow


class OccluderLayer(NamedTuple):
    """What the occluders put over an image: colour (S, S, 3) uint8, coverage (S, S) float32 in [0, 1]."""

    rgb: np.ndarray
    alpha: np.ndarray


class _Shape(NamedTuple):
    """One occluder: draw(scale) -> (S, S) uint8 coverage; paint(scale) -> its colour planes;
    `scale` is the first guess, `limit` the largest sensible scale (pixels); the covered area
    grows about as scale ** exponent (1 for a width, 2 for a size)."""

    draw: Callable[[float], np.ndarray]
    paint: Callable[[float], Planes]
    scale: float
    limit: float
    exponent: float = 2.0


def _pt(x: float, y: float) -> tuple[int, int]:
    """One point in cv2's fixed-point format (see `fixed_point`)."""
    return int(round(x * _ONE)), int(round(y * _ONE))


def _noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """A (size, size) float32 noise in [-0.5, 0.5]: a random cells x cells grid, bilinearly enlarged."""
    import cv2

    grid = rng.random((cells, cells), np.float32) - np.float32(0.5)
    return cv2.resize(grid, (size, size), interpolation=cv2.INTER_LINEAR)


def _surface(rng: np.random.Generator, size: int, colour: np.ndarray, contrast: float,
             shading: np.ndarray | float = 1.0) -> Planes:
    """Colour planes of a surface: `colour` times (shading and two octaves of brightness noise)."""
    shade = shading * (1.0 + contrast * (_noise(rng, size, 4) + 0.5 * _noise(rng, size, size // 4)))
    return [shade * np.float32(c) for c in colour]


def _overlay(planes: Planes, canvas: np.ndarray, colour) -> Planes:
    """`colour` over `planes` with a uint8 coverage canvas (window glass, a head, tyres)."""
    cover = canvas.astype(np.float32) * np.float32(1 / 255)
    return [p + (np.float32(c) - p) * cover for p, c in zip(planes, colour)]


def _canvas(size: int) -> np.ndarray:
    return np.zeros((size, size), np.uint8)


def _pole(rng, size, box, entry) -> _Shape:
    """A pole, post or trunk crossing the box vertically (any entry): scale = its width."""
    import cv2

    x1, y1, x2, y2 = box
    centre = rng.uniform(x1 + 0.1 * (x2 - x1), x2 - 0.1 * (x2 - x1))
    lean = rng.normal(0.0, 0.05) * size
    top = -1.0 if rng.random() < 0.7 else rng.uniform(y1 - 0.2 * (y2 - y1), y1 + 0.3 * (y2 - y1))  # a post
    bottom = size + 1.0

    def draw(width: float) -> np.ndarray:
        canvas, half = _canvas(size), width / 2
        cv2.fillConvexPoly(canvas, fixed_point([[centre - half, bottom], [centre + half, bottom],
                                           [centre + lean + half, top], [centre + lean - half, top]]),
                           255, cv2.LINE_AA, _SHIFT)
        return canvas

    colour = (near(rng, 0.08, 0.45, 0.3) if rng.random() < 0.3
              else accent(rng) if rng.random() < 0.15 else near(rng, 0.6, 0.05, rng.uniform(0.15, 0.7)))
    highlight = rng.uniform(-0.6, 0.6)  # where the light falls across the cylinder

    def paint(width: float) -> Planes:
        rows = np.arange(size, dtype=np.float32)[:, None] + 0.5
        axis = centre + lean * (bottom - rows) / (bottom - top)  # (S, 1)
        across = np.clip((np.arange(size, dtype=np.float32)[None, :] + 0.5 - axis) * (2.0 / max(width, 1.0)), -1, 1)
        shading = 0.45 + 0.75 * np.clip(1.0 - np.abs(across - highlight), 0.0, 1.0)
        return _surface(rng, size, colour, 0.15, shading)

    return _Shape(draw, paint, 0.25 * (x2 - x1), 0.8 * (x2 - x1), 1.0)


def _anchor(rng, size, box, entry) -> tuple[float, float]:
    """A point on the image border at `entry`, level with the lower box or below (where things stand)."""
    x1, y1, x2, y2 = box
    if entry in ("bottom", "top"):
        return rng.uniform(x1, x2), (float(size) if entry == "bottom" else 0.0)
    height = rng.uniform(y1 + 0.3 * (y2 - y1), min(size, y2 + 0.2 * (y2 - y1)))
    return (0.0 if entry == "left" else float(size)), height


def _foliage(rng, size, box, entry) -> _Shape:
    """A bush or a hanging branch: a blob with a noisy edge centred on the border; scale = radius."""
    import cv2

    cx, cy = _anchor(rng, size, box, entry)
    aspect = rng.uniform(0.6, 1.6)
    pixels = np.arange(size, dtype=np.float32) + 0.5
    distance = np.hypot((pixels[None, :] - cx) * aspect, (pixels[:, None] - cy) / aspect)
    rough = 0.7 * (_noise(rng, size, 6) + 0.5 * _noise(rng, size, 12))

    def draw(radius: float) -> np.ndarray:
        field = (1.0 + rough) * radius - distance + 0.5  # ~ signed distance to the edge, pixels
        return cv2.convertScaleAbs(np.maximum(field, 0.0), alpha=255.0)

    leaves = near(rng, rng.uniform(0.16, 0.33), 0.5, rng.uniform(0.2, 0.45))

    def paint(radius: float) -> Planes:
        gaps = 1.0 + 1.6 * _noise(rng, size, max(4, size // 3))  # lit leaves and dark gaps
        return _surface(rng, size, leaves, 0.3, gaps)

    x1, y1, x2, y2 = box
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    metric = lambda p: np.hypot((p[..., 0] - cx) * aspect, (p[..., 1] - cy) / aspect)  # noqa: E731
    nearest = float(metric(np.array([min(max(cx, x1), x2), min(max(cy, y1), y2)])))
    farthest = float(metric(corners).max())
    return _Shape(draw, paint, nearest + 0.35 * (farthest - nearest), farthest)


def _box(rng, size, box, entry) -> _Shape:
    """A crate, wall or board entering from `entry`, slightly rotated; scale = how far it reaches in."""
    import cv2

    x1, y1, x2, y2 = box
    cx, cy = _anchor(rng, size, box, entry)
    vertical = entry in ("bottom", "top")
    along = rng.uniform(0.4, 1.2) * ((x2 - x1) if vertical else (y2 - y1))
    angle = np.radians(rng.normal(0.0, 8.0))
    inward = np.array({"left": (1, 0), "right": (-1, 0), "bottom": (0, -1), "top": (0, 1)}[entry], np.float64)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    normal = rotation @ inward
    tangent = np.array([-normal[1], normal[0]])
    start = np.array([cx, cy]) - normal * 0.1 * size  # begins outside the image

    def draw(depth: float) -> np.ndarray:
        canvas, reach = _canvas(size), normal * (depth + 0.1 * size)
        corners = [start - tangent * along / 2, start + tangent * along / 2,
                   start + tangent * along / 2 + reach, start - tangent * along / 2 + reach]
        cv2.fillConvexPoly(canvas, fixed_point(corners), 255, cv2.LINE_AA, _SHIFT)
        return canvas

    material = int(rng.integers(3))  # wood, concrete, painted
    colour = [near(rng, 0.08, 0.45, 0.55), near(rng, 0.1, 0.06, 0.6), accent(rng)][material]

    def paint(depth: float) -> Planes:
        shading = 1.0
        if material == 0:  # planks parallel to the border
            pixels = np.arange(size, dtype=np.float32)
            inside = (pixels[None, :] - start[0]) * normal[0] + (pixels[:, None] - start[1]) * normal[1]
            shading = np.where(np.mod(inside, max(3.0, size / 12)) < 1.0, 0.6, 1.0).astype(np.float32)
        return _surface(rng, size, colour, 0.3 if material < 2 else 0.1, shading)

    closest, farthest = {"left": (x1, x2), "right": (size - x2, size - x1), "bottom": (size - y2, size - y1),
                         "top": (y1, y2)}[entry]  # from the border to the box's near and far sides
    closest = max(closest, 0.0)
    return _Shape(draw, paint, closest + 0.3 * (farthest - closest), farthest, 1.0)


def _car(rng, size, box, entry) -> _Shape:
    """Another car, mostly dark or muted, nearer the camera, entering from a side; scale = its height."""
    import cv2

    x1, y1, x2, y2 = box
    side = entry if entry in ("left", "right") else ("left" if rng.random() < 0.5 else "right")
    base = rng.uniform(y2 - 0.1 * (y2 - y1), y2 + 0.4 * (y2 - y1))
    inside = rng.uniform(0.3, 0.7)  # share of the car's length inside the image

    def outline(height: float) -> tuple[np.ndarray, ...]:
        length = 2.6 * height
        left = -length * (1 - inside) if side == "left" else size - length * inside
        return car_outline(left, base, height, length)

    def wheels(canvas: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
        for x, y in centres:
            cv2.circle(canvas, _pt(x, y), int(radius * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
        return canvas

    def draw(height: float) -> np.ndarray:
        canvas = _canvas(size)
        body, _, centres, radius = outline(height)
        cv2.fillPoly(canvas, [fixed_point(body)], 255, cv2.LINE_AA, _SHIFT)
        return wheels(canvas, centres, radius)

    paint_colour = accent(rng) if rng.random() < 0.15 else near(rng, rng.random(), 0.1, rng.uniform(0.08, 0.5))
    glass_colour = near(rng, 0.6, 0.15, 0.18)

    def paint(height: float) -> Planes:
        _, glass, centres, radius = outline(height)
        vertical = np.linspace(1.25, 0.8, size, dtype=np.float32)[:, None]  # lit roof, darker sills
        planes = _surface(rng, size, paint_colour, 0.1, vertical)
        window = _canvas(size)
        cv2.fillPoly(window, [fixed_point(glass)], 255, cv2.LINE_AA, _SHIFT)
        planes = _overlay(planes, window, glass_colour)
        return _overlay(planes, wheels(_canvas(size), centres, radius), (18.0, 18.0, 18.0))

    return _Shape(draw, paint, 0.8 * (y2 - y1), 2.0 * (y2 - y1))


def _person(rng, size, box, entry) -> _Shape:
    """A person (head, shoulders, torso, legs) standing in front, seen from the bottom or a side;
    scale = head radius."""
    import cv2

    x1, y1, x2, y2 = box
    if entry in ("bottom", "top"):
        hx = rng.uniform(x1, x2)
    else:
        hx = (x1 if entry == "left" else x2) + rng.normal(0.0, 0.1) * (x2 - x1)
    hy = rng.uniform(y1 + 0.1 * (y2 - y1), y2 - 0.1 * (y2 - y1))

    def draw_parts(head: float, parts: tuple[str, ...]) -> np.ndarray:
        canvas = _canvas(size)

        def trapezoid(top: float, bottom: float, top_half: float, bottom_half: float) -> np.ndarray:
            """A body part from `top` to `bottom` head radii below the head's centre."""
            return fixed_point([[hx - top_half * head, hy + top * head], [hx + top_half * head, hy + top * head],
                                [hx + bottom_half * head, hy + bottom * head],
                                [hx - bottom_half * head, hy + bottom * head]])

        if "legs" in parts:
            cv2.fillConvexPoly(canvas, trapezoid(5.8, 12.0, 1.3, 1.2), 255, cv2.LINE_AA, _SHIFT)
        if "torso" in parts:
            cv2.fillConvexPoly(canvas, trapezoid(2.2, 6.0, 1.7, 1.4), 255, cv2.LINE_AA, _SHIFT)
            cv2.ellipse(canvas, _pt(hx, hy + 2.2 * head), (int(1.7 * head * _ONE), int(0.9 * head * _ONE)),
                        0, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)  # rounded shoulders
        if "head" in parts:
            cv2.circle(canvas, _pt(hx, hy), int(head * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
        return canvas

    clothes = accent(rng) if rng.random() < 0.35 else near(rng, rng.random(), 0.2, rng.uniform(0.1, 0.7))
    trousers = near(rng, 0.62, 0.3, rng.uniform(0.1, 0.35))
    skin = near(rng, rng.uniform(0.04, 0.09), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.9))

    def paint(head: float) -> Planes:
        planes = _surface(rng, size, trousers, 0.15)
        planes = _overlay(planes, draw_parts(head, ("torso",)), clothes)
        return _overlay(planes, draw_parts(head, ("head",)), skin)

    return _Shape(lambda head: draw_parts(head, ("legs", "torso", "head")), paint,
                  0.15 * (y2 - y1), 0.35 * (y2 - y1))


_MAKERS = {"pole": _pole, "foliage": _foliage, "box": _box, "car": _car, "person": _person}


def _fit(shape: _Shape, window: tuple[slice, slice], target: float, area: float) -> tuple[np.ndarray, float]:
    """Draw `shape` at the scale whose coverage of the box window is nearest `target` (a fraction),
    found by a bracketed secant search on the scale: at most 4 draws, done within 25 % of the
    target (itself drawn at random) or when the shape's size limit still falls short."""
    low, high, limit_tried = 0.0, max(shape.limit, 1.0), False
    scale = min(max(shape.scale, 0.5), high)
    best = (np.inf, None, scale)
    for _ in range(4):
        canvas = shape.draw(scale)
        limit_tried |= scale >= high
        overlap = float(canvas[window].sum(dtype=np.int64)) / (255.0 * area)
        error = abs(overlap - target)
        if error < best[0]:
            best = (error, canvas, scale)
        if error <= 0.25 * target or (overlap < target and scale >= shape.limit):
            break
        guess = scale * (target / overlap) ** (1 / shape.exponent) if overlap > 0 else 2.0 * scale
        if overlap < target:
            low = scale
        else:
            high, limit_tried = scale, True
        if guess >= high:
            guess = high if not limit_tried else (low + high) / 2
        scale = guess if guess > low else (low + high) / 2
    return best[1], best[2]


def occluder_layer(size: int, box: tuple[float, float, float, float], rng: np.random.Generator,
                   coverage: tuple[float, float] = COVERAGE, max_count: int = 2,
                   kinds: tuple[str, ...] = OCCLUDER_KINDS) -> OccluderLayer:
    """1..max_count occluders of `kinds` over a size x size image, together hiding about a fraction
    drawn from `coverage` of the box (x1, y1, x2, y2), in pixels. A later occluder is in front."""
    import cv2

    unknown = [k for k in kinds if k not in _MAKERS]
    if unknown or not kinds:
        raise ValueError(f"unknown occluder kinds {unknown or list(kinds)}; choose from {OCCLUDER_KINDS}")
    if not 0.0 < coverage[0] <= coverage[1] <= 1.0:
        raise ValueError(f"coverage must be (low, high) with 0 < low <= high <= 1, got {coverage}")
    if max_count < 1:
        raise ValueError(f"max_count must be at least 1, got {max_count}")
    x1, y1, x2, y2 = (float(v) for v in box)
    left, top = min(max(int(np.floor(x1)), 0), size), min(max(int(np.floor(y1)), 0), size)
    right, bottom = min(max(int(np.ceil(x2)), left), size), min(max(int(np.ceil(y2)), top), size)
    window = (slice(top, bottom), slice(left, right))
    area = max(float((bottom - top) * (right - left)), 1.0)
    count = int(rng.integers(1, max_count + 1))
    target = rng.uniform(*coverage) / count
    planes, alpha = None, None
    for _ in range(count):
        entry = _ENTRIES[int(np.searchsorted(_ENTRY_CUMULATIVE, rng.random() * _ENTRY_CUMULATIVE[-1]))]
        shape = _MAKERS[kinds[int(rng.integers(len(kinds)))]](rng, size, (x1, y1, x2, y2), entry)
        canvas, scale = _fit(shape, window, target, area)
        shade = np.float32(rng.uniform(0.7, 1.1))  # nearer the camera, often in shadow
        colour = [p * shade for p in shape.paint(scale)]
        if planes is None:
            planes, alpha = colour, canvas.astype(np.float32) * np.float32(1 / 255)
        else:
            planes = _overlay(planes, canvas, [0.0, 0.0, 0.0])
            cover = canvas.astype(np.float32) * np.float32(1 / 255)
            planes = [p + c * cover for p, c in zip(planes, colour)]
            alpha = alpha + (1.0 - alpha) * cover
    rgb = cv2.convertScaleAbs(cv2.merge(planes))  # rounds and saturates to uint8 (colours are >= 0)
    return OccluderLayer(rgb, alpha)


def add_occluders(image: np.ndarray, mask: np.ndarray, box: tuple[float, float, float, float],
                  rng: np.random.Generator, probability: float = DEFAULT_PROBABILITY,
                  coverage: tuple[float, float] = COVERAGE, max_count: int = 2,
                  kinds: tuple[str, ...] = OCCLUDER_KINDS) -> tuple[np.ndarray, np.ndarray, float]:
    """With `probability`, draw occluders in front of the object (see `occluder_layer`).

    image: (S, S, 3) uint8 composite; mask: (S, S) uint8 object mask (255 = object); box: the
    object's (x1, y1, x2, y2) in pixels. Returns (new image, visible mask = mask minus the pixels
    where the occluders' coverage is 1/2 or more, covered = fraction of the object's mask pixels
    hidden). Without occluders the inputs come back as they are (not copied) with covered 0.
    The decision always draws one uniform first, then the layer draws from `rng`."""
    import cv2

    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"occluder probability must be in [0, 1], got {probability}")
    if image.ndim != 3 or image.shape[:2] != mask.shape or image.shape[0] != image.shape[1]:
        raise ValueError(f"need a square (S, S, 3) image and an (S, S) mask, got {image.shape} and {mask.shape}")
    if rng.random() >= probability:
        return image, mask, 0.0
    layer = occluder_layer(image.shape[0], box, rng, coverage, max_count, kinds)
    occluded = cv2.blendLinear(layer.rgb, np.ascontiguousarray(image), layer.alpha, 1.0 - layer.alpha)
    visible = mask.copy()
    visible[layer.alpha >= 0.5] = 0
    object_pixels = int(np.count_nonzero(mask))
    covered = 1.0 - np.count_nonzero(visible) / object_pixels if object_pixels else 0.0
    return occluded, visible, float(covered)


__all__ = ["COVERAGE", "DEFAULT_PROBABILITY", "OCCLUDER_KINDS", "OccluderLayer", "add_occluders", "occluder_layer"]
