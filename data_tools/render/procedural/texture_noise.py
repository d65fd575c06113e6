"""Noise and colour helpers of the procedural textures (`textures`, `liveries`): value and
fractal noise, paint grain, tiling, colourising a shade, and the font of drawn lettering.

All randomness comes from the numpy Generator passed in, so textures stay deterministic.
"""

from __future__ import annotations

import numpy as np

FONT = 0  # cv2.FONT_HERSHEY_SIMPLEX, named here so cv2 is imported only inside functions
LETTERS = np.array(list("ABCDEFGHIJKLMNOPRSTUVWXYZ0123456789"))


def smooth_noise(rng: np.random.Generator, side: int, cells_rows: int, cells_cols: int,
            smooth: bool = False) -> np.ndarray:
    """(side, side) float32 value noise in [0, 1]: a random grid upsampled bilinearly (or, with
    `smooth`, bicubically to a quarter size first, so a coarse grid shows no creases)."""
    import cv2

    grid = rng.random((cells_rows, cells_cols), dtype=np.float32)
    if smooth:
        quarter = max(side // 4, 2)
        grid = cv2.resize(grid, (quarter, quarter), interpolation=cv2.INTER_CUBIC)
    return cv2.resize(grid, (side, side), interpolation=cv2.INTER_LINEAR)


def fractal_noise(rng: np.random.Generator, side: int, cells: int, octaves: int) -> np.ndarray:
    """(side, side) float32 fractal value noise, about [0, 1] with mean 0.5 (octaves halve)."""
    total = np.zeros((side, side), np.float32)
    weights = 0.5 ** np.arange(octaves)
    for k, weight in enumerate(weights):
        total += weight * smooth_noise(rng, side, min(cells << k, side), min(cells << k, side))
    return total / weights.sum()


def paint_noise(rng: np.random.Generator, side: int, fine: float) -> np.ndarray:
    """(side, side) float32 brightness factor near 1: grain of amplitude `fine` (two texels
    across) and a +-2 % low-frequency mottling: no real surface is perfectly even."""
    grain = smooth_noise(rng, side, side // 2, side // 2) - 0.5
    return 1.0 + (2.0 * fine) * grain + 0.04 * (smooth_noise(rng, side, 4, 4) - 0.5)


def tiled(tile: np.ndarray, side: int) -> np.ndarray:
    """A (side, side) array repeating `tile` from the top-left corner."""
    reps = (-(-side // tile.shape[0]), -(-side // tile.shape[1]))
    return np.tile(tile, reps)[:side, :side]


def colourise(shade: np.ndarray, colour: np.ndarray, tint: np.ndarray | None = None,
               tint_rgb: np.ndarray | None = None) -> np.ndarray:
    """(T, T, 3) uint8 = 255 * shade * (colour + tint * tint_rgb), one channel at a time (a
    (T, T) shade, optional (T, T) tint weight and per-channel tint offset)."""
    import cv2

    channels = []
    for c in range(3):
        if tint is None or tint_rgb[c] == 0:
            channels.append(cv2.convertScaleAbs(shade, alpha=255.0 * float(colour[c])))
        else:
            value = shade * (float(colour[c]) + float(tint_rgb[c]) * tint)
            channels.append(cv2.convertScaleAbs(value, alpha=255.0))
    return cv2.merge(channels)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """RGB floats in [0, 1] to uint8, rounded and clipped."""
    return np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255).astype(np.uint8)


__all__ = ["FONT", "LETTERS", "colourise", "fractal_noise", "paint_noise", "smooth_noise", "tiled", "to_uint8"]
