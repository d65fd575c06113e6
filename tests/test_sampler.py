"""GroupBatchSampler (K groups x M views, whole groups per rank, exact resume) and augmentations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from data_tools.image.augment import augment_batch
from data_tools.geometry import flip_viewpoint
from data_tools.sampler import GroupBatchSampler

# 10 groups of 8 views each, rows interleaved so group members are not contiguous
GROUP_IDS = np.tile(np.arange(100, 110), 8)


def test_batches_are_k_groups_of_m_views():
    sampler = GroupBatchSampler(GROUP_IDS, groups_per_batch=4, views_per_group=4, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == (10 * 8 // 4) // 4
    for batch in batches:
        assert batch.shape == (16,)
        blocks = GROUP_IDS[batch].reshape(4, 4)
        assert (blocks == blocks[:, :1]).all()  # each block of M rows is one group
        assert len(set(batch.tolist())) == 16  # no repeated row within a batch here (8 >= 4 views)


def test_epoch_visits_every_image_once_when_groups_divide():
    sampler = GroupBatchSampler(GROUP_IDS, groups_per_batch=5, views_per_group=4, seed=0)
    rows = np.concatenate(list(sampler))
    assert sorted(rows.tolist()) == list(range(len(GROUP_IDS)))


def test_small_groups_are_filled_from_the_same_group():
    group_ids = np.array([0, 0, 1, 2, 2, 2, 2, 2])  # sizes 2, 1, 5 with M = 4
    sampler = GroupBatchSampler(group_ids, groups_per_batch=1, views_per_group=4, seed=3, drop_last=False)
    batches = list(sampler)
    assert len(batches) == 4  # 1 + 1 + 2 chunks
    for batch in batches:
        assert len(batch) == 4 and len(set(group_ids[batch].tolist())) == 1
    seen = np.concatenate(batches)
    assert set(seen.tolist()) == set(range(8))


def test_ranks_get_disjoint_whole_groups_and_equal_lengths():
    ranks = [GroupBatchSampler(GROUP_IDS, 2, 4, seed=5, rank=r, world_size=3) for r in range(3)]
    for epoch in (0, 1):
        seen = []
        for sampler in ranks:
            sampler.set_epoch(epoch)
            seen.append(set(GROUP_IDS[np.concatenate(list(sampler))].tolist()))
        assert len({len(s) for s in seen}) == 1
        assert len({len(list(s)) for s in ranks}) == 1  # same number of batches on every rank
        for i in range(3):
            for j in range(i + 1, 3):
                assert not seen[i] & seen[j]


def test_seeded_order_changes_per_epoch_and_resumes_exactly():
    a = GroupBatchSampler(GROUP_IDS, 2, 4, seed=7)
    first = [b.copy() for b in a]
    a.set_epoch(1)
    second = [b.copy() for b in a]
    assert any((x != y).any() for x, y in zip(first, second))
    again = GroupBatchSampler(GROUP_IDS, 2, 4, seed=7)
    again.set_epoch(1)
    iterator = iter(again)
    head = [next(iterator) for _ in range(3)]
    state = again.state_dict()
    resumed = GroupBatchSampler(GROUP_IDS, 2, 4, seed=7)
    resumed.load_state_dict(state)
    tail = list(resumed)
    assert len(head) + len(tail) == len(second)
    for x, y in zip(head + tail, second):
        np.testing.assert_array_equal(x, y)


def test_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        GroupBatchSampler(GROUP_IDS, 2, 4, rank=2, world_size=2)
    with pytest.raises(ValueError, match=">= 1"):
        GroupBatchSampler(GROUP_IDS, 0, 4)


def test_augment_flips_labels_only_where_allowed():
    generator = torch.Generator().manual_seed(0)
    n = 64
    images = torch.randint(0, 256, (n, 8, 8, 3), dtype=torch.uint8)
    azimuth, elevation, theta = torch.rand(n) * 360, torch.rand(n) * 40, torch.rand(n) * 20 - 10
    allowed = torch.arange(n) < n // 2
    out, a, e, t, _ = augment_batch(images, azimuth, elevation, theta, allowed, generator,
                                 hflip=True, color=0.0, scale=0.0, shift=0.0)
    plain = images.permute(0, 3, 1, 2).float() / 255
    flipped = (out - plain.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-6
    assert 0 < flipped[: n // 2].sum() < n // 2 and not flipped[n // 2:].any()
    fa, fe, ft = flip_viewpoint(azimuth, elevation, theta)
    torch.testing.assert_close(a[flipped], fa[flipped])
    torch.testing.assert_close(t[flipped], ft[flipped])
    torch.testing.assert_close(a[~flipped], azimuth[~flipped])
    torch.testing.assert_close(out[~flipped], plain[~flipped])


def test_augment_jitter_keeps_range_shape_and_nan_labels():
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (16, 64, 64, 3), dtype=torch.uint8)
    nan = torch.full((16,), float("nan"))
    out, a, e, t, _ = augment_batch(images, nan, nan, nan, torch.ones(16, dtype=torch.bool), generator)
    assert out.shape == (16, 3, 64, 64) and out.dtype == torch.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert torch.isnan(a).all() and torch.isnan(t).all()
    generator.manual_seed(1)
    again = augment_batch(images, nan, nan, nan, torch.ones(16, dtype=torch.bool), generator)[0]
    torch.testing.assert_close(out, again)  # the generator alone decides the randomness


def test_augment_moves_masks_with_their_images():
    generator = torch.Generator().manual_seed(2)
    images = torch.zeros(32, 16, 16, 3, dtype=torch.uint8)
    images[:, :, :4] = 255  # a white band on the left...
    masks = torch.zeros(32, 16, 16, dtype=torch.uint8)
    masks[:, :, :4] = 255  # ...and its mask
    nan = torch.full((32,), float("nan"))
    out = augment_batch(images, nan, nan, nan, torch.ones(32, dtype=torch.bool), generator, color=0.0,
                        scale=0.1, shift=0.1, masks_uint8=masks)
    assert out.masks.shape == (32, 1, 16, 16)
    torch.testing.assert_close(out.masks[:, 0], out.images[:, 0])  # same geometry for both
    assert out.masks[:, 0, :, :8].sum() != out.masks[:, 0, :, 8:].sum()  # and some were flipped


def test_colour_jitter_is_shared_within_a_group():
    generator = torch.Generator().manual_seed(3)
    images = torch.full((6, 8, 8, 3), 120, dtype=torch.uint8)
    images[..., 0] = 200
    nan = torch.full((6,), float("nan"))
    groups = torch.tensor([5, 5, 9, 9, 9, 2])
    out = augment_batch(images, nan, nan, nan, torch.zeros(6, dtype=torch.bool), generator, hflip=False,
                        color=0.3, scale=0.0, shift=0.0, groups=groups).images
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(out[2], out[4])
    assert not torch.allclose(out[0], out[2]) and not torch.allclose(out[2], out[5])


def test_grayscale_turns_whole_groups_grey_by_luma():
    from data_tools.image.augment import LUMA

    generator = torch.Generator().manual_seed(5)
    n = 400
    images = torch.randint(0, 256, (n, 4, 4, 3), dtype=torch.uint8)
    nan = torch.full((n,), float("nan"))
    groups = torch.arange(n) // 2  # 200 groups of two
    out = augment_batch(images, nan, nan, nan, torch.zeros(n, dtype=torch.bool), generator, hflip=False,
                        color=0.0, scale=0.0, shift=0.0, groups=groups, grayscale=0.3).images
    grey = (out.amax(dim=1) - out.amin(dim=1)).amax(dim=(1, 2)) < 1e-6  # R = G = B everywhere
    assert torch.equal(grey[0::2], grey[1::2])  # a group turns grey as a whole
    assert 40 <= int(grey[0::2].sum()) <= 80  # about 30 % of 200 groups (binomial sd 6.5)
    # with no other jitter a grey image is the Rec. 601 luma of the original, hand-computed
    luma = (images.float() / 255 * torch.tensor(LUMA)).sum(-1)  # (N, 4, 4)
    torch.testing.assert_close(out[grey][:, 0], luma[grey], rtol=0, atol=1e-5)
    torch.testing.assert_close(out[~grey], images[~grey].permute(0, 3, 1, 2).float() / 255)


def test_grayscale_off_leaves_the_random_stream_alone():
    images = torch.randint(0, 256, (8, 8, 8, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(6))
    nan = torch.full((8,), float("nan"))
    flip_ok = torch.ones(8, dtype=torch.bool)
    old = augment_batch(images, nan, nan, nan, flip_ok, torch.Generator().manual_seed(7), color=0.2).images
    off = augment_batch(images, nan, nan, nan, flip_ok, torch.Generator().manual_seed(7), color=0.2,
                        grayscale=0.0).images
    torch.testing.assert_close(old, off, rtol=0, atol=0)


def test_grey_draws_come_after_the_colour_factors():
    from data_tools.image.augment import LUMA, color_jitter

    images = torch.rand(64, 3, 4, 4, generator=torch.Generator().manual_seed(8))
    off = color_jitter(images, 0.2, torch.Generator().manual_seed(9))
    # grayscale 0 is the colour jitter as written before the option: three factors, drawn in
    # this order, applied by hand (x -> c b S x + (1 - c) m)
    g = torch.Generator().manual_seed(9)
    b, c, s = (0.8 + 0.4 * torch.rand(64, generator=g) for _ in range(3))
    luma = torch.tensor(LUMA)
    grey = (images * luma.view(1, 3, 1, 1)).sum(1, keepdim=True)
    saturated = grey + s.view(-1, 1, 1, 1) * (images - grey)
    mean_grey = b * (images.mean(dim=(2, 3)) @ luma)
    by_hand = (c * b).view(-1, 1, 1, 1) * saturated + ((1 - c) * mean_grey).view(-1, 1, 1, 1)
    torch.testing.assert_close(off, by_hand.clamp(0, 1), rtol=1e-5, atol=1e-6)
    # with grey images on, the images left in colour are exactly those of grayscale 0
    on = color_jitter(images, 0.2, torch.Generator().manual_seed(9), grayscale=0.5)
    turned = (on.amax(dim=1) - on.amin(dim=1)).amax(dim=(1, 2)) < 1e-6
    assert 16 <= int(turned.sum()) <= 48
    torch.testing.assert_close(on[~turned], off[~turned], rtol=0, atol=0)
    assert not torch.allclose(on[turned], off[turned])


def test_random_convolution_by_hand_at_kernel_one():
    from data_tools.image.augment import random_convolution

    images = torch.rand(6, 3, 5, 5, generator=torch.Generator().manual_seed(10))
    groups = torch.tensor([4, 4, 8, 8, 1, 1])
    out = random_convolution(images, 0.5, torch.Generator().manual_seed(11), groups, kernel_sizes=(1,))
    # the same draws by hand, in the documented order: chosen groups, kernel side, filters, mixes
    g = torch.Generator().manual_seed(11)
    index = torch.tensor([1, 1, 2, 2, 0, 0])  # groups 1, 4, 8 in sorted order
    chosen = (torch.rand(3, generator=g) < 0.5)[index]
    torch.randint(1, (1,), generator=g)
    matrices = (torch.randn(3, 3, 3, 1, 1, generator=g) / 3**0.5)[index, :, :, 0, 0]  # (N, out, in)
    mix = torch.rand(3, generator=g)[index]
    for i in range(6):
        if not chosen[i]:
            torch.testing.assert_close(out[i], images[i], rtol=0, atol=0)
            continue
        filtered = torch.einsum("oc,chw->ohw", matrices[i], images[i])  # a 1x1 filter mixes the channels
        filtered = (filtered - filtered.mean()) * (images[i].std() / filtered.std()) + images[i].mean()
        by_hand = (mix[i] * images[i] + (1 - mix[i]) * filtered).clamp(0, 1)
        torch.testing.assert_close(out[i], by_hand, rtol=1e-5, atol=1e-6)
    assert chosen.any() and not chosen.all()  # this seed exercises both branches


def test_random_convolution_is_shared_within_a_group_and_keeps_the_range():
    from data_tools.image.augment import random_convolution

    n = 400
    base = torch.rand(n // 2, 3, 8, 8, generator=torch.Generator().manual_seed(12))
    images = base.repeat_interleave(2, dim=0)  # two identical views per group
    groups = torch.arange(n) // 2
    out = random_convolution(images, 0.3, torch.Generator().manual_seed(13), groups)
    torch.testing.assert_close(out[0::2], out[1::2], rtol=0, atol=0)  # one filter and mix per group
    changed = (out != images).flatten(1).any(1)[0::2]
    assert 40 <= int(changed.sum()) <= 80  # about 30 % of 200 groups (binomial sd 6.5)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0 and out.shape == images.shape


def test_random_convolution_feeds_the_pose_trunk_only_and_leaves_the_other_draws_alone(tmp_path):
    from posenet_mlvae.toy_data import write_toy_dataset
    from posenet_mlvae.training.data import load_split, make_batch

    data = load_split([str(write_toy_dataset(tmp_path / "toy", groups=8, views=4, size=64, seed=0))], "train", 64)
    rows = np.arange(len(data))
    plain, conv = (make_batch(data, rows, torch.device("cpu"), torch.Generator().manual_seed(16), color=0.2,
                              hflip=True, random_conv=p) for p in (0.0, 0.5))
    assert plain.pose_images is None  # off: the pose trunk reads the images themselves
    # on: the images the content encoder and the reconstruction see are exactly those of "off"
    # (it is drawn after every other augmentation), and the pose trunk's copy differs for whole groups
    torch.testing.assert_close(conv.images, plain.images, rtol=0, atol=0)
    changed = (conv.pose_images != conv.images).flatten(1).any(1)
    groups = torch.from_numpy(data.group[rows])
    for group in groups.unique():
        assert changed[groups == group].all() or not changed[groups == group].any()
    assert changed.any() and not changed.all()


def test_scale_shift_grid_matches_affine_grid():
    import torch.nn.functional as F

    from data_tools.image.augment import scale_shift_jitter

    images = torch.rand(5, 3, 12, 10)
    flip = torch.tensor([True, False, True, False, False])
    got = scale_shift_jitter(images, 0.1, 0.05, torch.Generator().manual_seed(4), flip)
    g = torch.Generator().manual_seed(4)  # the same draws, in the same order
    zoom = 0.9 + 0.2 * torch.rand(5, generator=g)
    tx, ty = (-0.1 + 0.2 * torch.rand(5, generator=g) for _ in range(2))
    affine = torch.zeros(5, 2, 3)
    affine[:, 0, 0] = torch.where(flip, -1.0, 1.0) / zoom
    affine[:, 1, 1] = 1 / zoom
    affine[:, 0, 2], affine[:, 1, 2] = tx, ty
    grid = F.affine_grid(affine, [5, 3, 12, 10], align_corners=False)
    expected = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_uint8_opencv_resample_matches_the_float_grid_sample():
    from data_tools.image.augment import scale_shift_jitter, scale_shift_jitter_uint8

    images = torch.randint(0, 256, (6, 12, 10, 4), dtype=torch.uint8)
    flip = torch.tensor([True, False, True, False, False, True])
    fast = scale_shift_jitter_uint8(images, 0.1, 0.05, torch.Generator().manual_seed(7), flip)
    reference = scale_shift_jitter(images.permute(0, 3, 1, 2).float(), 0.1, 0.05,
                                   torch.Generator().manual_seed(7), flip).permute(0, 2, 3, 1)
    assert fast.dtype == torch.uint8 and fast.shape == images.shape
    assert (fast.float() - reference).abs().max() <= 2.0  # fixed-point bilinear weights + rounding
