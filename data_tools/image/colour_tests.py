"""Colour-changed copies of images, to test how much a model's answer rests on colour.

`bench sim2real --colour-test` scores the same crops grey and with their hues turned: a model that
tells a car's front from its rear by shape keeps its figures, one that reads red lights or white
ones loses them. uint8 RGB (..., 3) in, the same shape and dtype out; numpy and OpenCV only.
"""

from __future__ import annotations

import numpy as np

from data_tools.image.augment import LUMA

#: The variants `bench sim2real --colour-test` scores, by name.
COLOUR_TESTS = ("grey", "hue+120")


def to_grey(images: np.ndarray) -> np.ndarray:
    """Each pixel's Rec. 601 luma (the grey of `augment.color_jitter`) in all three channels."""
    images = _check_rgb(images)
    luma = images.astype(np.float32) @ np.asarray(LUMA, dtype=np.float32)
    return np.repeat(np.rint(luma).clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def turn_hue(images: np.ndarray, degrees: float) -> np.ndarray:
    """Hues turned by `degrees` (red -> green at 120), saturation and value kept (HSV in float)."""
    import cv2

    images = _check_rgb(images)
    flat = images.reshape(-1, 1, 3).astype(np.float32) / 255.0
    hsv = cv2.cvtColor(flat, cv2.COLOR_RGB2HSV)  # float input: hue in degrees [0, 360)
    hsv[..., 0] = np.mod(hsv[..., 0] + degrees, 360.0)
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.rint(rgb * 255.0).clip(0, 255).astype(np.uint8).reshape(images.shape)


def colour_test(name: str, images: np.ndarray) -> np.ndarray:
    """`images` changed as the named test of COLOUR_TESTS says."""
    if name == "grey":
        return to_grey(images)
    if name == "hue+120":
        return turn_hue(images, 120.0)
    raise ValueError(f"unknown colour test {name!r}; choose one of {COLOUR_TESTS}")


def _check_rgb(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f"want uint8 RGB images (..., H, W, 3), got {images.dtype} {images.shape}")
    return images


__all__ = ["COLOUR_TESTS", "colour_test", "to_grey", "turn_hue"]
