"""data_tools.image.resolution against hand-computed images: area shrinking, the crop rule's
bilinear upscaling, and what a smaller object's crop looks like."""

import numpy as np
import pytest

from data_tools.image.resolution import MIN_SIDE, as_if_smaller, enlarge, shrink


def test_shrink_averages_blocks_and_enlarge_interpolates_between_pixel_centres():
    blocks = np.random.default_rng(0).integers(0, 250, (8, 8)).astype(np.uint8)
    image = np.repeat(np.repeat(blocks, 2, axis=0), 2, axis=1)[..., None].repeat(3, axis=2)  # 16 x 16
    image[0, 0] += 4  # that block's mean rises by 1
    expected = blocks.copy()
    expected[0, 0] += 1
    np.testing.assert_array_equal(shrink(image, 2.0)[..., 0], expected)
    # 2 -> 4 px: output pixel x samples (x + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (edges clamp)
    ramp = np.zeros((2, 2, 3), np.uint8)
    ramp[:, 1] = 100
    np.testing.assert_array_equal(enlarge(ramp, 4)[0, :, 0], [0, 25, 75, 100])


def test_as_if_smaller_keeps_flat_images_shape_and_dtype_and_softens_edges():
    flat = np.full((3, 64, 64, 3), 77, np.uint8)
    np.testing.assert_array_equal(as_if_smaller(flat, 3.0), flat)
    edges = np.zeros((1, 64, 64, 3), np.uint8)
    edges[:, :, ::2] = 255  # one-pixel stripes: all detail, gone at any coarser resolution
    softened = as_if_smaller(edges, 2.0)
    assert softened.shape == edges.shape and softened.dtype == np.uint8
    assert np.ptp(softened[0, 10, 10:50].astype(int)) < 10  # stripes averaged away
    assert as_if_smaller(edges[:0], 2.0).shape == (0, 64, 64, 3)


def test_shrink_stops_at_the_minimum_side_and_refuses_enlarging_factors():
    assert shrink(np.zeros((64, 64, 3), np.uint8), 100.0).shape == (MIN_SIDE, MIN_SIDE, 3)
    assert shrink(np.zeros((64, 64, 3), np.uint8), 3.0).shape == (21, 21, 3)
    with pytest.raises(ValueError, match=">= 1"):
        shrink(np.zeros((64, 64, 3), np.uint8), 0.5)
    with pytest.raises(ValueError, match="uint8 RGB square"):
        as_if_smaller(np.zeros((2, 64, 32, 3), np.uint8), 2.0)
