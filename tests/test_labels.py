"""Semi-supervised training: --label-fraction keeps labels on chosen groups, the rest train the ELBO only."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from data_tools.sampler import GroupBatchSampler
from posenet_mlvae.config import DataConfig, TrainConfig
from posenet_mlvae.network.losses import mlvae_loss
from posenet_mlvae.network.model import build_model
from posenet_mlvae.toy_data import write_toy_dataset
from posenet_mlvae.training.data import load_split, make_batch
from posenet_mlvae.training.labels import (choose_labelled_groups, keep_labels, labelled_repeats,
                                           labelled_rows_only)
from posenet_mlvae.training.train import fit
import tiny_training
from tiny_training import TINY, toy_dataset

FAST = replace(tiny_training.FAST, checkpoint_every_steps=100, val_max_images=48)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return toy_dataset(tmp_path_factory, views=6, val_groups=2)


def test_exactly_the_chosen_groups_keep_labels_and_the_choice_is_fixed_per_seed(toy):
    data = load_split([str(toy)], "train", 64)
    groups = np.unique(data.group)
    chosen = choose_labelled_groups(data.group, data.has_pose, 0.25, seed=3)
    assert len(chosen) == round(0.25 * len(groups)) and set(chosen) <= set(groups)
    np.testing.assert_array_equal(chosen, choose_labelled_groups(data.group, data.has_pose, 0.25, seed=3))
    assert any(not np.array_equal(chosen, choose_labelled_groups(data.group, data.has_pose, 0.25, seed=s))
               for s in range(4, 8))
    kept = keep_labels(data, 0.25, seed=3)
    np.testing.assert_array_equal(kept.has_pose, np.isin(data.group, chosen))  # whole groups, nothing else
    assert keep_labels(data, 1.0, seed=3) is data
    assert len(choose_labelled_groups(data.group, data.has_pose, 0.001, seed=0)) == 1  # never none


def test_label_fraction_outside_0_1_is_refused(toy):
    with pytest.raises(ValueError, match="label_fraction"):
        TrainConfig(label_fraction=0.0)
    data = load_split([str(toy)], "train", 64)
    with pytest.raises(ValueError, match="no training group has pose labels"):
        choose_labelled_groups(data.group, np.zeros_like(data.has_pose), 0.5, seed=0)


def test_unlabelled_batch_gives_the_pose_head_no_gradient(toy):
    torch.manual_seed(0)
    data = keep_labels(load_split([str(toy)], "train", 64), 0.25, seed=0)
    model = build_model(TINY).train()
    unlabelled = np.flatnonzero(~data.has_pose)[:8]
    labelled = np.flatnonzero(data.has_pose)[:8]
    for rows, expect_zero in ((unlabelled, True), (labelled, False)):
        batch = make_batch(data, rows, torch.device("cpu"), None)
        output = model(batch.images, batch.group)
        terms = mlvae_loss(output, batch.images, batch.azimuth, batch.elevation, batch.theta, batch.has_pose,
                           model.pose_head.angle_mean, model.pose_head.angle_std, lambda_pose=1000.0)
        model.zero_grad()
        terms.total.backward()
        head = torch.cat([p.grad.flatten() for p in model.pose_head.parameters()])
        assert (float(head.abs().max()) == 0.0) == expect_zero
        assert float(terms.neg_elbo.detach()) > 0  # the ELBO trains either way


def test_labelled_groups_are_repeated_to_fill_their_share_of_the_batches(toy):
    data = keep_labels(load_split([str(toy)], "train", 64), 0.1, seed=0)
    repeats = labelled_repeats(data, 0.5)
    labelled = set(np.unique(data.group[data.has_pose]).tolist())
    assert set(repeats) == labelled and len(set(repeats.values())) == 1
    sampler = GroupBatchSampler(data.group, 4, 3, seed=0, group_repeats=repeats)
    dealt = np.concatenate(list(sampler))
    share = np.isin(data.group[dealt], list(labelled)).mean()
    assert 0.35 < share < 0.65, share
    plain = np.concatenate(list(GroupBatchSampler(data.group, 4, 3, seed=0)))
    assert np.isin(data.group[plain], list(labelled)).mean() < 0.2
    assert labelled_repeats(load_split([str(toy)], "train", 64), 0.5) == {}  # all labelled: no repeats


def test_direct_variant_trains_on_the_labelled_groups_alone(toy):
    data = keep_labels(load_split([str(toy)], "train", 64), 0.25, seed=0)
    only = labelled_rows_only(data)
    assert only.has_pose.all() and len(only) == int(data.has_pose.sum())
    np.testing.assert_array_equal(only.gather(np.arange(len(only))), data.gather(np.flatnonzero(data.has_pose)))


def test_fit_with_a_label_fraction_logs_it_and_mixes_an_unlabelled_dataset(toy, tmp_path, capsys):
    unlabelled = write_toy_dataset(tmp_path / "video", groups=6, views=6, val_groups=0, seed=5, has_pose=False)
    config = replace(FAST, steps=6, label_fraction=0.2)
    summary = fit(TINY, config, DataConfig(data_dirs=(str(toy), str(unlabelled))), tmp_path / "run", progress=False)
    assert summary["status"] == "done"
    log = capsys.readouterr().out
    assert "4 of 24 groups (16.7 %) labelled" in log and "dealt up to" in log, log


def test_bench_labels_runs_end_to_end_and_writes_its_table_and_plot(tmp_path, capsys):
    from posenet_mlvae.cli import main

    data = write_toy_dataset(tmp_path / "data", groups=24, views=6, val_groups=2, test_groups=4, seed=1)
    argv = ["bench", "labels", "--data", str(data), "--steps", "2", "--seeds", "2", "--variants", "mlvae", "direct",
            "--fractions", "0.2", "1", "--out", str(tmp_path / "study"), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    table = (tmp_path / "study" / "labels.md").read_text()
    assert "| mlvae | 20 % | 2 | 2 |" in table and "| direct | 100 % | 2 | 2 |" in table, table
    rows = json.loads((tmp_path / "study" / "labels.json").read_text())["rows"]
    assert len(rows) == 4 and all(len(r["renders_med_err_deg"]["values"]) == 2 for r in rows)
    for row in rows:  # the table's mean and spread are those of the runs' own scores
        values = row["renders_med_err_deg"]["values"]
        assert row["renders_med_err_deg"]["mean"] == pytest.approx(np.mean(values))
    png = (tmp_path / "study" / "labels.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and "mlvae" in out
    assert main(argv) == 0  # a second start reuses every finished run
    assert capsys.readouterr().out.count("done earlier, reused") == 8


def test_image_folders_make_an_unlabelled_group_per_object_that_trains_with_renders(toy, tmp_path, capsys):
    import cv2

    from data_tools.dataset import GroupedDataset
    from posenet_mlvae.cli import main

    rng = np.random.default_rng(0)
    for obj in ("mug-a", "mug-b"):
        (tmp_path / "objects" / obj).mkdir(parents=True)
        for k in range(3):
            cv2.imwrite(str(tmp_path / "objects" / obj / f"{k}.png"), rng.integers(0, 255, (40, 50, 3), np.uint8))
    (tmp_path / "objects" / "mug-b" / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "boxes.csv").write_text("file,x1,y1,x2,y2\nmug-a/0.png,5,5,30,35\n")
    out = tmp_path / "mine"
    assert main(["image-folders", str(tmp_path / "objects"), "--out", str(out), "--category", "car",
                 "--boxes", str(tmp_path / "boxes.csv")]) == 0
    printed = capsys.readouterr().out
    assert "bad.jpg" in printed and "2 groups (objects), 6 images" in printed and "1 skipped" in printed
    dataset = GroupedDataset(out, split="train")
    records = dataset.records
    assert len(dataset) == 6 and not records["has_pose"].any() and len(np.unique(records["group"])) == 2
    assert dataset.manifest["crop_rule"] == {"mode": "pad", "margin": 0.1}
    first = cv2.cvtColor(cv2.imread(str(tmp_path / "objects" / "mug-a" / "0.png")), cv2.COLOR_BGR2RGB)
    from data_tools.image.preprocess import crop_to_square

    np.testing.assert_array_equal(dataset.images([0])[0], crop_to_square(first, (5, 5, 30, 35), 0.1, "pad", 64))
    assert main(["image-folders", str(tmp_path / "objects"), "--out", str(out)]) == 2  # never over a dataset
