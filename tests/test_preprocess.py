"""data_tools.image.preprocess: crops against hand-made images, conversions and the input contract."""

import cv2
import numpy as np
import pytest

from data_tools.image.preprocess import crop_box, crop_to_square, load_image_rgb, to_model_input, to_rgb_uint8


def test_integer_box_crop_equals_slicing_when_sizes_match():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    out = crop_to_square(image, (10, 5, 42, 37), size=32)
    np.testing.assert_array_equal(out, image[5:37, 10:42])


def test_pad_mode_squares_around_centre_and_replicates_border():
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, :20] = 200  # left half bright
    out = crop_to_square(image, (0, 10, 40, 30), mode="pad", size=40)  # 40 wide, 20 tall -> 40x40
    np.testing.assert_array_equal(out, image)
    # A box past the image edge replicates the border rather than inventing black.
    edge = crop_to_square(image, (-20, 0, 20, 40), mode="pad", size=40)
    assert edge[:, :20].min() == 200


def test_stretch_mode_and_margin():
    assert crop_box((0, 0, 10, 20), 0.0, "stretch") == (0, 0, 10, 20)
    assert crop_box((0, 0, 10, 20), 0.0, "pad") == (-5, 0, 15, 20)
    assert crop_box((0, 0, 10, 10), 0.5, "pad") == (-5, -5, 15, 15)
    image = np.zeros((20, 10, 3), np.uint8)
    image[:10] = 255
    out = crop_to_square(image, (0, 0, 10, 20), mode="stretch", size=10)
    assert out[:4].min() == 255 and out[6:].max() == 0


def test_shrinking_uses_area_averaging():
    image = np.zeros((64, 64, 3), np.uint8)
    image[::2, ::2] = 255  # a fine checkerboard aliases with nearest/linear but averages with AREA
    out = crop_to_square(image, None, size=16)
    np.testing.assert_allclose(out.astype(float), 255 / 4, atol=1.0)
    sub = crop_to_square(image, (0.5, 0.5, 60.5, 60.5), size=15)  # sub-pixel box, shrinking
    assert abs(sub.mean() - 255 / 4) < 8


def test_bad_boxes():
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="outside"):
        crop_to_square(image, (20, 20, 30, 30))
    with pytest.raises(ValueError, match="empty"):
        crop_to_square(image, (5, 5, 5, 8))
    with pytest.raises(ValueError, match="mode"):
        crop_to_square(image, None, mode="squash")
    with pytest.raises(ValueError, match="finite"):
        crop_to_square(image, (0, 0, np.nan, 4))


def test_conversions_gray_rgba_16bit_bgr():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb_uint8(gray).shape == (3, 4, 3)
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0] = 10
    assert to_rgb_uint8(rgba)[0, 0].tolist() == [10, 0, 0]
    assert to_rgb_uint8(rgba, "bgr")[0, 0].tolist() == [0, 0, 10]
    deep = np.full((2, 2, 3), 65535, np.uint16)
    assert to_rgb_uint8(deep).max() == 255 and to_rgb_uint8(deep).dtype == np.uint8
    with pytest.raises(ValueError, match="shape"):
        to_rgb_uint8(np.zeros((2, 2, 5), np.uint8))


def test_load_image_rgb_files(tmp_path):
    bgr = np.zeros((6, 5, 3), np.uint8)
    bgr[..., 2] = 255  # red in OpenCV's BGR order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    assert load_image_rgb(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((4, 4), 40000, np.uint16))
    assert load_image_rgb(tmp_path / "deep.png").shape == (4, 4, 3)
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="junk.jpg"):
        load_image_rgb(tmp_path / "junk.jpg")
    with pytest.raises(ValueError, match="no such file"):
        load_image_rgb(tmp_path / "missing.png")


def test_model_input_contract():
    x = to_model_input(np.full((2, 4, 4, 3), 255, np.uint8))
    assert x.shape == (2, 3, 4, 4) and x.dtype == np.float32 and x.max() == 1.0
    assert to_model_input(np.zeros((4, 4, 3), np.uint8)).shape == (1, 3, 4, 4)
    with pytest.raises(ValueError, match="uint8"):
        to_model_input(np.zeros((1, 4, 4, 3), np.float32))


@pytest.mark.parametrize("dims", [(1, 2, 3), (2, 3)])
def test_mean_and_std_match_torch_over_several_dimensions(dims):
    import torch

    from data_tools.image.moments import mean_and_std

    images = torch.rand(5, 3, 7, 9, generator=torch.Generator().manual_seed(0)) * 3 - 1
    mean, std = mean_and_std(images, dims)
    torch.testing.assert_close(mean, images.mean(dim=dims, keepdim=True))
    torch.testing.assert_close(std, images.std(dim=dims, keepdim=True))  # the sample (n - 1) deviation
    flat = images[0].flatten() if dims == (1, 2, 3) else images[0, 1].flatten()  # by hand, one image
    by_hand = ((flat - flat.mean()) ** 2).sum() / (len(flat) - 1)
    assert float(std.flatten()[0 if dims == (1, 2, 3) else 1]) == pytest.approx(float(by_hand.sqrt()), rel=1e-5)
