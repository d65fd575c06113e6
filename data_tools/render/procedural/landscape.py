"""Sky, skyline and textured ground in perspective: the outdoor layers of the procedural scenes.

Each draws from a numpy Generator only, onto float32 images in [0, 255] (see `scenes`).
"""

from __future__ import annotations

import numpy as np

from data_tools.render.procedural.canvas import (
    blend, blur_wrap, near, paint_over, pink_noise, shaded, smooth_step, value_noise,
)


def sky_image(rng: np.random.Generator, side: int, horizon: float) -> np.ndarray:
    """A sky gradient (paler at the horizon) with clouds of stretched value noise."""
    weather = rng.choice(3, p=[0.5, 0.38, 0.12])  # clear, overcast, dusk
    if weather == 0:
        zenith, low = near(rng, 0.6, 0.5, 0.78), near(rng, 0.57, 0.17, 0.95)
    elif weather == 1:
        zenith, low = near(rng, 0.6, 0.07, 0.68), near(rng, 0.6, 0.04, 0.86)
    else:
        zenith, low = near(rng, 0.62, 0.35, 0.5), near(rng, 0.07, 0.45, 0.92)
    rows = np.arange(side, dtype=np.float32) + 0.5
    height = np.clip((horizon - rows) / (0.9 * side), 0.0, 1.0) ** 0.6
    sky = np.broadcast_to(blend(low, zenith, height)[:, None, :], (side, side, 3)).copy()
    cloud = value_noise(rng, (side, side), (2, 4, 8, 16, 32), aspect=rng.uniform(1.5, 4.0))
    cover = rng.uniform(0.0, 0.8)
    alpha = smooth_step((cloud - (1.0 - cover)) / 0.25) * rng.uniform(0.5, 1.0)
    cloud_colour = near(rng, 0.6, 0.03, 0.97 if weather != 1 else 0.8)
    paint_over(sky, alpha, shaded(cloud_colour, cloud - 0.5, -0.5))
    return sky


def draw_skyline(rng: np.random.Generator, image: np.ndarray, horizon: float, haze: np.ndarray) -> None:
    """Distant tree lines, buildings or hills standing on the horizon, hazy with distance."""
    side = image.shape[0]
    x = np.arange(side, dtype=np.float32)
    style = rng.choice(3)
    if style == 0:  # trees: a bumpy profile
        knots = rng.random(int(rng.integers(8, 40)))
        profile = np.interp(x, np.linspace(0, side, len(knots)), knots) * 0.6 + 0.4
        colour = near(rng, rng.uniform(0.2, 0.33), 0.35, 0.3)
    elif style == 1:  # buildings: piecewise constant heights
        edges = np.sort(rng.uniform(0, side, int(rng.integers(3, 12))))
        profile = rng.uniform(0.2, 1.0, len(edges) + 1)[np.searchsorted(edges, x)]
        colour = near(rng, rng.uniform(0.05, 0.65), 0.08, 0.45)
    else:  # hills: one smooth low profile
        knots = rng.random(int(rng.integers(3, 6)))
        profile = np.interp(x, np.linspace(0, side, len(knots)), knots) * 0.7 + 0.3
        colour = near(rng, rng.uniform(0.2, 0.6), 0.25, 0.45)
    top = horizon - rng.uniform(0.03, 0.22) * side * profile
    rows = np.arange(side, dtype=np.float32)[:, None] + 0.5
    alpha = np.clip(rows - top[None, :] + 0.5, 0.0, 1.0) * np.clip(horizon + 2.0 - rows, 0.0, 1.0)
    distance = rng.uniform(0.2, 0.8)  # how much haze
    texture = value_noise(rng, (side, side), (8, 16, 48)) - 0.5
    paint_over(image, alpha, blend(shaded(colour, texture, 0.5), haze, np.full((side, side), distance, np.float32)))


def _ground_texture(rng: np.random.Generator, material: str, size: int) -> np.ndarray:
    """A periodic top-down texture of `material`, (size, size, 3) float32."""
    shape = (size, size)
    fine, coarse = pink_noise(rng, shape, 0.6), pink_noise(rng, shape, 2.6)
    if material == "asphalt":
        base = near(rng, 0.6, 0.06, rng.uniform(0.25, 0.45))
        return shaded(base, 0.5 * fine + 0.6 * coarse + 0.5 * np.maximum(pink_noise(rng, shape, 1.2) - 2.0, 0), 0.12)
    if material in ("grass", "dirt", "gravel"):
        hue, saturation, value, contrast = {
            "grass": (rng.uniform(0.17, 0.3), 0.5, 0.38, 0.35), "dirt": (0.08, 0.38, 0.42, 0.2),
            "gravel": (0.09, 0.12, 0.55, 0.45)}[material]
        first, second = near(rng, hue, saturation, value), near(rng, hue + 0.03, saturation, value * 0.7)
        return shaded(blend(first, second, smooth_step(0.5 + 0.4 * coarse)), fine, contrast)
    if material == "carpet":
        return shaded(near(rng, rng.random(), 0.25, 0.45), fine + 0.4 * coarse, 0.12)
    # tiles (pavement, indoor tiles) or planks: a periodic pattern with per-element colour
    texel = np.arange(size)
    if material == "planks":
        count = int(rng.choice([4, 8, 16]))
        wood = near(rng, rng.uniform(0.05, 0.1), 0.5, rng.uniform(0.35, 0.75))
        plank = texel * count // size
        tone = rng.uniform(0.8, 1.15, count)[plank][None, :]
        grain = pink_noise(rng, shape, 2.0, stretch=(8.0, 1.0))
        offsets = rng.integers(0, size, count)[plank][None, :]
        along = (texel[:, None] + offsets) % (size // 2)
        gap = (texel % (size // count) == 0)[None, :] | (along == 0)
        return shaded(wood, grain * 0.6 + 0.2 * fine, 0.15) * np.where(gap, 0.55, tone)[..., None]
    count = int(rng.choice([4, 8, 16] if material == "tiles" else [8, 16, 32]))
    base = (near(rng, rng.uniform(0.05, 0.6), 0.1, 0.7) if material == "tiles"
            else near(rng, 0.1, 0.08, rng.uniform(0.45, 0.65)))
    cell = texel * count // size
    tone = rng.uniform(0.88, 1.1, (count, count))[cell[:, None], cell[None, :]]
    grout = (texel % (size // count) == 0)
    seams = grout[:, None] | grout[None, :]
    return shaded(base, fine * 0.6 + coarse * 0.4, 0.12) * np.where(seams, 0.7, tone)[..., None]


def ground_plane(rng: np.random.Generator, side: int, horizon: float, material: str, haze: np.ndarray,
            road: bool = False, first_row: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A ground plane below `horizon` in perspective: the image and its coverage (side, side),
    drawn from `first_row` (default: the horizon) down; rows above are left black, coverage 0.

    A pinhole camera at height 1 looks at the plane; each pixel's ground point (a, b) (a across,
    b along the view after a random yaw) samples a periodic texture, filtered by its footprint
    (pre-blurred levels, so the far ground does not alias) and fading into `haze` with distance.
    `road` adds an asphalt road with dashed markings and kerbs over a pavement."""
    import cv2

    focal = side * rng.uniform(0.8, 1.6)
    start = int(np.clip(np.floor(max(horizon, horizon if first_row is None else first_row)), 0, side - 1))
    pixels = np.arange(side, dtype=np.float32) + 0.5
    rows = pixels[start:, None]  # (n, 1), the rows drawn
    shape = (side - start, side)
    below = np.maximum(rows - horizon, 0.5)
    across = (pixels[None, :] - side * rng.uniform(0.3, 0.7)) / below  # (n, side), camera height 1
    depth = np.broadcast_to(focal / below, shape)
    yaw = rng.uniform(-np.pi, np.pi)
    a = np.cos(yaw) * across + np.sin(yaw) * depth
    b = -np.sin(yaw) * across + np.cos(yaw) * depth
    footprint = np.broadcast_to(np.maximum(1.0, focal / below) / below, shape)  # world units / px
    nearest = max(side - horizon, 1.0)  # the bottom row's distance below the horizon, px
    texels_per_unit = rng.uniform(0.5, 2.0) * nearest / max(1.0, focal / nearest)  # texels/px there

    map_x = np.mod(a * texels_per_unit, side).astype(np.float32)
    map_y = np.mod(b * texels_per_unit, side).astype(np.float32)
    level = np.log2(np.maximum(footprint * texels_per_unit, 1e-3)) * 0.75  # 0: sharp ... 3: mean
    weights = [np.clip(1.0 - np.abs(level - k), 0.0, 1.0) for k in range(3)]
    weights[0][level < 0] = 1.0
    weights.append(np.clip(level - 2.0, 0.0, 1.0))

    def project(texture: np.ndarray) -> np.ndarray:
        out = np.broadcast_to(texture.mean(axis=(0, 1)), (*shape, 3)) * weights[3][..., None]
        for sigma, weight in zip((0.0, 1.0, 3.0), weights):
            level_texture = blur_wrap(texture, sigma) if sigma else np.ascontiguousarray(texture, np.float32)
            out = out + cv2.remap(level_texture, map_x, map_y, cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_WRAP) * weight[..., None]
        return out

    ground = project(_ground_texture(rng, material, side))
    if road:
        half = rng.uniform(1.5, 5.0)  # road half-width, in camera heights
        inside = np.clip(0.5 + (half - np.abs(a)) / footprint, 0.0, 1.0)
        paint_over(ground, inside, project(_ground_texture(rng, "asphalt", side)))
        kerb = np.clip(0.5 + (0.12 - np.abs(np.abs(a) - half)) / footprint, 0.0, 1.0)
        paint_over(ground, kerb * rng.uniform(0.3, 0.8), near(rng, 0.1, 0.05, 0.8))
        paint_colour = near(rng, 0.14, 0.6, 0.85) if rng.random() < 0.3 else near(rng, 0.1, 0.03, 0.88)
        wear = rng.uniform(0.5, 0.9)
        for centre in ([0.0] if rng.random() < 0.6 else [-half / 2, half / 2]) + [-half + 0.3, half - 0.3]:
            line = np.clip(0.5 + (0.06 - np.abs(a - centre)) / footprint, 0.0, 1.0)
            if centre == 0.0 or abs(centre) < half / 2 + 0.01:
                period = rng.uniform(4.0, 8.0)
                phase = np.abs(np.mod(b / period, 1.0) - 0.5) * period  # distance to a dash centre
                line *= np.clip(0.5 + (period * 0.25 - phase) / np.maximum(footprint, 1e-3), 0.0, 1.0)
            paint_over(ground, line * wear, paint_colour)
    fog = 1.0 - np.exp(-depth / rng.uniform(30.0, 300.0))
    image, coverage = np.zeros((side, side, 3), np.float32), np.zeros((side, side), np.float32)
    image[start:] = blend(ground, np.broadcast_to(haze, ground.shape), fog.astype(np.float32))
    coverage[start:] = np.clip(rows - horizon, 0.0, 1.0)
    return image, coverage


__all__ = ["draw_skyline", "ground_plane", "sky_image"]
