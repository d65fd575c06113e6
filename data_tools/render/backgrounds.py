"""Backgrounds for synthetic renders: procedural images or the user's photos, and compositing.

A `BackgroundBank` holds a few hundred images at twice the crop size, made once per build (so a
view costs only a random crop and flip, not an image synthesis). Procedural kinds
(`PROCEDURAL_KINDS`): the photo-like scenes of `data_tools.render.procedural.scenes` (outdoor, urban,
indoor, natural texture, out-of-focus) and the legacy kinds (`LEGACY_KINDS`: solid colour, linear
gradient, multi-octave value noise, random shapes, periodic stripes / checks / grids). A bank's
`style` picks the mix: "photo" (default: mostly scenes, a LEGACY_SHARE of legacy kinds) or
"legacy" (legacy kinds only, as before the scenes existed, for ablations). A photo bank is made
from a directory of the user's images (read with `data_tools.image.preprocess.load_image_rgb`;
unreadable files are reported with one line each and skipped). Every bank image is a function of
(seed, index), so banks are identical in every worker and shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from data_tools.render.procedural.canvas import random_colour, value_noise
from data_tools.render.procedural.scenes import SCENE_KINDS, scene_background

LEGACY_KINDS = ("solid", "gradient", "noise", "shapes", "texture")
PROCEDURAL_KINDS = SCENE_KINDS + LEGACY_KINDS
BANK_STYLES = ("photo", "legacy")
LEGACY_SHARE = 0.15  # share of legacy kinds in a "photo" bank: flat colours still teach the silhouette
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_BANK_TAG = 0xB6  # separates the bank's random streams from the builder's


@dataclass(frozen=True)
class BackgroundBank:
    """Images (each (h, w, 3) uint8 with h, w >= `size`) and the kind of each."""

    images: tuple[np.ndarray, ...]
    kinds: tuple[str, ...]
    size: int

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """A random `size` x `size` crop (randomly mirrored) of a random bank image, and its kind."""
        index = int(rng.integers(len(self.images)))
        image = self.images[index]
        top = int(rng.integers(image.shape[0] - self.size + 1))
        left = int(rng.integers(image.shape[1] - self.size + 1))
        crop = image[top: top + self.size, left: left + self.size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        return crop, self.kinds[index]


def _gradient(rng: np.random.Generator, side: int) -> np.ndarray:
    angle = rng.uniform(0.0, 2.0 * np.pi)
    y, x = np.mgrid[0:side, 0:side] / max(side - 1, 1)
    t = (np.cos(angle) * x + np.sin(angle) * y)
    t = (t - t.min()) / max(np.ptp(t), 1e-6)
    a, b = random_colour(rng), random_colour(rng)
    return a + t[..., None] * (b - a)


def _noise(rng: np.random.Generator, side: int) -> np.ndarray:
    t = value_noise(rng, (side, side))[..., None]
    a, b, c = random_colour(rng), random_colour(rng), random_colour(rng)
    return np.where(t < 0.5, a + (b - a) * (2 * t), b + (c - b) * (2 * t - 1))


def _shapes(rng: np.random.Generator, side: int) -> np.ndarray:
    import cv2

    image = np.ascontiguousarray(_gradient(rng, side).astype(np.uint8))
    for _ in range(int(rng.integers(4, 30))):
        colour = tuple(float(c) for c in random_colour(rng))
        kind = int(rng.integers(4))
        centre = rng.integers(0, side, 2)
        extent = int(rng.integers(side // 20 + 1, side // 3 + 2))
        if kind == 0:
            cv2.circle(image, tuple(int(c) for c in centre), extent, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            corner = centre + rng.integers(-extent, extent + 1, 2)
            cv2.rectangle(image, tuple(int(c) for c in centre), tuple(int(c) for c in corner), colour, -1)
        elif kind == 2:
            points = (centre + rng.integers(-extent, extent + 1, (int(rng.integers(3, 7)), 2))).astype(np.int32)
            cv2.fillPoly(image, [points], colour, cv2.LINE_AA)
        else:
            end = rng.integers(0, side, 2)
            cv2.line(image, tuple(int(c) for c in centre), tuple(int(c) for c in end), colour,
                     int(rng.integers(1, max(2, side // 16))), cv2.LINE_AA)
    return image.astype(np.float64)


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    angle = rng.uniform(0.0, np.pi)
    frequency = rng.uniform(2.0, 16.0) / side
    y, x = np.mgrid[0:side, 0:side].astype(np.float64)
    u = np.cos(angle) * x + np.sin(angle) * y
    v = -np.sin(angle) * x + np.cos(angle) * y
    pattern = int(rng.integers(3))
    if pattern == 0:  # stripes
        t = np.sin(2 * np.pi * frequency * u) > 0
    elif pattern == 1:  # checks
        t = (np.sin(2 * np.pi * frequency * u) > 0) ^ (np.sin(2 * np.pi * frequency * v) > 0)
    else:  # grid lines
        t = (np.abs(np.sin(np.pi * frequency * u)) < 0.15) | (np.abs(np.sin(np.pi * frequency * v)) < 0.15)
    t = t.astype(np.float64)[..., None]
    a, b = random_colour(rng), random_colour(rng)
    shade = 0.75 + 0.5 * value_noise(rng, (side, side))[..., None]
    return (a + t * (b - a)) * shade


def _solid(rng: np.random.Generator, side: int) -> np.ndarray:
    return np.broadcast_to(random_colour(rng), (side, side, 3))


_MAKERS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "solid": _solid, "gradient": _gradient, "noise": _noise, "shapes": _shapes, "texture": _texture,
}


def procedural_background(kind: str, rng: np.random.Generator, side: int) -> np.ndarray:
    """One (side, side, 3) uint8 procedural background of `kind` (see PROCEDURAL_KINDS)."""
    if kind in SCENE_KINDS:
        image = scene_background(kind, rng, side)
    elif kind in _MAKERS:
        image = _MAKERS[kind](rng, side)
    else:
        raise ValueError(f"unknown background kind {kind!r}; choose one of {PROCEDURAL_KINDS}")
    grain = rng.normal(0.0, rng.uniform(0.0, 6.0), (side, side, 1))  # sensor-like noise
    return np.clip(image + grain, 0, 255).astype(np.uint8)


def bank_kinds(style: str, count: int) -> tuple[str, ...]:
    """The kind of each of `count` bank images for `style` (see BANK_STYLES), interleaved evenly.

    "legacy": LEGACY_KINDS in turn. "photo": SCENE_KINDS in turn with a LEGACY_SHARE of legacy
    kinds spread among them (a legacy kind whenever the running share falls behind, so any
    prefix of the bank has about the right mix)."""
    if style not in BANK_STYLES:
        raise ValueError(f"unknown background style {style!r}; choose one of {BANK_STYLES}")
    if style == "legacy":
        return tuple(LEGACY_KINDS[i % len(LEGACY_KINDS)] for i in range(count))
    kinds, legacy_used = [], 0
    for i in range(count):
        if legacy_used < LEGACY_SHARE * (i + 1) - 0.5:
            kinds.append(LEGACY_KINDS[legacy_used % len(LEGACY_KINDS)])
            legacy_used += 1
        else:
            kinds.append(SCENE_KINDS[(i - legacy_used) % len(SCENE_KINDS)])
    return tuple(kinds)


def procedural_bank(seed: int, size: int, count: int = 100, style: str = "photo") -> BackgroundBank:
    """`count` procedural images of side 2 * size, kinds by `style` (see bank_kinds), each from
    (seed, index). style="legacy" gives exactly the banks made before the photo-like scenes."""
    side = 2 * size
    kinds = bank_kinds(style, count)
    images = tuple(
        procedural_background(kind, np.random.default_rng([seed, _BANK_TAG, i]), side)
        for i, kind in enumerate(kinds))
    return BackgroundBank(images, kinds, size)


def find_images(directory: Path) -> list[Path]:
    """Image files under `directory` (recursively), sorted; ValueError if it is not a directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"--backgrounds {directory}: not a directory; give a folder of photos")
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def photo_bank(directory: Path, size: int, seed: int, max_photos: int = 400,
               max_bytes: int = 128 * 2**20,
               report: Callable[[str], None] = print) -> tuple[BackgroundBank, int]:
    """Up to `max_photos` photos from `directory` (a seeded choice), short side resized to 2 * size.

    The number of photos is also capped so that the bank stays near `max_bytes` (each worker
    process holds a copy). Unreadable files are reported with one line each and skipped.
    Returns the bank and the number of skipped files; ValueError when no photo could be read.
    """
    import cv2

    from data_tools.image.preprocess import load_image_rgb

    max_photos = max(1, min(max_photos, max_bytes // (18 * size * size)))  # (2 size)^2 x 4:3 x RGB
    paths = find_images(directory)
    if len(paths) > max_photos:
        chosen = np.random.default_rng([seed, _BANK_TAG]).choice(len(paths), max_photos, replace=False)
        paths = [paths[i] for i in sorted(chosen)]
    images, skipped = [], 0
    for path in paths:
        try:
            photo = load_image_rgb(path)
        except ValueError as error:
            report(f"skipping background {error}")
            skipped += 1
            continue
        scale = 2 * size / min(photo.shape[:2])
        shape = (max(2 * size, round(photo.shape[1] * scale)), max(2 * size, round(photo.shape[0] * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        images.append(cv2.resize(photo, shape, interpolation=interpolation))
    if not images:
        raise ValueError(f"--backgrounds {directory}: no readable images ({skipped} unreadable, "
                         f"suffixes {IMAGE_SUFFIXES})")
    return BackgroundBank(tuple(images), ("photo",) * len(images), size), skipped


def add_contact_shadows(backgrounds: np.ndarray, footprints: np.ndarray, strengths: np.ndarray,
                        blur: float = 0.04) -> None:
    """Darken each background under its object's ground footprint, in place.

    footprints: (N, K, 2) image points of the footprint polygon (convex, e.g. the projected
    corners of the bounding box's bottom face); strengths: (N,) darkening in [0, 1] (0 = none).
    The polygon is filled with sub-pixel precision and blurred by `blur` x image side, a soft
    contact shadow that ties the object to the ground as in photos.
    """
    import cv2

    size = backgrounds.shape[1]
    shift = 4  # sub-pixel bits of cv2.fillConvexPoly
    sigma = max(0.5, blur * size)
    for background, polygon, strength in zip(backgrounds, footprints, strengths):
        if strength <= 0 or not np.all(np.isfinite(polygon)):
            continue
        shade = np.zeros(background.shape[:2], np.float32)
        points = np.round(polygon * (1 << shift)).astype(np.int32)
        cv2.fillConvexPoly(shade, points, 1.0, cv2.LINE_AA, shift)
        shade = cv2.GaussianBlur(shade, (0, 0), sigma)
        background[...] = (background * (1.0 - strength * shade[..., None])).astype(np.uint8)


def composite(rgb_premultiplied: np.ndarray, alpha: np.ndarray, backgrounds: np.ndarray) -> np.ndarray:
    """Alpha-composite renders over backgrounds: rgb + background * (1 - alpha), all uint8.

    rgb_premultiplied: (..., H, W, 3), the render over black (colour times coverage, as the
    renderer returns it); alpha: (..., H, W); backgrounds: (..., H, W, 3).
    """
    import cv2

    shape = rgb_premultiplied.shape
    width = shape[-2]
    inverse = 255 - alpha.reshape(-1, width)  # OpenCV wants 2-D images: stack rows
    inverse = cv2.merge([inverse, inverse, inverse])
    behind = cv2.multiply(np.ascontiguousarray(backgrounds).reshape(-1, width, 3), inverse, scale=1.0 / 255.0)
    return cv2.add(behind, np.ascontiguousarray(rgb_premultiplied).reshape(-1, width, 3)).reshape(shape)


__all__ = [
    "BANK_STYLES", "BackgroundBank", "IMAGE_SUFFIXES", "LEGACY_KINDS", "LEGACY_SHARE", "PROCEDURAL_KINDS",
    "add_contact_shadows", "bank_kinds", "composite", "find_images", "photo_bank", "procedural_background",
    "procedural_bank",
]
