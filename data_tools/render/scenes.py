"""Photo-like procedural backgrounds: outdoor, urban, indoor, natural-texture and out-of-focus scenes.

Our renders are evaluated on photographs, whose backgrounds have a horizon, a textured ground in
perspective, man-made clutter, 1/f natural textures, mostly muted colours and often depth-of-field
blur; solid colours and stripes have none of that. Each maker draws one scene as a (side, side, 3)
float32 image in [0, 255] from a numpy Generator only (no image files), so a bank image is a
function of its seed. `scene_background` adds the camera-level parts every kind shares: a tilted
horizon, depth-of-field blur in DOF_FRACTION of the images and a global exposure / colour cast.
"""

from __future__ import annotations

import colorsys
import functools
from typing import Callable

import numpy as np

SCENE_KINDS = ("outdoor", "urban", "indoor", "nature", "bokeh")
DOF_FRACTION = 0.5  # share of backgrounds blurred as if out of focus (the bokeh kind always is)


# ---- colours and noise -------------------------------------------------------------------------

def hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    """An RGB colour in [0, 255] (float64) from HSV in [0, 1] (hue wraps, the others are clipped)."""
    return 255.0 * np.array(colorsys.hsv_to_rgb(hue % 1.0, min(max(saturation, 0.0), 1.0),
                                                min(max(value, 0.0), 1.0)))


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour in [0, 255], mostly muted as in photos (saturation skewed low)."""
    return hsv(rng.random(), 0.85 * rng.random() ** 2, rng.uniform(0.08, 0.95))


def near(rng: np.random.Generator, hue: float, saturation: float, value: float) -> np.ndarray:
    """A float32 colour jittered around (hue, saturation, value): one material's natural variation."""
    return hsv(hue + rng.normal(0, 0.025), saturation * rng.uniform(0.7, 1.3),
               value * rng.uniform(0.8, 1.2)).astype(np.float32)


def accent(rng: np.random.Generator) -> np.ndarray:
    """A saturated float32 colour (paint, clothing, signs): the occasional bright thing in a photo."""
    return hsv(rng.random(), rng.uniform(0.55, 0.9), rng.uniform(0.45, 0.9)).astype(np.float32)


def value_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, ...] = (3, 6, 12, 24),
                aspect: float = 1.0) -> np.ndarray:
    """Sum of bicubically upsampled random grids (octaves), float32 in [0, 1].

    `aspect` > 1 stretches the features horizontally (fewer grid columns), as for clouds."""
    import cv2

    total = np.zeros(shape, np.float32)
    weight = 1.0
    for count in cells:
        grid = rng.random((count, max(2, round(count / aspect)))).astype(np.float32)
        total += weight * cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
        weight *= rng.uniform(0.35, 0.65)
    return (total - total.min()) / max(float(np.ptp(total)), 1e-6)


def pink_noise(rng: np.random.Generator, shape: tuple[int, int], beta: float = 2.0,
               stretch: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """Periodic noise with power spectrum ~ 1/f^beta (natural images: beta ~ 2), float32, mean 0, std 1.

    It tiles seamlessly (ground textures are wrapped). stretch = (along y, along x) > 1 elongates
    features along that axis (bark, planks)."""
    amplitude = _pink_amplitude(tuple(shape), float(beta), tuple(float(s) for s in stretch))
    spectrum = rng.standard_normal((*amplitude.shape, 2), np.float32).view(np.complex64)[..., 0] * amplitude
    noise = np.fft.irfft2(spectrum, s=shape)
    return (noise - noise.mean()) * np.float32(1.0 / max(float(noise.std()), 1e-9))


@functools.lru_cache(maxsize=64)
def _pink_amplitude(shape: tuple[int, int], beta: float, stretch: tuple[float, float]) -> np.ndarray:
    """The spectral amplitude f^(-beta/2) of `pink_noise` (zero at f = 0), cached: it is pure."""
    fy = np.fft.fftfreq(shape[0])[:, None] * stretch[0]
    fx = np.fft.rfftfreq(shape[1])[None, :] * stretch[1]
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = np.inf
    amplitude = (frequency ** (-beta / 2)).astype(np.float32)
    amplitude.flags.writeable = False
    return amplitude


def _mix(first: np.ndarray, second: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Blend two colours (or images) by weight map t in [0, 1]: t = 0 gives `first`."""
    return first + (second - first) * t[..., None]


def _shade(colour: np.ndarray, noise: np.ndarray, contrast: float) -> np.ndarray:
    """A colour modulated by zero-mean noise: a surface's brightness variation."""
    return colour * np.clip(1.0 + contrast * noise, 0.05, 3.0)[..., None]


def _smooth_step(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _paint(image: np.ndarray, coverage: np.ndarray, colour) -> None:
    """Paint `colour` (RGB or an image) over `image` in place with coverage in [0, 1] (anti-aliased)."""
    image += (colour - image) * coverage[..., None]


def _draw(image: np.ndarray, draw: Callable[[np.ndarray], None], colour, add: bool = False) -> None:
    """Paint `colour` (RGB or an image like `image`) in place where `draw` (cv2 calls with
    LINE_AA on a blank uint8 canvas) covers, with its anti-aliased coverage, only in its bounding
    box (cv2 anti-aliases only 8-bit canvases). `add` adds the colour instead (light)."""
    import cv2

    canvas = np.zeros(image.shape[:2], np.uint8)
    draw(canvas)
    x, y, w, h = cv2.boundingRect(canvas)
    if w and h:
        window = (slice(y, y + h), slice(x, x + w))
        colour = colour[window] if np.ndim(colour) == 3 else colour
        coverage = canvas[window].astype(np.float32) / 255.0
        if add:
            image[window] += coverage[..., None] * colour
        else:
            _paint(image[window], coverage, colour)


def fixed_point(points) -> np.ndarray:
    """Points (K, 2) in pixels as cv2's fixed-point integers (shift=4 fractional bits: sub-pixel edges)."""
    return np.round(np.asarray(points, np.float64) * 16).astype(np.int32)


def _polygon(image: np.ndarray, points, colour) -> None:
    """Fill a polygon (K, 2) in pixels with `colour`, anti-aliased."""
    import cv2

    _draw(image, lambda canvas: cv2.fillPoly(canvas, [fixed_point(points)], 255, cv2.LINE_AA, 4), colour)


def _rectangle(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _discs(image: np.ndarray, centres, radius: float, colour, add: bool = False) -> None:
    """Anti-aliased discs of one `radius` at `centres` (K, 2); `add` adds the colour (light)."""
    import cv2

    def draw(canvas: np.ndarray) -> None:
        for centre in fixed_point(centres):
            cv2.circle(canvas, tuple(int(v) for v in centre), int(round(radius * 16)), 255, -1, cv2.LINE_AA, 4)

    _draw(image, draw, colour, add)


def _segment(image: np.ndarray, start, end, width: float, colour) -> None:
    """An anti-aliased straight stroke `width` pixels wide from `start` to `end`."""
    import cv2

    first, last = (tuple(int(v) for v in p) for p in fixed_point([start, end]))
    _draw(image, lambda canvas: cv2.line(canvas, first, last, 255, max(1, round(width)), cv2.LINE_AA, 4), colour)


def _blur_wrap(texture: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a periodic texture (wrap-around borders)."""
    import cv2

    pad = int(3 * sigma) + 1
    padded = np.pad(texture, ((pad, pad), (pad, pad), (0, 0)), mode="wrap")
    return cv2.GaussianBlur(padded, (0, 0), sigma)[pad:-pad, pad:-pad]


# ---- sky, skyline and ground in perspective -----------------------------------------------------

def _sky(rng: np.random.Generator, side: int, horizon: float) -> np.ndarray:
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
    sky = np.broadcast_to(_mix(low, zenith, height)[:, None, :], (side, side, 3)).copy()
    cloud = value_noise(rng, (side, side), (2, 4, 8, 16, 32), aspect=rng.uniform(1.5, 4.0))
    cover = rng.uniform(0.0, 0.8)
    alpha = _smooth_step((cloud - (1.0 - cover)) / 0.25) * rng.uniform(0.5, 1.0)
    cloud_colour = near(rng, 0.6, 0.03, 0.97 if weather != 1 else 0.8)
    _paint(sky, alpha, _shade(cloud_colour, cloud - 0.5, -0.5))
    return sky


def _skyline(rng: np.random.Generator, image: np.ndarray, horizon: float, haze: np.ndarray) -> None:
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
    _paint(image, alpha, _mix(_shade(colour, texture, 0.5), haze, np.full((side, side), distance, np.float32)))


def _ground_texture(rng: np.random.Generator, material: str, size: int) -> np.ndarray:
    """A periodic top-down texture of `material`, (size, size, 3) float32."""
    shape = (size, size)
    fine, coarse = pink_noise(rng, shape, 0.6), pink_noise(rng, shape, 2.6)
    if material == "asphalt":
        base = near(rng, 0.6, 0.06, rng.uniform(0.25, 0.45))
        return _shade(base, 0.5 * fine + 0.6 * coarse + 0.5 * np.maximum(pink_noise(rng, shape, 1.2) - 2.0, 0), 0.12)
    if material in ("grass", "dirt", "gravel"):
        hue, saturation, value, contrast = {
            "grass": (rng.uniform(0.17, 0.3), 0.5, 0.38, 0.35), "dirt": (0.08, 0.38, 0.42, 0.2),
            "gravel": (0.09, 0.12, 0.55, 0.45)}[material]
        first, second = near(rng, hue, saturation, value), near(rng, hue + 0.03, saturation, value * 0.7)
        return _shade(_mix(first, second, _smooth_step(0.5 + 0.4 * coarse)), fine, contrast)
    if material == "carpet":
        return _shade(near(rng, rng.random(), 0.25, 0.45), fine + 0.4 * coarse, 0.12)
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
        return _shade(wood, grain * 0.6 + 0.2 * fine, 0.15) * np.where(gap, 0.55, tone)[..., None]
    count = int(rng.choice([4, 8, 16] if material == "tiles" else [8, 16, 32]))
    base = (near(rng, rng.uniform(0.05, 0.6), 0.1, 0.7) if material == "tiles"
            else near(rng, 0.1, 0.08, rng.uniform(0.45, 0.65)))
    cell = texel * count // size
    tone = rng.uniform(0.88, 1.1, (count, count))[cell[:, None], cell[None, :]]
    grout = (texel % (size // count) == 0)
    seams = grout[:, None] | grout[None, :]
    return _shade(base, fine * 0.6 + coarse * 0.4, 0.12) * np.where(seams, 0.7, tone)[..., None]


def _ground(rng: np.random.Generator, side: int, horizon: float, material: str, haze: np.ndarray,
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
            level_texture = _blur_wrap(texture, sigma) if sigma else np.ascontiguousarray(texture, np.float32)
            out = out + cv2.remap(level_texture, map_x, map_y, cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_WRAP) * weight[..., None]
        return out

    ground = project(_ground_texture(rng, material, side))
    if road:
        half = rng.uniform(1.5, 5.0)  # road half-width, in camera heights
        inside = np.clip(0.5 + (half - np.abs(a)) / footprint, 0.0, 1.0)
        _paint(ground, inside, project(_ground_texture(rng, "asphalt", side)))
        kerb = np.clip(0.5 + (0.12 - np.abs(np.abs(a) - half)) / footprint, 0.0, 1.0)
        _paint(ground, kerb * rng.uniform(0.3, 0.8), near(rng, 0.1, 0.05, 0.8))
        paint_colour = near(rng, 0.14, 0.6, 0.85) if rng.random() < 0.3 else near(rng, 0.1, 0.03, 0.88)
        wear = rng.uniform(0.5, 0.9)
        for centre in ([0.0] if rng.random() < 0.6 else [-half / 2, half / 2]) + [-half + 0.3, half - 0.3]:
            line = np.clip(0.5 + (0.06 - np.abs(a - centre)) / footprint, 0.0, 1.0)
            if centre == 0.0 or abs(centre) < half / 2 + 0.01:
                period = rng.uniform(4.0, 8.0)
                phase = np.abs(np.mod(b / period, 1.0) - 0.5) * period  # distance to a dash centre
                line *= np.clip(0.5 + (period * 0.25 - phase) / np.maximum(footprint, 1e-3), 0.0, 1.0)
            _paint(ground, line * wear, paint_colour)
    fog = 1.0 - np.exp(-depth / rng.uniform(30.0, 300.0))
    image, coverage = np.zeros((side, side, 3), np.float32), np.zeros((side, side), np.float32)
    image[start:] = _mix(ground, np.broadcast_to(haze, ground.shape), fog.astype(np.float32))
    coverage[start:] = np.clip(rows - horizon, 0.0, 1.0)
    return image, coverage


# ---- scene kinds --------------------------------------------------------------------------------

def _horizon(rng: np.random.Generator, side: int) -> float:
    """Where the horizon crosses the image: usually inside, sometimes above it (looking down)."""
    return side * (rng.uniform(-0.4, 0.0) if rng.random() < 0.2 else rng.uniform(0.1, 0.75))


def _outdoor(rng: np.random.Generator, side: int) -> np.ndarray:
    """Sky with clouds above a horizon with a skyline, a road, grass, gravel, dirt or pavement below."""
    horizon = _horizon(rng, side)
    image = _sky(rng, side, horizon)
    haze = image[int(np.clip(horizon - 1, 0, side - 1)), side // 2].copy()
    if rng.random() < 0.75 and horizon > 0:
        _skyline(rng, image, horizon, haze)
    material = rng.choice(["asphalt", "grass", "gravel", "dirt", "pavement"], p=[0.25, 0.3, 0.15, 0.15, 0.15])
    ground, coverage = _ground(rng, side, horizon, str(material), haze, road=rng.random() < 0.45)
    _paint(image, coverage, ground)
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
    texture = _shade(leaves, pink_noise(rng, y.shape, 0.8), 0.35) * light[..., None]
    _paint(image[top:bottom, left:right], alpha, texture)


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
    _polygon(image, body, paint)
    _polygon(image, glass, near(rng, 0.6, 0.15, 0.2))
    _discs(image, wheels, float(radius), np.float32(0.08 * 255))


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
        _segment(image, (x, foot), (x + lean, foot - height), width, colour)
        if k < trees:
            radius = unit * rng.uniform(0.8, 2.0)
            _tree(rng, image, np.array([x + lean, foot - height - 0.5 * radius]), radius)


def _urban(rng: np.random.Generator, side: int) -> np.ndarray:
    """Building facades with window grids in perspective, street below, poles, trees, parked cars."""
    import cv2

    horizon = side * rng.uniform(0.2, 0.65)
    image = _sky(rng, side, horizon)
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
        _paint(image, alpha, drawn / np.maximum(alpha, 1e-3)[..., None])
    columns = np.arange(side, dtype=np.float32) + 0.5
    foot = horizon + (base0 - horizon) * scale(columns)
    ground, _ = _ground(rng, side, horizon, str(rng.choice(["asphalt", "pavement"])), haze,
                        road=rng.random() < 0.5, first_row=float(foot.min()))
    _paint(image, np.clip(np.arange(side, dtype=np.float32)[:, None] + 0.5 - foot[None, :], 0.0, 1.0), ground)
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
    image = _shade(colour, pink_noise(rng, (height, width), 1.6), 0.08)
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
    image = _shade(wall, pink_noise(rng, (side, side), 2.4), 0.05)
    if rng.random() < 0.5:  # a corner: the second wall in a different light
        corner = rng.uniform(0.1, 0.9) * side
        image[:, int(corner):] *= rng.uniform(0.6, 0.9)
    for _ in range(int(rng.integers(0, 3))):  # windows (bright) and frames (pictures, doors)
        w, h = side * rng.uniform(0.15, 0.5), side * rng.uniform(0.15, 0.6)
        x0, y0 = rng.uniform(-0.1, 0.9) * side, floor_line - h - rng.uniform(0, 0.5) * side
        window = rng.random() < 0.5
        pane = near(rng, 0.58, 0.15, 0.97) if window else near(rng, rng.random(), 0.3, rng.uniform(0.2, 0.7))
        _polygon(image, _rectangle(x0, y0, x0 + w, y0 + h), near(rng, 0.1, 0.1, rng.uniform(0.3, 0.95)))
        inset = max(1.0, 0.06 * min(w, h))
        content = _shade(pane, value_noise(rng, (side, side), (2, 4, 8)) - 0.5, 0.6 if not window else 0.2)
        _polygon(image, _rectangle(x0 + inset, y0 + inset, x0 + w - inset, y0 + h - inset), content)
    material = str(rng.choice(["planks", "tiles", "carpet"], p=[0.5, 0.3, 0.2]))
    floor, _ = _ground(rng, side, horizon, material, np.float32(0.9) * wall, first_row=floor_line)
    rows = np.arange(side, dtype=np.float32)[:, None] + 0.5
    _paint(image, np.broadcast_to(np.clip(rows - floor_line, 0.0, 1.0), (side, side)), floor)
    skirting = np.broadcast_to(np.clip(rows - floor_line + 0.02 * side, 0, 1) * np.clip(floor_line + 1 - rows, 0, 1),
                               (side, side))
    _paint(image, skirting, near(rng, 0.1, 0.05, rng.uniform(0.3, 0.95)))
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
        for polygon, light in ((_rectangle(x0, bottom - h, x0 + w, bottom), 0.75), (top_face, 1.1)):
            _polygon(image, polygon, _shade(colour * light, pink_noise(rng, (side, side), 1.5), 0.06))
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
        return _shade(base, noise + 0.3 * pink_noise(rng, shape, 0.8), 0.35)
    if style == 3:  # rock, earth, sand
        base = near(rng, rng.uniform(0.07, 0.13), rng.uniform(0.05, 0.35), rng.uniform(0.3, 0.75))
        noise = pink_noise(rng, shape, rng.uniform(1.8, 2.8))
        return _shade(_mix(base, base * 0.6, _smooth_step(0.5 + 0.3 * noise)), pink_noise(rng, shape, 0.5), 0.25)
    hues = (0.17, 0.33) if style == 0 else (0.03, 0.15)  # green foliage or autumn leaves
    dark = near(rng, rng.uniform(*hues), 0.5, 0.12)
    image = _shade(dark, pink_noise(rng, shape, 2.0), 0.4)
    count = int(rng.integers(30, 120))
    palette = [near(rng, rng.uniform(*hues), rng.uniform(0.3, 0.7), rng.uniform(0.25, 0.75)) for _ in range(4)]
    for k in range(count):  # leaves, back to front: later ones brighter (nearer the light)
        centre = rng.uniform(-0.1, 1.1, 2) * side
        length, width = side * rng.uniform(0.03, 0.1), side * rng.uniform(0.01, 0.04)
        angle = rng.uniform(0, np.pi)
        t = np.linspace(0, 2 * np.pi, 12, endpoint=False)[:, None]
        outline = centre + np.cos(t) * length * np.array([np.cos(angle), np.sin(angle)]) \
            + np.sin(t) * width * np.array([-np.sin(angle), np.cos(angle)])
        _polygon(image, outline, palette[k % 4] * (0.6 + 0.6 * k / count))
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
        _discs(image, [centre], radius, glow, add=True)
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


__all__ = ["DOF_FRACTION", "SCENE_KINDS", "accent", "car_outline", "fixed_point", "hsv", "near", "pink_noise",
           "random_colour",
           "scene_background", "value_noise"]
