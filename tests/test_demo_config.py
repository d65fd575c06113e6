"""The demo's render plan (training instances grow with the budget, validation and test stay fixed) and
its time budget (the reserve after training grows on a machine that renders slowly)."""

from __future__ import annotations

import numpy as np
import pytest

from data_tools.render.plan import assign_splits
from posenet_mlvae.cli import main
from posenet_mlvae.demo import (AFTER_TRAINING_S, MAX_SLOWNESS, PASCAL_SCORING_S, REFERENCE_RENDER_RATE,
                                TRAIN_INSTANCES_PER_MINUTE, DemoConfig, after_training_s, main_render_config,
                                rendered_image_count)


@pytest.mark.parametrize("minutes, instances, train", [(12, None, 12 * TRAIN_INSTANCES_PER_MINUTE),
                                                       (3, None, 3 * TRAIN_INSTANCES_PER_MINUTE),
                                                       (7.5, None, round(7.5 * TRAIN_INSTANCES_PER_MINUTE)),
                                                       (12, 384, 384), (12, 16, 16)])
def test_the_build_has_exactly_the_asked_instances_per_split(minutes, instances, train):
    config = DemoConfig(minutes=minutes, instances=instances)
    assert config.train_instances == train
    build = main_render_config(config)
    splits = assign_splits(build.instances, build.splits, build.seed)
    counts = {name: int(np.sum(splits == name)) for name in ("train", "val", "test")}
    assert counts == {"train": train, "val": config.val_instances, "test": config.test_instances}


def test_the_old_default_build_is_reproduced_by_its_training_count():
    """--instances 384 renders the previous default (480 instances at 80/5/15 %): the same splits."""
    build = main_render_config(DemoConfig(instances=384))
    assert build.instances == 480
    assert np.array_equal(assign_splits(480, build.splits, 0), assign_splits(480, (0.8, 0.05, 0.15), 0))


def test_the_rendered_image_count_is_the_builds_views_and_the_grid_sets():
    config = DemoConfig()  # 12 min: 3,072 + 24 + 72 instances x 24 views, 30 grid instances x 96 views
    assert rendered_image_count(config) == 3168 * 24 + 30 * 96
    assert rendered_image_count(DemoConfig(instances=384, views=12)) == (384 + 24 + 72) * 12 + 30 * 96


@pytest.mark.parametrize("category", sorted(REFERENCE_RENDER_RATE))
def test_the_reserve_after_training_grows_with_a_slow_render_and_never_shrinks(category, tmp_path):
    (tmp_path / "Annotations").mkdir()
    config = DemoConfig(category=category)
    images = rendered_image_count(config)
    at_reference = images / REFERENCE_RENDER_RATE[category]  # seconds a reference machine renders them in
    assert after_training_s(config, images, at_reference) == pytest.approx(AFTER_TRAINING_S)
    assert after_training_s(config, images, 0.0) == AFTER_TRAINING_S  # a reused render: the usual reserve
    assert after_training_s(config, images, 0.5 * at_reference) == AFTER_TRAINING_S  # faster: not shrunk
    assert after_training_s(config, images, 1.6 * at_reference) == pytest.approx(1.6 * AFTER_TRAINING_S)
    assert after_training_s(config, images, 10 * at_reference) == pytest.approx(MAX_SLOWNESS * AFTER_TRAINING_S)
    scoring = DemoConfig(category=category, pascal_root=str(tmp_path))
    assert after_training_s(scoring, images, 2 * at_reference) == pytest.approx(
        2 * (AFTER_TRAINING_S + PASCAL_SCORING_S))


@pytest.mark.parametrize("args, message", [(["--instances", "8"], "at least 16 instances"),
                                           (["--views", "8"], "at least 9 views")])
def test_the_demo_refuses_a_plan_too_small_to_score(args, message, capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo"), *args]) == 2
    assert message in capsys.readouterr().out


def test_the_summary_shows_identity_from_one_view_galleries_and_from_enrolled_ones():
    from posenet_mlvae.demo import summary_table

    metrics = {"med_err_deg": 3.6, "acc_pi_6": 0.97, "acc_pi_18": 0.88, "diagnostics": {
        "retrieval": {"1": {"top1": 0.347, "chance": 1 / 72}, "8": {"top1": 0.486, "chance": 1 / 72}},
        "retrieval_enrolled": {"8": {"top1": 0.812}}}}
    rows = {name: (value, target) for name, value, target in summary_table(metrics, None, None)}
    assert rows["identity top-1 from group latent, 1 view"] == ("34.7 % (chance 1.4 %)", ">= 50 %")
    assert rows["identity top-1 from group latent, 8 views"] == ("48.6 % (chance 1.4 %)", ">= 80 %")
    assert rows["identity top-1, 8 views, gallery enrolled from 8 views"] == ("81.2 %", "")
    assert not any("clean views" in name for name in rows)  # the records did not say
    metrics["per_condition"] = {"clean": {"med_err_deg": 2.914, "acc_pi_6": 0.9912, "n": 1150}}
    rows = {name: value for name, value, _ in summary_table(metrics, None, None)}
    assert rows["clean views: MedErr / Acc@pi/6"] == "2.91 deg / 99.1 % (1150 full-size views, not occluded or truncated)"
    del metrics["diagnostics"]["retrieval_enrolled"]
    rows = {name: value for name, value, _ in summary_table(metrics, None, None)}
    assert rows["identity top-1, 8 views, gallery enrolled from 8 views"] == "n/a"


def test_data_rendered_with_other_settings_is_rendered_again_and_the_same_is_reused(tmp_path, capsys):
    """A demo rerun after an update replaces its stale renders (its own cache) instead of refusing them."""
    from dataclasses import replace

    from data_tools.dataset import read_manifest
    from data_tools.render.build import build_synthetic, other_build
    from posenet_mlvae.demo import render_datasets

    config = DemoConfig(instances=16, val_instances=1, test_instances=1, views=9, grid_instances=1)
    wanted = main_render_config(config)
    main_dir = tmp_path / "data" / "car_64"
    build_synthetic(replace(wanted, box_jitter=0.0), main_dir, workers=1, progress=False, report=lambda _: None)
    assert other_build(wanted, main_dir) is not None
    with pytest.raises(ValueError, match="holds a build with a different config"):
        build_synthetic(wanted, main_dir, workers=1, progress=False)

    assert render_datasets(config, tmp_path / "data")[0] == main_dir
    assert "car_64 was rendered with other settings (an earlier version's): rendering it again" in capsys.readouterr().out
    assert read_manifest(main_dir)["config"] == wanted.to_json() and other_build(wanted, main_dir) is None
    chunks = {path: path.stat().st_mtime_ns for path in (main_dir / "chunks").rglob("*") if path.is_file()}
    render_datasets(config, tmp_path / "data")  # the same settings: reused as it is, nothing rendered
    assert "rendering it again" not in capsys.readouterr().out
    assert chunks and {path: path.stat().st_mtime_ns for path in chunks} == chunks
