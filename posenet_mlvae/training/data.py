"""Training data: one or several grouped datasets as one split, and augmented batches from it.

`load_split` reads the records of a split from every dataset directory, makes group ids unique
across datasets (each dataset's ids are offset past the previous one's), and gathers the split's
uint8 images and object masks into RAM once (16 KB per 64 px image) when they fit in `in_memory_bytes`; otherwise
batches are gathered from the memory-mapped .npy files. A batch is then one fancy-indexing op on a
uint8 array plus vectorised torch augmentations (data_tools.image.augment): no workers, no per-image
Python. `common_crop_rule` is the crop rule the datasets' manifests record (checkpoints keep it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
import torch

from data_tools.image.augment import augment_batch, random_convolution
from data_tools.dataset import GroupedDataset
from data_tools.image.preprocess import CropRule


class Batch(NamedTuple):
    images: torch.Tensor  # (B, 3, H, W) float32 in [0, 1]
    group: torch.Tensor  # (B,) int64 group ids
    azimuth: torch.Tensor  # (B,) degrees (NaN where has_pose is 0)
    elevation: torch.Tensor
    theta: torch.Tensor
    has_pose: torch.Tensor  # (B,) bool
    pixel_weights: torch.Tensor  # (B, 1, H, W) reconstruction weight: 1 on the object, background_weight elsewhere
    pose_images: torch.Tensor | None = None  # (B, 3, H, W) what the pose trunk reads instead (random convolution)


@dataclass
class SplitData:
    """Columns of one split over all datasets; `gather(indices)` returns uint8 (n, H, W, 3)."""

    group: np.ndarray  # (N,) int64, unique across datasets
    category: np.ndarray  # (N,) str
    azimuth: np.ndarray  # (N,) float32 degrees
    elevation: np.ndarray
    theta: np.ndarray
    has_pose: np.ndarray  # (N,) bool
    flip_allowed: np.ndarray  # (N,) bool
    image_size: int
    datasets: list
    starts: np.ndarray  # first row of each dataset in this split
    images: np.ndarray | None = None  # (N, H, W, 3) uint8 when held in RAM
    masks: np.ndarray | None = None  # (N, H, W) uint8 when held in RAM (255 = object; all 255 without masks)

    def __len__(self) -> int:
        return len(self.group)

    def gather(self, indices: np.ndarray) -> np.ndarray:
        if self.images is not None:
            return self.images[indices]
        return self._gather_from_disk(indices, masks=False)

    def gather_masks(self, indices: np.ndarray) -> np.ndarray:
        """uint8 (n, H, W) object masks; all 255 (everything is object) for datasets without masks."""
        if self.masks is not None:
            return self.masks[indices]
        return self._gather_from_disk(indices, masks=True)

    def _gather_from_disk(self, indices: np.ndarray, masks: bool) -> np.ndarray:
        which = np.searchsorted(self.starts, indices, side="right") - 1
        size = self.image_size
        out = np.full((len(indices), size, size) if masks else (len(indices), size, size, 3), 255, np.uint8)
        for d in np.unique(which):
            rows, dataset = which == d, self.datasets[d]
            if masks and not dataset.has_masks:
                continue
            local = indices[rows] - self.starts[d]
            out[rows] = dataset.masks(local) if masks else dataset.images(local)
        return out


def load_split(data_dirs: Sequence[str], split: str, image_size: int, categories: Sequence[str] = (),
               hflip: bool = True, asymmetric_categories: Sequence[str] = (),
               in_memory_bytes: int = 2 << 30, allow_empty: bool = False) -> SplitData | None:
    """Read `split` of every dataset in `data_dirs` (see module docstring).

    An empty split raises ValueError, or returns None with `allow_empty` (e.g. no 'val' split).
    """
    if not data_dirs:
        raise ValueError("no dataset given: pass --data DIR (a grouped dataset from `posenet-mlvae render`)")
    datasets, columns, offset = [], {k: [] for k in ("group", "category", "azimuth", "elevation", "theta", "has_pose")}, 0
    for root in data_dirs:
        dataset = GroupedDataset(root, split=split, categories=list(categories) or None)
        if dataset.image_size != image_size:
            raise ValueError(f"{root}: images are {dataset.image_size} px but the model expects {image_size} px; "
                             f"use --image-size {dataset.image_size} or rebuild the dataset at {image_size} px")
        records = dataset.records
        columns["group"].append(records["group"].astype(np.int64) + offset)
        offset = int(columns["group"][-1].max()) + 1 if len(dataset) else offset
        for key in ("category", "azimuth", "elevation", "theta", "has_pose"):
            columns[key].append(records[key])
        datasets.append(dataset)
    sizes = np.array([len(d) for d in datasets])
    if sizes.sum() == 0:
        if allow_empty:
            return None
        raise ValueError(f"split {split!r} is empty in {list(data_dirs)}"
                         + (f" for categories {list(categories)}" if categories else ""))
    cat = {k: np.concatenate(v) for k, v in columns.items()}
    has_pose = cat["has_pose"].astype(bool) & np.isfinite(cat["azimuth"]) & np.isfinite(cat["elevation"])
    flip_allowed = np.full(len(has_pose), hflip) & ~np.isin(cat["category"], list(asymmetric_categories))
    data = SplitData(cat["group"], cat["category"], cat["azimuth"].astype(np.float32),
                     cat["elevation"].astype(np.float32), np.nan_to_num(cat["theta"]).astype(np.float32),
                     has_pose, flip_allowed, image_size, datasets, np.concatenate([[0], np.cumsum(sizes)[:-1]]))
    if sizes.sum() * image_size * image_size * 4 <= in_memory_bytes:
        everything = np.arange(int(sizes.sum()))
        data.images = data._gather_from_disk(everything, masks=False)
        data.masks = data._gather_from_disk(everything, masks=True)
    return data


def common_crop_rule(data: SplitData) -> CropRule | None:
    """The crop rule (`manifest["crop_rule"]`) shared by every dataset of `data`, so a model records
    how its training objects were framed; None when no dataset recorded one (made before rules were).

    Datasets without a recorded rule agree with any rule (as in `evaluate.crop_rule_note`); two
    recorded rules that differ raise ValueError naming both datasets.
    """
    rule, source = None, None
    for dataset in data.datasets:
        this = CropRule.from_json(dataset.manifest.get("crop_rule"))
        if this is None:
            continue
        if rule is not None and this != rule:
            raise ValueError(f"the training datasets were cropped differently: {source} with {rule.describe()}, "
                             f"{dataset.root} with {this.describe()}; rebuild one with the other's rule "
                             "(render --crop-mode/--crop-margin, pascal3d --resize/--margin)")
        rule, source = rule or this, source or dataset.root
    return rule


def make_batch(data: SplitData, indices: np.ndarray, device: torch.device, generator: torch.Generator | None,
               color: float = 0.0, scale: float = 0.0, shift: float = 0.0, hflip: bool = False,
               background_weight: float = 1.0, grayscale: float = 0.0, random_conv: float = 0.0) -> Batch:
    """Gather rows `indices` and augment them (generator None: no augmentation at all).

    random_conv > 0: `pose_images` are the augmented images after data_tools.image.augment.random_convolution
    (for that share of the groups), which the model's pose trunk reads instead of `images`.
    pixel_weights = background_weight + (1 - background_weight) * mask: with object masks and a
    background weight < 1 the reconstruction concentrates on the object (see losses.py).
    """
    images = torch.from_numpy(data.gather(indices))
    masks = torch.from_numpy(data.gather_masks(indices)) if background_weight != 1.0 else None
    angles = [torch.from_numpy(np.where(data.has_pose[indices], column[indices], np.nan).astype(np.float32))
              for column in (data.azimuth, data.elevation, data.theta)]
    pose_x = None
    if generator is None:
        x = images.permute(0, 3, 1, 2).float().div_(255.0)
        azimuth, elevation, theta = angles
        mask = masks[:, None].float().div_(255.0) if masks is not None else None
    else:
        x, azimuth, elevation, theta, mask = augment_batch(
            images, *angles, torch.from_numpy(data.flip_allowed[indices]), generator,
            hflip=hflip, color=color, scale=scale, shift=shift, masks_uint8=masks,
            groups=torch.from_numpy(data.group[indices]), grayscale=grayscale)
        if random_conv > 0:  # drawn last: the other augmentations' draws stay as they were
            pose_x = random_convolution(x, random_conv, generator, torch.from_numpy(data.group[indices]))
            pose_x = None if pose_x is x else pose_x  # no group chosen: the trunk reads the images
    weights = torch.ones_like(x[:, :1]) if mask is None else background_weight + (1.0 - background_weight) * mask
    x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    if pose_x is not None:
        pose_x = pose_x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
    return Batch(x, torch.from_numpy(data.group[indices]).to(device), azimuth.to(device), elevation.to(device),
                 theta.to(device), torch.from_numpy(data.has_pose[indices]).to(device), weights.to(device), pose_x)
