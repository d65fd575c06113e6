"""Photo-like 2-D appearance: procedural scene backgrounds and banks, occluders, camera effects.

Checks determinism per seed, shapes and dtypes, image statistics that photographs have (and a
flat colour has not), the occluder's visible mask and covered fraction against the layer it
drew, and that camera effects change pixel values only (strength 0 is the identity)."""

import cv2
import numpy as np
import pytest

from data_tools.render.backgrounds import (
    BANK_STYLES, LEGACY_KINDS, LEGACY_SHARE, PROCEDURAL_KINDS, bank_kinds, procedural_background,
    procedural_bank,
)
from data_tools.image.resolution import enlarge
from data_tools.image.resolution import shrink as shrink_image
from data_tools.render.camera_effects import EFFECTS, LOW_RESOLUTION_FACTOR, apply_camera_effects
from data_tools.render.occluders import OCCLUDER_KINDS, add_occluders, occluder_layer
from data_tools.render.procedural.canvas import pink_noise
from data_tools.render.procedural.scenes import SCENE_KINDS, scene_background

SIDE = 128
SEEDS = range(8)
HORIZON_KINDS = ("outdoor", "urban", "indoor")


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64).mean(axis=-1)


def _radial_power(grey: np.ndarray) -> np.ndarray:
    """Mean power of the centred 2-D spectrum per integer radius (index = cycles per image)."""
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey - grey.mean()))) ** 2
    y, x = np.indices(power.shape) - grey.shape[0] // 2
    radius = np.hypot(x, y).astype(int).ravel()
    return np.bincount(radius, power.ravel()) / np.maximum(np.bincount(radius), 1)


def _spectral_slope(grey: np.ndarray) -> float:
    """Slope of log power against log frequency: about -2 for natural images, 0 for white noise."""
    radial = _radial_power(grey)
    k = np.arange(2, grey.shape[0] // 2)
    return float(np.polyfit(np.log(k), np.log(radial[k] + 1e-9), 1)[0])


def _band_fractions(grey: np.ndarray) -> tuple[float, float]:
    """Share of the (non-DC) spectral power below side/16 and above side/4 cycles per image."""
    radial, counts = _radial_power(grey), np.bincount(
        np.hypot(*(np.indices(grey.shape) - grey.shape[0] // 2)).astype(int).ravel())
    energy = radial * counts[: len(radial)]
    total = energy[1:].sum()
    side = grey.shape[0]
    return float(energy[1: side // 16].sum() / total), float(energy[side // 4:].sum() / total)


@pytest.fixture(scope="module")
def scenes():
    """SEEDS x each scene kind at SIDE px, as uint8 (through procedural_background, with grain)."""
    return {kind: [procedural_background(kind, np.random.default_rng([seed, 11]), SIDE) for seed in SEEDS]
            for kind in SCENE_KINDS}


# ---- backgrounds ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", PROCEDURAL_KINDS)
def test_every_kind_is_deterministic_uint8_and_depends_on_the_seed(kind):
    first = procedural_background(kind, np.random.default_rng(3), 64)
    again = procedural_background(kind, np.random.default_rng(3), 64)
    other = procedural_background(kind, np.random.default_rng(4), 64)
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    assert first.tobytes() == again.tobytes()
    assert not np.array_equal(first, other)


def test_scene_kinds_are_the_new_default_kinds():
    assert set(SCENE_KINDS) <= set(PROCEDURAL_KINDS) and set(LEGACY_KINDS) <= set(PROCEDURAL_KINDS)
    assert not set(SCENE_KINDS) & set(LEGACY_KINDS)


def test_scenes_are_not_flat_and_have_photo_like_spectra(scenes):
    # Natural images: power falls as ~1/f^2 (slope about -2), with energy at both low and high
    # frequencies. The same measure on a solid colour (flat plus grain) gives a slope near 0.
    for kind, images in scenes.items():
        slopes = [_spectral_slope(_grey(image)) for image in images]
        bands = np.array([_band_fractions(_grey(image)) for image in images])
        assert min(_grey(image).std() for image in images) > 3.0, kind
        assert -3.8 < np.median(slopes) < -1.5, (kind, slopes)
        assert np.median(bands[:, 0]) > 0.1, (kind, bands[:, 0])  # coarse structure
        assert np.median(bands[:, 1]) > 1e-3, (kind, bands[:, 1])  # edges and texture
    solid = [procedural_background("solid", np.random.default_rng(seed), SIDE) for seed in SEEDS]
    assert np.median([_spectral_slope(_grey(image)) for image in solid]) > -0.5


def test_horizon_kinds_differ_between_upper_and_lower_half(scenes):
    # Sky or walls above, ground or floor below: the mean colours of the two halves differ
    # (the horizon may lie outside the crop now and then); close-up textures differ less.
    def gap(image):
        return float(np.linalg.norm(image[: SIDE // 2].mean((0, 1)) - image[SIDE // 2:].mean((0, 1))))

    for kind in HORIZON_KINDS:
        gaps = [gap(image.astype(np.float64)) for image in scenes[kind]]
        assert sum(g > 7.0 for g in gaps) >= 6, (kind, np.round(gaps, 1))
    horizon = np.median([gap(image.astype(np.float64)) for kind in HORIZON_KINDS for image in scenes[kind]])
    textures = np.median([gap(image.astype(np.float64)) for kind in ("nature", "bokeh") for image in scenes[kind]])
    assert textures < 0.5 * horizon


def test_scene_colours_are_mostly_muted(scenes):
    saturation = [cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255.0
                  for images in scenes.values() for image in images]
    assert np.median(saturation) < 0.4
    assert max(saturation) > 0.15  # but not all grey


def test_scene_kinds_are_told_apart_by_simple_statistics(scenes):
    # Each kind is its own distribution: a nearest-centroid classifier on a few image statistics
    # (leave-one-out) names the kind far above chance (1 / number of kinds).
    def features(image):
        grey = _grey(image)
        low, high = _band_fractions(grey)
        dx, dy = np.abs(np.diff(grey, axis=1)).mean(), np.abs(np.diff(grey, axis=0)).mean()
        return [_spectral_slope(grey), np.log(low + 1e-6), np.log(high + 1e-6),
                grey[: SIDE // 2].mean() - grey[SIDE // 2:].mean(),
                cv2.cvtColor(image, cv2.COLOR_RGB2HSV)[..., 1].mean() / 255, np.log(grey.std() + 1),
                np.log(dx + 1e-3) - np.log(dy + 1e-3), float(image[..., 2].mean()) - float(image[..., 0].mean())]

    samples = [(k, features(image)) for k, kind in enumerate(SCENE_KINDS) for image in scenes[kind]]
    labels = np.array([k for k, _ in samples])
    data = np.array([f for _, f in samples])
    data = (data - data.mean(0)) / data.std(0)
    right = 0
    for i in range(len(data)):
        keep = np.arange(len(data)) != i
        centroids = np.stack([data[keep & (labels == k)].mean(0) for k in range(len(SCENE_KINDS))])
        right += int(np.argmin(((centroids - data[i]) ** 2).sum(1)) == labels[i])
    assert right / len(data) > 2.0 / len(SCENE_KINDS)


def test_pink_noise_has_the_requested_spectral_slope_and_tiles():
    rng = np.random.default_rng(0)
    for beta in (1.0, 2.0, 3.0):
        noise = pink_noise(rng, (128, 128), beta)
        assert noise.dtype == np.float32 and abs(noise.mean()) < 1e-4 and abs(noise.std() - 1) < 1e-3
        assert abs(_spectral_slope(noise) + beta) < 0.35
    noise = pink_noise(rng, (64, 64), 2.0)
    # periodic: the jump across the wrap-around seam is no bigger than between neighbours
    inner = np.abs(np.diff(noise, axis=1)).mean()
    assert np.abs(noise[:, 0] - noise[:, -1]).mean() < 2 * inner


def test_unknown_kinds_and_styles_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="outdoor"):
        procedural_background("sky", np.random.default_rng(0), 32)
    with pytest.raises(ValueError, match="choose one of"):
        scene_background("solid", np.random.default_rng(0), 32)
    with pytest.raises(ValueError, match="legacy"):
        procedural_bank(0, 16, 4, style="photos")


def test_bank_styles_mix_kinds_as_documented():
    photo = bank_kinds("photo", 100)
    legacy_count = sum(kind in LEGACY_KINDS for kind in photo)
    assert legacy_count == round(LEGACY_SHARE * 100)
    assert {kind: photo.count(kind) for kind in SCENE_KINDS} == {kind: 17 for kind in SCENE_KINDS}
    assert sum(kind in LEGACY_KINDS for kind in photo[:20]) == 3  # spread evenly, not all at the end
    assert bank_kinds("legacy", 7) == LEGACY_KINDS + LEGACY_KINDS[:2]
    assert BANK_STYLES == ("photo", "legacy")


def test_procedural_bank_is_deterministic_and_style_switches_the_kinds():
    bank = procedural_bank(5, 16, 10)
    again = procedural_bank(5, 16, 10, style="photo")
    assert bank.kinds == bank_kinds("photo", 10) and bank.size == 16
    assert all(image.shape == (32, 32, 3) and image.dtype == np.uint8 for image in bank.images)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(bank.images, again.images))
    legacy = procedural_bank(5, 16, 10, style="legacy")
    assert set(legacy.kinds) == set(LEGACY_KINDS)
    crop, kind = bank.sample(np.random.default_rng(1))
    assert crop.shape == (16, 16, 3) and kind in bank.kinds


# ---- occluders ------------------------------------------------------------------------------------

S = 64


def _object(seed: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """A composite with an elliptical 'object' (mask 255 inside) and its box."""
    rng = np.random.default_rng([seed, 77])
    image = rng.integers(0, 256, (S, S, 3), dtype=np.uint8)
    cx, cy, ax, ay = rng.uniform(26, 38), rng.uniform(26, 38), rng.uniform(14, 24), rng.uniform(9, 18)
    mask = np.zeros((S, S), np.uint8)
    cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)), 0, 0, 360, 255, -1)
    ys, xs = np.nonzero(mask)
    return image, mask, (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def test_occluders_are_deterministic_per_seed():
    image, mask, box = _object(0)
    first = add_occluders(image, mask, box, np.random.default_rng(9), probability=1.0)
    again = add_occluders(image, mask, box, np.random.default_rng(9), probability=1.0)
    assert first[0].tobytes() == again[0].tobytes() and first[1].tobytes() == again[1].tobytes()
    assert first[2] == again[2]
    assert first[0].shape == (S, S, 3) and first[0].dtype == np.uint8 and first[1].dtype == np.uint8


@pytest.mark.parametrize("kind", OCCLUDER_KINDS)
def test_occluder_masks_coverage_and_untouched_pixels(kind):
    for seed in range(6):
        image, mask, box = _object(seed)
        out, visible, covered = add_occluders(image, mask, box, np.random.default_rng(seed), probability=1.0,
                                              kinds=(kind,))
        rng = np.random.default_rng(seed)
        rng.random()  # the decision
        layer = occluder_layer(S, box, rng, kinds=(kind,))
        assert set(np.unique(visible)) <= {0, 255}
        assert not np.any((visible > 0) & (mask == 0))  # visible is a subset of the mask
        assert np.array_equal(visible > 0, (mask > 0) & (layer.alpha < 0.5))
        assert covered == pytest.approx(1.0 - np.count_nonzero(visible) / np.count_nonzero(mask))
        untouched = layer.alpha == 0
        assert np.array_equal(out[untouched], image[untouched])
        opaque = layer.alpha == 1
        assert opaque.any() and np.array_equal(out[opaque], layer.rgb[opaque])
        assert np.any((layer.alpha > 0.05) & (layer.alpha < 0.95))  # anti-aliased edges


def test_occluders_hide_about_the_requested_share_mostly_from_the_borders():
    hidden, from_border = [], 0
    for seed in range(40):
        image, mask, box = _object(seed)
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        full = np.zeros((S, S), np.uint8)
        full[y1:y2, x1:x2] = 255  # the whole box as the object: covered = share of the box hidden
        _, visible, covered = add_occluders(image, full, box, np.random.default_rng(seed), probability=1.0)
        hidden.append(covered)
        rng = np.random.default_rng(seed)
        rng.random()
        solid = occluder_layer(S, box, rng).alpha >= 0.5
        from_border += bool(solid[0].any() or solid[-1].any() or solid[:, 0].any() or solid[:, -1].any())
    hidden = np.array(hidden)
    assert np.mean((hidden > 0.05) & (hidden < 0.65)) >= 0.85, np.round(hidden, 2)
    assert 0.15 < np.median(hidden) < 0.4
    assert from_border >= 0.85 * len(hidden)


def test_occluder_probability_gates_and_bad_inputs_are_refused():
    image, mask, box = _object(1)
    out, visible, covered = add_occluders(image, mask, box, np.random.default_rng(0), probability=0.0)
    assert out is image and visible is mask and covered == 0.0
    fired = [add_occluders(image, mask, box, np.random.default_rng(s), probability=0.3)[2] > 0 for s in range(200)]
    assert 0.2 < np.mean(fired) < 0.4
    with pytest.raises(ValueError, match="probability"):
        add_occluders(image, mask, box, np.random.default_rng(0), probability=1.5)
    with pytest.raises(ValueError, match="pole"):
        add_occluders(image, mask, box, np.random.default_rng(0), probability=1.0, kinds=("tree",))
    with pytest.raises(ValueError, match="mask"):
        add_occluders(image, mask[:32], box, np.random.default_rng(0))


# ---- camera effects -------------------------------------------------------------------------------


def _effects(*args, **kwargs) -> np.ndarray:
    """The image of `apply_camera_effects` (its Shot's shrink is checked where it matters)."""
    return apply_camera_effects(*args, **kwargs).image

def _textured(seed: int = 0) -> np.ndarray:
    return procedural_background("urban", np.random.default_rng(seed), S)


def test_camera_effects_keep_shape_and_dtype_and_are_deterministic():
    image = _textured()
    for seed in range(5):
        out = _effects(image, np.random.default_rng(seed))
        again = _effects(image, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert out.tobytes() == again.tobytes()
    everything = {name: 1.0 for name in EFFECTS}
    assert not np.array_equal(_effects(image, np.random.default_rng(0), 1.0, everything), image)


def test_strength_zero_and_no_effect_are_the_identity():
    image = _textured(1)
    everything = {name: 1.0 for name in EFFECTS}
    for seed in range(5):
        assert np.array_equal(_effects(image, np.random.default_rng(seed), 0.0, everything), image)
        assert np.array_equal(_effects(image, np.random.default_rng(seed), 1.0, {}), image)


@pytest.mark.parametrize("effect", EFFECTS)
def test_each_effect_changes_pixels_but_not_geometry(effect):
    # A bright disc on a textured background: the effect changes values, yet the disc's centroid
    # (where a label's box or keypoints would be) does not move.
    image = (_textured(2) // 3).astype(np.uint8)
    cv2.circle(image, (40, 24), 9, (250, 250, 250), -1, cv2.LINE_AA)
    changed = 0
    for seed in range(4):
        out = _effects(image, np.random.default_rng(seed), 1.0, {effect: 1.0})
        changed += int(not np.array_equal(out, image))
        bright_in, bright_out = _grey(image) > 200, _grey(out) > 0.5 * (_grey(out).max() + _grey(out).mean())
        centre_in = np.array(np.nonzero(bright_in)).mean(1)
        centre_out = np.array(np.nonzero(bright_out)).mean(1)
        assert np.abs(centre_in - centre_out).max() < 1.0, (effect, centre_in, centre_out)
    assert changed == 4


def test_noise_grows_with_the_signal_and_white_balance_vignette_act_as_designed():
    flat = lambda value: np.full((S, S, 3), value, np.uint8)  # noqa: E731
    dark = _effects(flat(40), np.random.default_rng(3), 1.0, {"noise": 1.0}).astype(float)
    bright = _effects(flat(200), np.random.default_rng(3), 1.0, {"noise": 1.0}).astype(float)
    assert bright.std() > dark.std() > 0.3  # shot noise: variance grows with the signal
    balanced = _effects(flat(128), np.random.default_rng(4), 1.0, {"white_balance": 1.0})
    assert balanced.reshape(-1, 3).std(0).max() < 1e-9  # per-channel gains only: still flat
    assert np.ptp(balanced[0, 0].astype(int)) > 0  # but tinted
    vignetted = _effects(flat(180), np.random.default_rng(5), 1.0, {"vignette": 1.0}).astype(float)
    assert vignetted[0, 0].mean() < vignetted[S // 2, S // 2].mean() - 5
    jpeg = _effects(_textured(3), np.random.default_rng(6), 1.0, {"jpeg": 1.0}).astype(float)
    assert 0 < np.abs(jpeg - _textured(3)).mean() < 10  # mild


def test_camera_effects_refuse_bad_inputs():
    image = _textured()
    with pytest.raises(ValueError, match="strength"):
        _effects(image, np.random.default_rng(0), -0.5)
    with pytest.raises(ValueError, match="jpeg"):
        _effects(image, np.random.default_rng(0), 1.0, {"sharpen": 1.0})
    with pytest.raises(ValueError, match="uint8"):
        _effects(image.astype(np.float32), np.random.default_rng(0))


def test_low_resolution_draws_the_object_with_fewer_pixels():
    # Alone, the effect is the crop of a smaller object: detail averaged away, flat areas kept.
    image = _textured(4)
    detail = lambda x: np.abs(np.diff(x.astype(float), axis=1)).mean()  # noqa: E731
    for seed in range(4):
        out, shrink = apply_camera_effects(image, np.random.default_rng(seed), 1.0, {"low_resolution": 1.0})
        assert out.shape == image.shape and detail(out) < 0.8 * detail(image)
        # the factor says how small: S / round(S / f) for f in LOW_RESOLUTION_FACTOR
        assert S / round(S / LOW_RESOLUTION_FACTOR[0]) <= shrink <= S / round(S / LOW_RESOLUTION_FACTOR[1])
        np.testing.assert_array_equal(out, enlarge(shrink_image(image, shrink), S))
    others = {name: 1.0 for name in EFFECTS if name != "low_resolution"}
    assert apply_camera_effects(image, np.random.default_rng(0), 1.0, others).shrink == 1.0
    flat = np.full((S, S, 3), 90, np.uint8)
    np.testing.assert_array_equal(_effects(flat, np.random.default_rng(0), 1.0, {"low_resolution": 1.0}),
                                  flat)
