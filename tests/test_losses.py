"""ML-VAE losses on hand-made batches: content KL once per group, mean over groups, pose masking."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from posenet_mlvae.network.losses import azimuth_targets, kl_to_standard_normal, mlvae_loss, pose_loss
from posenet_mlvae.network.model import ModelOutput
from posenet_mlvae.network.pose_head import PoseLogits

MEAN, STD = torch.tensor([10.0, 0.0]), torch.tensor([20.0, 10.0])


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 4), torch.randn(5, 4)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), expected)


def hand_made_output(images: torch.Tensor) -> ModelOutput:
    """4 images: group 0 = images 0, 1, 2; group 1 = image 3. Known errors and posteriors."""
    reconstruction = images.clone()
    reconstruction[0, 0, 0, 0] += 1.0  # squared error 1 on image 0
    reconstruction[3, 0, 0, :2] += 2.0  # squared error 8 on image 3
    mu_obs = torch.zeros(4, 2)
    mu_obs[1, 0] = 2.0  # KL_obs of image 1 = 0.5 * 4 = 2
    mu_group = torch.tensor([[1.0, 0.0], [2.0, 0.0]])  # KL_c: 0.5 and 2.0
    pose = PoseLogits(torch.zeros(4, 24), torch.zeros(4, 24), torch.zeros(4, 2))
    return ModelOutput(mu_obs, torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(4, 2), mu_group,
                       torch.zeros(2, 2), torch.tensor([0, 0, 0, 1]), reconstruction, pose)


def test_content_kl_once_per_group_and_mean_over_groups():
    images = torch.rand(4, 3, 4, 4)
    nan = torch.full((4,), float("nan"))
    terms = mlvae_loss(hand_made_output(images), images, nan, nan, nan, torch.zeros(4), MEAN, STD,
                       recon_weight=1.0, beta_obs=1.0, beta_content=1.0, lambda_pose=1.0)
    # per group: recon (1 | 8), KL_obs (2 | 0), KL_c (0.5 | 2.0); mean over the 2 groups
    assert terms.recon.item() == pytest.approx((1 + 8) / 2)
    assert terms.kl_obs.item() == pytest.approx((2 + 0) / 2)
    assert terms.kl_content.item() == pytest.approx((0.5 + 2.0) / 2)  # per member would be (3*0.5 + 2) / 2
    assert terms.neg_elbo.item() == pytest.approx((1 + 2 + 0.5 + 8 + 0 + 2.0) / 2)
    assert terms.pose.item() == 0.0  # no image carries a viewpoint: the ELBO alone trains
    assert terms.total.item() == pytest.approx(terms.neg_elbo.item() / 2)  # / mean group size 4 / 2


def test_betas_and_kl_warmup_scale_the_kls_only():
    images = torch.rand(4, 3, 4, 4)
    nan = torch.full((4,), float("nan"))
    terms = mlvae_loss(hand_made_output(images), images, nan, nan, nan, torch.zeros(4), MEAN, STD,
                       beta_obs=2.0, beta_content=4.0, kl_scale=0.5)
    assert terms.neg_elbo.item() == pytest.approx(4.5 + 0.5 * (2.0 * 1.0 + 4.0 * 1.25))


def test_azimuth_targets_wrap_and_smooth():
    target, soft, offset = azimuth_targets(torch.tensor([359.0, 7.4, 180.0]), bins=24, smoothing=0.2)
    assert target.tolist() == [0, 0, 12]
    torch.testing.assert_close(offset, torch.tensor([-1 / 15, 7.4 / 15, 0.0]))
    torch.testing.assert_close(soft.sum(1), torch.ones(3))
    assert soft[0, 0].item() == pytest.approx(0.8) and soft[0, 23].item() == pytest.approx(0.1)
    assert soft[0, 1].item() == pytest.approx(0.1)


def test_pose_loss_ignores_unlabelled_images():
    torch.manual_seed(0)
    logits = PoseLogits(torch.randn(4, 24), torch.randn(4, 24), torch.randn(4, 2))
    azimuth = torch.tensor([10.0, 200.0, float("nan"), 90.0])
    elevation = torch.tensor([5.0, 20.0, float("nan"), 0.0])
    theta = torch.tensor([0.0, 3.0, float("nan"), -2.0])
    has_pose = torch.tensor([1, 1, 0, 0])
    terms = pose_loss(logits, azimuth, elevation, theta, has_pose, MEAN, STD)
    assert math.isfinite(terms.total.item())
    changed = PoseLogits(logits.azimuth_logits.clone(), logits.azimuth_offset, logits.angles_std)
    changed.azimuth_logits[2:] = 100.0  # the unlabelled images' outputs do not matter
    assert pose_loss(changed, azimuth, elevation, theta, has_pose, MEAN, STD).total.item() == pytest.approx(
        terms.total.item())
    only_first_two = pose_loss(PoseLogits(*(t[:2] for t in logits)), azimuth[:2], elevation[:2], theta[:2],
                               has_pose[:2], MEAN, STD)
    assert only_first_two.total.item() == pytest.approx(terms.total.item())  # mean over labelled images


def test_pose_loss_is_lowest_at_the_truth():
    azimuth, elevation, theta = torch.tensor([100.0]), torch.tensor([30.0]), torch.tensor([-10.0])
    logits = torch.full((1, 24), -20.0)
    target, soft, offset = azimuth_targets(azimuth, 24, 0.0)
    logits[0, target] = 20.0
    offsets = torch.zeros(1, 24)
    offsets[0, target - 1: target + 2] = offset + torch.tensor([1.0, 0.0, -1.0])  # the angle from each centre
    angles = ((torch.stack([elevation, theta], 1) - MEAN) / STD)
    good = pose_loss(PoseLogits(logits, offsets, angles), azimuth, elevation, theta, torch.ones(1), MEAN, STD, 0.0)
    assert good.total.item() == pytest.approx(0.0, abs=1e-6)
    flipped = pose_loss(PoseLogits(logits.roll(12, 1), offsets, angles), azimuth, elevation, theta, torch.ones(1),
                        MEAN, STD, 0.0)
    assert flipped.azimuth_ce.item() > 30


def test_offset_bins_train_the_neighbours_toward_the_same_angle():
    # 100 deg in 15 deg bins: bin 7 (105 deg) with offset -1/3; bin 6 sees +2/3, bin 8 sees -4/3.
    azimuth, elevation, theta = torch.tensor([100.0]), torch.tensor([30.0]), torch.tensor([-10.0])
    logits = torch.zeros(1, 24)
    offsets = torch.zeros(1, 24)
    offsets[0, 7] = -1.0 / 3.0  # the true bin right, its neighbours at 0
    angles = ((torch.stack([elevation, theta], 1) - MEAN) / STD)
    args = (PoseLogits(logits, offsets, angles), azimuth, elevation, theta, torch.ones(1), MEAN, STD, 0.0)
    assert pose_loss(*args, offset_bins=1).azimuth_offset.item() == pytest.approx(0.0, abs=1e-6)
    # smooth-L1 (beta 0.1) of errors 2/3 and 4/3: |e| - 0.05 each
    assert pose_loss(*args, offset_bins=3).azimuth_offset.item() == pytest.approx(2.0 - 0.1, abs=1e-5)


def test_pixel_weights_scale_the_squared_error():
    images = torch.zeros(2, 3, 2, 2)
    reconstruction = torch.ones(2, 3, 2, 2)  # squared error 1 everywhere: 12 per image
    weights = torch.tensor([1.0, 0.1]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    from posenet_mlvae.network.losses import reconstruction_sse

    torch.testing.assert_close(reconstruction_sse(reconstruction, images, weights), torch.tensor([12.0, 1.2]))
    torch.testing.assert_close(reconstruction_sse(reconstruction, images), torch.tensor([12.0, 12.0]))


def test_a_smaller_reconstruction_is_scored_against_the_block_averaged_image():
    from posenet_mlvae.network.losses import reconstruction_sse

    generator = torch.Generator().manual_seed(0)
    images = torch.rand(2, 3, 8, 8, generator=generator)
    weights = torch.rand(2, 1, 8, 8, generator=generator)
    small = torch.rand(2, 3, 4, 4, generator=generator)
    # By hand: each 2 x 2 block's mean image and mean weight; each small pixel counts 4 times.
    block = lambda x: x.reshape(2, -1, 4, 2, 4, 2).mean(dim=(3, 5))  # noqa: E731
    expected = (4 * block(weights) * (small - block(images)) ** 2).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_sse(small, images, weights), expected)
    # A reconstruction equal to the block means upsampled costs as much as its small version:
    # the scale does not change with the reconstruction size.
    upsampled = block(images).repeat_interleave(2, 2).repeat_interleave(2, 3)
    torch.testing.assert_close(reconstruction_sse(block(images), images), torch.zeros(2))
    smooth = torch.full((2, 3, 8, 8), 0.5)
    torch.testing.assert_close(reconstruction_sse(smooth[..., ::2, ::2], upsampled),
                               reconstruction_sse(smooth, upsampled))
    with pytest.raises(ValueError, match="whole factor"):
        reconstruction_sse(torch.zeros(2, 3, 3, 3), images)  # 8 px is not 3 px times a whole factor


def test_content_contrast_matches_a_hand_computed_case_and_pulls_mates_together():
    from posenet_mlvae.network.losses import content_contrast

    mu = torch.tensor([[0.0], [1.0], [2.0]], requires_grad=True)
    groups = torch.tensor([0, 0, 1])
    # image 0: mate at squared distance 1, other at 4; image 1: mate and other both at 1; image 2: no mate
    first = -(-1.0 - math.log(math.exp(-1.0) + math.exp(-4.0)))
    second = math.log(2.0)
    value = content_contrast(mu, groups)
    assert float(value.detach()) == pytest.approx((first + second) / 2, rel=1e-6)
    value.backward()
    stepped = (mu - 0.1 * mu.grad).detach()[:, 0]  # one descent step: the mates close in, the other leaves
    assert abs(stepped[1] - stepped[0]) < 1.0 and abs(stepped[2] - stepped[1]) > 1.0
    assert float(content_contrast(stepped[:, None], groups)) < float(value.detach())
    # The temperature divides the squared distances (T = 2: logits -1/2 and -2 for image 0).
    warm = -(-0.5 - math.log(math.exp(-0.5) + math.exp(-2.0)))
    assert float(content_contrast(mu.detach(), groups, 2.0)) == pytest.approx((warm + second) / 2, rel=1e-6)
    alone = content_contrast(torch.randn(4, 3, requires_grad=True), torch.arange(4))
    assert float(alone.detach()) == 0.0 and alone.requires_grad  # no mates: a graph-connected zero


def test_contrast_enters_the_total_only_when_weighted():
    from posenet_mlvae.config import ModelConfig
    from posenet_mlvae.network.losses import mlvae_loss
    from posenet_mlvae.network.model import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(width=8, decoder_width=4, hidden_dim=32)).eval()
    images, group = torch.rand(8, 3, 64, 64), torch.arange(8) // 4
    with torch.no_grad():
        output = model(images, group)
    angles = [torch.zeros(8)] * 3
    args = (output, images, *angles, torch.ones(8, dtype=torch.bool), torch.zeros(2), torch.ones(2))
    plain, weighted = mlvae_loss(*args), mlvae_loss(*args, lambda_contrast=10.0)
    assert float(plain.contrast) == 0.0 and float(weighted.contrast) > 0.0
    assert float(weighted.total) == pytest.approx(float(plain.total) + 10.0 * float(weighted.contrast), rel=1e-5)
    from posenet_mlvae.network.losses import content_contrast

    warm = mlvae_loss(*args, lambda_contrast=10.0, contrast_temperature=2.0)
    assert float(warm.contrast) == pytest.approx(float(content_contrast(output.mu_content, group, 2.0)), rel=1e-6)
