"""Photo-like renders: every appearance factor changes the pixels but never the labels, and the
recorded object box, cut by the crop rule, is the rendered silhouette's (independent truth: the
mask the renderer drew and the projected mesh vertices)."""

import numpy as np
import pytest

from data_tools.dataset import GroupedDataset, read_manifest
from data_tools.image.preprocess import CropRule, crop_box
from data_tools.meshes.car import car_params
from data_tools.render.build import build_synthetic
from data_tools.render.plan import APPEARANCE_FACTORS, SyntheticConfig
from gl_support import needs_egl

pytestmark = needs_egl

# 128 px: a half-pixel rounding of a small box costs a few % of IoU at 64 px
BASE = SyntheticConfig(instances=4, views=8, size=128, seed=11, splits=(0.5, 0.25, 0.25))
SIZE = BASE.size
LABELS = ("azimuth", "elevation", "theta", "distance", "box_x1", "box_y1", "box_x2", "box_y2",
          "jitter_x1", "jitter_y1", "jitter_x2", "jitter_y2", "truncated")


def _build(tmp_path_factory, name: str, **changes) -> GroupedDataset:
    root = tmp_path_factory.mktemp(name) / "data"
    config = SyntheticConfig(**{**BASE.to_json(), "splits": BASE.splits, **changes})
    build_synthetic(config, root, progress=False, report=lambda line: None)
    return GroupedDataset(root)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    return _build(tmp_path_factory, "full")


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return ix * iy / (area(a) + area(b) - ix * iy)


def _mask_box(mask):
    ys, xs = np.nonzero(mask)
    return (xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0)


def _row_box(records, i, prefix="box"):
    return tuple(float(records[f"{prefix}_{c}"][i]) for c in ("x1", "y1", "x2", "y2"))


def test_recorded_box_is_the_visible_silhouette_and_the_rule_cuts_the_image(full):
    records = full.records
    rule = CropRule.from_json(read_manifest(full.root)["crop_rule"])
    assert rule == CropRule()
    ious = []
    for i in range(len(full)):
        # The image is the rule's crop around the jittered box ...
        region = crop_box(_row_box(records, i, "jitter"), rule.margin, rule.mode)
        np.testing.assert_allclose(region, (0, 0, SIZE, SIZE), atol=1e-6)
        if records["occluded"][i] > 0:
            continue
        # ... and the recorded (visible, border-clipped) box is the mask's.
        # (an inward-jittered box lets the object run past the crop: compare inside the image)
        ious.append(_box_iou(_mask_box(full[i]["mask"]), np.clip(_row_box(records, i), 0, SIZE)))
    assert len(ious) >= 16 and min(ious) > 0.95, ious


def test_manifest_records_the_rule_and_the_factors(tmp_path_factory):
    data = _build(tmp_path_factory, "rule", crop_mode="stretch", crop_margin=0.2,
                  appearance_off=("camera", "occluders"))
    manifest = read_manifest(data.root)
    assert manifest["crop_rule"] == {"mode": "stretch", "margin": 0.2}
    assert manifest["config"]["appearance_off"] == ["occluders", "camera"]
    records = data.records
    widths = records["box_x2"] - records["box_x1"]
    heights = records["box_y2"] - records["box_y1"]
    clean = (records["truncated"] == 0) & (np.abs(records["jitter_x1"] - records["box_x1"]) < 1e-9)
    # stretch fills both sides: an untruncated, unjittered box spans 1 / 1.4 of each side
    if clean.any():
        np.testing.assert_allclose(widths[clean], SIZE / 1.4, atol=1e-6)
        np.testing.assert_allclose(heights[clean], SIZE / 1.4, atol=1e-6)


@pytest.mark.parametrize("factor", APPEARANCE_FACTORS)
def test_each_factor_changes_pixels_not_labels(full, tmp_path_factory, factor):
    off = _build(tmp_path_factory, f"no_{factor}", appearance_off=(factor,))
    n = len(full)
    rows = np.arange(n)
    assert len(off) == n
    for name in ("azimuth", "elevation", "theta", "distance"):
        np.testing.assert_array_equal(full.records[name], off.records[name], err_msg=name)
    a, b = full.images(rows), off.images(rows)
    masks_on, masks_off = full.masks(rows) > 0, off.masks(rows) > 0
    if factor == "truncation":  # a framing factor: only the truncated views change
        cut = full.records["truncated"] == 1
        assert cut.any() and off.records["truncated"].sum() == 0
        assert np.array_equal(a[~cut], b[~cut]) and np.array_equal(masks_on[~cut], masks_off[~cut])
        assert all(np.any(a[k] != b[k]) for k in np.nonzero(cut)[0])
        return
    if factor == "shapes":  # rounded bodies change the mesh a little, so its box, not the pose;
        # a sports car becomes the variant drawn before it (another body): only its pose stays
        sports = np.array([car_params(np.random.default_rng(int(name.split("_")[1]))).variant == "sports"
                           for name in full.records["instance"]])
        assert sports.any() and not sports.all()
        for k in rows[~sports]:
            assert _box_iou(_row_box(full.records, k), _row_box(off.records, k)) > 0.85
        assert np.mean(np.any(a != b, axis=-1)) > 0.02
        return
    for name in LABELS:
        np.testing.assert_array_equal(full.records[name], off.records[name], err_msg=name)
    assert np.mean(np.any(a != b, axis=-1)) > 0.02, f"switching {factor} off changed almost nothing"
    if factor == "occluders":  # occluders only ever hide object pixels
        assert np.all(masks_on <= masks_off)
        assert (full.records["occluded"] > 0).any() and np.all(off.records["occluded"] == 0)
        hidden = full.records["occluded"] > 0
        # the unoccluded mask still matches the recorded (projected-vertex) box
        for k in np.nonzero(hidden)[0]:
            assert _box_iou(_mask_box(masks_off[k]), np.clip(_row_box(off.records, k), 0, SIZE)) > 0.95
        return
    # shading, textures, lighting, backgrounds and camera effects never move the silhouette
    for k in rows:
        inter = (masks_on[k] & masks_off[k]).sum()
        union = (masks_on[k] | masks_off[k]).sum()
        assert inter / union > 0.97, (factor, k, inter / union)


def test_small_objects_soften_the_views_not_their_labels_or_masks(tmp_path_factory):
    none = _build(tmp_path_factory, "small_none", small_objects=0.0)
    every = _build(tmp_path_factory, "small_all", small_objects=1.0)
    assert read_manifest(every.root)["config"]["small_objects"] == 1.0
    assert np.all(none.records["shrink"] == 1.0) and np.all(every.records["shrink"] >= 1.5 - 0.1)
    rows = np.arange(len(none))
    for name in LABELS:
        np.testing.assert_array_equal(none.records[name], every.records[name], err_msg=name)
    np.testing.assert_array_equal(none.masks(rows), every.masks(rows))
    a, b = none.images(rows).astype(float), every.images(rows).astype(float)
    detail = lambda x: np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))  # noqa: E731  per view
    assert np.all(np.any(a != b, axis=(1, 2, 3)))
    assert detail(b).mean() < 0.7 * detail(a).mean()
    assert np.mean(detail(b) < detail(a)) > 0.9


def test_render_command_records_the_small_objects_share_and_box_jitter_and_refuses_bad_ones(tmp_path, capsys):
    from posenet_mlvae.cli import main

    common = ["render", "--instances", "2", "--views", "2", "--size", "64", "--splits", "0.5", "0.0", "0.5",
              "--no-progress"]
    assert main([*common, "--small-objects", "0.5", "--box-jitter", "0.06", "--out", str(tmp_path / "ok")]) == 0
    config = read_manifest(tmp_path / "ok")["config"]
    assert (config["small_objects"], config["box_jitter"]) == (0.5, 0.06)
    assert main([*common, "--small-objects", "1.5", "--out", str(tmp_path / "bad")]) == 2
    assert "small_objects (a share of the views) must be in [0, 1], got 1.5" in capsys.readouterr().err
    assert main([*common, "--box-jitter", "0.5", "--out", str(tmp_path / "bad")]) == 2
    assert "box_jitter (a fraction of the box side) must be in [0, 0.15], got 0.5" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
