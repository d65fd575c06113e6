"""Photo-like procedural backgrounds: outdoor, urban, indoor, natural-texture and out-of-focus scenes.

Our renders are evaluated on photographs, whose backgrounds have a horizon, a textured ground in
perspective, man-made clutter, 1/f natural textures, mostly muted colours and often depth-of-field
blur; solid colours and stripes have none of that. Each maker draws one scene as a (side, side, 3)
float32 image in [0, 255] from a numpy Generator only (no image files), so a bank image is a
function of its seed. `scene_background` adds the camera-level parts every kind shares: a tilted
horizon, depth-of-field blur in DOF_FRACTION of the images and a global exposure / colour cast.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from data_tools.render.procedural.canvas import (
    accent, blend, draw_discs, draw_segment, fill_polygon, near, paint_over,
    pink_noise, random_colour, rectangle_points, shaded, smooth_step, value_noise,
)
from data_tools.render.procedural.landscape import draw_skyline, ground_plane, sky_image

SCENE_KINDS = ("outdoor", "urban", "indoor", "nature", "bokeh")
DOF_FRACTION = 0.5  # share of backgrounds blurred as if out of focus (the bokeh kind always is)


# ---- scene kinds --------------------------------------------------------------------------------

def _horizon(rng: np.random.Generator, side: int) -> float:
    """Where the horizon crosses the image: usually inside, sometimes above it (looking down)."""
    return side * (rng.uniform(-0.4, 0.0) if rng.random() < 0.2 else rng.uniform(0.1, 0.75))


def _outdoor(rng: np.random.Generator, side: int) -> np.ndarray:
    """Sky with clouds above a horizon with a skyline, a road, grass, gravel, dirt or pavement below."""
    horizon = _horizon(rng, side)
    image = sky_image(rng, side, horizon)
    haze = image[int(np.clip(horizon - 1, 0, side - 1)), side // 2].copy()
    if rng.random() < 0.75 and horizon > 0:
        draw_skyline(rng, image, horizon, haze)
    material = rng.choice(["asphalt", "grass", "gravel", "dirt", "pavement"], p=[0.25, 0.3, 0.15, 0.15, 0.15])
    ground, coverage = ground_plane(rng, side, horizon, str(material), haze, road=rng.random() < 0.45)
    paint_over(image, coverage, ground)
    if rng.random() < 0.4 and horizon > 0:
        _roadside(rng, image, horizon, lambda x: horizon, int(rng.integers(0, 4)), int(rng.integers(0, 3)))
    return image


def _tree(rng: np.random.Generator, image: np.ndarray, centre: np.ndarray, radius: float) -> None:
    """A foliage blob: a disc with a fractal-noise edge, leafy texture and a darker lower side."""
    side = image.shape[0]
    top, left = (max(0, int(c - 1.4 * radius)) for c in centre[::-1])
    bottom, right = (min(side, int(c + 1.4 * radius) + 1) for c in centre[::-1])
    if bottom - top < 2 or right - left < 2:
        return
    y, x = np.mgrid[top:bottom, left:right].astype(np.float32) + 0.5
    distance = np.hypot(x - centre[0], y - centre[1]) / radius
    edge = 1.0 - distance + 0.6 * (value_noise(rng, y.shape, (4, 8, 16, 32)) - 0.5)
    alpha = np.clip(edge * radius + 0.5, 0.0, 1.0)
    leaves = near(rng, rng.uniform(0.17, 0.33), 0.45, rng.uniform(0.25, 0.5))
    light = np.clip(1.1 - 0.5 * (y - centre[1] + radius) / (2 * radius), 0.4, 1.2)
    texture = shaded(leaves, pink_noise(rng, y.shape, 0.8), 0.35) * light[..., None]
    paint_over(image[top:bottom, left:right], alpha, texture)


def car_outline(left: float, base: float, height: float, length: float) -> tuple[np.ndarray, ...]:
    """A side-view car silhouette in pixels: body polygon (10, 2), window polygon (4, 2), wheel
    centres (2, 2) and wheel radius (a 0-d array); `left`, `base` = its rear-bottom corner."""
    fractions = {
        "body": [(0, 0.25), (0.05, 0.55), (0.25, 0.6), (0.35, 1.0), (0.75, 1.0), (0.85, 0.6), (1.0, 0.5),
                 (1.0, 0.2), (0.95, 0.1), (0.05, 0.1)],
        "glass": [(0.3, 0.6), (0.38, 0.92), (0.72, 0.92), (0.8, 0.6)], "wheels": [(0.2, 0.15), (0.8, 0.15)]}
    points = {name: np.array([[left + fx * length, base - fy * height] for fx, fy in value])
              for name, value in fractions.items()}
    return points["body"], points["glass"], points["wheels"], np.array(0.17 * height)


def _car_blob(rng: np.random.Generator, image: np.ndarray, left: float, base: float, height: float) -> None:
    """A parked-car-like shape: rounded body, darker windows, dark wheels."""
    body, glass, wheels, radius = car_outline(left, base, height, height * rng.uniform(2.2, 3.2))
    paint = accent(rng) if rng.random() < 0.2 else near(rng, rng.random(), 0.12, rng.uniform(0.15, 0.85))
    fill_polygon(image, body, paint)
    fill_polygon(image, glass, near(rng, 0.6, 0.15, 0.2))
    draw_discs(image, wheels, float(radius), np.float32(0.08 * 255))


def _roadside(rng: np.random.Generator, image: np.ndarray, horizon: float, foot_of: Callable[[float], float],
              trees: int, poles: int) -> None:
    """Trees (trunk and crown) and poles standing on the ground at or in front of row foot_of(x),
    each as tall as its distance allows: a pixel below the horizon is one camera height there."""
    side = image.shape[0]
    for k in range(trees + poles):
        x = rng.uniform(0, side)
        foot = foot_of(x) + rng.uniform(0.0, 0.2) * side
        unit = foot - horizon  # pixels per camera height (about 1.5 m) at that distance
        if unit < 2:
            continue
        height = unit * (rng.uniform(1.0, 3.0) if k < trees else rng.uniform(3.0, 6.0))
        width = max(1.0, unit * (rng.uniform(0.08, 0.2) if k < trees else rng.uniform(0.03, 0.08)))
        lean = rng.normal(0.0, 0.03) * height
        colour = near(rng, 0.08, 0.4, 0.25) if k < trees else near(rng, 0.6, 0.05, rng.uniform(0.15, 0.6))
        draw_segment(image, (x, foot), (x + lean, foot - height), width, colour)
        if k < trees:
            radius = unit * rng.uniform(0.8, 2.0)
            _tree(rng, image, np.array([x + lean, foot - height - 0.5 * radius]), radius)


def _urban(rng: np.random.Generator, side: int) -> np.ndarray:
    """Building facades with window grids in perspective, street below, poles, trees, parked cars."""
    import cv2

    horizon = side * rng.uniform(0.2, 0.65)
    image = sky_image(rng, side, horizon)
    haze = near(rng, 0.6, 0.06, 0.75)
    base0 = horizon + side * rng.uniform(0.05, 0.4)  # facade foot at the image centre
    slope = rng.uniform(-0.7, 0.7)  # facades recede to one side: lines converge on the horizon

    def scale(x):  # perspective size at column x, 1 at the image centre
        return 1.0 + slope * (x - side / 2) / side

    edges = np.sort(rng.uniform(-0.2 * side, 1.2 * side, int(rng.integers(0, 3))))
    for left, right in zip(np.r_[-0.3 * side, edges], np.r_[edges, 1.3 * side]):
        top0 = horizon - side * rng.uniform(0.2, 1.5)
        facade = _facade(rng, 256, 256)
        quad = np.float32([[left, horizon + (top0 - horizon) * scale(left)],
                           [right, horizon + (top0 - horizon) * scale(right)],
                           [right, horizon + (base0 - horizon) * scale(right)],
                           [left, horizon + (base0 - horizon) * scale(left)]])
        source = np.float32([[0, 0], [256, 0], [256, 256], [0, 256]])
        warp = cv2.getPerspectiveTransform(source, quad)
        drawn = cv2.warpPerspective(facade, warp, (side, side), flags=cv2.INTER_AREA)
        alpha = cv2.warpPerspective(np.ones((256, 256), np.float32), warp, (side, side), flags=cv2.INTER_LINEAR)
        paint_over(image, alpha, drawn / np.maximum(alpha, 1e-3)[..., None])
    columns = np.arange(side, dtype=np.float32) + 0.5
    foot = horizon + (base0 - horizon) * scale(columns)
    ground, _ = ground_plane(rng, side, horizon, str(rng.choice(["asphalt", "pavement"])), haze,
                        road=rng.random() < 0.5, first_row=float(foot.min()))
    paint_over(image, np.clip(np.arange(side, dtype=np.float32)[:, None] + 0.5 - foot[None, :], 0.0, 1.0), ground)
    for _ in range(int(rng.integers(0, 4))):
        x = rng.uniform(0, side)
        height = (horizon + (base0 - horizon) * scale(x) - horizon) * rng.uniform(0.6, 1.2)
        _car_blob(rng, image, x - height, horizon + (base0 - horizon) * scale(x) + rng.uniform(0, 0.1) * side, height)
    _roadside(rng, image, horizon, lambda x: horizon + (base0 - horizon) * scale(x),
              int(rng.integers(0, 3)), int(rng.integers(0, 4)))
    return image


def _facade(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A flat facade (height, width, 3): plaster, brick, concrete or glass, with a grid of windows."""
    wall = rng.choice(4)
    colour = [near(rng, rng.uniform(0.05, 0.15), 0.2, 0.8), near(rng, 0.03, 0.5, 0.5),
              near(rng, 0.1, 0.04, 0.65), near(rng, rng.uniform(0.45, 0.6), 0.2, 0.45)][wall]
    if rng.random() < 0.1:
        colour = accent(rng)
    image = shaded(colour, pink_noise(rng, (height, width), 1.6), 0.08)
    if wall == 1:  # brick courses
        rows = (np.arange(height) % 6 == 0)[:, None]
        image *= np.where(rows, 0.8, 1.0)[..., None]
    floors, columns = int(rng.integers(3, 9)), int(rng.integers(2, 10))
    cell_h, cell_w = height / floors, width / columns
    glass = near(rng, 0.6, 0.2, rng.uniform(0.1, 0.45))
    fill_w, fill_h = rng.uniform(0.4, 0.9 if wall != 3 else 0.97), rng.uniform(0.4, 0.8 if wall != 3 else 0.95)
    lit = rng.random((floors, columns)) < 0.15
    reflection = np.linspace(1.3, 0.7, height, dtype=np.float32)[:, None, None]
    for r in range(floors):
        for c in range(columns):
            x0, y0 = int((c + (1 - fill_w) / 2) * cell_w), int((r + (1 - fill_h) / 2) * cell_h)
            x1, y1 = int(x0 + fill_w * cell_w), int(y0 + fill_h * cell_h)
            pane = glass * (1.8 if lit[r, c] else 1.0)
            image[y0 - 1:y1 + 1, x0 - 1:x1 + 1] *= 0.75  # frame shadow
            image[y0:y1, x0:x1] = pane * reflection[y0:y1]
    return np.clip(image, 0, 255)


def _indoor(rng: np.random.Generator, side: int) -> np.ndarray:
    """A room: wall(s) with a window or frames, a floor in perspective, a skirting board, furniture."""
    horizon = side * rng.uniform(0.15, 0.7)
    floor_line = horizon + side * rng.uniform(0.05, 0.45)
    wall = near(rng, rng.uniform(0.05, 0.6), 0.12, rng.uniform(0.5, 0.9))
    image = shaded(wall, pink_noise(rng, (side, side), 2.4), 0.05)
    if rng.random() < 0.5:  # a corner: the second wall in a different light
        corner = rng.uniform(0.1, 0.9) * side
        image[:, int(corner):] *= rng.uniform(0.6, 0.9)
    for _ in range(int(rng.integers(0, 3))):  # windows (bright) and frames (pictures, doors)
        w, h = side * rng.uniform(0.15, 0.5), side * rng.uniform(0.15, 0.6)
        x0, y0 = rng.uniform(-0.1, 0.9) * side, floor_line - h - rng.uniform(0, 0.5) * side
        window = rng.random() < 0.5
        pane = near(rng, 0.58, 0.15, 0.97) if window else near(rng, rng.random(), 0.3, rng.uniform(0.2, 0.7))
        fill_polygon(image, rectangle_points(x0, y0, x0 + w, y0 + h), near(rng, 0.1, 0.1, rng.uniform(0.3, 0.95)))
        inset = max(1.0, 0.06 * min(w, h))
        content = shaded(pane, value_noise(rng, (side, side), (2, 4, 8)) - 0.5, 0.6 if not window else 0.2)
        fill_polygon(image, rectangle_points(x0 + inset, y0 + inset, x0 + w - inset, y0 + h - inset), content)
    material = str(rng.choice(["planks", "tiles", "carpet"], p=[0.5, 0.3, 0.2]))
    floor, _ = ground_plane(rng, side, horizon, material, np.float32(0.9) * wall, first_row=floor_line)
    rows = np.arange(side, dtype=np.float32)[:, None] + 0.5
    paint_over(image, np.broadcast_to(np.clip(rows - floor_line, 0.0, 1.0), (side, side)), floor)
    skirting = np.broadcast_to(np.clip(rows - floor_line + 0.02 * side, 0, 1) * np.clip(floor_line + 1 - rows, 0, 1),
                               (side, side))
    paint_over(image, skirting, near(rng, 0.1, 0.05, rng.uniform(0.3, 0.95)))
    if rng.random() < 0.4:
        _bookcase(rng, image, floor_line)
    for _ in range(int(rng.integers(0, 4))):  # furniture: boxes with a lit top and a front face
        w, h = side * rng.uniform(0.1, 0.6), side * rng.uniform(0.1, 0.5)
        x0, bottom = rng.uniform(-0.2, 1.0) * side, rng.uniform(floor_line + 0.02 * side, 1.2 * side)
        depth = (bottom - horizon) * rng.uniform(0.05, 0.25)
        colour = (accent(rng) if rng.random() < 0.15
                  else near(rng, rng.uniform(0.03, 0.12), 0.4, rng.uniform(0.15, 0.8)))
        top_face = np.array([[x0, bottom - h], [x0 + w, bottom - h], [x0 + w * 0.92, bottom - h - depth],
                             [x0 + w * 0.08, bottom - h - depth]])
        for polygon, light in ((rectangle_points(x0, bottom - h, x0 + w, bottom), 0.75), (top_face, 1.1)):
            fill_polygon(image, polygon, shaded(colour * light, pink_noise(rng, (side, side), 1.5), 0.06))
    light = value_noise(rng, (side, side), (2, 3))  # soft room lighting
    return image * (0.7 + 0.5 * light)[..., None]


def _bookcase(rng: np.random.Generator, image: np.ndarray, floor_line: float) -> None:
    """A bookcase against the wall: a wooden frame, shelves and rows of books in many colours."""
    import cv2

    side = image.shape[0]
    width, height = side * rng.uniform(0.3, 0.9), side * rng.uniform(0.4, 1.0)
    left, top = rng.uniform(-0.3, 0.8) * side, floor_line - height
    wood = tuple(float(c) for c in near(rng, 0.08, 0.45, rng.uniform(0.2, 0.6)))
    cv2.rectangle(image, (int(left), int(top)), (int(left + width), int(floor_line)), wood, -1)
    shelves = int(rng.integers(2, 6))
    step = height / shelves
    board = max(1, int(0.06 * step))
    for k in range(shelves):
        y0, y1 = top + k * step + board, top + (k + 1) * step - board
        x = left + board
        while x < left + width - board - 1:
            w = side * rng.uniform(0.012, 0.04)
            colour = accent(rng) if rng.random() < 0.2 else near(rng, rng.random(), 0.3, rng.uniform(0.2, 0.8))
            book_top = y1 - (y1 - y0) * rng.uniform(0.6, 0.95)
            cv2.rectangle(image, (int(x), int(book_top)), (int(min(x + w, left + width - board)) - 1, int(y1)),
                          tuple(float(c) for c in colour), -1)
            x += w + (side * 0.05 if rng.random() < 0.08 else 0.0)  # now and then a gap


def _nature(rng: np.random.Generator, side: int) -> np.ndarray:
    """Close-up natural texture: foliage, fallen leaves, bark or rock, from 1/f noise and palettes."""
    style = rng.choice(4)
    shape = (side, side)
    if style == 2:  # bark: vertical ridges
        noise = pink_noise(rng, shape, 2.0, stretch=(rng.uniform(4, 12), 1.0))
        base = near(rng, rng.uniform(0.06, 0.12), 0.3, rng.uniform(0.25, 0.55))
        return shaded(base, noise + 0.3 * pink_noise(rng, shape, 0.8), 0.35)
    if style == 3:  # rock, earth, sand
        base = near(rng, rng.uniform(0.07, 0.13), rng.uniform(0.05, 0.35), rng.uniform(0.3, 0.75))
        noise = pink_noise(rng, shape, rng.uniform(1.8, 2.8))
        return shaded(blend(base, base * 0.6, smooth_step(0.5 + 0.3 * noise)), pink_noise(rng, shape, 0.5), 0.25)
    hues = (0.17, 0.33) if style == 0 else (0.03, 0.15)  # green foliage or autumn leaves
    dark = near(rng, rng.uniform(*hues), 0.5, 0.12)
    image = shaded(dark, pink_noise(rng, shape, 2.0), 0.4)
    count = int(rng.integers(30, 120))
    palette = [near(rng, rng.uniform(*hues), rng.uniform(0.3, 0.7), rng.uniform(0.25, 0.75)) for _ in range(4)]
    for k in range(count):  # leaves, back to front: later ones brighter (nearer the light)
        centre = rng.uniform(-0.1, 1.1, 2) * side
        length, width = side * rng.uniform(0.03, 0.1), side * rng.uniform(0.01, 0.04)
        angle = rng.uniform(0, np.pi)
        t = np.linspace(0, 2 * np.pi, 12, endpoint=False)[:, None]
        outline = centre + np.cos(t) * length * np.array([np.cos(angle), np.sin(angle)]) \
            + np.sin(t) * width * np.array([-np.sin(angle), np.cos(angle)])
        fill_polygon(image, outline, palette[k % 4] * (0.6 + 0.6 * k / count))
    return image


def _bokeh(rng: np.random.Generator, side: int) -> np.ndarray:
    """An out-of-focus scene: smooth colour fields with bright discs (defocused lights)."""
    import cv2

    scenery = [near(rng, 0.25, 0.4, 0.35), near(rng, 0.09, 0.35, 0.45), near(rng, 0.6, 0.05, 0.6),
               near(rng, 0.58, 0.3, 0.85), near(rng, 0.1, 0.15, 0.8), near(rng, 0.6, 0.1, 0.15)]
    third = random_colour(rng).astype(np.float32) if rng.random() < 0.5 else scenery[int(rng.integers(len(scenery)))]
    palette = np.stack([scenery[i] for i in rng.choice(len(scenery), 2, replace=False)] + [third])
    field = np.clip(0.5 + 0.25 * pink_noise(rng, (side, side), 3.0), 0.0, 1.0)
    image = np.stack([np.interp(field, [0.0, 0.5, 1.0], palette[:, c]) for c in range(3)], -1).astype(np.float32)
    image = cv2.GaussianBlur(image, (0, 0), side * 0.03)
    for _ in range(int(rng.integers(0, 16))):
        centre = rng.uniform(0, side, 2)
        radius = side * rng.uniform(0.02, 0.12)
        glow = near(rng, rng.uniform(0.05, 0.6), 0.3, 1.0) * rng.uniform(0.15, 0.6)
        draw_discs(image, [centre], radius, glow, add=True)
    return cv2.GaussianBlur(image, (0, 0), side * rng.uniform(0.01, 0.03))


_SCENES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "outdoor": _outdoor, "urban": _urban, "indoor": _indoor, "nature": _nature, "bokeh": _bokeh,
}


def scene_background(kind: str, rng: np.random.Generator, side: int) -> np.ndarray:
    """One (side, side, 3) float32 photo-like scene of `kind` (see SCENE_KINDS), values in [0, 255].

    The scene is drawn, tilted (a camera roll of a few degrees), blurred as if out of focus in
    DOF_FRACTION of the cases and given a global exposure and colour cast."""
    import cv2

    if kind not in _SCENES:
        raise ValueError(f"unknown scene kind {kind!r}; choose one of {SCENE_KINDS}")
    image = np.asarray(_SCENES[kind](rng, side), np.float32)
    if kind in ("outdoor", "urban", "indoor"):
        roll = float(np.clip(rng.normal(0.0, 5.0), -15.0, 15.0))
        zoom = abs(np.cos(np.radians(roll))) + abs(np.sin(np.radians(roll)))
        warp = cv2.getRotationMatrix2D((side / 2, side / 2), roll, zoom)
        image = cv2.warpAffine(image, warp, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.random() < DOF_FRACTION and kind != "bokeh":
        image = cv2.GaussianBlur(image, (0, 0), side / 128 * rng.uniform(0.6, 3.5))
    cast = rng.uniform(0.7, 1.2) * np.exp(rng.normal(0.0, 0.05, 3)).astype(np.float32)
    return np.clip(image * cast, 0, 255)


__all__ = ["DOF_FRACTION", "SCENE_KINDS", "car_outline", "scene_background"]
