"""A tiny procedural grouped dataset for tests and benchmarks (no OpenGL, numpy only, ~1 ms/image).

Each group is one box-shaped "car" (random size, body colour and background) seen from random
viewpoints. The box is drawn as a dense point cloud with coloured faces (light front = -y
"headlights", red rear = +y, body-coloured sides, dark roof), projected orthographically with
`data_tools.geometry.viewpoint_to_rotation` and painted far-to-near, so the image determines the
viewpoint (front and rear differ) and the group determines the colours: the structure the
ML-VAE and the pose head must learn, at a fraction of the cost of the real renderer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_tools.dataset import GroupedDatasetWriter
from data_tools.geometry import viewpoint_to_rotation

FRONT, REAR, ROOF = (0.95, 0.95, 0.7), (0.85, 0.1, 0.1), (0.15, 0.15, 0.2)


def _box_points(size: np.ndarray, body: np.ndarray, spacing: float = 0.008) -> tuple[np.ndarray, np.ndarray]:
    """Points (P, 3) on the six faces of a box of extents `size` centred at 0, and colours (P, 3)."""
    points, colours = [], []
    half = size / 2
    for axis in range(3):
        u, v = [a for a in range(3) if a != axis]
        gu = np.arange(-half[u], half[u], spacing)
        gv = np.arange(-half[v], half[v], spacing)
        uu, vv = np.meshgrid(gu, gv, indexing="ij")
        for sign in (-1.0, 1.0):
            face = np.zeros((uu.size, 3))
            face[:, u], face[:, v], face[:, axis] = uu.ravel(), vv.ravel(), sign * half[axis]
            colour = {(1, -1.0): FRONT, (1, 1.0): REAR, (2, 1.0): ROOF}.get((axis, sign), tuple(body))
            points.append(face)
            colours.append(np.broadcast_to(np.asarray(colour), face.shape))
    return np.concatenate(points), np.concatenate(colours)


def render_toy_view(points: np.ndarray, colours: np.ndarray, background: np.ndarray, azimuth: float,
                    elevation: float, theta: float, size: int = 64) -> np.ndarray:
    """uint8 (size, size, 3) orthographic image of the coloured point cloud."""
    R = viewpoint_to_rotation(azimuth, elevation, theta)  # object -> camera
    camera = points @ R.T  # (P, 3): x right, y up, z toward the camera
    order = np.argsort(camera[:, 2])  # far to near: nearer points overwrite
    scale = 0.95 * size
    col = np.clip((camera[order, 0] * scale + size / 2).astype(int), 0, size - 1)
    row = np.clip((-camera[order, 1] * scale + size / 2).astype(int), 0, size - 1)
    image = np.empty((size, size, 3))
    image[:] = background
    image[row, col] = colours[order]
    return (image * 255).round().astype(np.uint8)


def write_toy_dataset(root: str | Path, groups: int = 24, views: int = 12, size: int = 64, seed: int = 0,
                      val_groups: int = 0, elevation_range: tuple[float, float] = (0.0, 40.0),
                      has_pose: bool = True, test_groups: int = 0) -> Path:
    """Write a grouped dataset of `groups` toy cars x `views` views; the last `test_groups` are 'test'
    and the `val_groups` before them 'val'.
    has_pose False writes no labels (angles NaN), as a grouped set of a user's unlabelled photos."""
    rng = np.random.default_rng(seed)
    writer = GroupedDatasetWriter(Path(root), image_size=size, with_masks=False)
    for g in range(groups):
        extents = np.array([0.37, 0.87, 0.28]) * rng.uniform(0.85, 1.15, 3)
        points, colours = _box_points(extents, rng.uniform(0.2, 0.8, 3))
        background = rng.uniform(0.3, 0.7, 3)
        for _ in range(views):
            a, e, t = rng.uniform(0, 360), rng.uniform(*elevation_range), rng.uniform(-5, 5)
            image = render_toy_view(points, colours, background, a, e, t, size)
            writer.add(image, {"group": g, "instance": f"toy-{g}", "category": "car", "source": "toy",
                               "split": ("test" if g >= groups - test_groups else
                                         "val" if g >= groups - test_groups - val_groups else "train"),
                               **({"azimuth": a, "elevation": e, "theta": t, "distance": 5.0, "has_pose": 1}
                                  if has_pose else {"azimuth": np.nan, "elevation": np.nan, "theta": np.nan,
                                                    "distance": np.nan, "has_pose": 0})})
    return writer.close({"source": "toy", "seed": seed})
