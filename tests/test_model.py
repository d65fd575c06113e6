"""ML-VAE model: group product of Gaussians, variants, pose head decoding, inference module."""

from __future__ import annotations

import math

import numpy as np
import pytest
from dataclasses import replace

import torch

from data_tools.geometry import viewpoint_to_rotation
from posenet_mlvae.training.checkpoint import load_state_strict
from posenet_mlvae.config import DataConfig, ModelConfig, TrainConfig, from_dict, model_config_from_dict, to_dict
from posenet_mlvae.inference import PoseDecoder, PoseInference, encode_pose, set_zoom_average, zoom_about_centre
from posenet_mlvae.network.losses import reconstruction_sse
from posenet_mlvae.network.model import (build_model, group_product_of_gaussians, leave_one_out_product,
                                         product_of_gaussians)
from posenet_mlvae.network.pose_head import PoseLogits

TINY = ModelConfig(width=8, decoder_width=4, hidden_dim=32, obs_dim=6, content_dim=5)


def naive_product(mu: np.ndarray, logvar: np.ndarray, groups: np.ndarray):
    """Per-group loop in float64: precisions add, the mean is the precision-weighted mean."""
    out_mu, out_logvar = [], []
    for g in range(groups.max() + 1):
        precision = np.exp(-logvar[groups == g]).sum(0)
        var = 1.0 / precision
        out_mu.append(var * (mu[groups == g] * np.exp(-logvar[groups == g])).sum(0))
        out_logvar.append(np.log(var))
    return np.stack(out_mu), np.stack(out_logvar)


def test_group_product_matches_naive_loop():
    rng = np.random.default_rng(0)
    groups = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 1, 0])  # sizes 4, 2, 2, 4, members interleaved
    mu = rng.normal(size=(len(groups), 7))
    logvar = rng.uniform(-6, 4, size=(len(groups), 7))
    expected_mu, expected_logvar = naive_product(mu, logvar, groups)
    got_mu, got_logvar = group_product_of_gaussians(torch.tensor(mu, dtype=torch.float32),
                                                    torch.tensor(logvar, dtype=torch.float32),
                                                    torch.tensor(groups), 4)
    np.testing.assert_allclose(got_mu.numpy(), expected_mu, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got_logvar.numpy(), expected_logvar, rtol=1e-5, atol=1e-5)


def test_two_gaussians_closed_form_and_group_of_one():
    # N(1, 2) x N(3, 0.5): var = 1 / (1/2 + 2) = 0.4, mean = 0.4 * (1/2 + 3 * 2) = 2.6; a lone N(-1, 3) unchanged.
    mu = torch.tensor([[1.0], [3.0], [-1.0]])
    logvar = torch.log(torch.tensor([[2.0], [0.5], [3.0]]))
    got_mu, got_logvar = group_product_of_gaussians(mu, logvar, torch.tensor([0, 0, 1]), 2)
    assert got_mu[0, 0].item() == pytest.approx(2.6, abs=1e-6)
    assert got_logvar[0, 0].exp().item() == pytest.approx(0.4, abs=1e-6)
    assert got_mu[1, 0].item() == -1.0 and got_logvar[1, 0].item() == pytest.approx(math.log(3.0), abs=1e-7)


def test_extreme_precisions_are_stable():
    mu = torch.tensor([[0.0], [10.0]])
    logvar = torch.tensor([[-12.0], [8.0]])  # precisions differ by e^20
    got_mu, got_logvar = group_product_of_gaussians(mu, logvar, torch.tensor([0, 0]), 1)
    assert torch.isfinite(got_mu).all() and torch.isfinite(got_logvar).all()
    assert got_mu.item() == pytest.approx(10.0 * math.exp(-20.0), abs=1e-6)


def test_invariant_to_order_of_groups_and_members():
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    images = torch.rand(12, 3, 64, 64)
    groups = torch.tensor([7, 7, 3, 3, 3, 9, 9, 7, 1, 1, 9, 3])  # arbitrary, non-contiguous labels
    perm = torch.randperm(12)
    with torch.no_grad():
        a = model(images, groups)
        b = model(images[perm], groups[perm])
    member_a = a.mu_group[a.group_of_image]  # (B, D_c) each image's group posterior
    member_b = b.mu_group[b.group_of_image]
    torch.testing.assert_close(member_a[perm], member_b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.logvar_group[a.group_of_image][perm], b.logvar_group[b.group_of_image])
    torch.testing.assert_close(a.reconstruction[perm], b.reconstruction, rtol=1e-4, atol=1e-5)


def test_gradient_reaches_every_member_through_the_product():
    mu = torch.randn(4, 3, requires_grad=True)
    logvar = torch.randn(4, 3, requires_grad=True)
    mu_g, logvar_g = group_product_of_gaussians(mu, logvar, torch.tensor([0, 0, 0, 1]), 2)
    (mu_g[0].sum() + logvar_g[0].sum()).backward()
    assert (mu.grad[:3].abs() > 0).all() and (logvar.grad[:3].abs() > 0).all()
    assert (mu.grad[3] == 0).all()  # another group's member is untouched


def test_gradient_reaches_the_content_encoder():
    torch.manual_seed(0)
    model = build_model(TINY).train()
    images = torch.rand(8, 3, 64, 64)
    output = model(images, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    assert output.mu_group.shape == (2, TINY.content_dim)
    reconstruction_sse(output.reconstruction, images).sum().backward()
    assert model.content_head.weight.grad.abs().sum() > 0
    assert model.encoder.features[0][0].weight.grad.abs().sum() > 0
    assert model.content_encoder.features[0][0].weight.grad.abs().sum() > 0  # the separate content trunk


@pytest.mark.parametrize("variant", ["mlvae", "vae", "direct"])
def test_variants_shapes(variant):
    model = build_model(ModelConfig(**{**to_dict(TINY), "variant": variant})).train()
    output = model(torch.rand(6, 3, 64, 64), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert output.mu_obs.shape == (6, TINY.obs_dim)
    assert output.pose.azimuth_logits.shape == (6, TINY.azimuth_bins)
    if variant == "direct":
        assert output.reconstruction is None and output.mu_group is None
    else:
        assert output.reconstruction.shape == (6, 3, 32, 32)  # recon_downsample 2
        assert output.mu_group.shape == ((2 if variant == "mlvae" else 6), TINY.content_dim)
        assert 0 <= output.reconstruction.min() and output.reconstruction.max() <= 1


def test_128_px_and_resnet_backbones(capsys):
    model = build_model(ModelConfig(**{**to_dict(TINY), "image_size": 128}))
    assert model(torch.rand(2, 3, 128, 128), torch.tensor([0, 0])).reconstruction.shape == (2, 3, 64, 64)
    resnet = build_model(ModelConfig(**{**to_dict(TINY), "backbone": "resnet18"}))
    assert "random initialisation" in capsys.readouterr().out
    assert resnet(torch.rand(2, 3, 64, 64), None).mu_obs.shape == (2, TINY.obs_dim)
    with pytest.raises(ValueError, match="not a file"):
        build_model(ModelConfig(backbone="resnet18", imagenet_weights="/nonexistent/resnet18.pth"))


def test_reconstruction_downsampling_sets_the_decoder_output_and_keeps_the_full_size_layout():
    for factor, image_size in ((2, 64), (4, 64), (4, 128), (2, 128)):
        model = build_model(replace(TINY, image_size=image_size, recon_downsample=factor)).train()
        out = model(torch.rand(4, 3, image_size, image_size), torch.tensor([0, 0, 1, 1]))
        assert out.reconstruction.shape == (4, 3, image_size // factor, image_size // factor)
    # Full size builds the decoder the checkpoints from before the option hold.
    keys = lambda c: {k: v.shape for k, v in build_model(c).decoder.state_dict().items()}  # noqa: E731
    assert len(keys(replace(TINY, recon_downsample=1))) > len(keys(TINY))  # one up-sampling stage more
    for bad in (3, 0, 8):
        with pytest.raises(ValueError, match="recon_downsample"):
            replace(TINY, recon_downsample=bad)


def test_content_downsampling_feeds_the_content_encoder_the_block_averaged_image():
    torch.manual_seed(0)
    model = build_model(replace(TINY, content_downsample=2)).eval()
    images = torch.rand(3, 3, 64, 64)
    _, _, mu_content, _ = model.encode(images)
    normalised = (images - model.input_mean) / model.input_std
    block_means = normalised.reshape(3, 3, 32, 2, 32, 2).mean(dim=(3, 5))  # by hand: 2 x 2 means
    expected, _ = model.content_head(model.content_encoder(block_means)).chunk(2, dim=1)
    torch.testing.assert_close(mu_content, expected)
    first = lambda m: m.content_encoder.features[0][0].out_channels  # noqa: E731
    assert first(model) == 2 * TINY.content_width == 2 * first(build_model(TINY))  # starts at 32 px
    with pytest.raises(ValueError, match="content_downsample"):
        replace(TINY, content_downsample=4)


@pytest.mark.parametrize("norm", ["image", "fixed"])
def test_pose_images_feed_the_pose_trunk_and_the_content_keeps_the_images(norm):
    torch.manual_seed(0)
    model = build_model(replace(TINY, pose_input_norm=norm)).eval()
    images, other = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)
    mixed = model.encode(images, pose_images=other)
    from_other, from_images = model.encode(other), model.encode(images)
    for got, expected in zip(mixed, (*from_other[:2], *from_images[2:])):  # observation: other; content: images
        torch.testing.assert_close(got, expected)
    with torch.no_grad():
        output = model(images, torch.tensor([0, 0, 1, 1]), pose_images=other)
    torch.testing.assert_close(output.mu_obs, from_other[0])
    torch.testing.assert_close(output.mu_content, from_images[2])
    assert not torch.allclose(from_other[0], from_images[0])  # the two inputs do give different poses


@pytest.mark.parametrize("norm, gain", [("image", (1.3, 1.3, 1.3)), ("channel", (1.3, 0.8, 1.1))])
def test_pose_input_norm_makes_the_pose_blind_to_exposure_contrast_and_cast(norm, gain):
    torch.manual_seed(0)
    images = 0.2 + 0.5 * torch.rand(2, 3, 64, 64)
    changed = 0.1 + torch.tensor(gain).view(1, 3, 1, 1) * (images - 0.2)  # brighter, more contrast, a cast
    model = build_model(replace(TINY, pose_input_norm=norm)).eval()
    with torch.no_grad():
        mu_obs, _, mu_content, _ = model.encode(images)
        mu_obs_changed = model.encode(changed)[0]
        # by hand: numpy's mean and (unbiased) std of each image, or of each image's channels
        axes = (1, 2, 3) if norm == "image" else (2, 3)
        x = images.double().numpy()
        standard = (x - x.mean(axis=axes, keepdims=True)) / x.std(axis=axes, ddof=1, keepdims=True)
        expected, _ = model.obs_head(model.encoder(torch.from_numpy(standard).float())).chunk(2, dim=1)
        # the content encoder reads the fixed statistics' input: colours stay in the identity
        fixed_input = (images - model.input_mean) / model.input_std
        expected_content, _ = model.content_head(model.content_encoder(fixed_input)).chunk(2, dim=1)
    torch.testing.assert_close(mu_obs, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mu_obs_changed, mu_obs, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(mu_content, expected_content)
    # fixed statistics see the change: an untrained net's outputs vary little, but 20x the 1e-5 above
    fixed = build_model(replace(TINY, pose_input_norm="fixed")).eval()
    with torch.no_grad():
        assert (fixed.encode(changed)[0] - fixed.encode(images)[0]).abs().max() > 2e-4
    with pytest.raises(ValueError, match="channel"):
        replace(TINY, pose_input_norm="batch")


def test_a_stored_config_without_the_options_keeps_full_size():
    stored = to_dict(TINY)
    del stored["recon_downsample"], stored["content_downsample"], stored["pose_input_norm"], stored["zoom_average"]
    assert model_config_from_dict(stored).zoom_average == 0.0
    assert model_config_from_dict(stored).recon_downsample == 1
    assert model_config_from_dict(stored).content_downsample == 1
    assert model_config_from_dict(stored).pose_input_norm == "fixed"
    assert model_config_from_dict(to_dict(TINY)) == TINY


def test_a_run_saved_before_random_convolution_resumes_without_it(tmp_path):
    import json

    from posenet_mlvae.config import load_configs, save_configs

    path = tmp_path / "config.json"
    save_configs(path, TINY, TrainConfig(), DataConfig(random_conv=0.4))
    assert load_configs(path)[2].random_conv == 0.4  # a stored value is kept
    payload = json.loads(path.read_text())
    del payload["data"]["random_conv"]  # as written before the option existed
    path.write_text(json.dumps(payload))
    assert load_configs(path)[2].random_conv == 0.0 and DataConfig().random_conv > 0


def test_bad_configs_name_the_choices():
    with pytest.raises(ValueError, match="mlvae"):
        ModelConfig(variant="gan")
    with pytest.raises(ValueError, match="64 or 128"):
        ModelConfig(image_size=96)
    with pytest.raises(TypeError):
        build_model({"variant": "mlvae"})
    with pytest.raises(ValueError, match="zoom_average"):
        ModelConfig(zoom_average=-0.1)
    with pytest.raises(ValueError, match="zoom_average"):
        set_zoom_average(build_model(TINY), 0.5)


def test_config_json_round_trip():
    for config in (TINY, TrainConfig(steps=5, lr=1e-3), DataConfig(data_dirs=("a", "b"), categories=("car",))):
        assert from_dict(type(config), to_dict(config)) == config
    with pytest.raises(ValueError, match="unknown keys"):
        from_dict(TrainConfig, {"stepz": 3})


def test_pose_decode_wraps_azimuth_and_reports_confidence():
    head = build_model(TINY).pose_head
    bins = TINY.azimuth_bins
    logits = torch.full((2, bins), -10.0)
    logits[0, bins - 1] = 5.0  # bin 23 (345 deg) with offset +0.4 bin -> 351 deg
    logits[1, 0], logits[1, 1] = 5.0, 4.0  # bin 0 with offset -0.3 -> 355.5 deg
    offsets = torch.zeros(2, bins)
    offsets[0, bins - 1], offsets[1, 0] = 0.4, -0.3
    angles = torch.tensor([[1.0, -1.0], [0.0, 0.0]])  # standardised elevation, theta
    decoded = head.decode(PoseLogits(logits, offsets, angles))
    torch.testing.assert_close(decoded.azimuth, torch.tensor([351.0, 355.5]))
    mean, std = head.angle_mean, head.angle_std
    torch.testing.assert_close(decoded.elevation, torch.stack([mean[0] + std[0], mean[0]]))
    probs = torch.softmax(logits, 1)
    expected = torch.stack([probs[0, [bins - 2, bins - 1, 0]].sum(), probs[1, [bins - 1, 0, 1]].sum()])
    torch.testing.assert_close(decoded.confidence, expected)
    torch.testing.assert_close(decoded.rotation, viewpoint_to_rotation(decoded.azimuth, decoded.elevation,
                                                                       decoded.theta))


def test_inference_module_matches_model_and_treats_images_alone():
    torch.manual_seed(0)
    model = build_model(replace(TINY, zoom_average=0.0)).eval()  # the zooms: test_zoom_average_...
    inference = PoseInference(model).eval()
    images = torch.rand(5, 3, 64, 64)
    with torch.no_grad():
        azimuth, elevation, theta, rotation, confidence, mu_obs, mu_content, logvar_content = inference(images)
        single = inference(images[2:3])
        output = model(images, None)
        mirrored = model(torch.flip(images, dims=[3]), None)
        decoded = model.pose_head.decode(model.pose_head.average_with_mirror(output.pose, mirrored.pose))
        plain = PoseInference(build_model(replace(TINY, mirror_average=False, zoom_average=0.0)).eval())
        plain.model.load_state_dict(model.state_dict())
        plain_outputs = plain(images)
        # image i and its mirror as group i: the model's own group product (scatter form)
        pairs = model(torch.cat([images, torch.flip(images, dims=[3])]), torch.arange(5).repeat(2))
    torch.testing.assert_close(azimuth, decoded.azimuth)
    torch.testing.assert_close(plain_outputs[0], model.pose_head.decode(output.pose).azimuth)
    torch.testing.assert_close(plain_outputs[6], output.mu_content)  # no mirror: a group of one = its own posterior
    torch.testing.assert_close(plain_outputs[7], output.logvar_content)
    torch.testing.assert_close(mu_content, pairs.mu_group)  # symmetric objects: the image and its mirror
    torch.testing.assert_close(logvar_content, pairs.logvar_group)
    assert not torch.allclose(mu_content, output.mu_content)
    torch.testing.assert_close(single[0], azimuth[2:3])
    assert rotation.shape == (5, 3, 3) and ((confidence >= 0) & (confidence <= 1)).all()
    decoder = PoseDecoder(model).eval()
    with torch.no_grad():
        torch.testing.assert_close(decoder(mu_obs, output.mu_content), output.reconstruction)


@pytest.mark.parametrize("content_width", [8, 0])
def test_encode_content_is_the_content_half_of_encode(content_width):
    torch.manual_seed(0)
    model = build_model(replace(TINY, content_width=content_width)).eval()
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        _, _, mu, logvar = model.encode(images)
        torch.testing.assert_close(model.encode_content(images), (mu, logvar))
    with pytest.raises(ValueError, match="no content latent"):
        build_model(replace(TINY, variant="direct")).encode_content(images)


def test_stacked_product_of_gaussians_matches_the_numpy_product():
    from data_tools.gaussians import product_of_gaussians as numpy_product

    rng = np.random.default_rng(1)
    mu, logvar = rng.normal(size=(3, 4, 6)), rng.uniform(-9, 5, size=(3, 4, 6))
    got_mu, got_logvar = product_of_gaussians(torch.tensor(mu), torch.tensor(logvar))
    expected_mu, expected_logvar = numpy_product(mu, logvar, axis=0)
    np.testing.assert_allclose(got_mu.numpy(), expected_mu, rtol=1e-10)
    np.testing.assert_allclose(got_logvar.numpy(), expected_logvar, rtol=1e-10)
    one_mu, one_logvar = product_of_gaussians(torch.tensor(mu[:1]), torch.tensor(logvar[:1]))
    np.testing.assert_allclose(one_mu.numpy(), mu[0]) and np.testing.assert_allclose(one_logvar.numpy(), logvar[0])


def test_strict_loading_names_keys():
    model = build_model(TINY)
    state = model.state_dict()
    state["extra.weight"] = state.pop("pose_head.angles.weight")
    with pytest.raises(ValueError, match=r"missing keys \['pose_head.angles.weight'\].*unexpected keys \['extra.weight'\]"):
        load_state_strict(build_model(TINY), state)


def test_strict_loading_names_wrong_shapes():
    state = build_model(TINY).state_dict()
    state["pose_head.angles.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"pose_head.angles.weight \(3, 3\) vs model"):
        load_state_strict(build_model(TINY), state)


def test_leave_one_out_product_matches_naive_products_of_the_others():
    rng = np.random.default_rng(1)
    groups = np.array([0, 0, 0, 1, 1, 2, 0, 3, 3, 3])  # group 2 has a single member
    mu = rng.normal(size=(len(groups), 4))
    logvar = rng.uniform(-3, 3, size=(len(groups), 4))
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in (("mu", mu), ("logvar", logvar))}
    mu_group, logvar_group = group_product_of_gaussians(t["mu"], t["logvar"], torch.tensor(groups), 4)
    got_mu, got_logvar = leave_one_out_product(t["mu"], t["logvar"], mu_group, logvar_group, torch.tensor(groups))
    for i, g in enumerate(groups):
        others = [j for j in range(len(groups)) if groups[j] == g and j != i] or [i]
        expected_mu, expected_logvar = naive_product(mu[others], logvar[others], np.zeros(len(others), int))
        np.testing.assert_allclose(got_mu[i].numpy(), expected_mu[0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got_logvar[i].numpy(), expected_logvar[0], rtol=1e-4, atol=1e-4)


def test_decode_from_others_decodes_each_member_from_its_group_mates():
    torch.manual_seed(0)
    model = build_model(ModelConfig(**{**to_dict(TINY), "decode_from": "others"})).train()
    images = torch.rand(4, 3, 64, 64)
    output = model(images, torch.tensor([0, 0, 1, 1]))
    loo_mu, _ = leave_one_out_product(output.mu_content, output.logvar_content, output.mu_group,
                                      output.logvar_group, output.group_of_image)
    # In a group of two, each member's "others" evidence is exactly the other member's posterior.
    torch.testing.assert_close(loo_mu[0], output.mu_content[1])
    torch.testing.assert_close(loo_mu[3], output.mu_content[2])
    # The member's own image then only reaches its reconstruction through the observation path
    # (zeroed here) and batch-norm statistics (frozen here):
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    images.requires_grad_(True)
    model.obs_head.weight.data.zero_()
    model.obs_head.bias.data.zero_()
    recon = model(images, torch.tensor([0, 0, 1, 1])).reconstruction
    (grad,) = torch.autograd.grad(recon[0].sum(), images)
    assert grad[0].abs().max() < 1e-8 < grad[1].abs().max()  # rounding leaves ~1e-11
    with pytest.raises(ValueError, match="decode_from"):
        ModelConfig(decode_from="self")


def _flip_of(head, logits):
    """The outputs an exactly mirror-equivariant head gives for the mirrored image."""
    bins = head.bins
    mirror = torch.remainder(-torch.arange(bins), bins)
    mean, std = head.angle_mean[1], head.angle_std[1]
    angles = logits.angles_std.clone()
    angles[:, 1] = (-(mean + std * angles[:, 1]) - mean) / std
    return type(logits)(logits.azimuth_logits[:, mirror], -logits.azimuth_offset[:, mirror], angles)


def test_mirror_average_of_an_equivariant_pair_is_the_pose_itself():
    torch.manual_seed(3)
    head = build_model(TINY).pose_head
    head.set_angle_statistics(torch.tensor([5.0, 15.0, 25.0]), torch.tensor([-8.0, 2.0, 9.0]))
    logits = type(head(torch.zeros(1, TINY.obs_dim)))(torch.randn(6, head.bins) * 3,
                                                      torch.rand(6, head.bins) - 0.5, torch.randn(6, 2))
    alone = head.decode(logits)
    averaged = head.decode(head.average_with_mirror(logits, _flip_of(head, logits)))
    for a, b in zip(alone[:4], averaged[:4]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(alone.confidence, averaged.confidence, atol=1e-5, rtol=1e-5)


def test_mirror_average_reads_the_mirror_by_the_flip_rule():
    # The image's own outputs are uninformative; the mirror is sure of azimuth 60 and theta 10:
    # the average must say 360 - 60 = 300 and theta half of (own 0) + (-10).
    head = build_model(TINY).pose_head
    head.angle_mean.copy_(torch.tensor([10.0, 0.0]))
    head.angle_std.copy_(torch.tensor([20.0, 10.0]))
    bins = head.bins
    own = type(head(torch.zeros(1, TINY.obs_dim)))(torch.zeros(1, bins), torch.zeros(1, bins),
                                                   torch.tensor([[0.0, 0.0]]))
    sure = torch.full((1, bins), -30.0)
    sure[0, round(60 / head.bin_width)] = 0.0
    mirror = type(own)(sure, torch.zeros(1, bins), torch.tensor([[1.0, 1.0]]))
    decoded = head.decode(head.average_with_mirror(own, mirror))
    torch.testing.assert_close(decoded.azimuth, torch.tensor([300.0]))
    torch.testing.assert_close(decoded.theta, torch.tensor([-5.0]))
    torch.testing.assert_close(decoded.elevation, torch.tensor([20.0]))  # mean of 10 and 30
    assert 0.45 < float(decoded.confidence) < 0.6  # half the mass: the two views disagree


def _opencv_zoom(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Reference for `zoom_about_centre`: OpenCV's bilinear resize (half-pixel centres, like
    torch's align_corners=False) to the same 2k-pixel larger or smaller side, then the centre cut
    or OpenCV's replicated border."""
    import cv2

    size = images.shape[-1]
    k = round(size * (factor - 1) / 2)
    out = []
    for image in images.permute(0, 2, 3, 1).numpy():
        resized = cv2.resize(image, (size + 2 * k, size + 2 * k), interpolation=cv2.INTER_LINEAR)
        if k > 0:
            resized = resized[k:k + size, k:k + size]
        elif k < 0:
            resized = cv2.copyMakeBorder(resized, -k, -k, -k, -k, cv2.BORDER_REPLICATE)
        out.append(resized)
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)


@pytest.mark.parametrize("factor", [0.9, 1.1, 1.25])
def test_zoom_about_centre_matches_opencv(factor):
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    zoomed = zoom_about_centre(images, factor)
    assert zoomed.shape == images.shape
    torch.testing.assert_close(zoomed, _opencv_zoom(images, factor), atol=1e-4, rtol=0)
    assert torch.equal(zoom_about_centre(images, 1.0), images)
    assert not torch.allclose(zoomed, images, atol=1e-2)  # it does zoom: this check can fail


def test_zoom_average_is_the_mean_of_the_six_views_outputs():
    torch.manual_seed(4)
    model = set_zoom_average(build_model(TINY).eval(), 0.1)
    head = model.pose_head
    head.set_angle_statistics(torch.tensor([5.0, 15.0, 25.0]), torch.tensor([-8.0, 2.0, 9.0]))
    images = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        pose = encode_pose(model, images).pose
        probs, offsets, angles = [], [], []
        mirror = torch.remainder(-torch.arange(head.bins), head.bins)
        mean, std = head.angle_mean[1], head.angle_std[1]
        for factor in (1.0, 0.9, 1.1):
            view = _opencv_zoom(images, factor) if factor != 1.0 else images
            own = head(model.encode(view)[0])
            flipped = head(model.encode(torch.flip(view, dims=[3]))[0])
            probs += [torch.softmax(own.azimuth_logits, 1), torch.softmax(flipped.azimuth_logits, 1)[:, mirror]]
            offsets += [own.azimuth_offset, -flipped.azimuth_offset[:, mirror]]
            theta_back = (-(mean + std * flipped.angles_std[:, 1]) - mean) / std
            angles += [own.angles_std, torch.stack([flipped.angles_std[:, 0], theta_back], 1)]
        expected = head.decode(PoseLogits(torch.log(torch.stack(probs).mean(0) + 1e-12),
                                          torch.stack(offsets).mean(0), torch.stack(angles).mean(0)))
        plain = encode_pose(set_zoom_average(model, 0.0), images).pose
    for got, want in zip(pose, expected):
        torch.testing.assert_close(got, want, atol=2e-4, rtol=1e-4)
    assert not torch.allclose(pose.azimuth, plain.azimuth)  # the zooms change the answer
