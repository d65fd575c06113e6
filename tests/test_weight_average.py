"""The weights' EMA: its recursion against a hand-computed one, and its place in training and resume."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from posenet_mlvae.config import DataConfig, TrainConfig
from posenet_mlvae.training.checkpoint import load_checkpoint, read_checkpoint
from posenet_mlvae.training.data import load_split
from posenet_mlvae.training.train import fit, loss_weights
from posenet_mlvae.training.validation import validate
from posenet_mlvae.training.weight_average import warmed_up_decay, weight_average
import tiny_training
from tiny_training import TINY, toy_dataset

FAST = replace(tiny_training.FAST, checkpoint_every_steps=3, val_max_images=48, ema_decay=0.9)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return toy_dataset(tmp_path_factory)


def test_the_decay_warms_up_then_holds():
    assert warmed_up_decay(0.999, 0) == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    assert warmed_up_decay(0.999, 90) == pytest.approx(0.91)  # 91 / 100
    assert warmed_up_decay(0.999, 100_000) == 0.999


def test_the_average_follows_the_hand_computed_recursion():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    average = weight_average(model, decay=0.5)
    expected = None
    for n, value in enumerate([1.0, 3.0, -2.0, 5.0, 0.5, 7.0, 2.0, 4.0, -1.0, 6.0, 3.0, 9.0, 1.0]):
        with torch.no_grad():
            model[0].weight.fill_(value)
            model[1].running_mean.fill_(2 * value)
        model[1].num_batches_tracked.fill_(n + 1)
        average.update_parameters(model)
        d = warmed_up_decay(0.5, n)  # n earlier updates; the first update copies
        expected = value if expected is None else d * expected + (1 - d) * value
        assert torch.allclose(average.module[0].weight, torch.full((2, 2), expected), atol=1e-6), n
        assert torch.allclose(average.module[1].running_mean, torch.full((2,), 2 * expected), atol=1e-6), n
        assert int(average.module[1].num_batches_tracked) == n + 1  # a count: copied, never averaged
    assert d == 0.5  # the late updates used the full decay


def test_off_is_none_and_a_bad_decay_is_refused():
    assert weight_average(nn.Linear(1, 1), 0.0) is None
    with pytest.raises(ValueError, match="ema_decay=1.0"):
        TrainConfig(ema_decay=1.0)


def test_training_saves_the_average_as_the_model_and_resumes_it_exactly(toy, tmp_path):
    data = DataConfig(data_dirs=(str(toy),))
    config = replace(FAST, steps=10)
    straight = fit(TINY, config, data, tmp_path / "straight", progress=False)
    fit(TINY, config, data, tmp_path / "paused", stop_at_step=5, progress=False)
    fit(TINY, config, data, tmp_path / "paused", resume=True, progress=False)
    a, b = read_checkpoint(tmp_path / "straight" / "last.pt"), read_checkpoint(tmp_path / "paused" / "last.pt")
    assert a["average_updates"] == b["average_updates"] == 10
    for weights in ("model", "training_model"):
        for key in a[weights]:
            torch.testing.assert_close(a[weights][key], b[weights][key], rtol=1e-5, atol=1e-6, msg=f"{weights} {key}")
    moved = [k for k in a["model"] if a["model"][k].is_floating_point()
             and not torch.equal(a["model"][k], a["training_model"][k])]
    assert moved, "the average equals the training weights"
    model, _ = load_checkpoint(tmp_path / "straight" / "last.pt")  # what evaluate and export read
    assert all(torch.equal(v, a["model"][k]) for k, v in model.state_dict().items())
    assert straight["last_val"]["med_err_deg"] == a["val"]["med_err_deg"]  # validation scored the average
    # ... checked independently: re-validating each weight set, only the average reproduces it.
    val_data = load_split([str(toy)], "val", TINY.image_size)
    scores = {}
    for weights in ("model", "training_model"):
        net, _ = load_checkpoint(tmp_path / "straight" / "last.pt")
        net.load_state_dict(a[weights])
        scores[weights] = validate(net, val_data, torch.device("cpu"), loss_weights(config), config.val_max_images,
                                   background_weight=config.background_weight)["neg_elbo"]
    assert scores["model"] == pytest.approx(a["val"]["neg_elbo"], rel=1e-6)
    assert scores["training_model"] != pytest.approx(a["val"]["neg_elbo"], rel=1e-6)


def test_a_run_without_an_average_resumes_into_one_from_its_weights(toy, tmp_path):
    data = DataConfig(data_dirs=(str(toy),))
    run = tmp_path / "run"
    fit(TINY, replace(FAST, steps=4, ema_decay=0.0), data, run, progress=False)
    plain = read_checkpoint(run / "last.pt")
    assert "training_model" not in plain
    fit(TINY, replace(FAST, steps=4, ema_decay=0.9), data, run, resume=True, progress=False)  # nothing to train
    resumed = read_checkpoint(run / "last.pt")
    for key, value in plain["model"].items():
        assert torch.equal(resumed["model"][key], value), key  # the average starts from the saved weights
        assert torch.equal(resumed["training_model"][key], value), key
