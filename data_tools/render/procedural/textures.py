"""Procedural albedo textures per material: car paint (`liveries`), wood, brushed metal, fabric, ...

Photos of cars show liveries, decals, numbers and dirt; flat-coloured renders do not, so a model
trained on them meets unseen appearance on real images. Each texture here is an (T, T, 3) uint8
image built around the material's base colour (`data_tools.render.appearance.part_materials`), made
from a numpy Generator only (no files), so a build stays deterministic.

Mapping contract (the renderer samples these TRIPLANAR in the object frame of DESIGN.md
section 2): a texture covers object coordinates [-0.5, 0.5] on both axes. Columns are
u = object y from -0.5 (front) to +0.5 (rear); in the SIDE projection rows are object z from
+0.5 (top row) to -0.5, the TOP projection uses rows = x, the FRONT/REAR one columns = x and
rows = z. A car's body side lies around z in [-0.13, 0.03] (rows ~0.47T..0.63T), its door near
y = 0; stripes along u run its length (and, seen from above, along the hood and roof).
"""

from __future__ import annotations

import colorsys
from typing import Sequence

import numpy as np

from data_tools.render.procedural.liveries import paint_texture
from data_tools.render.procedural.texture_noise import (
    FONT, LETTERS, colourise, paint_noise, smooth_noise, tiled, to_uint8,
)

#: Materials of near uniform colour -> amplitude of their slight grain.
_NOISY_UNIFORM = {"glass": 0.015, "light_front": 0.02, "light_rear": 0.03, "plastic": 0.02,
                  "rubber": 0.08}


def material_textures(materials: Sequence[str], colours: np.ndarray, rng: np.random.Generator,
                      side: int = 128, category: str = "car", enabled: bool = True) -> np.ndarray:
    """(P, side, side, 3) uint8 albedo textures, one per entry of `materials`.

    Each is built around that entry's colour (`colours`, (P, 3) RGB in [0, 1]); entries of the
    same material share one texture (built from the first entry's colour), drawn in sorted
    material order so the result does not depend on part order. Paint gets a car livery only
    for `category` "car". `enabled=False` gives the plain colour everywhere and draws nothing
    from `rng` (the texture ablation).
    """
    from data_tools.meshes.mesh import MATERIALS

    colours = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
    if len(colours) != len(materials):
        raise ValueError(f"need one colour per material: {len(colours)} colours, "
                         f"{len(materials)} materials")
    if int(side) != side or side < 16:
        raise ValueError(f"texture side must be an integer >= 16, got {side!r}")
    unknown = sorted(set(materials) - set(MATERIALS))
    if unknown:
        raise ValueError(f"unknown material(s) {unknown}; choose from {MATERIALS}")
    first: dict[str, np.ndarray] = {}
    for material, colour in zip(materials, colours):
        first.setdefault(material, colour)
    if enabled:
        by_material = {m: material_texture(m, first[m], rng, side, category) for m in sorted(first)}
    else:
        by_material = {m: np.broadcast_to(to_uint8(first[m]), (side, side, 3)) for m in first}
    return np.stack([by_material[m] for m in materials]).reshape(-1, side, side, 3)


def material_texture(material: str, colour: Sequence[float], rng: np.random.Generator,
                     side: int = 128, category: str = "car") -> np.ndarray:
    """One (side, side, 3) uint8 texture of `material` around `colour` (RGB in [0, 1])."""
    colour = np.asarray(colour, dtype=np.float32)
    if material == "paint":
        if category == "car":
            return paint_texture(colour, rng, side)
        return paint_texture(colour, rng, side, elements=(), dirt=False)
    if material == "wood":
        return _wood(colour, rng, side)
    if material == "metal":
        return colourise(_brushed(rng, side), colour)
    if material == "fabric":
        return _fabric(colour, rng, side)
    if material == "plate":
        return colourise(_plate(rng, side), colour)
    if material == "dark":
        return colourise(_ribbed(rng, side), colour)
    if material in _NOISY_UNIFORM:
        return colourise(paint_noise(rng, side, _NOISY_UNIFORM[material]), colour)
    from data_tools.meshes.mesh import MATERIALS

    raise ValueError(f"unknown material {material!r}; choose one of {MATERIALS}")


# ------------------------------------------------------------------ other materials


def _wood(colour: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """Grain along the rows (vertical in side and front views, so along chair legs): rings from a
    warped sine across the columns, fine streaks, and varnish tone variation."""
    cols = np.arange(side, dtype=np.float32) * (rng.uniform(4, 12) / side)
    warp = smooth_noise(rng, side, 3, 2, smooth=True) * rng.uniform(1.0, 3.0)
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (cols[None, :] + warp))
    rings **= rng.uniform(2.0, 6.0)  # thin dark late-wood lines
    shade = 1.0 + 0.1 * (smooth_noise(rng, side, 3, 3) - 0.5)  # varnish tone
    shade -= 0.12 * (smooth_noise(rng, side, 3, side // 2) - 0.5) + rng.uniform(0.15, 0.35) * rings
    warm = np.array([0.04, 0.0, -0.08], np.float32)  # late wood is redder as well as darker
    return colourise(shade, colour, tint=rings, tint_rgb=warm)


def _brushed(rng: np.random.Generator, side: int) -> np.ndarray:
    """(T, T) brightness factor of brushed metal: fine streaks along the rows, slight mottling."""
    streaks = smooth_noise(rng, side, max(2, side // 32), side)
    return 1.0 + 0.12 * (streaks - 0.5) + 0.05 * (smooth_noise(rng, side, 3, 3) - 0.5)


def _fabric(colour: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """A woven look (threads a few texels apart, noise, fuzz), sometimes a check, stripe or
    dot print in a second colour."""
    import cv2

    period = int(rng.integers(2, 5))
    weave = np.kron([[1.0, -1.0], [-1.0, 1.0]], np.ones((period, period), np.float32))
    shade = 1.0 + 0.07 * tiled(weave.astype(np.float32), side)
    shade += 0.08 * (smooth_noise(rng, side, side // 2, side // 2) - 0.5)
    shade += 0.08 * (smooth_noise(rng, side, 4, 4) - 0.5)
    print_kind = rng.random()
    if print_kind >= 0.35:
        return colourise(shade, colour)
    other = (colour * rng.uniform(0.3, 0.7) if rng.random() < 0.5 else
             np.asarray(colorsys.hsv_to_rgb(*rng.random(3)), np.float32))
    cell = int(rng.integers(6, 20))
    band = (np.arange(side) // cell % 2 == 0).astype(np.float32)
    if print_kind < 0.15:  # gingham check: threads of the second colour both ways
        mask = 0.5 * (band[:, None] + band[None, :])
    elif print_kind < 0.25:  # stripes along u
        mask = np.broadcast_to(band[:, None], (side, side))
    else:  # staggered dots
        tile = np.zeros((2 * cell, 2 * cell), np.float32)
        for y, x in ((cell // 2, cell // 2), (cell + cell // 2, cell)):
            for dx in (-2 * cell, 0, 2 * cell):
                cv2.circle(tile, (x + dx, y), max(1, cell // 4), 1.0, -1, cv2.LINE_AA)
        mask = tiled(tile, side)
    return colourise(shade, colour, tint=mask, tint_rgb=other - colour)


def _plate(rng: np.random.Generator, side: int) -> np.ndarray:
    """(T, T) brightness of a light plate with lines of dark characters, one line per plate
    height (0.021 object units) so whatever part of the texture lands on a plate shows some."""
    import cv2

    period = max(2, int(round(0.021 * side)))
    scale = 4  # draw at 4x and shrink, so tiny glyphs stay anti-aliased
    strip = np.zeros((period * scale, side * scale), np.uint8)
    (glyph_w, glyph_h), _ = cv2.getTextSize("A", FONT, 1.0, 1)
    fit = 0.6 * period * scale / glyph_h
    text = "".join(rng.choice(LETTERS, 2 * int(side * scale / (glyph_w * fit)) + 2))  # overfill
    cv2.putText(strip, text, (0, int(0.8 * period * scale)), FONT, fit, 255,
                max(1, int(fit * 1.5)), cv2.LINE_AA)
    ink = cv2.resize(strip, (side, period), interpolation=cv2.INTER_AREA).astype(np.float32)
    return paint_noise(rng, side, 0.02) * (1.0 - (0.85 / 255) * tiled(ink, side))


def _ribbed(rng: np.random.Generator, side: int) -> np.ndarray:
    """(T, T) brightness of dark trim: slight noise, half the time low horizontal ribs (grille
    slats, bumper ribs)."""
    shade = paint_noise(rng, side, 0.04)
    if rng.random() < 0.5:
        rows = np.arange(side, dtype=np.float32)
        shade *= (1.0 + 0.12 * np.sign(np.sin(2 * np.pi * rows / rng.uniform(3.0, 6.0))))[:, None]
    return shade


__all__ = ["material_texture", "material_textures"]
