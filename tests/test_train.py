"""Training loop in one process: learning, exact resume, checkpoints, stops, CLI, crop rules (DDP: test_train_ddp)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from data_tools.atomic_write import atomic_write_json
from data_tools.image.preprocess import CropRule
from posenet_mlvae.training.checkpoint import read_checkpoint
from posenet_mlvae.cli import main as cli_main
from posenet_mlvae.config import DataConfig, TrainConfig, load_configs
from posenet_mlvae.training.data import load_split
from posenet_mlvae.inference import load_inference_module
from posenet_mlvae.toy_data import write_toy_dataset
from posenet_mlvae.training.train import fit

from eval.metrics import viewpoint_errors_deg
import tiny_training
from tiny_training import TINY, toy_dataset

FAST = replace(tiny_training.FAST, checkpoint_every_steps=3, val_max_images=48)


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return toy_dataset(tmp_path_factory)


def weights(run: Path, name: str = "last.pt") -> dict[str, torch.Tensor]:
    return read_checkpoint(run / name)["model"]


def training_error_deg(run: Path, data_dir: Path) -> float:
    """Median viewpoint error of the run's last weights on its own training images."""
    module, _ = load_inference_module(run / "last.pt")
    data = load_split([str(data_dir)], "train", 64)
    images = torch.from_numpy(data.images).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        azimuth, elevation, theta = module(images)[:3]
    errors = viewpoint_errors_deg(azimuth.numpy(), elevation.numpy(), theta.numpy(), data.azimuth,
                                  data.elevation, data.theta)
    return float(np.median(errors))


def test_learns_pose_and_the_elbo_falls(toy, tmp_path):
    run = tmp_path / "learn"
    config = replace(FAST, steps=300, warmup_steps=20, checkpoint_every_steps=1000)
    fit(TINY, replace(config, steps=1, lr=1e-9), DataConfig(data_dirs=(str(toy),)), tmp_path / "untrained",
        progress=False)
    before = training_error_deg(tmp_path / "untrained", toy)
    summary = fit(TINY, config, DataConfig(data_dirs=(str(toy),), color_jitter=0.1), run, progress=False)
    after = training_error_deg(run, toy)
    assert summary["status"] == "done" and summary["step"] == 300
    assert before > 60 and after < 30, (before, after)
    rows = [line.split(",") for line in (run / "metrics.csv").read_text().splitlines()]
    header, train_rows = rows[0], [r for r in rows[1:] if r[0] == "train"]
    neg_elbo = [float(r[header.index("neg_elbo")]) for r in train_rows]
    assert np.mean(neg_elbo[-3:]) < 0.85 * neg_elbo[0], neg_elbo  # the first row averages steps 1-20
    assert (run / "best.pt").is_file() and (run / "config.json").is_file() and list((run / "tb").iterdir())


def test_resume_n_plus_n_equals_2n(toy, tmp_path):
    config = replace(FAST, steps=10)  # 4 batches per epoch: the pause at 5 falls inside epoch 1
    data = DataConfig(data_dirs=(str(toy),))
    straight = fit(TINY, config, data, tmp_path / "straight", progress=False)
    paused = fit(TINY, config, data, tmp_path / "paused", stop_at_step=5, progress=False)
    assert paused["status"] == "stopped" and read_checkpoint(tmp_path / "paused" / "last.pt")["step"] == 5
    resumed = fit(TINY, config, data, tmp_path / "paused", resume=True, progress=False)
    assert straight["step"] == resumed["step"] == 10
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "paused")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def test_half_written_checkpoint_is_never_used(toy, tmp_path):
    run = tmp_path / "run"
    fit(TINY, replace(FAST, steps=6), DataConfig(data_dirs=(str(toy),)), run, stop_at_step=3, progress=False)
    good = weights(run)
    (run / ".last.pt.tmp-99999").write_bytes(b"PK\x03\x04 half a zip")  # a writer killed mid-way
    summary = fit(TINY, replace(FAST, steps=6), DataConfig(data_dirs=(str(toy),)), run, resume=True, progress=False)
    assert summary["step"] == 6
    assert any(not torch.equal(good[k], v) for k, v in weights(run).items())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes((run / "last.pt").read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated.pt: not a readable checkpoint"):
        read_checkpoint(truncated)


def test_non_finite_loss_stops_and_names_step_and_term(toy, tmp_path, capsys):
    run = tmp_path / "nan"
    fit(TINY, replace(FAST, steps=4), DataConfig(data_dirs=(str(toy),)), run, stop_at_step=2, progress=False)
    before = weights(run)
    # resume the same run with a loss weight that turns the reconstruction term into NaN
    from posenet_mlvae.config import save_configs
    save_configs(run / "config.json", TINY, replace(FAST, steps=4, recon_weight=float("nan")),
                 DataConfig(data_dirs=(str(toy),)))
    model_config, train_config, data_config = load_configs(run / "config.json")
    summary = fit(model_config, train_config, data_config, run, resume=True, progress=False)
    out = capsys.readouterr().out + capsys.readouterr().err
    assert summary["status"] == "non-finite"
    assert "non-finite loss at step 3: term 'neg_elbo'" in out or "non-finite loss at step 3: term 'recon'" in out
    after = weights(run)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the last good checkpoint is kept


def test_cli_train_and_sigterm_writes_a_checkpoint(toy, tmp_path):
    run = tmp_path / "cli"
    code = cli_main(["train", "--data", str(toy), "--out", str(run), "--steps", "2", "--width", "8",
                     "--groups-per-batch", "4", "--no-progress", "--threads", "1"])
    assert code == 0 and read_checkpoint(run / "last.pt")["step"] == 2
    model_config, train_config, _ = load_configs(run / "config.json")
    assert model_config.width == 8 and train_config.steps == 2
    assert cli_main(["train", "--out", str(run), "--resume", "--lr", "1"]) == 2  # a resumed run keeps its config
    long_run = tmp_path / "sigterm"
    process = subprocess.Popen([sys.executable, "-m", "posenet_mlvae.cli", "train", "--data", str(toy), "--out",
                                str(long_run), "--steps", "100000", "--width", "8", "--groups-per-batch", "4",
                                "--no-progress", "--threads", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while not (long_run / "best.pt").is_file() and time.time() < deadline:  # training is under way
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 0, output
    assert "stopped" in output
    state = read_checkpoint(long_run / "last.pt")
    assert 0 < state["step"] < 100000


def test_mixes_renders_with_pascal3d_crops_and_trains_without_a_val_split(toy, tmp_path, capsys):
    """PASCAL3D+ datasets have train/test only: mixing works, and alone they train unvalidated."""
    from data_tools.pascal3d import miniature as fx

    from data_tools.pascal3d.protocol import index_dataset
    from data_tools.pascal3d.build import CropConfig, build_dataset

    root = tmp_path / "PASCAL3D+_release1.1"
    fx.make_pascal3d_fixture(root)
    real = build_dataset(index_dataset(root, ["car"], workers=1), tmp_path / "p3d", CropConfig(size=64), workers=1).out
    mixed = load_split([str(toy), str(real)], "train", 64)
    assert len(np.unique(mixed.group)) == len(np.unique(load_split([str(toy)], "train", 64).group)) + \
        len(np.unique(load_split([str(real)], "train", 64).group))  # group ids kept apart
    config = replace(FAST, steps=4, groups_per_batch=2, views_per_group=2)
    summary = fit(TINY, config, DataConfig(data_dirs=(str(toy), str(real))), tmp_path / "mixed", progress=False)
    assert summary["status"] == "done" and (tmp_path / "mixed" / "best.pt").is_file()
    summary = fit(TINY, config, DataConfig(data_dirs=(str(real),)), tmp_path / "real", progress=False)
    assert summary["status"] == "done" and (tmp_path / "real" / "best.pt").is_file()
    assert "no 'val' split" in capsys.readouterr().out


def with_crop_rule(root: Path, rule: dict | None) -> Path:
    """Set (or, with None, remove as in datasets made before rules were recorded) the manifest's crop rule."""
    manifest = json.loads((root / "manifest.json").read_text())
    manifest.pop("crop_rule", None)
    atomic_write_json(root / "manifest.json", manifest if rule is None else {**manifest, "crop_rule": rule})
    return root


def test_crop_rule_of_the_datasets_is_recorded_and_kept_on_resume(tmp_path):
    pad = CropRule("pad", 0.1).to_json()
    framed = with_crop_rule(write_toy_dataset(tmp_path / "framed", groups=8, views=8, val_groups=2), pad)
    unrecorded = write_toy_dataset(tmp_path / "old", groups=8, views=8, val_groups=2, seed=1)  # agrees with any
    data, config, run = DataConfig(data_dirs=(str(framed), str(unrecorded))), replace(FAST, steps=4), tmp_path / "run"
    fit(TINY, config, data, run, stop_at_step=2, progress=False)
    assert read_checkpoint(run / "last.pt")["crop_rule"] == pad
    with_crop_rule(framed, None)  # the run keeps its rule though the manifest no longer records it
    assert fit(TINY, config, data, run, resume=True, progress=False)["step"] == 4
    assert read_checkpoint(run / "last.pt")["crop_rule"] == read_checkpoint(run / "best.pt")["crop_rule"] == pad
    assert CropRule.from_json(read_checkpoint(run / "last.pt")["crop_rule"]) == CropRule("pad", 0.1)
    with_crop_rule(framed, CropRule("stretch", 0.0).to_json())  # rebuilt with another rule: refused
    with pytest.raises(ValueError, match="crops made with pad with margin 0.1 but its datasets now record stretch"):
        fit(TINY, replace(config, steps=6), data, run, resume=True, progress=False)
    fit(TINY, replace(FAST, steps=1), DataConfig(data_dirs=(str(unrecorded),)), tmp_path / "old_run", progress=False)
    assert read_checkpoint(tmp_path / "old_run" / "last.pt")["crop_rule"] is None


def test_datasets_cropped_differently_are_refused_naming_both(tmp_path):
    pad = with_crop_rule(write_toy_dataset(tmp_path / "pad", groups=4, views=4), CropRule("pad", 0.1).to_json())
    stretch = with_crop_rule(write_toy_dataset(tmp_path / "stretch", groups=4, views=4, seed=1),
                             CropRule("stretch", 0.0).to_json())
    pattern = f"{re.escape(str(pad))} with pad with margin 0.1, {re.escape(str(stretch))} with stretch with margin 0;"
    with pytest.raises(ValueError, match=pattern):
        fit(TINY, replace(FAST, steps=1), DataConfig(data_dirs=(str(pad), str(stretch))), tmp_path / "run",
            progress=False)
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_bench_train_times_the_training_step_of_fit(toy, monkeypatch):
    """`bench train` times train.train_step with the run's default configs, and that step updates the model."""
    import posenet_mlvae.training.train as train
    from posenet_mlvae.commands.benches.train import _training_step_timer

    calls, real_step = [], train.train_step
    monkeypatch.setattr(train, "train_step", lambda state, batch, tc, *args: calls.append((state, batch, tc))
                        or real_step(state, batch, tc, *args))
    step = _training_step_timer(load_split([str(toy)], "train", 64), TINY)
    assert step() > 0
    state, batch, train_config = calls[0]
    before = {k: v.clone() for k, v in state.model.named_parameters()}
    assert step() > 0 and len(calls) == 2
    assert train_config == TrainConfig()
    assert batch.images.shape[0] == TrainConfig().groups_per_batch * TrainConfig().views_per_group
    assert all(not torch.equal(before[k], v) for k, v in state.model.named_parameters() if v.requires_grad)


def test_bench_train_times_the_step_with_and_without_random_convolutions(toy, monkeypatch):
    import posenet_mlvae.training.train as train
    from posenet_mlvae.commands.benches.train import _training_step_timer

    batches, real_step = [], train.train_step
    monkeypatch.setattr(train, "train_step", lambda state, batch, tc, *args: batches.append(batch)
                        or real_step(state, batch, tc, *args))
    data = load_split([str(toy)], "train", 64)
    default, plain = _training_step_timer(data, TINY), _training_step_timer(data, TINY, random_conv=0.0)
    for _ in range(4):
        default()
    assert any(batch.pose_images is not None for batch in batches)  # about a quarter of the groups
    del batches[:]
    for _ in range(4):
        plain()
    assert all(batch.pose_images is None for batch in batches)


def test_bench_train_breakdown_prints_the_ladder_against_the_direct_cnn(toy, capsys):
    from posenet_mlvae.commands.benches.train import BREAKDOWN_LADDER, interleaved_medians, print_breakdown

    calls = []
    medians = interleaved_medians({"a": lambda: calls.append("a") or 2.0, "b": lambda: calls.append("b") or 1.0},
                                  steps=3, warmup=1)
    assert medians == {"a": 2.0, "b": 1.0} and calls == ["a", "b"] * 4  # round-robin, warm-up dropped
    print_breakdown(load_split([str(toy)], "train", 64), steps=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if "x the direct CNN's step" in line]
    assert len(lines) == len(BREAKDOWN_LADDER) + 1
    assert lines[0].split()[-5] == "1.00x"


def test_bench_train_times_128_px_models_on_a_128_px_set(tmp_path, capsys):
    """`bench train --image-size 128` builds every timed model at 128 px (a 64 px model would
    refuse the batches), and a set rendered at another size is refused in one line."""
    toy128 = write_toy_dataset(tmp_path / "toy128", groups=8, views=8, size=128, seed=0)
    assert cli_main(["bench", "train", "--data", str(toy128), "--image-size", "128", "--steps", "1",
                     "--skip-memory", "--breakdown"]) == 0
    out = capsys.readouterr().out
    assert "128 px" in out and out.count("x the direct CNN's step") == 6
    assert "the pose trunk's random convolutions (--random-conv 0.25) cost" in out
    assert cli_main(["bench", "train", "--data", str(toy128), "--steps", "1", "--skip-memory"]) != 0
    assert "images are 128 px but the model expects 64 px" in capsys.readouterr().err
