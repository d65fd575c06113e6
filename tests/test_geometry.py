"""data_tools.geometry against scipy's Rotation, hand-worked cases and round trips."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from data_tools import geometry as g

RNG = np.random.default_rng(1234)
N = 5000


def random_viewpoints(n=N, rng=RNG):
    return rng.uniform(0, 360, n), rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)


def scipy_rotation(a, e, t):
    """R = Rz(theta) Rx(e - 90) Rz(-a) composed by scipy (active rotations, right to left)."""
    col = lambda x: np.asarray(x, float).reshape(-1, 1)  # noqa: E731
    rz_t = Rotation.from_euler("z", col(t), degrees=True)
    rx_e = Rotation.from_euler("x", col(e) - 90.0, degrees=True)
    rz_a = Rotation.from_euler("z", -col(a), degrees=True)
    return (rz_t * rx_e * rz_a).as_matrix()


def test_rotation_matches_scipy_on_random_angles():
    a, e, t = random_viewpoints()
    np.testing.assert_allclose(g.viewpoint_to_rotation(a, e, t), scipy_rotation(a, e, t), atol=1e-12)


def test_rotation_is_proper_and_broadcasts():
    a, e, t = random_viewpoints(200)
    R = g.viewpoint_to_rotation(a.reshape(20, 10), e.reshape(20, 10), 5.0)
    assert R.shape == (20, 10, 3, 3)
    np.testing.assert_allclose(R @ R.swapaxes(-1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)


def test_third_row_is_unit_vector_to_camera_and_R_C_is_on_axis():
    a, e, t = random_viewpoints(500)
    d = RNG.uniform(1, 20, 500)
    R = g.viewpoint_to_rotation(a, e, t)
    C = g.camera_center(a, e, d)
    np.testing.assert_allclose(R[:, 2, :], C / d[:, None], atol=1e-12)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", R, C), np.stack([0 * d, 0 * d, d], 1), atol=1e-9)


def test_hand_cases_of_the_object_frame():
    # a = 0, e = 0: the camera sits on -y, in front of the object.
    np.testing.assert_allclose(g.camera_center(0, 0, 5), [0, -5, 0], atol=1e-12)
    np.testing.assert_allclose(g.camera_center(90, 0, 5), [5, 0, 0], atol=1e-12)  # side on +x
    np.testing.assert_allclose(g.camera_center(180, 0, 5), [0, 5, 0], atol=1e-12)  # rear
    np.testing.assert_allclose(g.camera_center(0, 90, 5), [0, 0, 5], atol=1e-12)  # above
    # At a = e = theta = 0 the rotation maps object +x to image right, +z to camera up (+y_cam).
    R = g.viewpoint_to_rotation(0, 0, 0)
    np.testing.assert_allclose(R, [[1, 0, 0], [0, 0, 1], [0, -1, 0]], atol=1e-12)


def test_front_is_nearer_at_azimuth_0_than_at_180():
    front = np.array([0.0, -0.4, 0.0])
    for e in (-20.0, 0.0, 30.0):
        near = np.linalg.norm(front - g.camera_center(0, e, 5))
        far = np.linalg.norm(front - g.camera_center(180, e, 5))
        assert near < far


def test_projection_hand_cases():
    pts = np.array([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0], [0.0, 0.0, 0.1]])
    xy = g.project_points(pts, 0, 0, 0, 5.0, 320.0, 240.0)
    np.testing.assert_allclose(xy[0], [320, 240], atol=1e-9)  # origin at the principal point
    # +x (the object's own left) lands right of the principal point, at 3000 * 0.2 / 5 pixels.
    np.testing.assert_allclose(xy[1], [320 + 3000 * 0.2 / 5, 240], atol=1e-9)
    np.testing.assert_allclose(xy[2], [320, 240 - 3000 * 0.1 / 5], atol=1e-9)  # up is image-up
    # theta = 90 rotates the image content: the +x point moves to (px, py - 120).
    xy90 = g.project_points(pts, 0, 0, 90, 5.0, 320.0, 240.0)
    np.testing.assert_allclose(xy90[1], [320, 240 - 120], atol=1e-9)


def test_projection_matches_toolkit_formula():
    """The toolkit's P = diag(Mf, Mf, -1) [R_c | -R_c C], then the 2-D theta rotation."""
    a, e, t = random_viewpoints(50)
    d, px, py, f, M = RNG.uniform(3, 10, 50), RNG.uniform(0, 500, 50), RNG.uniform(0, 400, 50), 1.0, 3000.0
    pts = RNG.uniform(-0.5, 0.5, (50, 7, 3))
    ours = g.project_points(pts, a, e, t, d, px, py, f, M)
    for i in range(50):
        rc = scipy_rotation(0, e[i], 0)[0] @ scipy_rotation(a[i], 90, 0)[0]  # Rx(e-90) Rz(-a)
        C = g.camera_center(a[i], e[i], d[i])
        P = np.diag([M * f, M * f, -1]) @ np.hstack([rc, -(rc @ C)[:, None]])
        x = P @ np.vstack([pts[i].T, np.ones(7)])
        uv = x[:2] / x[2]
        ct, st = np.cos(np.deg2rad(t[i])), np.sin(np.deg2rad(t[i]))
        uv = np.array([[ct, -st], [st, ct]]) @ uv
        expected = np.stack([uv[0] + px[i], -uv[1] + py[i]], 1)
        np.testing.assert_allclose(ours[i], expected, atol=1e-7)


def test_round_trip_angles_rotation_angles():
    a, e, t = random_viewpoints()
    a2, e2, t2 = g.rotation_to_viewpoint(g.viewpoint_to_rotation(a, e, t))
    assert np.all((a2 >= 0) & (a2 < 360)) and np.all((t2 > -180) & (t2 <= 180))
    np.testing.assert_allclose(g.wrap_theta(a2 - a), 0, atol=1e-8)
    np.testing.assert_allclose(e2, e, atol=1e-8)
    np.testing.assert_allclose(g.wrap_theta(t2 - t), 0, atol=1e-8)


@pytest.mark.parametrize("elevation", [90.0, -90.0])
def test_round_trip_at_the_poles_rebuilds_R(elevation):
    a, _, t = random_viewpoints(100)
    R = g.viewpoint_to_rotation(a, elevation, t)
    a2, e2, t2 = g.rotation_to_viewpoint(R)
    np.testing.assert_allclose(e2, elevation, atol=1e-9)
    np.testing.assert_allclose(t2, 0.0, atol=1e-9)  # documented choice: the turn goes into azimuth
    np.testing.assert_allclose(g.viewpoint_to_rotation(a2, e2, t2), R, atol=1e-9)


def test_geodesic_properties():
    a, e, t = random_viewpoints(1000)
    R1 = g.viewpoint_to_rotation(a, e, t)
    R2 = g.viewpoint_to_rotation(*random_viewpoints(1000))
    R3 = g.viewpoint_to_rotation(*random_viewpoints(1000))
    d12, d21 = g.geodesic_deg(R1, R2), g.geodesic_deg(R2, R1)
    np.testing.assert_allclose(d12, d21, atol=1e-9)
    np.testing.assert_allclose(g.geodesic_deg(R1, R1), 0.0, atol=1e-6)
    assert np.all(d12 <= g.geodesic_deg(R1, R3) + g.geodesic_deg(R3, R2) + 1e-9)
    # Equal to the angle of a known axis-angle perturbation, and to scipy's magnitude.
    axes = RNG.normal(size=(1000, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = RNG.uniform(0, 180, 1000)
    delta = Rotation.from_rotvec(axes * np.deg2rad(angles)[:, None]).as_matrix()
    np.testing.assert_allclose(g.geodesic_deg(R1, R1 @ delta), angles, atol=1e-6)
    relative = Rotation.from_matrix(R1.swapaxes(1, 2) @ R2).magnitude()
    np.testing.assert_allclose(d12, np.rad2deg(relative), atol=1e-6)


def test_geodesic_accurate_near_zero_in_float32():
    R = g.viewpoint_to_rotation(*[x.astype(np.float32) for x in random_viewpoints(100)])
    small = Rotation.from_rotvec(np.tile([0.0, 0.0, np.deg2rad(0.05)], (100, 1))).as_matrix().astype(np.float32)
    np.testing.assert_allclose(g.geodesic_deg(R, R @ small), 0.05, atol=5e-3)


def test_flip_rule_matches_mirrored_points():
    """Projecting x-mirrored points with the flipped viewpoint mirrors the image projection."""
    a, e, t = random_viewpoints(200)
    d, px, py, width = RNG.uniform(3, 8, 200), RNG.uniform(100, 200, 200), 120.0, 300.0
    pts = RNG.uniform(-0.5, 0.5, (200, 9, 3))
    mirrored = pts * np.array([-1.0, 1.0, 1.0])
    fa, fe, ft = g.flip_viewpoint(a, e, t)
    original = g.project_points(pts, a, e, t, d, px, py)
    flipped = g.project_points(mirrored, fa, fe, ft, d, width - px, py)
    np.testing.assert_allclose(flipped[..., 0], width - original[..., 0], atol=1e-7)
    np.testing.assert_allclose(flipped[..., 1], original[..., 1], atol=1e-7)


def test_flip_wraps_ranges():
    fa, fe, ft = g.flip_viewpoint(np.array([0.0, 90.0, 359.5]), 10.0, np.array([180.0, -30.0, 0.0]))
    np.testing.assert_allclose(fa, [0.0, 270.0, 0.5])
    np.testing.assert_allclose(ft, [180.0, 30.0, 0.0])
    np.testing.assert_allclose(fe, 10.0)


def test_wrap_helpers():
    np.testing.assert_allclose(g.wrap_azimuth([-10.0, 360.0, 725.0, -1e-20]), [350.0, 0.0, 5.0, 0.0])
    np.testing.assert_allclose(g.wrap_theta([180.0, -180.0, 190.0, -190.0, 0.0]), [180, 180, -170, 170, 0])


def test_torch_matches_numpy_and_is_differentiable():
    a, e, t = random_viewpoints(300)
    ta = torch.tensor(a, requires_grad=True)
    te, tt = torch.tensor(e), torch.tensor(t)
    R = g.viewpoint_to_rotation(ta, te, tt)
    assert isinstance(R, torch.Tensor) and R.dtype == torch.float64
    np.testing.assert_allclose(R.detach().numpy(), g.viewpoint_to_rotation(a, e, t), atol=1e-12)
    target = g.viewpoint_to_rotation(te * 0, te, tt)
    loss = g.geodesic_deg(R, target).mean()
    loss.backward()
    assert ta.grad is not None and torch.isfinite(ta.grad).all() and ta.grad.abs().sum() > 0
    xy = g.project_points(torch.zeros(300, 2, 3), ta, te, tt, 5.0, 10.0, 10.0)
    assert xy.shape == (300, 2, 2)
    back = g.rotation_to_viewpoint(R.detach().float())
    np.testing.assert_allclose(g.wrap_theta(back[0].numpy() - a), 0, atol=1e-3)


def test_numpy_path_does_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from data_tools import geometry as g; g.project_points([[0,0,0]], 1, 2, 3, 4, 5, 6); "
            "g.rotation_to_viewpoint(g.viewpoint_to_rotation(1, 2, 3)); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_inputs_raise_value_error_naming_the_argument():
    with pytest.raises(ValueError, match="elevation"):
        g.viewpoint_to_rotation(0.0, np.nan, 0.0)
    with pytest.raises(ValueError, match="azimuth"):
        g.camera_center(np.inf, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"R must have shape \(\.\.\., 3, 3\), got \(4, 3\)"):
        g.rotation_to_viewpoint(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="R2"):
        g.geodesic_deg(np.eye(3), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"points must have shape"):
        g.project_points(np.zeros((5, 2)), 0, 0, 0, 5, 0, 0)
    with pytest.raises(ValueError, match="theta"):
        g.flip_viewpoint(0.0, 0.0, torch.tensor(float("nan")))
