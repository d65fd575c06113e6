"""Viewpoint geometry in the PASCAL3D+ convention (DESIGN.md section 2, binding for the project).

Object frame: +z up, the object's front toward -y, +x the object's own left. A viewpoint is
(azimuth a, elevation e, in-plane rotation theta) in degrees plus a distance d:

    camera centre   C = d * (cos e sin a, -cos e cos a, sin e)
    object->camera  R = Rz(theta) @ Rx(e - 90 deg) @ Rz(-a)        (active rotations)

The camera looks down its own -z axis and image y points down; projection follows the PASCAL3D+
toolkit's `project_3d.m` (focal 1, viewport 3000, principal point = image of the object origin).

Every function takes numpy arrays (or Python scalars) or torch tensors, batched with broadcasting,
angles in degrees. Torch is touched only when a tensor is passed, so torch-free code (the ONNX
Runtime predictor) can use this module; the torch paths are differentiable.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import numpy as np

ArrayLike = Any  # numpy array, Python scalar or torch tensor

#: Distance below which cos(elevation) counts as zero in `rotation_to_viewpoint` (gimbal case).
GIMBAL_EPS = 1e-9


def _torch_reference(*values: ArrayLike):
    """Return the first torch tensor among `values`, or None (never imports torch itself)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    for value in values:
        if isinstance(value, torch.Tensor):
            return value
    return None


def _np_asarray(x: ArrayLike) -> np.ndarray:
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)


# The handful of array operations this module needs, for numpy (the torch twin is `_Torch`).
_NUMPY = SimpleNamespace(
    sin=np.sin, cos=np.cos, arctan2=np.arctan2, sqrt=np.sqrt, where=np.where, clip=np.clip,
    remainder=np.remainder, deg2rad=np.deg2rad, rad2deg=np.rad2deg, asarray=_np_asarray,
    stack=lambda xs, axis: np.stack(np.broadcast_arrays(*xs), axis=axis),
    all_finite=lambda x: bool(np.all(np.isfinite(x))),
)


class _Torch:
    """The same operations for torch tensors, matching dtype and device of a reference tensor."""

    def __init__(self, reference):
        import torch

        self.torch = torch
        dtype = reference.dtype if reference.is_floating_point() else torch.get_default_dtype()
        self.dtype, self.device = dtype, reference.device
        self.sin, self.cos, self.arctan2, self.sqrt = torch.sin, torch.cos, torch.atan2, torch.sqrt
        self.deg2rad, self.rad2deg = torch.deg2rad, torch.rad2deg

    def asarray(self, x: ArrayLike):
        return self.torch.as_tensor(x, dtype=self.dtype, device=self.device)

    def stack(self, xs, axis: int):
        return self.torch.stack(self.torch.broadcast_tensors(*xs), dim=axis)

    def clip(self, x, lo, hi):
        return self.torch.clamp(x, lo, hi)

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    def remainder(self, x, m):
        return self.torch.remainder(x, m)

    def all_finite(self, x) -> bool:
        if self.torch.compiler.is_compiling():  # no data-dependent checks inside export/compile
            return True
        return bool(self.torch.isfinite(x).all())


def _namespace(*values: ArrayLike):
    reference = _torch_reference(*values)
    return _NUMPY if reference is None else _Torch(reference)


def _finite(xp, name: str, value):
    """Convert `value` to the namespace's float array and reject NaN or infinity."""
    value = xp.asarray(value)
    if not xp.all_finite(value):
        raise ValueError(f"{name} must be finite, got non-finite values in an array of shape "
                         f"{tuple(value.shape)}")
    return value


def _rotation_matrices(name: str, xp, R):
    R = xp.asarray(R)
    if R.ndim < 2 or tuple(R.shape[-2:]) != (3, 3):
        raise ValueError(f"{name} must have shape (..., 3, 3), got {tuple(R.shape)}")
    return R


def wrap_azimuth(azimuth: ArrayLike) -> ArrayLike:
    """Wrap azimuth in degrees into [0, 360)."""
    xp = _namespace(azimuth)
    a = xp.remainder(xp.asarray(azimuth), 360.0)
    return xp.where(a >= 360.0, a - 360.0, a)  # -1e-20 % 360 rounds to 360.0 in floating point


def wrap_theta(theta: ArrayLike) -> ArrayLike:
    """Wrap an in-plane rotation in degrees into (-180, 180]."""
    xp = _namespace(theta)
    return 180.0 - xp.remainder(180.0 - xp.asarray(theta), 360.0)


def viewpoint_to_rotation(azimuth: ArrayLike, elevation: ArrayLike, theta: ArrayLike) -> ArrayLike:
    """Object-to-camera rotation R = Rz(theta) Rx(e - 90deg) Rz(-a) for angles in degrees.

    Inputs broadcast against each other; the result has shape (..., 3, 3). Its third row is the
    unit vector from the object to the camera, (sin a cos e, -cos a cos e, sin e).
    """
    xp = _namespace(azimuth, elevation, theta)
    a = xp.deg2rad(_finite(xp, "azimuth", azimuth))
    e = xp.deg2rad(_finite(xp, "elevation", elevation))
    t = xp.deg2rad(_finite(xp, "theta", theta))
    sa, ca, se, ce, st, ct = xp.sin(a), xp.cos(a), xp.sin(e), xp.cos(e), xp.sin(t), xp.cos(t)
    rows = (
        ca * ct + sa * se * st, sa * ct - ca * se * st, -ce * st,
        ca * st - sa * se * ct, sa * st + ca * se * ct, ce * ct,
        sa * ce, -ca * ce, se,
    )
    flat = xp.stack(rows, axis=-1)  # (..., 9)
    return flat.reshape(tuple(flat.shape[:-1]) + (3, 3))


def rotation_to_viewpoint(R: ArrayLike) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """Angles (azimuth in [0, 360), elevation in [-90, 90], theta in (-180, 180]) of rotations R.

    Inverse of `viewpoint_to_rotation` for proper rotations of shape (..., 3, 3). At elevation
    +-90 deg (camera straight above or below) azimuth and theta turn about the same axis and only
    their difference (e = +90) or sum (e = -90) is defined: there we report theta = 0 and put the
    whole turn into azimuth, so the returned angles always rebuild R exactly.
    """
    xp = _namespace(R)
    R = _rotation_matrices("R", xp, R)
    if not xp.all_finite(R):
        raise ValueError(f"R must be finite, got non-finite values in an array of shape {tuple(R.shape)}")
    r31, r32, r33 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    cos_e = xp.sqrt(r31 * r31 + r32 * r32)
    elevation = xp.rad2deg(xp.arctan2(r33, cos_e))
    gimbal = cos_e < GIMBAL_EPS
    azimuth_regular = xp.arctan2(r31, -r32)
    theta_regular = xp.arctan2(-R[..., 0, 2], R[..., 1, 2])
    azimuth_gimbal = xp.arctan2(R[..., 0, 1], R[..., 0, 0])  # theta = 0, both poles
    azimuth = xp.where(gimbal, azimuth_gimbal, azimuth_regular)
    theta = xp.where(gimbal, 0.0 * theta_regular, theta_regular)
    return wrap_azimuth(xp.rad2deg(azimuth)), elevation, wrap_theta(xp.rad2deg(theta))


def geodesic_deg(R1: ArrayLike, R2: ArrayLike) -> ArrayLike:
    """Geodesic angle in degrees between rotations, arccos((trace(R1^T R2) - 1) / 2).

    Computed as atan2(sin, cos) of the relative rotation M = R1^T R2 (cos = (trace M - 1) / 2
    clipped to [-1, 1], sin = |vee(M - M^T)| / 2, clipped to [0, 1]): the same angle as the
    arccos form, but accurate near 0 deg in float32 too. Shapes broadcast: (..., 3, 3) -> (...).
    """
    xp = _namespace(R1, R2)
    R1 = _rotation_matrices("R1", xp, R1)
    R2 = _rotation_matrices("R2", xp, R2)
    M = R1.swapaxes(-1, -2) @ R2  # (..., 3, 3) relative rotation
    trace = M[..., 0, 0] + M[..., 1, 1] + M[..., 2, 2]
    cos = xp.clip((trace - 1.0) / 2.0, -1.0, 1.0)
    vx = M[..., 2, 1] - M[..., 1, 2]
    vy = M[..., 0, 2] - M[..., 2, 0]
    vz = M[..., 1, 0] - M[..., 0, 1]
    sin = xp.clip(xp.sqrt(vx * vx + vy * vy + vz * vz) / 2.0, 0.0, 1.0)
    return xp.rad2deg(xp.arctan2(sin, cos))


def camera_center(azimuth: ArrayLike, elevation: ArrayLike, distance: ArrayLike) -> ArrayLike:
    """Camera centre C = d (cos e sin a, -cos e cos a, sin e) in the object frame, shape (..., 3)."""
    xp = _namespace(azimuth, elevation, distance)
    a = xp.deg2rad(_finite(xp, "azimuth", azimuth))
    e = xp.deg2rad(_finite(xp, "elevation", elevation))
    d = _finite(xp, "distance", distance)
    return xp.stack((d * xp.cos(e) * xp.sin(a), -d * xp.cos(e) * xp.cos(a), d * xp.sin(e)), axis=-1)


def project_points(
    points: ArrayLike,
    azimuth: ArrayLike,
    elevation: ArrayLike,
    theta: ArrayLike,
    distance: ArrayLike,
    px: ArrayLike,
    py: ArrayLike,
    focal: ArrayLike = 1.0,
    viewport: ArrayLike = 3000.0,
) -> ArrayLike:
    """Pixel coordinates (x right, y down) of object-frame points, PASCAL3D+'s `project_3d.m`.

    points: (..., P, 3); the camera parameters are scalars or arrays broadcasting against the
    leading dims `...`. Returns (..., P, 2). The camera sits at `camera_center` looking at the
    origin; u, v = viewport * focal * (x, y) / depth, rotated by theta in the image plane, then
    x = u' + px and y = -v' + py. Points behind the camera are not culled.
    """
    xp = _namespace(points, azimuth, elevation, theta, distance, px, py, focal, viewport)
    points = _finite(xp, "points", points)
    if points.ndim < 2 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., P, 3), got {tuple(points.shape)}")
    # Per-view values gain a trailing axis so they broadcast over the P points.
    R = viewpoint_to_rotation(azimuth, elevation, theta)  # (..., 3, 3), includes theta
    C = camera_center(azimuth, elevation, distance)  # (..., 3)
    camera = (points - C[..., None, :]) @ R.swapaxes(-1, -2)  # (..., P, 3)
    scale = xp.asarray(focal) * xp.asarray(viewport)
    depth = -camera[..., 2]  # the camera looks down -z: points in front have positive depth
    scale = scale[..., None] if getattr(scale, "ndim", 0) else scale
    u = scale * camera[..., 0] / depth
    v = scale * camera[..., 1] / depth
    px, py = xp.asarray(px), xp.asarray(py)
    px = px[..., None] if px.ndim else px
    py = py[..., None] if py.ndim else py
    return xp.stack((u + px, -v + py), axis=-1)


def flip_viewpoint(azimuth: ArrayLike, elevation: ArrayLike, theta: ArrayLike):
    """Viewpoint of the horizontally flipped image of a left-right symmetric object.

    (a, e, theta) -> (360 - a, e, -theta), wrapped into [0, 360) and (-180, 180]; the principal
    point moves to W - px.
    """
    xp = _namespace(azimuth, elevation, theta)
    a = _finite(xp, "azimuth", azimuth)
    e = _finite(xp, "elevation", elevation)
    t = _finite(xp, "theta", theta)
    return wrap_azimuth(360.0 - a), e + 0.0 * a, wrap_theta(-t)


__all__ = [
    "camera_center",
    "flip_viewpoint",
    "geodesic_deg",
    "project_points",
    "rotation_to_viewpoint",
    "viewpoint_to_rotation",
    "wrap_azimuth",
    "wrap_theta",
]
