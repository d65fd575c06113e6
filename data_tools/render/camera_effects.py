"""Camera effects on a finished composite: what a real camera adds that a renderer does not.

Photographs are slightly blurred (focus, hand shake), noisy (shot noise that grows with the
signal plus read noise), white-balanced and tone-mapped by the camera, vignetted by the lens and
JPEG-compressed; renders are perfectly sharp, clean and lossless. And a small object covers few
pixels of a photo, so its crop is upscaled to S and is soft and blocky. `apply_camera_effects`
applies a random subset of these, each with its own probability (EFFECT_PROBABILITIES), in the
order a camera does: light and lens first (white balance and exposure, vignetting, blur), then
the sensor (noise), then the processing (tone curve, JPEG), all at the object's own resolution
when `low_resolution` fires, and last the crop rule's upscaling to S
(`data_tools.image.resolution`). Only pixel values change, never geometry, so labels, boxes and
masks stay valid. Runs per view on S x S crops (OpenCV, float32).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from data_tools.image.resolution import enlarge, shrink

EFFECTS = ("white_balance", "exposure", "vignette", "blur", "motion_blur", "noise", "tone", "jpeg",
           "low_resolution")
EFFECT_PROBABILITIES = {
    "white_balance": 0.5, "exposure": 0.5, "vignette": 0.25, "blur": 0.25, "motion_blur": 0.1,
    "noise": 0.5, "tone": 0.5, "jpeg": 0.3,  # photo crops are downscaled: their JPEG blocks mostly fade
    "low_resolution": 0.1,  # measured against 0.2 and none: bench sim2real --smaller-objects, README
}
JPEG_QUALITY = (60, 95)  # photo-like, mild: at 64 px an 8 x 8 block is an eighth of the image
#: How many times smaller than S an object's crop is in a photo when `low_resolution` fires
#: (log-uniform; at S = 64 the object's own crop is 16-43 px wide).
LOW_RESOLUTION_FACTOR = (1.5, 4.0)


def _active(rng: np.random.Generator, probabilities: dict[str, float]) -> set[str]:
    """Which effects fire: one uniform per effect, always all drawn (a stable random stream)."""
    draws = rng.random(len(EFFECTS))
    return {name for name, u in zip(EFFECTS, draws) if u < probabilities.get(name, 0.0)}


@functools.lru_cache(maxsize=8)
def _radius_squared(size: int) -> np.ndarray:
    """Squared distance of each pixel from the centre, 1 at the corners, (size, size) float32 (pure)."""
    centre = (size - 1) / 2
    offsets = (np.arange(size, dtype=np.float32) - centre) / centre
    radius = (offsets[None, :] ** 2 + offsets[:, None] ** 2) / 2
    radius.flags.writeable = False
    return radius


@functools.lru_cache(maxsize=2)
def _noise_tile(side: int) -> np.ndarray:
    """A fixed (side, side, 3) float32 tile of sensor-like noise, unit variance per channel: fine
    luminance grain shared by the channels plus weaker, blotchier colour noise at half resolution
    (as demosaicing leaves it). Views cut random windows of it: fresh Gaussian noise per view
    would cost several times the whole effect budget. Pure (fixed seed), so cached."""
    import cv2

    rng = np.random.default_rng(0x5E1502)
    grain = rng.standard_normal((side, side, 1), np.float32)
    colour = cv2.resize(rng.standard_normal((side // 2, side // 2, 3), np.float32), (side, side),
                        interpolation=cv2.INTER_LINEAR)
    tile = grain + 0.7 * colour
    tile = (tile / tile.std(axis=(0, 1))).astype(np.float32)
    tile.flags.writeable = False
    return tile


def _sensor_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random (size, size, 3) window of the noise tile, randomly negated."""
    tile = _noise_tile(max(256, 2 * size))
    top, left = (int(v) for v in rng.integers(0, tile.shape[0] - size + 1, 2))
    window = tile[top: top + size, left: left + size]
    return -window if rng.random() < 0.5 else window


def _motion_kernel(rng: np.random.Generator, length: float) -> np.ndarray:
    """A normalised anti-aliased line kernel `length` pixels long at a random angle."""
    import cv2

    side = int(np.ceil(length)) | 1
    canvas = np.zeros((side * 4, side * 4), np.uint8)  # drawn 4x larger, then averaged down
    angle = rng.uniform(0.0, np.pi)
    half = np.array([np.cos(angle), np.sin(angle)]) * length * 2
    centre = np.array([side * 2, side * 2]) - 0.5
    start, end = np.round((centre - half) * 16).astype(int), np.round((centre + half) * 16).astype(int)
    cv2.line(canvas, tuple(int(v) for v in start), tuple(int(v) for v in end), 255, 4, cv2.LINE_AA, 4)
    kernel = cv2.resize(canvas.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA)
    return kernel / max(float(kernel.sum()), 1e-6)


class Shot(NamedTuple):
    """What `apply_camera_effects` returns: the image, and the factor its object was shrunk by as a
    small object's crop (`low_resolution`; 1.0 = drawn at full size)."""

    image: np.ndarray
    shrink: float


def apply_camera_effects(image: np.ndarray, rng: np.random.Generator, strength: float = 1.0,
                         probabilities: dict[str, float] | None = None) -> Shot:
    """A random subset of camera effects on an (S, S, 3) uint8 RGB image: a new uint8 image (the
    input itself when no effect fired or strength is 0) and its `shrink` factor.

    strength scales every effect's magnitude (0 = the image unchanged, 1 = photo-like, up to 2);
    probabilities (default EFFECT_PROBABILITIES) says how often each effect of EFFECTS fires.
    Deterministic for a given `rng` state. Sizes (blur, motion) scale with the working size / 64:
    S, or the object's own resolution S / factor when `low_resolution` fires."""
    import cv2

    if not 0.0 <= strength <= 2.0:
        raise ValueError(f"camera effect strength must be in [0, 2] (0 = off, 1 = photo-like), got {strength}")
    probabilities = EFFECT_PROBABILITIES if probabilities is None else probabilities
    unknown = sorted(set(probabilities) - set(EFFECTS))
    if unknown:
        raise ValueError(f"unknown camera effects {unknown}; choose from {EFFECTS}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] != image.shape[1] or image.dtype != np.uint8:
        raise ValueError(f"need a square (S, S, 3) uint8 image, got {image.shape} {image.dtype}")
    if strength == 0.0:
        return Shot(image, 1.0)
    active = _active(rng, probabilities)
    full_size = image.shape[0]
    if "low_resolution" in active:  # the object as few pixels as a small one in a photo has
        low, high = np.log(LOW_RESOLUTION_FACTOR)
        image = shrink(image, 1.0 + (np.exp(rng.uniform(low, high)) - 1.0) * strength)
    size = image.shape[0]
    pixels = size / 64.0
    linear = {"white_balance", "exposure", "vignette", "blur", "motion_blur", "noise"} & active
    out = image
    if linear:
        x = image.astype(np.float32) * np.float32(1 / 255)
        gains = np.ones(3)
        if "white_balance" in active:  # colour temperature (red vs blue) and tint (green)
            temperature, tint = rng.normal(0.0, 0.08 * strength), rng.normal(0.0, 0.03 * strength)
            gains *= np.exp([temperature - tint / 2, tint, -temperature - tint / 2])
        if "exposure" in active:
            gains *= np.exp(rng.normal(0.0, 0.25 * strength))
        if not np.allclose(gains, 1.0):
            x = cv2.transform(x, np.diag(gains).astype(np.float32))
        if "vignette" in active:
            falloff = 1.0 - rng.uniform(0.1, 0.4) * strength * _radius_squared(size)
            x = cv2.multiply(x, cv2.merge([falloff, falloff, falloff]))
        if "blur" in active:
            x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.0) * strength * pixels)
        if "motion_blur" in active:
            x = cv2.filter2D(x, -1, _motion_kernel(rng, max(1.0, rng.uniform(1.5, 4.0) * strength * pixels)),
                             borderType=cv2.BORDER_REFLECT)
        if "noise" in active:  # variance = shot * signal + read^2, in [0, 1] units
            shot = rng.uniform(0.0001, 0.0015) * strength ** 2  # std 1-10 levels of 255 at mid-grey
            read = rng.uniform(0.001, 0.008) * strength
            sigma = np.sqrt(x * np.float32(shot) + np.float32(read * read))  # x >= 0 here
            x = x + sigma * _sensor_noise(rng, size)
        out = cv2.convertScaleAbs(x, alpha=255.0)  # rounds and saturates to [0, 255]
    if "tone" in active:  # the camera's tone curve: gamma and contrast about mid-grey, as a LUT
        gamma = np.exp(rng.normal(0.0, 0.15 * strength))
        contrast = float(np.clip(1.0 + rng.normal(0.0, 0.15 * strength), 0.5, 1.5))
        levels = np.linspace(0.0, 1.0, 256) ** gamma
        out = cv2.LUT(out, np.clip(np.rint(((levels - 0.5) * contrast + 0.5) * 255), 0, 255).astype(np.uint8))
    if "jpeg" in active:
        quality = int(round(100 - strength * (100 - rng.uniform(*JPEG_QUALITY))))
        ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok, "OpenCV failed to encode a JPEG in memory"
        out = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if size != full_size:  # the crop rule's upscaling of a small box
        out = enlarge(out, full_size)
    return Shot(out, full_size / size)


__all__ = ["EFFECTS", "EFFECT_PROBABILITIES", "JPEG_QUALITY", "LOW_RESOLUTION_FACTOR", "Shot", "apply_camera_effects"]
