"""Colours, noise and anti-aliased drawing for the procedural scenes (`scenes`, `landscape`,
`occluders`): muted and accent colours as in photos, value and 1/f (pink) noise, and cv2 shapes
painted onto float32 images with their anti-aliased coverage.
"""

from __future__ import annotations

import colorsys
import functools
from typing import Callable

import numpy as np


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


def blend(first: np.ndarray, second: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Blend two colours (or images) by weight map t in [0, 1]: t = 0 gives `first`."""
    return first + (second - first) * t[..., None]


def shaded(colour: np.ndarray, noise: np.ndarray, contrast: float) -> np.ndarray:
    """A colour modulated by zero-mean noise: a surface's brightness variation."""
    return colour * np.clip(1.0 + contrast * noise, 0.05, 3.0)[..., None]


def smooth_step(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def paint_over(image: np.ndarray, coverage: np.ndarray, colour) -> None:
    """Paint `colour` (RGB or an image) over `image` in place with coverage in [0, 1] (anti-aliased)."""
    image += (colour - image) * coverage[..., None]


def _paint_drawn(image: np.ndarray, draw: Callable[[np.ndarray], None], colour, add: bool = False) -> None:
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
            paint_over(image[window], coverage, colour)


def fixed_point(points) -> np.ndarray:
    """Points (K, 2) in pixels as cv2's fixed-point integers (shift=4 fractional bits: sub-pixel edges)."""
    return np.round(np.asarray(points, np.float64) * 16).astype(np.int32)


def fill_polygon(image: np.ndarray, points, colour) -> None:
    """Fill a polygon (K, 2) in pixels with `colour`, anti-aliased."""
    import cv2

    _paint_drawn(image, lambda canvas: cv2.fillPoly(canvas, [fixed_point(points)], 255, cv2.LINE_AA, 4), colour)


def rectangle_points(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def draw_discs(image: np.ndarray, centres, radius: float, colour, add: bool = False) -> None:
    """Anti-aliased discs of one `radius` at `centres` (K, 2); `add` adds the colour (light)."""
    import cv2

    def draw(canvas: np.ndarray) -> None:
        for centre in fixed_point(centres):
            cv2.circle(canvas, tuple(int(v) for v in centre), int(round(radius * 16)), 255, -1, cv2.LINE_AA, 4)

    _paint_drawn(image, draw, colour, add)


def draw_segment(image: np.ndarray, start, end, width: float, colour) -> None:
    """An anti-aliased straight stroke `width` pixels wide from `start` to `end`."""
    import cv2

    first, last = (tuple(int(v) for v in p) for p in fixed_point([start, end]))
    _paint_drawn(image, lambda canvas: cv2.line(canvas, first, last, 255, max(1, round(width)), cv2.LINE_AA, 4), colour)


def blur_wrap(texture: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a periodic texture (wrap-around borders)."""
    import cv2

    pad = int(3 * sigma) + 1
    padded = np.pad(texture, ((pad, pad), (pad, pad), (0, 0)), mode="wrap")
    return cv2.GaussianBlur(padded, (0, 0), sigma)[pad:-pad, pad:-pad]


__all__ = ["accent", "blend", "blur_wrap", "draw_discs", "draw_segment", "fill_polygon", "fixed_point",
           "hsv", "near", "paint_over", "pink_noise", "random_colour", "rectangle_points", "shaded",
           "smooth_step", "value_noise"]
