"""A contact sheet: a grid of sample images, each upscaled and captioned (e.g. with its angles)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def contact_sheet(images: np.ndarray, captions: Sequence[str], columns: int = 8,
                  tile: int = 160) -> np.ndarray:
    """Tile (N, H, W, 3) uint8 RGB images into one RGB image with a caption on each tile.

    Each image is resized to `tile` x `tile` (nearest neighbour when enlarging, so pixels stay
    visible) and its caption is written in its top-left corner with an outline for legibility.
    """
    import cv2

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, H, W, 3) array, got {images.shape}")
    if len(captions) != len(images):
        raise ValueError(f"need one caption per image: {len(captions)} captions, {len(images)} images")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    sheet = np.full((rows * tile, columns * tile, 3), 255, dtype=np.uint8)
    scale = tile / 240.0
    for k, (image, caption) in enumerate(zip(images, captions)):
        interpolation = cv2.INTER_NEAREST if tile >= image.shape[0] else cv2.INTER_AREA
        cell = np.ascontiguousarray(cv2.resize(image, (tile, tile), interpolation=interpolation))
        for line_no, text in enumerate(caption.split("\n")):
            origin = (3, int(14 * scale * 1.4 * (line_no + 1)) + 2)
            cv2.putText(cell, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale, (0, 0, 0),
                        3, cv2.LINE_AA)
            cv2.putText(cell, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale,
                        (255, 255, 255), 1, cv2.LINE_AA)
        r, c = divmod(k, columns)
        sheet[r * tile: (r + 1) * tile, c * tile: (c + 1) * tile] = cell
    return sheet


def write_png(path: Path, image_rgb: np.ndarray) -> Path:
    """Write an RGB image to `path` (a .png), whole or not at all (`atomic_write_image`)."""
    from data_tools.atomic_write import atomic_write_image

    return atomic_write_image(path, image_rgb)


def dataset_contact_sheet(root: Path, count: int = 32, columns: int = 8, tile: int = 160) -> np.ndarray:
    """A contact sheet of `count` images spread evenly over a grouped dataset, with a/e/theta."""
    from data_tools.dataset import GroupedDataset

    dataset = GroupedDataset(root)
    if len(dataset) == 0:
        raise ValueError(f"{root}: the dataset has no images")
    indices = np.unique(np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int))
    records = dataset.records
    captions = [f"a{records['azimuth'][i]:.0f} e{records['elevation'][i]:.0f}\n"
                f"t{records['theta'][i]:.0f} {records['split'][i]}" for i in indices]
    return contact_sheet(dataset.images(indices), captions, columns=columns, tile=tile)


__all__ = ["contact_sheet", "dataset_contact_sheet", "write_png"]
