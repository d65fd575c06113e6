"""Import users' meshes (OBJ, GLB/glTF, OFF, PLY) into the binding object frame.

Files from elsewhere use other axis conventions, so every import names its mapping explicitly
(DESIGN.md section 2): `axes` is one of the names in `AXES` or a generic spec such as
"up=+y,front=-z" saying which of the file's signed axes points up and which toward the object's
front. The mapping is a rotation (det +1, never a mirror), after which the mesh is centred on
its bounding-box centre and scaled to a bounding-box diagonal of 1.

Each geometry of the file (a scene node) becomes one `Part`. Its material is "paint" unless the
node, geometry or material name says otherwise ("glass", "window", "tire", "chrome" ... see
`_MATERIAL_HINTS`), so an artist's car keeps dark windows and tyres when the renderer colours it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from data_tools.meshes.mesh import MATERIALS, ObjectMesh, Part, normalise_to_frame

if TYPE_CHECKING:  # imported inside the loaders: trimesh is slow to import
    import trimesh

SUFFIXES = (".obj", ".glb", ".gltf", ".off", ".ply")

# ours = M @ theirs. Written out from DESIGN.md section 2; tests check them against the parser.
AXES: dict[str, np.ndarray] = {
    # PASCAL3D+ CAD models already use our frame.
    "pascal": np.eye(3),
    # ShapeNetCore v1, up +y, front +x: (x, y, z)_ours = (-z, -x, y).
    "shapenet-v1": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    # ShapeNetCore v2, up +y, front -z: (x, y, z)_ours = (-x, z, y).
    "shapenet-v2": np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
    # glTF 2.0 assets: +y up, the asset's front faces +z: (x, y, z)_ours = (x, -z, y).
    "gltf": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
}

_AXIS_VECTORS = {name: np.eye(3)[i] for i, name in enumerate("xyz")}

# (substring of a lower-cased node / geometry / material name, material), first match wins.
_MATERIAL_HINTS = (
    ("glass", "glass"), ("window", "glass"), ("windshield", "glass"), ("windscreen", "glass"),
    ("tire", "rubber"), ("tyre", "rubber"), ("rubber", "rubber"),
    ("headlight", "light_front"), ("head_light", "light_front"),
    ("taillight", "light_rear"), ("tail_light", "light_rear"), ("brake", "light_rear"),
    ("chrome", "metal"), ("metal", "metal"), ("rim", "metal"),
    ("plate", "plate"), ("grille", "dark"), ("grill", "dark"),
    ("fabric", "fabric"), ("cloth", "fabric"), ("leather", "fabric"),
    ("wood", "wood"), ("plastic", "plastic"),
)


def _parse_signed_axis(text: str, spec: str) -> np.ndarray:
    """'+y' / '-z' / 'x' -> a signed unit vector."""
    text = text.strip().lower()
    sign = -1.0 if text.startswith("-") else 1.0
    name = text.lstrip("+-")
    if len(text) - len(name) > 1 or name not in _AXIS_VECTORS:
        raise ValueError(
            f"axis spec {spec!r}: {text!r} is not an axis; use one of +x, -x, +y, -y, +z, -z"
        )
    return sign * _AXIS_VECTORS[name]


def parse_axis_spec(spec: str) -> np.ndarray:
    """The rotation (3, 3) for a generic spec like "up=+y,front=-z" (or "up=+y front=-z").

    `up` is the file's axis that should become our +z, `front` the file's axis pointing toward
    the object's front, which becomes our -y; our +x (the object's left) completes a
    right-handed frame: the file's (-front) x up. Returns M with ours = M @ theirs.
    """
    fields = {}
    for item in spec.replace(",", " ").split():
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("up", "front"):
            raise ValueError(
                f"axis spec {spec!r}: cannot read {item!r}; write it as 'up=<axis>,front=<axis>' "
                f"with axes like +y or -z, e.g. 'up=+y,front=-z'"
            )
        if key in fields:
            raise ValueError(f"axis spec {spec!r}: {key!r} is given twice")
        fields[key] = _parse_signed_axis(value, spec)
    missing = [key for key in ("up", "front") if key not in fields]
    if missing:
        raise ValueError(
            f"axis spec {spec!r}: missing {' and '.join(missing)}, e.g. 'up=+y,front=-z'"
        )
    up, front = fields["up"], fields["front"]
    if abs(float(np.dot(up, front))) > 0.5:
        raise ValueError(
            f"axis spec {spec!r}: up and front must be different axes (got the same axis twice)"
        )
    back = -front
    left = np.cross(back, up)
    return np.stack([left, back, up])


def axis_matrix(axes: str | np.ndarray) -> np.ndarray:
    """The rotation M (ours = M @ theirs) for a name in `AXES`, a generic spec or a (3, 3)
    rotation matrix (validated: orthonormal with det +1)."""
    if isinstance(axes, str):
        key = axes.strip().lower()
        if key in AXES:
            return AXES[key].copy()
        if "=" in key:
            return parse_axis_spec(key)
        raise ValueError(
            f"unknown axes {axes!r}; use one of {', '.join(AXES)} or a spec like 'up=+y,front=-z'"
        )
    matrix = np.asarray(axes, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-6) \
            or np.linalg.det(matrix) < 0:
        raise ValueError("axes matrix must be a (3, 3) rotation (orthonormal, det +1)")
    return matrix


def _material_for(*names: str) -> str:
    """Our material for a part whose names (node, geometry, material) are given."""
    for name in names:
        lowered = (name or "").lower()
        if lowered in MATERIALS:
            return lowered
        for hint, material in _MATERIAL_HINTS:
            if hint in lowered:
                return material
    return "paint"


def _read_scene(path: Path, suffix: str) -> "trimesh.Scene":
    """trimesh's scene for `path`. Text formats that are not UTF-8 (old OBJ/OFF files with
    Latin-1 comments are common) are decoded as Latin-1 first, since trimesh would otherwise
    need the optional charset-normalizer package to guess their encoding."""
    import trimesh

    if suffix in (".obj", ".off"):
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("latin-1").encode("utf-8")
            resolver = trimesh.resolvers.FilePathResolver(str(path))
            return trimesh.load_scene(io.BytesIO(text), file_type=suffix[1:], resolver=resolver)
    return trimesh.load_scene(str(path))


def load_mesh(path: str | Path, axes: str | np.ndarray, category: str = "unknown") -> ObjectMesh:
    """Load one mesh file into the object frame.

    Args:
        path: an .obj, .glb, .gltf, .off or .ply file.
        axes: the file's axis convention: a name in `AXES`, "up=<axis>,front=<axis>" or a
            (3, 3) rotation, see `axis_matrix`.
        category: stored in the returned mesh.

    Returns:
        An `ObjectMesh` named after the file stem, one part per geometry instance in the file,
        centred on its bounding box with diagonal 1.

    Raises:
        ValueError "<path>: <problem>" for a missing, empty, unreadable or face-less file or an
        unsupported suffix.
    """
    import trimesh  # heavy import, only when meshes are actually loaded

    path = Path(path)
    rotation = axis_matrix(axes)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"{path}: unsupported mesh format {path.suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUFFIXES)}"
        )
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    try:
        scene = _read_scene(path, suffix)
    except Exception as exc:  # trimesh raises many types for bad files; report them as one
        raise ValueError(f"{path}: cannot read as {suffix[1:].upper()}: {exc}") from exc

    parts = []
    for node in scene.graph.nodes_geometry:
        transform, geometry_name = scene.graph[node]
        geometry = scene.geometry[geometry_name]
        faces = np.asarray(getattr(geometry, "faces", np.empty((0, 3))), dtype=np.int64)
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
            continue  # point clouds, lines and empty geometry carry nothing to render
        vertices = np.asarray(geometry.vertices, dtype=np.float64)
        vertices = vertices @ transform[:3, :3].T + transform[:3, 3]
        if np.linalg.det(transform[:3, :3]) < 0:  # a mirroring node would turn faces inside out
            faces = faces[:, ::-1]
        material = getattr(getattr(geometry, "visual", None), "material", None)
        material_name = getattr(material, "name", "") or ""
        parts.append(Part(
            name=str(node),
            material=_material_for(str(node), str(geometry_name), material_name),
            vertices=(vertices @ rotation.T).astype(np.float32),
            faces=faces.astype(np.int32),
        ))
    if not parts:
        raise ValueError(f"{path}: contains no triangles (point cloud or empty scene?)")
    for part in parts:
        if not np.isfinite(part.vertices).all():
            raise ValueError(f"{path}: part {part.name!r} has non-finite vertex coordinates")
    try:
        return normalise_to_frame(ObjectMesh(category=category, instance=path.stem,
                                             parts=tuple(parts)))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


def load_meshes(
    paths, axes: str | np.ndarray, category: str = "unknown"
) -> tuple[list[ObjectMesh], list[str]]:
    """Load many mesh files, skipping broken ones.

    Returns the meshes that loaded and one line per skipped file ("<path>: <problem>"). Prints
    nothing: the caller reports the errors and their count. A bad `axes` raises at once, since
    it would fail for every file.
    """
    axis_matrix(axes)
    meshes, errors = [], []
    for path in paths:
        try:
            meshes.append(load_mesh(path, axes, category=category))
        except ValueError as exc:
            errors.append(str(exc).replace("\n", " "))
    return meshes, errors
