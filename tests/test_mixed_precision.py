"""Mixed precision in training: which dtype each device gets, and a bfloat16 CPU step that computes the
float32 step's objective (TrainConfig.amp, training.train.autocast_dtype)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from posenet_mlvae.config import DataConfig
from posenet_mlvae.training.data import load_split
from posenet_mlvae.training.distributed import DistInfo
from posenet_mlvae.training.train import autocast_dtype, build_train_state, train_step, training_batch
from tiny_training import FAST, TINY, toy_dataset

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return toy_dataset(tmp_path_factory, groups=8, views=8, val_groups=0)


def test_each_device_gets_its_dtype(monkeypatch):
    assert autocast_dtype(True, torch.device("cuda")) == torch.float16
    assert autocast_dtype(False, torch.device("cuda")) is None
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert autocast_dtype(True, CPU) == torch.bfloat16
    assert autocast_dtype(False, CPU) is None
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert autocast_dtype(True, CPU) is None  # bfloat16 would be emulated: slower than float32


def _first_steps(data, amp: bool, steps: int = 3) -> tuple[list[float], dict[str, torch.Tensor], bool]:
    """Losses of the first steps, the weights after them and whether the GradScaler was on."""
    tc = replace(FAST, amp=amp)
    state = build_train_state(TINY, tc, data, DistInfo(0, 1, 0, CPU))
    state.net.train()
    losses = []
    for indices in list(state.sampler)[:steps]:
        terms, grad_norm = train_step(state, training_batch(data, indices, state, DataConfig(), tc), tc)
        assert grad_norm is not None and grad_norm > 0
        losses.append(float(terms.total.detach()))
    return losses, {k: v.clone() for k, v in state.model.state_dict().items()}, state.scaler.is_enabled()


def test_a_bfloat16_cpu_step_computes_the_float32_objective(toy, monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)  # force the bfloat16 path anywhere
    data = load_split([str(toy)], "train", 64)
    full, full_weights, _ = _first_steps(data, amp=False)
    half, half_weights, scaler_on = _first_steps(data, amp=True)
    again, again_weights, _ = _first_steps(data, amp=True)
    assert not scaler_on  # bfloat16 keeps float32's exponent range: no loss scaling
    # Same batches, same initial weights: the first loss differs only by bfloat16 rounding (8-bit mantissa).
    assert half[0] == pytest.approx(full[0], rel=0.02)
    assert all(torch.isfinite(torch.tensor(half)))
    moved = [k for k, v in half_weights.items() if v.is_floating_point() and not torch.equal(v, full_weights[k])]
    assert moved  # bfloat16 rounding changed the trajectory: the path really ran in bfloat16
    assert half == again and all(torch.equal(v, again_weights[k]) for k, v in half_weights.items())  # per seed
