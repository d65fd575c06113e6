"""Part-based triangle meshes in the binding object frame, and the primitives that build them.

An `ObjectMesh` is a tuple of `Part`s, each one separately coloured piece (car body, windows,
tyres, chair legs ...) with a `material` from `MATERIALS`; the renderer picks a colour per
material per instance. Coordinates are in the object frame of DESIGN.md section 2: +z up, the
object's front toward -y, +x its own left, and after `normalise_to_frame` centred on the bounding
box centre with a bounding-box diagonal of 1.

Every primitive here is a closed surface with faces wound counter-clockwise seen from outside
(outward normals, positive signed volume), built with vectorised numpy so that a whole
procedural car takes a few milliseconds. The workhorse is `loft`: a tube through a sequence of
convex rings with flat end caps. Boxes, tapered or splayed legs, glass panels, extruded profiles
and surfaces of revolution (tyres, hubs, pedestals) are all lofts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # trimesh is only needed by `to_trimesh`, imported there
    import trimesh

MATERIALS = (
    "paint",
    "glass",
    "rubber",
    "metal",
    "light_front",
    "light_rear",
    "dark",
    "plate",
    "fabric",
    "wood",
    "plastic",
)


@dataclass(frozen=True, eq=False)  # eq/hash by identity: comparing arrays with == is ambiguous
class Part:
    """One separately coloured piece of an object.

    Attributes:
        name: what the piece is ("body", "window", "tire", "light_front", "seat", "leg" ...).
        material: one of `MATERIALS`; the renderer colours by material.
        vertices: (V, 3) float32 positions in the object frame.
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from outside.
    """

    name: str
    material: str
    vertices: np.ndarray
    faces: np.ndarray

    def __post_init__(self) -> None:
        if self.material not in MATERIALS:
            raise ValueError(
                f"Part {self.name!r}: unknown material {self.material!r}; choose one of {MATERIALS}"
            )
        vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"Part {self.name!r}: vertices must be (V, 3), got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"Part {self.name!r}: faces must be (F, 3), got {faces.shape}")
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"Part {self.name!r}: face indices outside 0..{len(vertices) - 1}")
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", faces)


@dataclass(frozen=True)
class ObjectMesh:
    """One object instance: its category, an instance name and its coloured parts."""

    category: str
    instance: str
    parts: tuple[Part, ...]

    def bounds(self) -> np.ndarray:
        """(2, 3) float64: the minimum and maximum corner of the bounding box over all parts."""
        points = np.concatenate([part.vertices for part in self.parts]).astype(np.float64)
        return np.stack([points.min(axis=0), points.max(axis=0)])

    def merged(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All parts as one mesh.

        Returns:
            vertices (V, 3) float32, faces (F, 3) int32 (indices into the merged vertices) and the
            index into `parts` of each face (F,) int32.
        """
        offsets = np.cumsum([0] + [len(part.vertices) for part in self.parts])
        vertices = np.concatenate([part.vertices for part in self.parts])
        faces = np.concatenate(
            [part.faces + offset for part, offset in zip(self.parts, offsets[:-1])]
        ).astype(np.int32)
        part_index = np.repeat(
            np.arange(len(self.parts), dtype=np.int32), [len(part.faces) for part in self.parts]
        )
        return vertices, faces, part_index

    def to_trimesh(self) -> "trimesh.Trimesh":
        """The merged mesh as a `trimesh.Trimesh` (no vertex merging), with the part index of
        each face in `face_attributes["part"]`."""
        import trimesh

        vertices, faces, part_index = self.merged()
        return trimesh.Trimesh(
            vertices, faces, face_attributes={"part": part_index}, process=False
        )

    @property
    def n_triangles(self) -> int:
        """Total number of triangles over all parts."""
        return sum(len(part.faces) for part in self.parts)


def normalise_to_frame(mesh: ObjectMesh) -> ObjectMesh:
    """Centre `mesh` on its bounding-box centre and scale its bounding-box diagonal to 1.

    Raises ValueError for a mesh without vertices or with a zero-size bounding box.
    """
    if not mesh.parts or not any(len(part.vertices) for part in mesh.parts):
        raise ValueError(f"{mesh.instance}: mesh has no vertices to normalise")
    low, high = mesh.bounds()
    diagonal = float(np.linalg.norm(high - low))
    if not np.isfinite(diagonal) or diagonal <= 0.0:
        raise ValueError(f"{mesh.instance}: bounding box diagonal is {diagonal}, cannot normalise")
    centre = (low + high) / 2.0
    parts = tuple(
        replace(part, vertices=((part.vertices - centre) / diagonal).astype(np.float32))
        for part in mesh.parts
    )
    return replace(mesh, parts=parts)


# --------------------------------------------------------------------------------------------
# Primitives: each returns (vertices (V, 3) float64, faces (F, 3) int64) of one closed surface.
# --------------------------------------------------------------------------------------------

def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by a closed triangle surface (> 0 when faces wind outward)."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    # a . (b x c), written out: np.cross costs more than the arithmetic on these small arrays.
    triple = (a[:, 0] * (b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1])
              + a[:, 1] * (b[:, 2] * c[:, 0] - b[:, 0] * c[:, 2])
              + a[:, 2] * (b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]))
    return float(triple.sum() / 6.0)


@lru_cache(maxsize=256)
def _loft_faces(n_rings: int, n_corners: int) -> np.ndarray:
    """Faces (read-only) of a loft of `n_rings` rings with `n_corners` corners each."""
    index = np.arange(n_rings * n_corners).reshape(n_rings, n_corners)
    following = np.roll(index, -1, axis=1)
    a, b, c, d = index[:-1], following[:-1], following[1:], index[1:]
    sides = np.concatenate(
        [np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)]
    )
    # Caps: fans wound against the side faces next to them, so the surface is consistent.
    fan = np.arange(1, n_corners - 1)
    first = np.stack([np.zeros_like(fan), fan + 1, fan], -1)
    last = np.stack([np.zeros_like(fan), fan, fan + 1], -1) + index[-1, 0]
    faces = np.concatenate([sides, first, last])
    faces.setflags(write=False)
    return faces


def loft(rings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A closed tube through `rings` (S, K, 3), S >= 2 rings of K >= 3 points each.

    Ring points are corresponding corners (point k of every ring is joined to point k of the
    next), every ring must be convex and planar enough for a triangle fan, and all rings go round
    in the same sense. The first and last ring are closed with flat fan caps. The result is
    flipped if needed so that its faces wind outward.
    """
    rings = np.asarray(rings, dtype=np.float64)
    faces = _loft_faces(rings.shape[0], rings.shape[1])
    vertices = rings.reshape(-1, 3)
    if signed_volume(vertices, faces) < 0.0:
        faces = faces[:, ::-1]
    return vertices, faces


def hexahedron(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A six-sided solid from 8 corners (bottom ring of 4 then top ring of 4, same sense)."""
    corners = np.asarray(corners, dtype=np.float64).reshape(2, 4, 3)
    return loft(corners)


def box(centre, size) -> tuple[np.ndarray, np.ndarray]:
    """An axis-aligned box with the given centre (3,) and full size (3,)."""
    half = np.asarray(size, dtype=np.float64) / 2.0
    square = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
    bottom = np.column_stack([square * half[:2], np.full(4, -half[2])])
    top = np.column_stack([square * half[:2], np.full(4, half[2])])
    return hexahedron(np.concatenate([bottom, top]) + np.asarray(centre, dtype=np.float64))


def frame_vectors(axis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A unit vector along `axis` and two unit vectors completing a right-handed frame."""
    return _frame_vectors(tuple(float(c) for c in np.asarray(axis).ravel()))


@lru_cache(maxsize=1024)
def _frame_vectors(axis: tuple[float, float, float]):
    w = np.asarray(axis, dtype=np.float64)
    w = w / np.linalg.norm(w)
    helper = np.array([0.0, 0.0, 1.0]) if abs(w[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(helper, w)
    u /= np.linalg.norm(u)
    v = np.cross(w, u)
    for vector in (w, u, v):
        vector.setflags(write=False)  # cached: shared between calls
    return w, u, v


def lathe(profile, centre, axis, segments: int) -> tuple[np.ndarray, np.ndarray]:
    """A surface of revolution: `profile` (P, 2) of (radius > 0, position along axis) pairs,
    swept round `axis` through `centre` with `segments` points per ring; flat end caps."""
    profile = np.asarray(profile, dtype=np.float64)
    w, u, v = frame_vectors(axis)
    angles = np.linspace(0.0, 2.0 * np.pi, segments, endpoint=False)
    circle = np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v  # (segments, 3)
    rings = (
        profile[:, None, :1] * circle[None]
        + profile[:, None, 1:] * w
        + np.asarray(centre, dtype=np.float64)
    )
    return loft(rings)


def cylinder(centre, axis, radius: float, length: float, segments: int):
    """A closed cylinder of `radius` and `length` centred at `centre` along `axis`."""
    profile = [(radius, -length / 2.0), (radius, length / 2.0)]
    return lathe(profile, centre, axis, segments)


def panel(corners, normal, thickness: float) -> tuple[np.ndarray, np.ndarray]:
    """A thin closed slab over the convex polygon `corners` (N, 3), spanning from the polygon
    plane to `thickness` along `normal` (used for glass, lights, plates and grilles laid
    just outside a body surface)."""
    corners = np.asarray(corners, dtype=np.float64)
    step = np.asarray(normal, dtype=np.float64)
    step = step / np.linalg.norm(step) * thickness
    return loft(np.stack([corners, corners + step]))


def combine(pieces) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate several (vertices, faces) pieces into one (float32, int32) pair."""
    shifted, offset = [], 0
    for vertices, faces in pieces:
        shifted.append((vertices, faces + offset))
        offset += len(vertices)
    vertices = np.concatenate([vertices for vertices, _ in shifted]).astype(np.float32)
    faces = np.concatenate([faces for _, faces in shifted]).astype(np.int32)
    return vertices, faces


def make_part(name: str, material: str, pieces) -> Part:
    """A `Part` from a list of (vertices, faces) pieces."""
    vertices, faces = combine(pieces)
    return Part(name=name, material=material, vertices=vertices, faces=faces)
