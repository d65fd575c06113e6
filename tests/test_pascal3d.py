"""PASCAL3D+ reader, protocol, crops and the `pascal3d` command, on the miniature fixture.

The fixture (data_tools/pascal3d/miniature.py) documents every file and what the protocol must do
with each object; the expected counts below are read off that table by hand.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from data_tools.dataset import GroupedDataset, read_manifest
from data_tools.geometry import flip_viewpoint
from data_tools.pascal3d import miniature as fx
from data_tools.pascal3d.protocol import index_dataset
from data_tools.pascal3d.mat import read_record
from data_tools.pascal3d.build import CropConfig, build_dataset
from data_tools.image.preprocess import crop_to_square, load_image_rgb

# Per category (car and chair are laid out the same way), then doubled for both.
TEST_SKIPS = {"other_class": 2, "truncated": 1, "occluded": 1, "difficult": 1, "zero_viewpoint": 1,
              "coarse_only_viewpoint": 1, "missing_image": 1, "box_outside_image": 1, "no_bbox": 2}
TRAIN_SKIPS = {"difficult": 1, "other_class": 1, "zero_viewpoint": 1, "file_not_mat": 1,
               "file_without_objects": 1, "truncated": 1, "occluded": 1, "empty_viewpoint": 1}
BUILD_TRAIN_SKIPS = {"unreadable_image": 1, "box_outside_image": 1}


def _double(counts: dict) -> Counter:
    return Counter({k: 2 * v for k, v in counts.items()})


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("p3d") / "PASCAL3D+_release1.1"
    truth = fx.make_pascal3d_fixture(root)
    return root, truth


@pytest.fixture(scope="module")
def index(tree):
    return index_dataset(tree[0], ["car", "chair"], workers=1)


@pytest.fixture(scope="module")
def built(tree, index, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "ds"
    return build_dataset(index, out, CropConfig(size=48, flip=True, jitter=1), workers=1)


def test_kept_and_skipped_counts_per_rule(index):
    assert index.layout == "pascal3d"
    assert index.kept() == {"test": Counter(car=4, chair=4), "train": Counter(car=10, chair=10)}
    assert index.skipped == {"test": _double(TEST_SKIPS), "train": _double(TRAIN_SKIPS),
                             "unassigned": Counter(file_not_in_split_lists=2)}


def test_each_bad_input_reported_once(index, built):
    index_lines = [p for p in index.problems]
    assert len(index_lines) == len(set(index_lines)) == 12  # per class: 1 missing image, 1 box, 2 bbox, 2 files
    for stem, words in (("car_pascal/2008_000004.jpg", "image missing"),
                        ("car_pascal/2008_000005.mat", "outside"), ("car_pascal/2008_000007.mat", "no usable bbox"),
                        ("chair_pascal/2008_000114.mat", "not a readable MAT file"),
                        ("chair_pascal/2008_000115.mat", "no 'objects'")):
        assert sum(stem in line and words in line for line in index_lines) == 1, stem
    extra = built.problems[len(index_lines):]
    unreadable = ("unknown image format", "truncated", "corrupt", "empty")  # load_image_rgb causes
    assert len(extra) == 4 and sum(any(c in line for c in unreadable) for line in extra) == 2
    assert sum("n02958343_7.JPEG" in line and "outside the 320x240 image" in line for line in extra) == 1


def test_parallel_index_equals_serial(tree, index):
    parallel = index_dataset(tree[0], ["car", "chair"], workers=2)
    assert repr(parallel.objects) == repr(index.objects)  # repr: NaN distances compare unequal
    assert parallel.skipped == index.skipped and parallel.problems == index.problems


def test_angles_read_back_equal_the_written_ones(index, tree):
    truth = tree[1]
    assert len(index.objects) == 28
    for obj in index.objects:
        t = truth[(obj.category, obj.source, obj.image_id, obj.object_index)]
        pose = t["pose"]
        assert obj.cad_index == t["cad"] and list(obj.bbox) == t["bbox"]
        if t["kind"] == "coarse":  # training object with only the coarse fields: theta 0
            assert obj.coarse and obj.split == "train" and math.isnan(obj.distance)
            assert (obj.azimuth, obj.elevation, obj.theta) == (round(pose.azimuth / 15) * 15 % 360,
                                                               round(pose.elevation / 15) * 15, 0.0)
            continue
        assert not obj.coarse
        assert (obj.azimuth, obj.elevation, obj.theta, obj.distance, obj.px, obj.py) == (
            pose.azimuth, pose.elevation, pose.theta, pose.distance, pose.px, pose.py)
        assert (obj.focal, obj.viewport) == (1.0, 3000.0)


def _plain(value):
    """NaN-free copy for comparing records (NaN != NaN)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


@pytest.mark.parametrize("name", ["car_pascal/2008_000001", "car_pascal/2008_000002",
                                  "chair_pascal/2008_000050", "car_pascal/2008_000003",
                                  "chair_imagenet/n03001627_2", "car_pascal/2008_000007"])
def test_both_scipy_layouts_give_the_same_record(tree, name):
    path = tree[0] / "Annotations" / f"{name}.mat"
    default, squeezed = read_record(path), read_record(path, squeeze_me=True)
    as_objects = read_record(path, squeeze_me=True, struct_as_record=False)
    assert _plain(default) == _plain(squeezed) == _plain(as_objects)
    assert isinstance(default["objects"], list) and default["objects"]


def test_fixture_follows_the_public_access_paths(tree):
    """The fixture files read through the access paths of public loaders (spec section 2.6)."""
    root, truth = tree
    single = root / "Annotations" / "car_pascal" / "2008_000001.mat"
    pose = truth[("car", "pascal", "2008_000001", 0)]["pose"]
    # PoseFromShape, default layout.
    rec = scipy.io.loadmat(single)["record"][0][0]
    obj = rec["objects"][0][0]
    assert obj["class"].item() == "car"
    assert obj["viewpoint"][0][0]["azimuth"].item() == pose.azimuth
    assert obj["truncated"].dtype == np.uint8  # MATLAB logicals come back as uint8
    assert list(obj["bbox"][0]) == truth[("car", "pascal", "2008_000001", 0)]["bbox"]
    # StarMap, default layout.
    d = scipy.io.loadmat(single)["record"]["objects"][0][0]
    assert d["viewpoint"][0][0][0]["theta"][0][0][0] == pose.theta
    assert d["anchors"][0][0][0]["left_front_wheel"][0][0][0]["status"][0][0] in (0, 1)
    # squeeze_me=True: one object is a 0-d struct (the pitfall); several are length-N arrays.
    objects = scipy.io.loadmat(single, squeeze_me=True)["record"]["objects"].item()
    assert objects.shape == () and float(objects["viewpoint"].item()["elevation"]) == pose.elevation
    multi = root / "Annotations" / "car_pascal" / "2008_000002.mat"
    objects = scipy.io.loadmat(multi, squeeze_me=True)["record"]["objects"].item()
    assert objects.shape == (5,) and objects["class"][1] == "person"
    assert objects["viewpoint"][1].shape == (0,)  # empty viewpoint of the other class


def test_built_dataset_reads_back_with_splits_and_groups(built):
    manifest = read_manifest(built.out)
    assert manifest["source"] == "pascal3d" and manifest["grouping"] == "cad_index"
    assert manifest["has_masks"] is False and manifest["crop"]["flip"] is True
    assert built.objects == Counter(test=8, train=16)
    # Train: every object gives box + 1 jitter, each also flipped.
    assert manifest["counts"] == {"test": {"images": 8, "groups": 6}, "train": {"images": 64, "groups": 6}}
    expected_train = _double(TRAIN_SKIPS) + _double(BUILD_TRAIN_SKIPS)
    assert manifest["skipped"]["train"] == dict(expected_train)
    test = GroupedDataset(built.out, split="test")
    assert len(test) == 8 and test[0]["mask"] is None and (test.records["has_pose"] == 1).all()
    assert set(test.records["category"]) == {"car", "chair"}
    train = GroupedDataset(built.out, split="train")
    assert not set(train.records["group"]) & set(test.records["group"])  # groups never span splits
    for group in set(train.records["group"]):
        rows = train.records["group"] == group
        assert len(set(train.records["cad_index"][rows])) == 1
        assert len(set(train.records["category"][rows])) == 1


def _is_colour(pixels: np.ndarray, category: str) -> np.ndarray:
    pixels = pixels.astype(int)
    main = {"car": 0, "chair": 2}[category]
    others = [c for c in range(3) if c != main]
    return (pixels[..., main] > 60) & (pixels[..., main] > 1.6 * pixels[..., others].max(axis=-1))


@pytest.mark.parametrize("mode", ["pad", "stretch"])
def test_crops_contain_the_drawn_object(tree, index, tmp_path, mode):
    """Object pixels of each crop (from the pose's own silhouette) have the object's colour."""
    root, truth = tree
    config = CropConfig(size=48, resize=mode, margin=0.1)
    result = build_dataset(index, tmp_path / "ds", config)
    data = GroupedDataset(result.out, split="test")
    assert len(data) == 8
    for i in range(len(data)):
        sample = data[i]
        key = (sample["category"], sample["source"], Path(sample["image_file"]).stem, int(sample["object_index"]))
        t = truth[key]
        mask = fx.silhouette(sample["category"], t["cad"], t["pose"])
        x1, y1, x2, y2 = t["bbox"]
        mask_crop = crop_to_square(np.repeat(mask[..., None], 3, axis=2), (x1 - 1, y1 - 1, x2, y2),
                                   0.1, mode, 48)[..., 0]
        inside, outside = mask_crop > 200, mask_crop < 10
        coloured = _is_colour(sample["image"], sample["category"])
        assert inside.mean() > 0.15, key
        assert coloured[inside].mean() > 0.9, key
        assert coloured[outside].mean() < 0.1, key


def test_flip_keeps_crop_and_label_consistent(built):
    data = GroupedDataset(built.out, split="train")
    rec = data.records
    key = list(zip(rec["image_file"], rec["object_index"], rec["jitter"]))
    position = {(k, f): i for i, (k, f) in enumerate(zip(key, rec["flipped"]))}
    flipped_rows = np.flatnonzero(rec["flipped"] == 1)
    assert len(flipped_rows) == 32
    for i in flipped_rows:
        j = position[(key[i], 0)]
        assert np.array_equal(data.images([i])[0], np.fliplr(data.images([j])[0]))
        a, e, t = flip_viewpoint(rec["azimuth"][j], rec["elevation"][j], rec["theta"][j])
        assert np.allclose([rec["azimuth"][i], rec["elevation"][i], rec["theta"][i]], [a, e, t])
        assert rec["group"][i] == rec["group"][j]


def test_flip_rule_matches_the_camera_model(tree):
    """Silhouette under (360-a, e, -theta) and px -> W+1-px (1-based) = mirrored silhouette."""
    for (category, _, _, _), t in list(tree[1].items())[:6]:
        pose = t["pose"]
        a, e, th = (float(v) for v in flip_viewpoint(pose.azimuth, pose.elevation, pose.theta))
        mirrored = fx.Pose(a, e, th, pose.distance, fx.WIDTH + 1 - pose.px, pose.py)
        flipped = fx.silhouette(category, t["cad"], mirrored) > 0
        reference = np.fliplr(fx.silhouette(category, t["cad"], pose)) > 0
        assert (flipped & reference).sum() / (flipped | reference).sum() > 0.97
        wrong = fx.Pose(a, e, pose.theta, pose.distance, fx.WIDTH + 1 - pose.px, pose.py)
        if abs(pose.theta) > 3:  # keeping theta instead of negating it must not fit as well
            bad = fx.silhouette(category, t["cad"], wrong) > 0
            assert (bad & reference).sum() / (bad | reference).sum() < 0.97


def test_singleton_grouping(index, tmp_path):
    result = build_dataset(index, tmp_path / "ds", CropConfig(size=32, grouping="singletons"))
    counts = read_manifest(result.out)["counts"]
    assert counts == {"test": {"images": 8, "groups": 8}, "train": {"images": 16, "groups": 16}}


def test_wrong_root_names_the_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        index_dataset(tmp_path / "absent", ["car"])
    with pytest.raises(ValueError, match="missing Annotations"):
        index_dataset(tmp_path, ["car"])
    for name in ("Annotations", "Images", "Image_sets"):
        (tmp_path / name).mkdir()
    with pytest.raises(ValueError, match="missing PASCAL/VOCdevkit/VOC2012/ImageSets/Main"):
        index_dataset(tmp_path, ["car"])
    with pytest.raises(ValueError, match="unknown PASCAL3D\\+ categories \\['cars'\\]"):
        index_dataset(tmp_path, ["cars"])


def test_out_folder_must_be_new(index, built):
    with pytest.raises(ValueError, match="exists and is not empty"):
        build_dataset(index, built.out, CropConfig())


def test_cli_prints_counts_and_exits_by_usability(tree, tmp_path, capsys):
    from posenet_mlvae.cli import main

    root = tree[0]
    code = main(["pascal3d", "--root", str(root), "--category", "car", "--size", "32", "--out",
                 str(tmp_path / "car"), "--workers", "1", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "test: 4 objects -> 4 images" in out and "train: 8 objects -> 8 images" in out
    assert "skipped coarse_only_viewpoint: 1 objects" in out and "skipped file_not_mat: 1 files" in out
    assert err.count("skipped: ") == 8 and "2008_000014.mat: not a readable MAT file" in err
    assert main(["pascal3d", "--root", str(tmp_path / "nowhere"), "--category", "car", "--out",
                 str(tmp_path / "x"), "--no-progress"]) == 2
    # A tree whose only annotation is garbage: nothing usable -> exit 1.
    bad = tmp_path / "bad"
    for folder in ("Annotations/car_pascal", "Annotations/car_imagenet", "Images", "Image_sets",
                   "PASCAL/VOCdevkit/VOC2012/ImageSets/Main"):
        (bad / folder).mkdir(parents=True)
    (bad / "Annotations/car_pascal/2008_000001.mat").write_bytes(b"garbage")
    for name in ("PASCAL/VOCdevkit/VOC2012/ImageSets/Main/train.txt", "Image_sets/car_imagenet_train.txt"):
        (bad / name).write_text("2008_000001\n")
    for name in ("PASCAL/VOCdevkit/VOC2012/ImageSets/Main/val.txt", "Image_sets/car_imagenet_val.txt"):
        (bad / name).write_text("")
    assert main(["pascal3d", "--root", str(bad), "--category", "car", "--out", str(tmp_path / "y"),
                 "--workers", "1", "--no-progress"]) == 1
    assert "no usable object" in capsys.readouterr().err


def test_objectnet3d_through_the_same_code_path(tmp_path):
    truth = fx.make_objectnet3d_fixture(tmp_path)
    index = index_dataset(tmp_path, ["car", "chair"], workers=1)
    assert index.layout == "objectnet3d"
    assert index.kept() == {"train": Counter(car=2, chair=1), "test": Counter(chair=1)}
    assert index.skipped == {"train": Counter(other_class=1), "test": Counter(truncated=1),
                             "unassigned": Counter(file_not_in_split_lists=1)}
    for obj in index.objects:
        pose = truth[(obj.category, "objectnet3d", obj.image_id, obj.object_index)]["pose"]
        assert obj.azimuth == pose.azimuth % 360 and obj.elevation == pose.elevation
    assert [o.azimuth for o in index.objects if o.image_id == "n0001_2"] == [330.0]


def test_box_iou_by_hand():
    from data_tools.pascal3d.build import box_iou

    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)  # half-overlapping squares
    assert box_iou((0, 0, 10, 10), (2, 2, 8, 8)) == pytest.approx(36 / 100)  # one inside the other


def test_noisy_box_moves_each_side_by_its_draw_times_the_box_side():
    from data_tools.pascal3d.build import noisy_box

    box = (10.0, 20.0, 110.0, 70.0)  # 100 x 50
    draws = np.random.default_rng(7).normal(0.0, 0.1, size=4)
    moved = noisy_box(box, np.random.default_rng(7), 0.1)
    np.testing.assert_allclose(moved, (10 + 100 * draws[0], 20 + 50 * draws[1], 110 + 100 * draws[2],
                                       70 + 50 * draws[3]))
    assert noisy_box(box, np.random.default_rng(7), 0.0) == box
    # a draw that would collapse the box keeps the annotated one
    assert noisy_box((0.0, 0.0, 1.5, 1.5), np.random.default_rng(1), 30.0) == (0.0, 0.0, 1.5, 1.5)


def test_box_noise_cuts_test_objects_around_noisy_boxes_only(tree, index, tmp_path):
    from data_tools.pascal3d.build import box_iou, noisy_box

    plain = build_dataset(index, tmp_path / "plain", CropConfig(size=48))
    noisy = build_dataset(index, tmp_path / "noisy", CropConfig(size=48, box_noise=0.1, seed=3))
    assert read_manifest(noisy.out)["crop"]["box_noise"] == 0.1
    a, b = GroupedDataset(plain.out, split="test"), GroupedDataset(noisy.out, split="test")
    for column in ("image_file", "object_index", "azimuth", "elevation", "theta"):
        np.testing.assert_array_equal(a.records[column], b.records[column])  # same objects, same labels
    assert (a.records["box_iou"] == 1.0).all()
    assert (b.records["box_iou"] < 1.0).all() and (b.records["box_iou"] > 0.3).all()
    assert not np.array_equal(a.images(np.arange(len(a))), b.images(np.arange(len(b))))
    # each crop is the crop rule applied to the object's noisy box, drawn from the object's stream
    objects = sorted(index.objects, key=lambda o: ({"train": 0, "test": 1}[o.split], o.category, o.source,
                                                   o.image_id, o.object_index))
    first = next(p for p, o in enumerate(objects) if o.split == "test"
                 and Path(o.image_path).name == Path(b.records["image_file"][0]).name
                 and o.object_index == b.records["object_index"][0])
    obj = objects[first]
    box = noisy_box(obj.crop_box(), np.random.default_rng([3, first]), 0.1)
    np.testing.assert_array_equal(b.images(np.array([0]))[0],
                                  crop_to_square(load_image_rgb(obj.image_path), box, 0.1, "pad", 48))
    assert b.records["box_iou"][0] == pytest.approx(box_iou(box, obj.crop_box()))
    # training crops are untouched by the test boxes' noise
    ta, tb = GroupedDataset(plain.out, split="train"), GroupedDataset(noisy.out, split="train")
    np.testing.assert_array_equal(ta.images(np.arange(len(ta))), tb.images(np.arange(len(tb))))
    with pytest.raises(ValueError, match="box_noise"):
        CropConfig(box_noise=0.5)
