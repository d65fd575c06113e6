"""Random part colours, material response and lighting for synthetic renders.

Per instance, each part gets a colour drawn for its material (`data_tools.meshes.MATERIALS`):
car paint any colour (many achromatic, as on real roads), glass dark bluish, tyres near black,
front lights white or warm yellow, rear lights red, wood brown, fabric and plastic any colour.
Parts of one material share the draw within an instance (both front lights match). Each material
has a fixed specular strength, shininess and a small emission (lights glow a little so they stay
visible in shade). Per view: a light direction (camera frame, mostly from above and in front),
intensity, ambient, a specular scale and a slight white-balance gain.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

#: material -> (specular strength, shininess, emission)
MATERIAL_RESPONSE = {
    "paint": (0.5, 40.0, 0.0),
    "glass": (0.9, 80.0, 0.0),
    "rubber": (0.05, 8.0, 0.0),
    "metal": (0.8, 30.0, 0.0),
    "light_front": (0.6, 60.0, 0.6),
    "light_rear": (0.5, 60.0, 0.45),
    "dark": (0.15, 16.0, 0.0),
    "plate": (0.2, 16.0, 0.1),
    "fabric": (0.02, 4.0, 0.0),
    "wood": (0.15, 12.0, 0.0),
    "plastic": (0.35, 24.0, 0.0),
}


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1)))


def material_colour(material: str, rng: np.random.Generator) -> tuple[float, float, float]:
    """One RGB colour in [0, 1] for `material`."""
    u = rng.random(4)
    if material == "paint":
        if u[0] < 0.4:  # white, silver, grey, black
            grey = 0.08 + 0.87 * u[1]
            return _hsv(0.6, 0.05 * u[2], grey)
        return _hsv(u[1], 0.45 + 0.55 * u[2], 0.3 + 0.6 * u[3])
    if material == "glass":
        return _hsv(0.55 + 0.1 * u[0], 0.3 + 0.3 * u[1], 0.12 + 0.15 * u[2])
    if material == "rubber":
        return _hsv(0.0, 0.0, 0.03 + 0.06 * u[0])
    if material == "metal":
        return _hsv(0.6, 0.05 * u[0], 0.5 + 0.35 * u[1])
    if material == "light_front":
        return _hsv(0.13 + 0.03 * u[0], 0.35 * u[1] ** 2, 0.9 + 0.1 * u[2])
    if material == "light_rear":
        return _hsv(0.99 + 0.03 * u[0], 0.85 + 0.15 * u[1], 0.7 + 0.3 * u[2])
    if material == "dark":
        return _hsv(0.0, 0.0, 0.03 + 0.12 * u[0])
    if material == "plate":
        return _hsv(0.14 * (u[0] < 0.3), 0.4 * (u[0] < 0.3), 0.8 + 0.15 * u[1])
    if material == "wood":
        return _hsv(0.06 + 0.05 * u[0], 0.4 + 0.35 * u[1], 0.25 + 0.5 * u[2])
    if material in ("fabric", "plastic"):
        if u[0] < 0.3:
            return _hsv(0.0, 0.0, 0.08 + 0.8 * u[1])
        return _hsv(u[1], 0.3 + 0.6 * u[2], 0.2 + 0.7 * u[3])
    raise ValueError(f"unknown material {material!r}; choose one of {tuple(MATERIAL_RESPONSE)}")


def part_materials(materials: list[str], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Colours (P, 3) and (strength, shininess, emission) (P, 3) for parts with these materials.

    One colour is drawn per distinct material (in sorted order, so the draw does not depend on
    part order) and shared by all its parts.
    """
    by_material = {m: material_colour(m, rng) for m in sorted(set(materials))}
    colours = np.array([by_material[m] for m in materials], dtype=np.float32).reshape(-1, 3)
    response = np.array([MATERIAL_RESPONSE[m] for m in materials], dtype=np.float32).reshape(-1, 3)
    return colours, response


@dataclass(frozen=True)
class Lighting:
    """One view's lighting: direction toward the light in the camera frame (x right, y up, z to
    the viewer), intensity, ambient, specular scale and a per-channel colour gain."""

    light_x: float
    light_y: float
    light_z: float
    intensity: float
    ambient: float
    specular: float
    gain_r: float
    gain_g: float
    gain_b: float


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """A light mostly from above and in front of the object, with photo-like variation."""
    direction = np.array([rng.uniform(-1.0, 1.0), rng.uniform(-0.3, 1.0), rng.uniform(0.15, 1.0)])
    direction /= np.linalg.norm(direction)
    gain = 1.0 + np.clip(rng.normal(0.0, 0.04, 3), -0.1, 0.1)
    return Lighting(*(float(x) for x in direction), intensity=float(rng.uniform(0.45, 0.95)),
                    ambient=float(rng.uniform(0.15, 0.5)), specular=float(rng.uniform(0.3, 1.0)),
                    gain_r=float(gain[0]), gain_g=float(gain[1]), gain_b=float(gain[2]))


__all__ = ["Lighting", "MATERIAL_RESPONSE", "material_colour", "part_materials", "sample_lighting"]
