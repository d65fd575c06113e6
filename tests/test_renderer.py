"""The headless renderer against the PASCAL3D+ camera of data_tools.geometry (independent truth:
projected vertices), the binding object frame (front at azimuth 0, +x side at azimuth 90) and
the horizontal-flip rule; plus the atlas batching (no bleeding between views)."""

import numpy as np
import pytest

from data_tools.geometry import flip_viewpoint, project_points
from data_tools.meshes.mesh import MATERIALS, box
from data_tools.meshes.car import random_car
from data_tools.render.renderer import MAX_VIEWS, TEXTURE_SIDE, Renderer, create_context, unique_rows
from gl_support import needs_egl

SIZE = 256


pytestmark = needs_egl


@pytest.fixture(scope="module")
def renderer():
    r = Renderer(SIZE, samples=0, supersample=1)
    yield r
    r.release()


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def _mask_box(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    return (xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0)  # pixel i covers [i, i+1)


def _plain_colours(renderer, colours):
    """Unlit, exact colours: ambient 1, no diffuse/specular/emission."""
    colours = np.asarray(colours, dtype=np.float32)
    renderer.set_materials(colours, np.zeros((len(colours), 3), np.float32))
    return {"light_intensity": 0.0, "ambient": 1.0}


@pytest.mark.parametrize("supersample", [1, 2])
def test_silhouette_box_matches_projected_vertices(supersample):
    vertices, faces, parts = random_car(7).merged()
    r = Renderer(SIZE, samples=0, supersample=supersample)
    r.set_mesh(vertices, faces, parts)
    r.set_materials(np.full((parts.max() + 1, 3), 0.5))
    rng = np.random.default_rng(0)
    n = 16
    azimuth, elevation = rng.uniform(0, 360, n), rng.uniform(-40, 70, n)
    theta = rng.uniform(-45, 45, n)
    distance = rng.uniform(1.3, 5.0, n)
    px, py = rng.uniform(90, 166, n), rng.uniform(90, 166, n)  # off-centre principal points
    focal = rng.uniform(0.5, 0.8, n) * SIZE * distance  # bbox diagonal 1 -> 50-80 % of the side
    _, alpha = r.render_batch(azimuth, elevation, theta, distance, px, py, focal)
    points = project_points(vertices, azimuth, elevation, theta, distance, px, py, 1.0, focal)
    ious = []
    for k in range(n):
        x, y = np.clip(points[k, :, 0], 0, SIZE), np.clip(points[k, :, 1], 0, SIZE)
        ious.append(_box_iou(_mask_box(alpha[k] > 0), (x.min(), y.min(), x.max(), y.max())))
    r.release()
    assert min(ious) > 0.97, ious


def _car_with_marked_lights(renderer, seed=3):
    """Upload a car coloured grey, front lights pure green, rear lights pure blue."""
    mesh = random_car(seed)
    vertices, faces, parts = mesh.merged()
    renderer.set_mesh(vertices, faces, parts)
    colours = np.full((len(mesh.parts), 3), 0.5)
    for i, part in enumerate(mesh.parts):
        if part.material == "light_front":
            colours[i] = (0.0, 1.0, 0.0)
        elif part.material == "light_rear":
            colours[i] = (0.0, 0.0, 1.0)
    return _plain_colours(renderer, colours)


def _pixels_of(rgb, colour) -> np.ndarray:
    return np.all(rgb.astype(int) == np.array(colour) * 255, axis=-1)


def test_front_of_car_faces_camera_at_azimuth_0(renderer):
    shading = _car_with_marked_lights(renderer)
    rgb, _ = renderer.render_batch([0.0, 180.0], 10.0, 0.0, 3.0, SIZE / 2, SIZE / 2, 1.4 * SIZE, **shading)
    green, blue = (0, 1, 0), (0, 0, 1)
    assert _pixels_of(rgb[0], green).sum() > 20 and _pixels_of(rgb[0], blue).sum() == 0
    assert _pixels_of(rgb[1], blue).sum() > 20 and _pixels_of(rgb[1], green).sum() == 0


def test_car_front_on_image_left_when_seen_from_its_left_side(renderer):
    # a = 45: camera on the car's +x (its own left) and in front; the image's right points to
    # the rear (+y), so the front lights lie left of the car's centre. Mirrored at a = 315.
    shading = _car_with_marked_lights(renderer)
    rgb, alpha = renderer.render_batch([45.0, 315.0], 10.0, 0.0, 3.0, SIZE / 2, SIZE / 2, 1.4 * SIZE, **shading)
    for k, sign in ((0, -1), (1, +1)):
        lights_x = np.nonzero(_pixels_of(rgb[k], (0, 1, 0)))[1].mean()
        centre_x = np.nonzero(alpha[k])[1].mean()
        assert sign * (lights_x - centre_x) > 10


def test_plus_x_side_visible_at_azimuth_90(renderer):
    vertices, faces = box((0.0, 0.0, 0.0), (0.37, 0.87, 0.28))
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    parts = np.where(normals[:, 0] > 1e-6, 1, np.where(normals[:, 0] < -1e-6, 2, 0))
    renderer.set_mesh(vertices, faces, parts)
    shading = _plain_colours(renderer, [(0.5, 0.5, 0.5), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0)])
    rgb, _ = renderer.render_batch([90.0, 270.0], 0.0, 0.0, 3.0, SIZE / 2, SIZE / 2, 1.4 * SIZE, **shading)
    plus_x, minus_x = (1, 0, 0), (0, 0, 1)
    assert _pixels_of(rgb[0], plus_x).sum() > 1000 and _pixels_of(rgb[0], minus_x).sum() == 0
    assert _pixels_of(rgb[1], minus_x).sum() > 1000 and _pixels_of(rgb[1], plus_x).sum() == 0


def test_flipped_render_matches_mirrored_mesh_at_flipped_viewpoint(renderer):
    vertices, faces, parts = random_car(11).merged()
    mirrored = vertices * np.array([-1.0, 1.0, 1.0], np.float32)
    rng = np.random.default_rng(1)
    n = 6
    a, e, t = rng.uniform(0, 360, n), rng.uniform(-20, 50, n), rng.uniform(-30, 30, n)
    d, px, py = rng.uniform(2, 4, n), rng.uniform(100, 156, n), rng.uniform(100, 156, n)
    focal = 0.3 * SIZE * d
    renderer.set_mesh(vertices, faces, parts)
    renderer.set_materials(np.full((parts.max() + 1, 3), 0.5))
    _, alpha = renderer.render_batch(a, e, t, d, px, py, focal)
    renderer.set_mesh(mirrored, faces[:, ::-1], parts)
    fa, fe, ft = flip_viewpoint(a, e, t)
    _, alpha_mirrored = renderer.render_batch(fa, fe, ft, d, SIZE - px, py, focal)
    flipped = alpha[:, :, ::-1] > 127
    other = alpha_mirrored > 127
    iou = (flipped & other).sum(axis=(1, 2)) / (flipped | other).sum(axis=(1, 2))
    assert iou.min() > 0.98, iou


def test_batched_views_equal_single_views_without_bleeding(renderer):
    # More views than one atlas holds, many truncated (principal points near or past the border)
    # so that any leak into a neighbouring tile would show.
    vertices, faces, parts = random_car(5).merged()
    renderer.set_mesh(vertices, faces, parts)
    renderer.set_materials(np.random.default_rng(2).random((parts.max() + 1, 3)))
    rng = np.random.default_rng(3)
    n = MAX_VIEWS + 6
    a, e, t = rng.uniform(0, 360, n), rng.uniform(-20, 50, n), rng.uniform(-30, 30, n)
    px, py = rng.uniform(-40, SIZE + 40, n), rng.uniform(-40, SIZE + 40, n)
    rgb, alpha = renderer.render_batch(a, e, t, 2.5, px, py, 0.5 * SIZE * 2.5)
    for k in (0, 1, MAX_VIEWS - 1, MAX_VIEWS, n - 1):
        rgb_one, alpha_one = renderer.render(a[k], e[k], t[k], 2.5, px[k], py[k], 0.5 * SIZE * 2.5)
        differing = np.any(rgb_one != rgb[k], axis=-1) | (alpha_one != alpha[k])
        assert differing.mean() < 0.002, (k, differing.sum())


def test_missing_backend_names_the_packages():
    with pytest.raises(ValueError, match="libegl1"):
        create_context(backend="no-such-backend")


def test_every_material_is_known_to_the_builder():
    from data_tools.render.appearance import MATERIAL_RESPONSE

    assert set(MATERIAL_RESPONSE) == set(MATERIALS)


def test_back_face_culling_of_closed_meshes_changes_nothing_visible(renderer):
    # Guards the winding convention: culling the wrong side would show the car's inside.
    from data_tools.meshes.chair import random_chair

    for mesh in (random_car(3), random_chair(4)):
        vertices, faces, parts = mesh.merged()
        colours = np.random.default_rng(0).random((parts.max() + 1, 3))
        a, e = np.random.default_rng(1).uniform(0, 360, 8), np.random.default_rng(2).uniform(-30, 60, 8)
        images = []
        for closed in (False, True):
            renderer.set_mesh(vertices, faces, parts, closed=closed)
            images.append(renderer.render_batch(a, e, 0.0, 2.5, SIZE / 2, SIZE / 2, 0.6 * SIZE * 2.5,
                                                colours=colours))
        assert np.array_equal(images[0][1], images[1][1])
        assert np.any(images[0][0] != images[1][0], axis=-1).mean() < 0.001


def test_unique_rows_matches_numpy_unique():
    # numpy's row-wise unique is the reference; ties in early columns exercise the lexsort's keys.
    rng = np.random.default_rng(7)
    rows = rng.integers(0, 3, (500, 7)).astype(np.float32)
    rows[::5, 0] = -0.0 * rows[::5, 0]  # -0.0 counts as 0.0
    distinct, inverse = unique_rows(rows)
    expected, expected_inverse = np.unique(rows, axis=0, return_inverse=True)
    np.testing.assert_array_equal(distinct, expected)
    np.testing.assert_array_equal(inverse, expected_inverse.reshape(-1))
    np.testing.assert_array_equal(distinct[inverse], rows)
    empty, empty_inverse = unique_rows(rows[:0])
    assert empty.shape == (0, 7) and empty_inverse.shape == (0,)


def test_textures_of_a_previous_mesh_never_show_on_the_next(renderer):
    # Only the layers in use are uploaded: a textured mesh followed by an untextured one (or one
    # with fewer layers) must render as if the renderer were fresh.
    vertices, faces, parts = random_car(5).merged()
    n_parts = parts.max() + 1
    colours = np.random.default_rng(0).random((n_parts, 3))
    view = (30.0, 15.0, 0.0, 2.5, SIZE / 2, SIZE / 2, 0.6 * SIZE * 2.5)
    fresh = Renderer(SIZE, samples=0, supersample=1)
    fresh.set_mesh(vertices, faces, parts)
    fresh.set_materials(colours)
    plain = fresh.render(*view)[0]
    stripes = np.zeros((n_parts, TEXTURE_SIDE, TEXTURE_SIDE, 3), np.uint8)
    stripes[:, ::8] = 255
    fresh.set_materials(colours, textures=stripes)
    assert np.any(fresh.render(*view)[0] != plain, axis=-1).mean() > 0.01  # the textures show
    fresh.release()
    renderer.set_mesh(vertices, faces, parts)
    renderer.set_materials(colours, textures=stripes)
    renderer.render(*view)
    renderer.set_mesh(vertices, faces, parts)
    renderer.set_materials(colours)
    np.testing.assert_array_equal(renderer.render(*view)[0], plain)
    renderer.set_materials(colours, textures=stripes[:1])  # one layer: the others turn white
    one_layer = renderer.render(*view)[0]
    only_first = np.full_like(stripes, 255)
    only_first[0] = stripes[0]
    renderer.set_materials(colours, textures=only_first)
    only_first[:] = 0  # the upload waits for the draw: it must not see the caller's later writes
    np.testing.assert_array_equal(renderer.render(*view)[0], one_layer)
