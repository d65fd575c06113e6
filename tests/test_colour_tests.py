"""Colour tests of data_tools.image.colour_tests against hand-computed images."""

import numpy as np
import pytest

from data_tools.image.colour_tests import COLOUR_TESTS, colour_test, to_grey, turn_hue


def _random_images(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)


def test_a_hue_turn_of_120_degrees_moves_red_to_green_to_blue():
    images = _random_images()
    # In HSV, +120 deg of hue is exactly the channel cycle R -> G -> B -> R.
    np.testing.assert_array_equal(turn_hue(images, 120.0), images[..., [2, 0, 1]])
    np.testing.assert_array_equal(turn_hue(np.array([[[255, 0, 0]]], np.uint8), 120.0), [[[0, 255, 0]]])


def test_hue_turns_of_0_and_360_degrees_change_nothing_and_greys_stay_grey():
    images = _random_images(1)
    np.testing.assert_array_equal(turn_hue(images, 0.0), images)
    np.testing.assert_array_equal(turn_hue(images, 360.0), images)
    grey = np.full((4, 4, 3), 77, np.uint8)
    np.testing.assert_array_equal(turn_hue(grey, 73.0), grey)


def test_grey_is_the_rec601_luma_in_every_channel():
    pixel = np.array([[[10, 200, 30]]], np.uint8)
    expected = round(0.299 * 10 + 0.587 * 200 + 0.114 * 30)  # 124, by hand
    np.testing.assert_array_equal(to_grey(pixel), [[[expected] * 3]])
    images = _random_images(2)
    out = to_grey(images)
    assert out.shape == images.shape and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_colour_test_names_and_bad_inputs():
    images = _random_images(3)
    np.testing.assert_array_equal(colour_test("grey", images), to_grey(images))
    np.testing.assert_array_equal(colour_test("hue+120", images), images[..., [2, 0, 1]])
    assert set(COLOUR_TESTS) == {"grey", "hue+120"}
    with pytest.raises(ValueError, match="unknown colour test 'sepia'"):
        colour_test("sepia", images)
    with pytest.raises(ValueError, match="want uint8 RGB images"):
        to_grey(images.astype(np.float32))
    with pytest.raises(ValueError, match="want uint8 RGB images"):
        turn_hue(images[..., :2], 10.0)
