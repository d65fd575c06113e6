"""The synthetic builder: determinism, splits by instance, sharding, resuming, broken meshes, the
render command, and the viewpoint / framing samplers."""

from pathlib import Path

import numpy as np
import pytest

from data_tools.dataset import GroupedDataset, read_manifest, read_records
from data_tools.geometry import project_points
from data_tools.render.build import build_synthetic
from data_tools.render.plan import SyntheticConfig, assign_splits
from data_tools.render.viewpoints import (
    GRID_ELEVATIONS, Framing, Viewpoint, frame_views, sample_framing, sample_viewpoint,
)
from gl_support import needs_egl



SMALL = SyntheticConfig(instances=10, views=4, size=64, instances_per_chunk=3, seed=5)


def _files(root: Path) -> dict[str, bytes]:
    """Every dataset file (relative path -> bytes), without the contact sheet."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "contact_sheet.png"}


def _build(config, root, **kwargs):
    return build_synthetic(config, root, progress=False, report=lambda line: None, **kwargs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference") / "data"
    summary = _build(SMALL, root)
    return root, summary


@needs_egl
def test_build_writes_a_readable_grouped_dataset(reference):
    root, summary = reference
    assert summary["images"] == 40 and summary["chunks_total"] == 4 and summary["merged"]
    dataset = GroupedDataset(root)
    assert len(dataset) == 40
    sample = dataset[7]
    assert sample["image"].shape == (64, 64, 3) and sample["image"].dtype == np.uint8
    assert sample["mask"].shape == (64, 64) and set(np.unique(sample["mask"])) <= {0, 255}
    manifest = read_manifest(root)
    assert manifest["source"] == "synthetic" and manifest["config"]["seed"] == 5
    assert sum(c["images"] for c in manifest["counts"].values()) == 40


@needs_egl
def test_determinism_same_config_gives_identical_files(reference, tmp_path):
    root, _ = reference
    _build(SMALL, tmp_path / "again")
    assert _files(tmp_path / "again") == _files(root)


@needs_egl
def test_splits_are_disjoint_by_instance(reference):
    records = read_records(reference[0])
    groups = {split: set(records["group"][records["split"] == split].tolist()) for split in ("train", "val", "test")}
    assert not (groups["train"] & groups["val"]) and not (groups["train"] & groups["test"])
    assert not (groups["val"] & groups["test"])
    assert [len(groups[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    assert all(np.sum(records["group"] == g) == 4 for g in range(10))


def test_assign_splits_counts_and_seed():
    splits = assign_splits(100, (0.7, 0.2, 0.1), seed=1)
    assert [int(np.sum(splits == s)) for s in ("train", "val", "test")] == [70, 20, 10]
    assert np.array_equal(splits, assign_splits(100, (0.7, 0.2, 0.1), seed=1))
    assert not np.array_equal(splits, assign_splits(100, (0.7, 0.2, 0.1), seed=2))


@needs_egl
def test_records_match_the_rendered_masks(reference):
    # The stored camera (box columns from project_points) agrees with the pixels.
    dataset = GroupedDataset(reference[0])
    records = dataset.records
    for i in range(0, len(dataset), 3):
        if records["truncated"][i] or records["occluded"][i] > 0:
            continue
        ys, xs = np.nonzero(dataset[i]["mask"])
        mask_box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        # an inward-jittered box lets the object run past the crop: compare inside the image
        box = np.clip([records[k][i] for k in ("box_x1", "box_y1", "box_x2", "box_y2")], 0, 64)
        assert np.max(np.abs(np.subtract(mask_box, box))) < 1.6, (i, mask_box, box)


@needs_egl
def test_sharded_build_equals_unsharded(reference, tmp_path):
    root, _ = reference
    out = tmp_path / "sharded"
    first = _build(SMALL, out, shard=0, num_shards=2)
    second = _build(SMALL, out, shard=1, num_shards=2)
    assert not first["merged"] and not second["merged"]
    assert first["chunks_built"] + second["chunks_built"] == 4
    _build(SMALL, out, merge=True, build=False)
    assert _files(out) == _files(root)


@needs_egl
def test_two_workers_equal_one(reference, tmp_path):
    _build(SMALL, tmp_path / "workers", workers=2)
    assert _files(tmp_path / "workers") == _files(reference[0])


@needs_egl
def test_interrupted_build_resumes_without_redoing_finished_chunks(reference, tmp_path):
    root, _ = reference
    out = tmp_path / "resumed"
    _build(SMALL, out, shard=0, num_shards=2)  # chunks 0 and 2 finish
    # A killed run of chunk 1: an image file written, a temporary file left, no manifest.
    images = out / "images"
    (images / "chunk-00001-00000.npy").write_bytes(b"half")
    stale = images / ".chunk-00001-00000.tmp-99999.npy"
    stale.write_bytes(b"partial")
    finished = (images / "chunk-00000-00000.npy").stat().st_mtime_ns
    summary = _build(SMALL, out)
    assert summary["chunks_built"] == 2 and summary["chunks_skipped"] == 2
    assert not stale.exists()
    assert (images / "chunk-00000-00000.npy").stat().st_mtime_ns == finished
    assert _files(out) == _files(root)


@needs_egl
def test_resume_refuses_a_different_config(reference, tmp_path):
    out = tmp_path / "mixed"
    _build(SMALL, out, shard=0, num_shards=2)
    other = SyntheticConfig(**{**SMALL.to_json(), "splits": SMALL.splits, "seed": 6})
    with pytest.raises(ValueError, match="different config"):
        _build(other, out)


@needs_egl
def test_render_command_skips_broken_meshes(tmp_path, capsys):
    import trimesh

    from posenet_mlvae.cli import main

    meshes = tmp_path / "meshes"
    meshes.mkdir()
    trimesh.creation.box((0.4, 0.9, 0.3)).export(meshes / "a_box.obj")
    trimesh.creation.icosphere(subdivisions=2).export(meshes / "c_ball.ply")
    (meshes / "b_broken.obj").write_text("this is not a mesh\nf 1 2 9\n")
    (meshes / "d_empty.off").write_bytes(b"")
    out = tmp_path / "out"
    code = main(["render", "--meshes", str(meshes), "--axes", "pascal", "--instances", "0",
                 "--views", "3", "--size", "64", "--out", str(out), "--workers", "1", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 0
    assert "b_broken.obj" in captured.err and "d_empty.off" in captured.err
    assert "skipped 2 broken mesh files" in captured.out and "images/s" in captured.out
    records = read_records(out)
    assert sorted(set(records["instance"].tolist())) == ["a_box", "c_ball"]
    assert len(records["index"]) == 6
    assert (out / "contact_sheet.png").stat().st_size > 1000
    assert len(read_manifest(out)["mesh_errors"]) == 2


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="size"):
        SyntheticConfig(size=100)
    with pytest.raises(ValueError, match="distribution"):
        SyntheticConfig(distribution="gaussian")
    with pytest.raises(ValueError, match="splits"):
        SyntheticConfig(splits=(0.5, 0.1, 0.1))


def test_grid_distribution_is_the_cars3d_grid():
    rng = np.random.default_rng(0)
    views = [sample_viewpoint("grid", "car", rng, v) for v in range(96)]
    pairs = {(v.azimuth, v.elevation) for v in views}
    assert len(pairs) == 96
    assert {a for a, _ in pairs} == {15.0 * k for k in range(24)}
    assert {e for _, e in pairs} == set(GRID_ELEVATIONS)
    assert all(v.theta == 0.0 for v in views)


def test_pascal_and_uniform_distributions():
    pascal = [sample_viewpoint("pascal", "car", np.random.default_rng([0, i]), i) for i in range(3000)]
    elevation = np.array([v.elevation for v in pascal])
    theta = np.array([v.theta for v in pascal])
    assert 0.6 < np.mean((elevation >= -5) & (elevation <= 30)) < 0.95  # mostly low, with a tail
    assert np.abs(theta).max() <= 45 and np.mean(np.abs(theta) <= 15) > 0.85
    azimuth = np.array([v.azimuth for v in pascal])
    assert azimuth.min() >= 0 and azimuth.max() < 360 and abs(np.mean(azimuth < 180) - 0.5) < 0.05
    uniform = [sample_viewpoint("uniform", "car", np.random.default_rng([1, i]), i) for i in range(3000)]
    sin_e = np.sin(np.radians([v.elevation for v in uniform]))
    assert abs(np.mean(sin_e > 0.5) - 0.25) < 0.04  # uniform on the sphere: sin(e) uniform


def test_framing_is_the_crop_rule_around_the_jittered_box():
    from data_tools.image.preprocess import CropRule, crop_box

    points = np.random.default_rng(0).uniform(-0.3, 0.3, (200, 3))
    views = [Viewpoint(30.0, 10.0, 5.0, 2.0), Viewpoint(200.0, 40.0, -10.0, 3.0)]
    still = [Framing(0, 0, 0, 0), Framing(0.05, -0.02, 0.1, 0.0)]
    for rule in (CropRule("pad", 0.1), CropRule("pad", 0.0), CropRule("stretch", 0.2)):
        frames = frame_views(points, views, still, 64, rule)
        for k in range(2):
            jittered = [frames[f"jitter_{c}"][k] for c in ("x1", "y1", "x2", "y2")]
            # Cutting the rule's region around the jittered box gives exactly the whole image.
            np.testing.assert_allclose(crop_box(jittered, rule.margin, rule.mode), (0, 0, 64, 64), atol=1e-9)
        # The box columns are the projected points' tight box in the image's pixels.
        projected = np.stack([project_points(points, v.azimuth, v.elevation, v.theta, v.distance,
                                             0.0, 0.0, 1.0, 1.0) for v in views])
        xs = projected[..., 0] * frames["focal_px"][:, None] + frames["px"][:, None]
        ys = projected[..., 1] * frames["focal_py"][:, None] + frames["py"][:, None]
        np.testing.assert_allclose(frames["box_x1"], xs.min(1), atol=1e-9)
        np.testing.assert_allclose(frames["box_y2"], ys.max(1), atol=1e-9)
    pad = frame_views(points, views, still[:1] * 2, 64, CropRule("pad", 0.1))
    width, height = pad["box_x2"] - pad["box_x1"], pad["box_y2"] - pad["box_y1"]
    np.testing.assert_allclose(np.maximum(width, height), 64 / 1.2)  # margin 0.1 on each side
    np.testing.assert_allclose((pad["box_x1"] + pad["box_x2"]) / 2, 32.0)  # centred
    framings = [sample_framing("pascal", np.random.default_rng([2, i])) for i in range(2000)]
    assert all(abs(f.shift_left) <= 0.5 for f in framings)
    truncated = np.mean([bool(f.truncate_side) for f in framings])
    assert 0.08 < truncated < 0.16
    assert not any(f.truncate_side for f in (sample_framing("pascal", np.random.default_rng([2, i]),
                                                            truncation=False) for i in range(300)))


def test_box_jitter_scales_the_close_boxes_shifts_and_nothing_else():
    from data_tools.render.viewpoints import BOX_JITTER

    pairs = [(sample_framing("pascal", np.random.default_rng([4, i])),
              sample_framing("pascal", np.random.default_rng([4, i]), box_jitter=2 * BOX_JITTER))
             for i in range(2000)]
    close = 0
    for default, wider in pairs:
        assert (default.truncate_side, default.truncate_fraction) == (wider.truncate_side, wider.truncate_fraction)
        shifts = np.array([default.shift_left, default.shift_top, default.shift_right, default.shift_bottom])
        doubled = np.array([wider.shift_left, wider.shift_top, wider.shift_right, wider.shift_bottom])
        if np.abs(shifts).max() < 0.1 and not np.allclose(shifts, doubled):  # a close box (not an outlier)
            close += 1
            np.testing.assert_allclose(doubled, np.clip(2 * shifts, -0.2, 0.2), atol=1e-12)
    assert 0.7 < close / len(pairs) < 0.85  # the outliers' share (0.2) is left as it was
    default_std = np.std([f.shift_left for f, _ in pairs if abs(f.shift_left) < 0.1])
    assert 0.025 < default_std < 0.035
    exact = [sample_framing("pascal", np.random.default_rng([4, i]), box_jitter=0.0) for i in range(500)]
    assert np.mean([f.shift_left == 0.0 for f in exact]) > 0.7  # the close boxes fit exactly


def test_truncation_clips_the_box_at_the_photo_border_and_replicates_it():
    from data_tools.image.preprocess import CropRule
    from data_tools.render.viewpoints import replicate_beyond_border

    points = np.random.default_rng(0).uniform(-0.3, 0.3, (200, 3))
    view = [Viewpoint(30.0, 10.0, 5.0, 2.0)]
    whole = frame_views(points, view, [Framing(0, 0, 0, 0)], 64, CropRule("pad", 0.1))
    cut = frame_views(points, view, [Framing(0, 0, 0, 0, "right", 0.25)], 64, CropRule("pad", 0.1))
    # In the unit camera the visible box lost a quarter of its width on the right.
    unit = lambda f, c: (f[c] - (f["px"] if "x" in c else f["py"])) / (f["focal_px"] if "x" in c else f["focal_py"])  # noqa: E731
    full_w = unit(whole, "box_x2") - unit(whole, "box_x1")
    np.testing.assert_allclose(unit(cut, "box_x2"), unit(whole, "box_x2") - 0.25 * full_w)
    np.testing.assert_allclose(cut["border"], cut["box_x2"])
    image = np.arange(64 * 64 * 3, dtype=np.int64).reshape(64, 64, 3) % 251
    border = float(cut["border"][0])
    replicated = replicate_beyond_border(image.copy(), "right", border)
    last = int(np.floor(border - 0.5))
    assert np.array_equal(replicated[:, : last + 1], image[:, : last + 1])
    assert np.all(replicated[:, last + 1:] == image[:, last: last + 1])


@needs_egl
def test_photo_backgrounds_skip_unreadable_files(tmp_path):
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("one.png", "two.jpg"):
        cv2.imwrite(str(photos / name), rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    (photos / "broken.jpg").write_bytes(b"not an image")
    reported = []
    config = SyntheticConfig(instances=3, views=8, size=64, backgrounds=str(photos), seed=1)
    summary = build_synthetic(config, tmp_path / "out", progress=False, report=reported.append)
    assert summary["skipped_backgrounds"] == 1 and summary["images"] == 24
    assert len(reported) == 1 and "broken.jpg" in reported[0]
    kinds = set(read_records(tmp_path / "out")["background"].tolist())
    assert "photo" in kinds


@needs_egl
def test_bench_render_command_prints_images_per_second(capsys):
    from posenet_mlvae.cli import main

    assert main(["bench", "render", "--images", "48", "--sizes", "64", "--workers", "1"]) == 0
    assert "images/s" in capsys.readouterr().out
