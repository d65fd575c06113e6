"""An object's crop at a lower resolution: what a small object in a photo gives the model.

A small object covers few pixels of a photo, and the crop rule (`data_tools.image.preprocess`)
upscales its box to the model's side with cv2.INTER_LINEAR, so the crop is soft and blocky.
`shrink` is the object's own resolution (cv2.INTER_AREA, as a camera's pixels average the light),
`enlarge` the crop rule's upscaling; `as_if_smaller` is both: the same crop as if the object were
`factor` times smaller in the photo. The renderer's `low_resolution` camera effect and
`bench sim2real --smaller-objects` share them. uint8 RGB in, the same dtype out.
"""

from __future__ import annotations

import numpy as np

#: Smallest side `shrink` goes down to (pixels).
MIN_SIDE = 8


def shrink(image: np.ndarray, factor: float) -> np.ndarray:
    """An (S, S, C) image at S / factor pixels a side (at least MIN_SIDE), by area averaging."""
    import cv2

    if not factor >= 1.0:
        raise ValueError(f"a resolution factor must be >= 1, got {factor}")
    side = max(MIN_SIDE, int(round(image.shape[0] / factor)))
    return cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)


def enlarge(image: np.ndarray, size: int) -> np.ndarray:
    """An (s, s, C) image upscaled to (size, size) as the crop rule upscales a small box."""
    import cv2

    return cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)


def as_if_smaller(images: np.ndarray, factor: float) -> np.ndarray:
    """Each (S, S, 3) image of a (N, S, S, 3) uint8 batch as the crop of its object `factor` times
    smaller in the photo: shrunk, then enlarged back to S."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise ValueError(f"want uint8 RGB square images (N, S, S, 3), got {images.dtype} {images.shape}")
    size = images.shape[1]
    return np.stack([enlarge(shrink(image, factor), size) for image in images]) if len(images) else images.copy()


__all__ = ["MIN_SIDE", "as_if_smaller", "enlarge", "shrink"]
