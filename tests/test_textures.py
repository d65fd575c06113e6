"""Procedural material textures: shapes, determinism, the ablation, sharing, and that liveries,
numbers and dirt land where the triplanar mapping contract puts them."""

import numpy as np
import pytest

from data_tools.render.appearance import part_materials
from data_tools.meshes.mesh import MATERIALS
from data_tools.render.procedural.liveries import (
    LIVERY_ELEMENTS,
    PLAIN_PAINT_FRACTION,
    draw_race_number,
    paint_texture,
    sample_livery,
)
from data_tools.render.procedural.textures import material_texture, material_textures

SIDE = 128


def _rows_of(z_high: float, z_low: float, side: int = SIDE) -> tuple[float, float]:
    """Texture rows (top, bottom) of object heights z_high > z_low (row = (0.5 - z) * side)."""
    return (0.5 - z_high) * side, (0.5 - z_low) * side


def _colours(materials, seed=0):
    return part_materials(list(materials), np.random.default_rng(seed))[0]


def test_front_lights_range_from_unlit_grey_to_white_and_stay_unsaturated():
    import colorsys

    hsv = np.array([colorsys.rgb_to_hsv(*_colours(["light_front"], seed)[0]) for seed in range(300)])
    value, saturation = hsv[:, 2], hsv[:, 1]
    # A clear cover over a reflector: from grey (unlit, in daylight) to bright white or warm.
    assert value.min() < 0.5 and value.max() > 0.98 and 0.65 < np.median(value) < 0.8
    assert saturation.max() <= 0.35 + 1e-6


def test_shapes_dtype_and_one_texture_per_entry():
    materials = ["paint", "glass", "rubber", "paint", "plate"]
    for side in (32, 128):
        textures = material_textures(materials, _colours(materials), np.random.default_rng(1), side)
        assert textures.shape == (5, side, side, 3) and textures.dtype == np.uint8


def test_deterministic_per_seed_and_different_across_seeds():
    colours = _colours(MATERIALS)
    a = material_textures(MATERIALS, colours, np.random.default_rng([4, 2]))
    b = material_textures(MATERIALS, colours, np.random.default_rng([4, 2]))
    c = material_textures(MATERIALS, colours, np.random.default_rng([4, 3]))
    np.testing.assert_array_equal(a, b)
    assert all(not np.array_equal(a[k], c[k]) for k in range(len(MATERIALS)))


def test_disabled_gives_the_exact_plain_colour_and_draws_nothing():
    colours = _colours(MATERIALS, seed=5)
    rng = np.random.default_rng(9)
    state = rng.bit_generator.state
    textures = material_textures(MATERIALS, colours, rng, side=64, enabled=False)
    assert rng.bit_generator.state == state
    expected = np.rint(np.asarray(colours, np.float64) * 255).astype(np.uint8)  # (P, 3)
    np.testing.assert_array_equal(textures, np.broadcast_to(expected[:, None, None],
                                                            textures.shape))


def test_same_material_shares_one_texture_regardless_of_part_order():
    colour = {"paint": (0.7, 0.1, 0.1), "glass": (0.1, 0.15, 0.2), "rubber": (0.05, 0.05, 0.05)}
    order_a = ["paint", "glass", "paint", "rubber"]
    order_b = ["rubber", "paint", "glass"]
    a = material_textures(order_a, np.array([colour[m] for m in order_a]), np.random.default_rng(3))
    b = material_textures(order_b, np.array([colour[m] for m in order_b]), np.random.default_rng(3))
    np.testing.assert_array_equal(a[0], a[2])
    for k, material in enumerate(order_a):
        np.testing.assert_array_equal(a[k], b[order_b.index(material)])


def test_every_material_is_handled_and_stays_near_its_colour():
    loose = {"paint", "fabric", "wood", "plate"}  # liveries, prints, grain, characters
    for seed in range(5):
        rng = np.random.default_rng(seed)
        colours = _colours(MATERIALS, seed)
        textures = material_textures(MATERIALS, colours, rng, category="chair")
        for material, colour, texture in zip(MATERIALS, colours, textures):
            mean = texture.reshape(-1, 3).mean(axis=0) / 255.0
            tolerance = 0.3 if material in loose else 0.03
            assert np.abs(mean - colour).max() < tolerance, (material, mean, colour)
            assert texture.std() > 0.2, f"{material} has no variation at all"


def test_unknown_material_raises_naming_the_choices():
    with pytest.raises(ValueError, match="chrome.*paint.*wood"):
        material_textures(["paint", "chrome"], np.full((2, 3), 0.5), np.random.default_rng(0))
    with pytest.raises(ValueError, match="chrome.*paint"):
        material_texture("chrome", (0.5, 0.5, 0.5), np.random.default_rng(0))


def test_bad_inputs_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="one colour per material"):
        material_textures(["paint", "glass"], np.full((3, 3), 0.5), rng)
    with pytest.raises(ValueError, match="side"):
        material_textures(["paint"], np.full((1, 3), 0.5), rng, side=8)
    with pytest.raises(ValueError, match="livery.*stripes"):
        paint_texture((0.5, 0.5, 0.5), rng, elements=("flames",))


def test_plain_paint_mean_stays_at_the_base_colour_with_subtle_noise():
    rng = np.random.default_rng(11)
    for colour in rng.uniform(0.1, 0.9, (20, 3)):
        texture = paint_texture(colour, rng, SIDE, elements=(), dirt=False).astype(np.float64)
        np.testing.assert_allclose(texture.reshape(-1, 3).mean(axis=0), 255 * colour, atol=2.0)
        assert 0.3 < texture.std(axis=(0, 1)).max() < 6.0


def test_chair_paint_is_plain():
    texture = material_texture("paint", (0.2, 0.5, 0.3), np.random.default_rng(2), SIDE, "chair")
    assert np.abs(texture.reshape(-1, 3).mean(axis=0) - 255 * np.array([0.2, 0.5, 0.3])).max() < 2


def test_livery_sampling_mixes_plain_and_every_element():
    rng = np.random.default_rng(12)
    liveries = [sample_livery(rng) for _ in range(2000)]
    plain = np.mean([livery == () for livery in liveries])
    assert abs(plain - PLAIN_PAINT_FRACTION) < 0.04
    seen = {name for livery in liveries for name in livery}
    assert seen == set(LIVERY_ELEMENTS)


def test_racing_stripes_run_along_u_centred_on_the_middle_row():
    base = np.array([0.45, 0.45, 0.5])
    for seed in range(10):
        texture = paint_texture(base, np.random.default_rng(seed), SIDE, elements=("stripes",),
                                dirt=False).astype(np.float64)
        within_row = texture.std(axis=1).max()                  # variation along u in one row
        row_means = texture.mean(axis=1)                         # (T, 3)
        changed = np.abs(row_means - 255 * base).max(axis=1) > 40
        assert within_row < 8, within_row                          # column-constant pattern
        assert 1 <= changed.sum() <= 0.2 * SIDE
        assert abs(np.flatnonzero(changed).mean() - (SIDE - 1) / 2) < 2.5


def test_race_number_is_drawn_where_told():
    for boxed in (False, True):
        canvas = np.full((SIDE, SIDE, 3), (200, 30, 30), np.uint8)
        y, z, height = 0.05, -0.05, 0.08
        draw_race_number(canvas, "27", y, z, height, boxed=boxed)
        changed = np.abs(canvas.astype(int) - (200, 30, 30)).max(axis=2) > 0
        rows, cols = np.nonzero(changed)
        top, bottom = _rows_of(z + height / 2, z - height / 2)
        assert np.floor(top) - 1 <= rows.min() and rows.max() <= np.ceil(bottom)  # 1 px of AA
        centre_col, centre_row = (y + 0.5) * SIDE - 0.5, (0.5 - z) * SIDE - 0.5  # texel centres
        assert abs(cols.mean() - centre_col) < 1.0 and abs(rows.mean() - centre_row) < 1.0
        assert changed.sum() > 0.6 * (height * SIDE) ** 2            # a filled roundel / box
        middle = int((y + 0.5) * SIDE)
        inside = canvas[int(top) + 2: int(bottom) - 1, middle - 6: middle + 6]
        assert (inside.max(axis=2) < 80).sum() >= 6                   # dark digits on it
        assert (inside.min(axis=2) > 200).sum() >= 6                  # the white ground


def test_sampled_numbers_and_decals_stay_in_the_side_band():
    band_top, band_bottom = 0.35 * SIDE, 0.65 * SIDE
    base = np.array([0.2, 0.6, 0.3])
    for seed in range(20):
        for elements in (("number",), ("decals",)):
            texture = paint_texture(base, np.random.default_rng(seed), SIDE, elements=elements,
                                    dirt=False)
            changed = np.abs(texture.astype(int) - 255 * base).max(axis=2) > 30
            rows = np.flatnonzero(changed.any(axis=1))
            assert len(rows) > 0 and band_top <= rows.min() and rows.max() <= band_bottom


def test_liveries_vary_more_than_plain_paint():
    base = np.array([0.5, 0.3, 0.3])
    def spread(elements, seed):
        texture = paint_texture(base, np.random.default_rng(seed), SIDE, elements=elements,
                                dirt=False)
        return texture.std(axis=(0, 1)).max()

    plain = max(spread((), seed) for seed in range(5))
    for name in ("two_tone", "slashes", "side_stripes", "decals", "number"):
        liveried = [spread((name,), seed) for seed in range(5)]
        assert min(liveried) > 3 * plain, (name, liveried, plain)


def test_dirt_sits_on_the_lower_body():
    base = np.array([0.9, 0.9, 0.9])
    for seed in range(10):
        texture = paint_texture(base, np.random.default_rng(seed), SIDE, elements=(), dirt=True)
        dirty = np.abs(texture.astype(int) - 255 * base).max(axis=2) > 25
        rows = np.nonzero(dirty)[0]
        assert dirty.sum() > 0.05 * SIDE * SIDE
        assert rows.min() >= _rows_of(0.02, 0.0)[0]  # never above z = 0.02
        assert np.mean(rows > 0.6 * SIDE) > 0.7       # mostly below z = -0.1
        mean = texture[dirty].mean(axis=0)
        assert mean[0] > mean[2]                      # brownish: more red than blue
