"""Procedural cars and chairs, the mesh representation and mesh import (DESIGN.md section 2)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from data_tools.meshes.import_files import (
    AXES, SUFFIXES, axis_matrix, load_mesh, load_meshes, parse_axis_spec,
)
from data_tools.meshes.mesh import MATERIALS, ObjectMesh, Part, normalise_to_frame
from data_tools.meshes.car import VARIANTS, build_car, car_params, random_car
from data_tools.meshes.chair import LEG_STYLES, chair_params, random_chair

CAR_SEEDS = range(60)
CHAIR_SEEDS = range(60)


def parts_named(mesh: ObjectMesh, name: str) -> np.ndarray:
    """All vertices of the parts called `name`."""
    found = [part.vertices for part in mesh.parts if part.name == name]
    assert found, f"{mesh.instance} has no part {name!r}"
    return np.concatenate(found)


def assert_in_frame(mesh: ObjectMesh) -> None:
    low, high = mesh.bounds()
    np.testing.assert_allclose((low + high) / 2, 0.0, atol=1e-6)
    assert abs(np.linalg.norm(high - low) - 1.0) < 1e-5


def assert_closed_and_outward(mesh: ObjectMesh) -> None:
    for part in mesh.parts:
        assert part.material in MATERIALS
        tm = trimesh.Trimesh(part.vertices, part.faces, process=False)
        assert tm.is_watertight, f"{mesh.instance}/{part.name} is not closed"
        assert tm.is_winding_consistent, f"{mesh.instance}/{part.name} winding inconsistent"
        assert tm.volume > 0, f"{mesh.instance}/{part.name} faces point inward"


# ---------------------------------------------------------------- cars


def test_all_car_variants_occur():
    variants = {car_params(np.random.default_rng(seed)).variant for seed in CAR_SEEDS}
    assert variants == set(VARIANTS)


@pytest.mark.parametrize("seed", CAR_SEEDS)
def test_car_in_binding_frame(seed):
    car = random_car(seed)
    assert car.category == "car" and car.instance == f"car_{seed}"
    assert_in_frame(car)
    low, high = car.bounds()
    width, length, height = high - low
    assert length > width > 0 and length > height > 0
    assert 0.8 < length < 0.95 and 0.25 < width < 0.45 and 0.2 < height < 0.45
    # Up is +z: the tyres touch the ground, the lowest point of the car; the roof is above them.
    tires = parts_named(car, "tire")
    assert abs(tires[:, 2].min() - low[2]) < 1e-6
    assert parts_named(car, "body")[:, 2].max() > tires[:, 2].max()
    # Front is -y: headlights and grille at the front, tail lights at the rear.
    assert parts_named(car, "light_front")[:, 1].mean() < -0.3
    assert parts_named(car, "light_rear")[:, 1].mean() > 0.3
    assert parts_named(car, "grille")[:, 1].max() < -0.4
    # Front/rear cues: the hood is longer than the trunk (a pickup's open bed is its own rear
    # cue), and the mirrors sit forward.
    params = car_params(np.random.default_rng(seed))
    assert params.variant == "pickup" or params.hood_length > params.trunk_length
    assert parts_named(car, "mirror")[:, 1].mean() < 0.0


@pytest.mark.parametrize("seed", range(0, 60, 6))
def test_car_parts_closed_and_outward(seed):
    assert_closed_and_outward(random_car(seed))


def test_car_triangle_budget():
    counts = [random_car(seed).n_triangles for seed in CAR_SEEDS]
    assert 1000 <= min(counts) and max(counts) <= 4000  # rounded bodies: ~2k more on the body
    crisp = [random_car(seed, rounded=False).n_triangles for seed in CAR_SEEDS]
    assert max(crisp) <= 3000 and sum(crisp) < sum(counts)


def test_painted_bumpers_carry_a_front_intake_behind_the_plate():
    painted = [s for s in CAR_SEEDS if car_params(np.random.default_rng(s)).painted_bumpers]
    assert 0 < len(painted) < len(CAR_SEEDS)  # both kinds occur
    for seed in CAR_SEEDS:
        car = random_car(seed)
        materials = {p.name: p.material for p in car.parts}
        if seed in painted:
            assert materials["bumper"] == "paint" and materials["intake"] == "dark"
            intake, plate = parts_named(car, "intake"), parts_named(car, "plate")
            # Low on the front face, across most of the bumper, with the front plate before it.
            assert intake[:, 1].max() < -0.4 and plate[:, 1].min() < intake[:, 1].min()
            assert intake[:, 2].max() < parts_named(car, "light_front")[:, 2].min()
            assert np.ptp(intake[:, 0]) > 0.4 * np.ptp(parts_named(car, "bumper")[:, 0])
        else:
            assert materials["bumper"] == "dark" and "intake" not in materials
        # The first generator's shapes (the `shapes` ablation): black bumpers, no intake.
        crisp = {p.name: p.material for p in random_car(seed, rounded=False).parts}
        assert crisp["bumper"] == "dark" and "intake" not in crisp


@pytest.mark.parametrize("variant", ["sedan", "sports"])
def test_windshield_larger_than_rear_window(variant):
    seeds = [s for s in CAR_SEEDS if car_params(np.random.default_rng(s)).variant == variant]
    assert seeds
    for seed in seeds:
        params = car_params(np.random.default_rng(seed))
        assert params.windshield_rake > params.rear_window_rake
        car = random_car(seed)
        vertices, faces, part_index = car.merged()
        window = [i for i, p in enumerate(car.parts) if p.name == "window"]
        glass = trimesh.Trimesh(vertices, faces[np.isin(part_index, window)], process=False)
        normal, area = glass.face_normals, glass.area_faces
        # Outer faces of the windshield look up and forward (-y), of the rear window up and back.
        sloped = (np.abs(normal[:, 0]) < 0.2) & (normal[:, 2] > 0.3)
        front_area = area[sloped & (normal[:, 1] < -0.2)].sum()
        rear_area = area[sloped & (normal[:, 1] > 0.2)].sum()
        assert front_area > 1.2 * rear_area


def test_car_same_seed_identical_different_seeds_distinct():
    first, again = random_car(7), random_car(7)
    for a, b in zip(first.parts, again.parts, strict=True):
        assert a.name == b.name and np.array_equal(a.vertices, b.vertices)
        assert np.array_equal(a.faces, b.faces)
    bodies = [parts_named(random_car(seed), "body") for seed in range(30)]
    for a, b in itertools.combinations(bodies, 2):
        assert a.shape != b.shape or np.abs(a - b).max() > 1e-3


def test_sports_cars_replace_a_share_of_the_others():
    drawn = [car_params(np.random.default_rng(seed)) for seed in range(400)]
    first = [car_params(np.random.default_rng(seed), sports=False) for seed in range(400)]
    assert 0.1 < np.mean([p.variant == "sports" for p in drawn]) < 0.2  # SPORTS_FRACTION = 0.15
    others = [p for p in drawn if p.variant != "sports"]
    for params, before in zip(drawn, first):
        assert before.variant != "sports"
        if params.variant != "sports":  # drawn last: every other car is as it was
            assert params == before
            continue
        # Lights, plates and paint stay; the shape is a sports car's: lower than any SUV, pickup
        # or van, with a long hood over a short deck and a steep windshield.
        assert (params.headlight_width, params.painted_bumpers) == (before.headlight_width, before.painted_bumpers)
        assert params.height < 1.35 and params.hood_length > 1.8 * params.trunk_length
        assert params.windshield_rake > params.rear_window_rake
        assert params.hood_height < params.deck_height < params.height
    ratios = lambda params: [p.height / p.length for p in params]  # noqa: E731
    assert np.median(ratios([p for p in drawn if p.variant == "sports"])) < np.percentile(ratios(others), 10)
    # The first generator's shapes (the `shapes` ablation) have no sports cars.
    sports_seed = next(s for s, p in enumerate(drawn) if p.variant == "sports")
    assert random_car(sports_seed, rounded=False).bounds()[1][2] > random_car(sports_seed).bounds()[1][2]


def test_build_car_rejects_unknown_variant():
    params = car_params(np.random.default_rng(0))
    bad = type(params)(**{**params.__dict__, "variant": "tank"})
    with pytest.raises(ValueError, match="sedan"):
        build_car(bad, "x")


# ---------------------------------------------------------------- chairs


def test_all_leg_styles_occur():
    styles = {chair_params(np.random.default_rng(seed)).leg_style for seed in CHAIR_SEEDS}
    assert styles == set(LEG_STYLES)


@pytest.mark.parametrize("seed", CHAIR_SEEDS)
def test_chair_in_binding_frame(seed):
    chair = random_chair(seed)
    assert chair.category == "chair"
    assert_in_frame(chair)
    seat, back = parts_named(chair, "seat"), parts_named(chair, "back")
    # The backrest stands at the rear (+y); one sits facing -y.
    assert back[:, 1].mean() > seat[:, 1].mean() + 0.05
    assert seat[:, 2].max() < back[:, 2].max()
    # Up is +z: legs (or casters) reach the floor, the lowest point.
    low = chair.bounds()[0]
    feet = np.concatenate([p.vertices for p in chair.parts if p.name in ("leg", "caster")])
    assert abs(feet[:, 2].min() - low[2]) < 1e-6
    if chair_params(np.random.default_rng(seed)).upholstered:  # the cushion rests on a base
        assert abs(parts_named(chair, "base")[:, 2].max() - seat[:, 2].min()) < 1e-6
    else:
        assert seat[:, 2].min() > low[2] + 0.2
    assert 50 <= chair.n_triangles <= 3000


def test_upholstered_armchairs():
    drawn = [chair_params(np.random.default_rng(seed)).upholstered for seed in range(400)]
    assert 0.15 < np.mean(drawn) < 0.25  # UPHOLSTERED_FRACTION = 0.2
    armchairs = [seed for seed in CHAIR_SEEDS if drawn[seed]]
    assert armchairs and len(armchairs) < len(CHAIR_SEEDS)
    for seed in armchairs:
        chair = random_chair(seed)
        assert {p.name for p in chair.parts} == {"seat", "base", "arm", "back", "leg"}
        seat, base, arms, back, feet = (parts_named(chair, name)
                                        for name in ("seat", "base", "arm", "back", "leg"))
        low, high = chair.bounds()
        # Padded arms on both sides, outside the cushion, from the base's foot to above the seat.
        for side in (-1.0, 1.0):
            arm = arms[side * arms[:, 0] > 0]
            assert (side * arm[:, 0]).min() >= (side * seat[:, 0]).max() - 1e-6
            assert arm[:, 2].max() > seat[:, 2].max() + 0.05
            assert abs(arm[:, 2].min() - base[:, 2].min()) < 1e-6
        # A thick back across the full width at the rear, the highest part.
        assert abs(back[:, 2].max() - high[2]) < 1e-6
        np.testing.assert_allclose([back[:, 0].min(), back[:, 0].max()], [low[0], high[0]], atol=1e-6)
        assert back[:, 1].min() >= seat[:, 1].max() - 1e-6
        # Short feet under the base: the only parts touching the floor.
        assert abs(feet[:, 2].min() - low[2]) < 1e-6 and feet[:, 2].max() <= base[:, 2].min() + 1e-6
        assert min(p.vertices[:, 2].min() for p in chair.parts if p.name != "leg") > low[2] + 1e-3
        assert {p.material for p in chair.parts if p.name != "leg"} <= {"fabric", "plastic"}


@pytest.mark.parametrize("seed", range(0, 60, 5))
def test_chair_parts_closed_and_outward(seed):
    assert_closed_and_outward(random_chair(seed))


def test_chair_deterministic_and_distinct():
    a, b = random_chair(3), random_chair(3)
    assert all(np.array_equal(p.vertices, q.vertices) for p, q in zip(a.parts, b.parts))
    seats = [parts_named(random_chair(seed), "seat") for seed in range(20)]
    for x, y in itertools.combinations(seats, 2):
        assert x.shape != y.shape or np.abs(x - y).max() > 1e-3


# ---------------------------------------------------------------- representation


def test_normalise_and_merge_hand_computed():
    square = np.array([[0, 0, 0], [3, 0, 0], [3, 4, 0]], dtype=np.float32)
    mesh = ObjectMesh("thing", "t", (
        Part("a", "paint", square, np.array([[0, 1, 2]])),
        Part("b", "glass", square + [0, 0, 12], np.array([[0, 2, 1]])),
    ))
    normed = normalise_to_frame(mesh)  # bbox (0,0,0)-(3,4,12): centre (1.5,2,6), diagonal 13
    np.testing.assert_allclose(normed.parts[0].vertices[2], [1.5 / 13, 2 / 13, -6 / 13], atol=1e-7)
    vertices, faces, part_index = normed.merged()
    assert vertices.shape == (6, 3) and faces.tolist() == [[0, 1, 2], [3, 5, 4]]
    assert part_index.tolist() == [0, 1]
    assert len(normed.to_trimesh().faces) == 2
    with pytest.raises(ValueError, match="material"):
        Part("a", "chocolate", square, np.array([[0, 1, 2]]))


# ---------------------------------------------------------------- axis mapping


def test_generic_axis_specs_match_named_mappings():
    np.testing.assert_array_equal(parse_axis_spec("up=+y,front=+x"), AXES["shapenet-v1"])
    np.testing.assert_array_equal(parse_axis_spec("up=+y,front=-z"), AXES["shapenet-v2"])
    np.testing.assert_array_equal(parse_axis_spec("up=+y front=+z"), AXES["gltf"])
    np.testing.assert_array_equal(parse_axis_spec("up=+z,front=-y"), AXES["pascal"])
    # DESIGN.md: ShapeNet v1 (x, y, z)_ours = (-z, -x, y); v2 (-x, z, y).
    p = np.array([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(axis_matrix("shapenet-v1") @ p, [-3, -1, 2])
    np.testing.assert_array_equal(axis_matrix("shapenet-v2") @ p, [-1, 3, 2])


def test_all_generic_specs_are_the_24_cube_rotations():
    signed = [f"{s}{a}" for a in "xyz" for s in "+-"]
    matrices = []
    for up, front in itertools.product(signed, signed):
        if up[1] == front[1]:
            continue
        m = parse_axis_spec(f"up={up},front={front}")
        up_vec = np.eye(3)["xyz".index(up[1])] * (1 if up[0] == "+" else -1)
        front_vec = np.eye(3)["xyz".index(front[1])] * (1 if front[0] == "+" else -1)
        np.testing.assert_array_equal(m @ up_vec, [0, 0, 1])
        np.testing.assert_array_equal(m @ front_vec, [0, -1, 0])
        matrices.append(m)
    group = Rotation.create_group("O").as_matrix()  # the 24 proper rotations of a cube
    assert len(matrices) == 24
    for m in matrices:
        assert np.min(np.abs(group - m).reshape(24, -1).max(axis=1)) < 1e-9


@pytest.mark.parametrize("spec, message", [
    ("up=+y,front=+y", "different axes"),
    ("up=+y,front=-y", "different axes"),
    ("up=+q,front=+x", r"\+x, -x"),
    ("front=+x", "missing up"),
    ("up=+y,left=+x", "up=<axis>"),
    ("sideways", "shapenet-v1"),
])
def test_bad_axis_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        axis_matrix(spec)


# ---------------------------------------------------------------- import


def shapenet_v1_object() -> trimesh.Scene:
    """A ShapeNet-v1-style object (up +y, front +x): a box body, a nose at +x, a mast at +y."""
    body = trimesh.creation.box(extents=[2.0, 1.0, 1.0])
    nose = trimesh.creation.cone(radius=0.3, height=0.5)  # apex along +z, moved to point +x
    nose.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))
    nose.apply_translation([1.0, 0.0, 0.0])
    mast = trimesh.creation.box(extents=[0.1, 1.2, 0.1])
    mast.apply_translation([0.0, 0.6, 0.0])
    scene = trimesh.Scene()
    scene.add_geometry(body, geom_name="body")
    scene.add_geometry(nose, geom_name="nose")
    scene.add_geometry(mast, geom_name="window")
    return scene


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".off", ".glb"])
def test_import_shapenet_v1_front_and_up(tmp_path, suffix):
    scene = shapenet_v1_object()
    path = tmp_path / f"model{suffix}"
    if suffix in (".ply", ".off"):  # single-mesh formats
        scene.to_mesh().export(path)
    else:
        scene.export(path)
    mesh = load_mesh(path, "shapenet-v1", category="car")
    assert mesh.instance == "model" and mesh.category == "car"
    assert_in_frame(mesh)
    points = np.concatenate([p.vertices for p in mesh.parts])
    # Independent expectation: (x, y, z)_ours = (-z, -x, y), then bbox centre / diagonal.
    source = scene.to_mesh().vertices
    expected = np.column_stack([-source[:, 2], -source[:, 0], source[:, 1]])
    low, high = expected.min(0), expected.max(0)
    expected = (expected - (low + high) / 2) / np.linalg.norm(high - low)
    tip = expected[np.argmax(source[:, 0])]  # the nose apex, the source's front-most point
    top = expected[np.argmax(source[:, 1])]  # the mast top, the source's highest point
    assert tip[1] < 0 and np.isclose(points[:, 1].min(), tip[1], atol=1e-5)
    assert top[2] > 0 and np.isclose(points[:, 2].max(), top[2], atol=1e-5)
    np.testing.assert_allclose(points.min(0), expected.min(0), atol=1e-5)
    np.testing.assert_allclose(points.max(0), expected.max(0), atol=1e-5)
    if suffix == ".glb":  # scene formats keep one part per geometry, named
        assert len(mesh.parts) == 3
        assert {p.name: p.material for p in mesh.parts}["window"] == "glass"


def test_broken_files_are_reported_and_skipped(tmp_path):
    good = tmp_path / "good.obj"
    trimesh.creation.box().export(good)
    garbage = bytes(range(256)) * 4
    broken = {
        "garbage.obj": garbage, "garbage.glb": garbage, "garbage.ply": garbage,
        "empty.off": b"", "short.off": b"OFF\n3 1 0\n0 0 0\n",
    }
    for name, data in broken.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=name):
            load_mesh(tmp_path / name, "pascal")
    paths = [tmp_path / name for name in broken] + [good, tmp_path / "missing.obj"]
    meshes, errors = load_meshes(paths, "shapenet-v2")
    assert [m.instance for m in meshes] == ["good"]
    assert len(errors) == len(broken) + 1
    for error, path in zip(errors, [p for p in paths if p != good]):
        assert error.startswith(str(path)) and "\n" not in error


def test_unknown_suffix_lists_supported(tmp_path):
    path = tmp_path / "model.stl"
    path.write_bytes(b"solid x\nendsolid x\n")
    with pytest.raises(ValueError) as info:
        load_mesh(path, "pascal")
    assert str(path) in str(info.value)
    assert all(suffix in str(info.value) for suffix in SUFFIXES)


def test_latin1_obj_loads(tmp_path):
    path = tmp_path / "old.obj"
    text = "# mod\xe8le\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
    path.write_bytes(text.encode("latin-1"))
    mesh = load_mesh(path, "pascal")
    assert sum(len(p.faces) for p in mesh.parts) == 4
