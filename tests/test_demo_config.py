"""The demo's render plan: training instances grow with the budget, validation and test stay fixed."""

from __future__ import annotations

import numpy as np
import pytest

from data_tools.render.plan import assign_splits
from posenet_mlvae.cli import main
from posenet_mlvae.demo import TRAIN_INSTANCES_PER_MINUTE, DemoConfig, main_render_config


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


@pytest.mark.parametrize("args, message", [(["--instances", "8"], "at least 16 instances"),
                                           (["--views", "8"], "at least 9 views")])
def test_the_demo_refuses_a_plan_too_small_to_score(args, message, capsys, tmp_path):
    assert main(["demo", "--out", str(tmp_path / "demo"), *args]) == 2
    assert message in capsys.readouterr().out
