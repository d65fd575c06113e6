"""What a synthetic build renders: its config, the plan every chunk builder shares, splits, seeds.

The driver is `data_tools.render.build`; the chunk builder is `data_tools.render.chunks`.

Randomness: every choice comes from `np.random.default_rng([seed, tag, instance(, view)])`: the
mesh and part colours and textures from the instance stream; viewpoint and framing from the view
stream; lighting, background (and contact shadow), occluders and camera effects each from their
own per-view stream; splits from a permutation of the instances by `seed` (splits are by
instance, so test instances are never seen in training). Output is byte-identical for the same
config on the same OpenGL driver (Mesa llvmpipe here; a GPU driver rasterises edges differently).

Records: the grouped-dataset columns (group = instance index, instance = mesh name, source
"synthetic", has_pose 1, angles in degrees, distance in object units) plus
  view                       view index within the instance
  focal_px, focal_py, px, py the camera of the stored image: PASCAL3D+ projection with focal 1,
                             viewport focal_px (focal_py vertically; equal unless the crop rule
                             stretches) and principal point (px, py) in its pixels, so
                             `geometry.project_points(X, a, e, theta, distance, px, py, 1, focal_px)`
                             maps object points onto the image
  box_x1, box_y1, box_x2, box_y2   the object's tight visible box in image pixels (clipped at the
                             photo border when truncated; occluders do not shrink it)
  jitter_x1 .. jitter_y2     the jittered box the crop rule cut the image around
  truncated                  1 when the photo border cuts the object (side in `truncate_side`)
  occluded                   the fraction of the object's pixels hidden by distractors
  shrink                     the factor the view was shrunk by as a small object's crop (the
                             camera factor's low_resolution effect; 1 = drawn at full size)
  light_x, light_y, light_z, light_intensity, ambient   the view's sun and sky level (camera frame)
  background                 the background kind (see data_tools.render.backgrounds) or photo
  shadow                     darkening of the soft contact shadow under the object (0 = none)
The masks (255 = object) threshold the anti-aliased coverage at one half and are the object's
visible pixels (occluders and the photo border removed).

Appearance factors (`APPEARANCE_FACTORS`), each on by default and off with `appearance_off`
(for ablations): materials (textures and liveries, glossy reflections), shapes (smooth shading
of curved surfaces), lighting (sun, sky, fill, occlusion), backgrounds (photo-like procedural
scenes instead of the first generator's patterns), occluders, truncation, camera (blur, noise,
JPEG, white balance, gamma).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from data_tools.image.preprocess import DEFAULT_CROP_RULE, CropRule
from data_tools.render.camera_effects import EFFECT_PROBABILITIES
from data_tools.render.viewpoints import BOX_JITTER, DISTRIBUTIONS

GENERATOR_VERSION = 3  # 3: build chunks in chunks/chunk-NNNNN, file column in records.csv
APPEARANCE_FACTORS = ("materials", "shapes", "lighting", "backgrounds", "occluders", "truncation",
                      "camera")
CATEGORIES = ("car", "chair")
IMAGE_SIZES = (64, 128, 224)
PHOTO_FRACTION = 0.8  # with --backgrounds, as RenderForCNN: 80 % photos, 20 % procedural
SHADOW_FRACTION = 0.6  # views (seen from above) with a soft contact shadow under the object
#: Second seed word of each random stream: [seed, TAG, instance(, view)]. Each appearance
#: factor draws from its own stream, so switching one off never changes another's draws.
TAG_SPLIT, TAG_INSTANCE, TAG_VIEW, TAG_MESH = 1, 2, 3, 4
TAG_LIGHT, TAG_BACKGROUND, TAG_OCCLUDER, TAG_CAMERA = 5, 6, 7, 8
NPY_BYTES = 48 * 2**20  # image bytes per .npy file at most


@dataclass(frozen=True)
class SyntheticConfig:
    """What to render. `meshes` (a directory or glob of mesh files, imported with `axes`)
    replaces the procedural generator; then each readable file is one instance and `instances`
    (0 = all) caps their number. `supersample` k draws at k x size and averages down
    (anti-aliasing; 1 = off). `small_objects` is the share of the views drawn as the crop of a
    small object in a photo (the `camera` factor's low_resolution effect: data_tools.render.camera_effects).
    `box_jitter` is the standard deviation of the box sides' shifts (a fraction of the box side)
    for the views whose box fits the object closely (data_tools.render.viewpoints.sample_framing)."""

    category: str = "car"
    instances: int = 500
    views: int = 24
    size: int = 64
    distribution: str = "pascal"
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)
    seed: int = 0
    backgrounds: str | None = None
    meshes: str | None = None
    axes: str = "pascal"
    supersample: int = 2
    instances_per_chunk: int = 0  # 0 = about 512 images per chunk
    crop_mode: str = DEFAULT_CROP_RULE.mode
    crop_margin: float = DEFAULT_CROP_RULE.margin
    appearance_off: tuple[str, ...] = ()
    small_objects: float = EFFECT_PROBABILITIES["low_resolution"]
    box_jitter: float = BOX_JITTER

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"category {self.category!r} is not one of {CATEGORIES}")
        if self.size not in IMAGE_SIZES:
            raise ValueError(f"size {self.size} is not one of {IMAGE_SIZES}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution {self.distribution!r} is not one of {DISTRIBUTIONS}")
        if self.views < 1 or self.instances < 0 or (self.instances == 0 and self.meshes is None):
            raise ValueError(f"need views >= 1 and instances >= 1 (0 only with meshes), got "
                             f"views={self.views}, instances={self.instances}")
        if len(self.splits) != 3 or min(self.splits) < 0 or abs(sum(self.splits) - 1) > 1e-6:
            raise ValueError(f"splits must be three fractions (train, val, test) summing to 1, "
                             f"got {self.splits}")
        if self.supersample not in (1, 2, 3, 4):
            raise ValueError(f"supersample must be 1, 2, 3 or 4, got {self.supersample}")
        unknown = sorted(set(self.appearance_off) - set(APPEARANCE_FACTORS))
        if unknown:
            raise ValueError(f"unknown appearance factor(s) {unknown}; choose from {APPEARANCE_FACTORS}")
        if not 0.0 <= self.small_objects <= 1.0:
            raise ValueError(f"small_objects (a share of the views) must be in [0, 1], got {self.small_objects}")
        if not 0.0 <= self.box_jitter <= 0.15:
            raise ValueError(f"box_jitter (a fraction of the box side) must be in [0, 0.15], got {self.box_jitter}")
        CropRule(self.crop_mode, self.crop_margin)  # validates
        object.__setattr__(self, "splits", tuple(float(s) for s in self.splits))
        object.__setattr__(self, "crop_margin", float(self.crop_margin))
        object.__setattr__(self, "appearance_off",
                           tuple(f for f in APPEARANCE_FACTORS if f in self.appearance_off))

    @property
    def crop_rule(self) -> CropRule:
        return CropRule(self.crop_mode, self.crop_margin)

    def uses(self, factor: str) -> bool:
        """Whether appearance `factor` (one of APPEARANCE_FACTORS) is on."""
        return factor not in self.appearance_off

    @property
    def chunk_instances(self) -> int:
        """Instances per chunk (the unit a build resumes and shards by)."""
        return self.instances_per_chunk or max(1, -(-512 // self.views))

    def to_json(self) -> dict:
        return asdict(self) | {"splits": list(self.splits), "appearance_off": list(self.appearance_off)}


def chunk_name(chunk: int) -> str:
    return f"chunk-{chunk:05d}"


def assign_splits(n_instances: int, fractions: tuple[float, float, float], seed: int) -> np.ndarray:
    """Split name per instance (object array): a seeded permutation, cut at the fractions."""
    n_val = int(round(n_instances * fractions[1]))
    n_test = int(round(n_instances * fractions[2]))
    n_train = n_instances - n_val - n_test
    order = np.random.default_rng([seed, TAG_SPLIT]).permutation(n_instances)
    splits = np.empty(n_instances, dtype=object)
    splits[order[:n_train]] = "train"
    splits[order[n_train: n_train + n_val]] = "val"
    splits[order[n_train + n_val:]] = "test"
    return splits


def resolve_mesh_paths(pattern: str) -> list[Path]:
    """Mesh files of a directory (recursively) or a glob pattern, sorted."""
    from data_tools.meshes.import_files import SUFFIXES

    path = Path(pattern)
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES]
    else:
        import glob

        files = [Path(p) for p in glob.glob(pattern, recursive=True)]
    files = sorted(p for p in files if p.is_file())
    if not files:
        raise ValueError(f"--meshes {pattern}: no mesh files found (suffixes {SUFFIXES})")
    return files


@dataclass(frozen=True)
class BuildPlan:
    """Everything a chunk builder needs, identical in every shard and worker."""

    config: SyntheticConfig
    out_dir: Path
    splits: np.ndarray
    mesh_paths: tuple[Path, ...]

    @property
    def n_instances(self) -> int:
        return len(self.splits)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_instances // self.config.chunk_instances)

    def chunk_range(self, chunk: int) -> range:
        step = self.config.chunk_instances
        return range(chunk * step, min(self.n_instances, (chunk + 1) * step))

    def manifest(self) -> dict:
        return {
            "source": "synthetic",
            "seed": self.config.seed,
            "created_by": {"generator": "data_tools.render", "version": GENERATOR_VERSION},
            "config": self.config.to_json(),
            "crop_rule": self.config.crop_rule.to_json(),
            "camera": "PASCAL3D+ camera (data_tools.geometry.project_points) with focal 1 and "
                      "viewport = focal_px, principal point (px, py), in pixels of the stored image",
        }


def make_plan(config: SyntheticConfig, out_dir: Path) -> BuildPlan:
    mesh_paths: tuple[Path, ...] = ()
    n_instances = config.instances
    if config.meshes is not None:
        from data_tools.meshes.import_files import axis_matrix

        axis_matrix(config.axes)  # a bad --axes fails here, not once per file
        mesh_paths = tuple(resolve_mesh_paths(config.meshes))
        if config.instances:
            mesh_paths = mesh_paths[: config.instances]
        n_instances = len(mesh_paths)
    return BuildPlan(config, Path(out_dir), assign_splits(n_instances, config.splits, config.seed),
                     mesh_paths)


__all__ = [
    "APPEARANCE_FACTORS", "BuildPlan", "CATEGORIES", "GENERATOR_VERSION", "IMAGE_SIZES",
    "SyntheticConfig", "assign_splits", "chunk_name", "make_plan", "resolve_mesh_paths",
]
