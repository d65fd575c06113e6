"""MixStyle: mixes per-channel feature statistics in training, leaves content and test time alone."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from posenet_mlvae.config import ModelConfig
from posenet_mlvae.network.mixstyle import MixStyle
from posenet_mlvae.network.model import build_model

TINY = ModelConfig(width=4, hidden_dim=32, obs_dim=4, content_dim=4, decoder_width=4, content_width=4)


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(dim=(2, 3)), x.std(dim=(2, 3), unbiased=False)


def test_mixing_moves_each_image_statistics_between_the_batch_and_keeps_its_pattern():
    torch.manual_seed(0)
    pattern = torch.randn(2, 3, 8, 8)
    scale = torch.tensor([1.0, 4.0]).view(2, 1, 1, 1)
    shift = torch.tensor([0.0, 10.0]).view(2, 1, 1, 1)
    x = pattern * scale + shift  # image 1: the same kind of pattern, far brighter and stronger
    mixed = MixStyle(1.0, alpha=1.0).train()(x)  # alpha 1: weights spread over (0, 1)
    mean_in, std_in = _channel_stats(x)
    mean_out, std_out = _channel_stats(mixed)
    # Every output statistic lies between the two images' (a convex mix), and some moved.
    low, high = torch.minimum(mean_in[0], mean_in[1]), torch.maximum(mean_in[0], mean_in[1])
    assert torch.all(mean_out >= low - 1e-4) and torch.all(mean_out <= high + 1e-4)
    low, high = torch.minimum(std_in[0], std_in[1]), torch.maximum(std_in[0], std_in[1])
    assert torch.all(std_out >= low - 1e-3) and torch.all(std_out <= high + 1e-3)
    assert not torch.allclose(mean_out, mean_in, atol=1e-2)
    # The spatial pattern of each channel is kept: only its mean and scale change.
    for i in range(2):
        for c in range(3):
            a, b = x[i, c].flatten(), mixed[i, c].flatten()
            assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.9999


def test_images_with_the_same_statistics_come_out_unchanged():
    torch.manual_seed(1)
    pattern = torch.randn(6, 2, 5, 5)
    mean, std = pattern.mean(dim=(2, 3), keepdim=True), pattern.std(dim=(2, 3), keepdim=True)
    x = (pattern - mean) / std * 2.0 + 3.0  # every image and channel: mean 3, std 2
    assert torch.allclose(MixStyle(1.0).train()(x), x, atol=1e-4)


def test_identity_at_test_time_or_with_probability_zero_and_gradients_skip_the_statistics():
    x = torch.randn(4, 3, 6, 6, requires_grad=True)
    assert MixStyle(1.0).eval()(x) is x
    assert MixStyle(0.0).train()(x) is x
    torch.manual_seed(2)
    out = MixStyle(1.0).train()(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    # The statistics are detached, so d(sum)/dx is the per-image ratio of the std's, constant
    # over each channel's pixels.
    assert torch.allclose(grad, grad[..., :1, :1].expand_as(grad))


def test_model_with_mixstyle_has_the_same_weights_and_the_same_test_time_output():
    plain = build_model(TINY)
    mixed = build_model(replace(TINY, mixstyle=0.5))
    assert plain.state_dict().keys() == mixed.state_dict().keys()
    mixed.load_state_dict(plain.state_dict())
    images = torch.rand(4, 3, 64, 64)
    plain.eval(), mixed.eval()
    assert torch.equal(plain.encode_obs(images), mixed.encode_obs(images))
    # In training it changes the pose features (every batch mixed at probability 1).
    always = build_model(replace(TINY, mixstyle=1.0))
    always.load_state_dict(plain.state_dict())
    plain.train(), always.train()
    torch.manual_seed(3)
    assert not torch.allclose(plain.encode_obs(images), always.encode_obs(images))


@pytest.mark.parametrize("bad", [dict(mixstyle=-0.1), dict(mixstyle=1.5),
                                 dict(mixstyle=0.5, backbone="resnet18")])
def test_bad_mixstyle_settings_are_refused(bad):
    with pytest.raises(ValueError, match="mixstyle"):
        replace(TINY, **bad)
