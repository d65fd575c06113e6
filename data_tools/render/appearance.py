"""Random part colours, material response and lighting for synthetic renders.

Per instance, each part gets a colour drawn for its material (`data_tools.meshes.mesh.MATERIALS`):
car paint any colour (many achromatic, as on real roads), glass dark bluish, tyres near black,
front lights from silver-grey to white or warm yellow (an unlit lamp is a clear cover over a
reflector, grey in daylight photos), rear lights red, wood brown, fabric and plastic any colour.
Parts of one material share the draw within an instance (both front lights match). Each material
has a specular strength, shininess, an emission (lights glow, with `glossy=True` by a random
amount per instance from none to full: daylight photos mostly show them off) and a reflectivity (the Fresnel reflectance at normal incidence of its environment
reflection: clear-coated paint, tinted glass, chrome); `glossy=True` varies the gloss per
instance (matte to polished paint, brushed to mirror-like metal).

Per view (`sample_lighting`): a sun (direction in the camera frame, mostly from above, sometimes
from behind; intensity; colour temperature), a hemisphere sky light (sky and ground colours,
ambient level), a fill light from another side, the strength of environment reflections, ground
occlusion and a slight white-balance gain. Sunny and overcast days as in photos.
`photo_like=False` gives the first generator's single white light (for the ablation).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

#: material -> (specular strength, shininess, emission, reflectivity)
MATERIAL_RESPONSE = {
    "paint": (0.5, 40.0, 0.0, 0.06),
    "glass": (0.9, 80.0, 0.0, 0.2),
    "rubber": (0.05, 8.0, 0.0, 0.0),
    "metal": (0.8, 30.0, 0.0, 0.45),
    "light_front": (0.6, 60.0, 0.6, 0.1),
    "light_rear": (0.5, 60.0, 0.45, 0.08),
    "dark": (0.15, 16.0, 0.0, 0.03),
    "plate": (0.2, 16.0, 0.1, 0.02),
    "fabric": (0.02, 4.0, 0.0, 0.0),
    "wood": (0.15, 12.0, 0.0, 0.02),
    "plastic": (0.35, 24.0, 0.0, 0.03),
}
#: Materials whose gloss varies per instance with `glossy=True`.
_GLOSS_VARIES = ("paint", "metal", "plastic", "wood")


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
        return _hsv(0.13 + 0.03 * u[0], 0.35 * u[1] ** 2, 0.45 + 0.55 * u[2])
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


def part_materials(materials: list[str], rng: np.random.Generator,
                   glossy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Colours (P, 3) and (strength, shininess, emission, reflectivity) (P, 4) for parts with
    these materials.

    One colour is drawn per distinct material (in sorted order, so the draw does not depend on
    part order) and shared by all its parts. Without `glossy` the reflectivity is 0 (the first
    generator's plain Blinn-Phong materials) and the draw is the same as before it existed.
    """
    by_material = {m: material_colour(m, rng) for m in sorted(set(materials))}
    colours = np.array([by_material[m] for m in materials], dtype=np.float32).reshape(-1, 3)
    response = np.array([MATERIAL_RESPONSE[m] for m in materials], dtype=np.float32).reshape(-1, 4)
    if not glossy:
        response[:, 3] = 0.0
        return colours, response
    gloss = {m: float(rng.uniform(0.3, 1.6)) for m in sorted(set(materials)) if m in _GLOSS_VARIES}
    # Lights are mostly off in daylight photos: their glow varies from none to full per instance,
    # so a model cannot take "glowing white" for "front" (the lights' colours and shapes stay).
    glow = float(rng.uniform(0.0, 1.0))
    for k, m in enumerate(materials):
        if m in gloss:
            response[k, 1] *= gloss[m]          # sharper highlights on glossier finishes
            response[k, 3] = min(1.0, response[k, 3] * gloss[m] ** 2)
        if m in ("light_front", "light_rear"):
            response[k, 2] *= glow
    return colours, response


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """The RGB tint (max channel 1) of a black body at `kelvin` (1000-40000 K); Tanner Helland's
    fit of the CIE 1964 colour matching, good to a few percent in sRGB."""
    t = float(np.clip(kelvin, 1000.0, 40000.0)) / 100.0
    red = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    green = (99.4708025861 * np.log(t) - 161.1195681661 if t <= 66
             else 288.1221695283 * (t - 60) ** -0.0755148492)
    blue = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    rgb = np.clip(np.array([red, green, blue]), 0.0, 255.0)
    return rgb / rgb.max()


_WHITE = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Lighting:
    """One view's lighting (see `data_tools.render.renderer.Renderer.render_batch` for each term):
    direction toward the sun in the camera frame (x right, y up, z to the viewer), its intensity,
    ambient (hemisphere) level, specular scale, a per-channel colour gain, and the photo-like
    terms: sun, sky and ground colours, a fill light, environment-reflection strength and ground
    occlusion (all neutral or zero for the plain light)."""

    light_x: float
    light_y: float
    light_z: float
    intensity: float
    ambient: float
    specular: float
    gain_r: float
    gain_g: float
    gain_b: float
    sun_colour: tuple[float, float, float] = _WHITE
    sky_colour: tuple[float, float, float] = _WHITE
    ground_colour: tuple[float, float, float] = _WHITE
    fill_dir: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fill_intensity: float = 0.0
    fill_colour: tuple[float, float, float] = _WHITE
    environment: float = 0.0
    occlusion: float = 0.0


def _plain_lighting(rng: np.random.Generator) -> Lighting:
    """The first generator's light: one white light mostly from above and in front."""
    direction = np.array([rng.uniform(-1.0, 1.0), rng.uniform(-0.3, 1.0), rng.uniform(0.15, 1.0)])
    direction /= np.linalg.norm(direction)
    gain = 1.0 + np.clip(rng.normal(0.0, 0.04, 3), -0.1, 0.1)
    return Lighting(*(float(x) for x in direction), intensity=float(rng.uniform(0.45, 0.95)),
                    ambient=float(rng.uniform(0.15, 0.5)), specular=float(rng.uniform(0.3, 1.0)),
                    gain_r=float(gain[0]), gain_g=float(gain[1]), gain_b=float(gain[2]))


def _triple(values) -> tuple[float, float, float]:
    return tuple(float(v) for v in values)


def sample_lighting(rng: np.random.Generator, photo_like: bool = True,
                    environment: bool = True) -> Lighting:
    """One view's lighting. photo_like: sunny or overcast sky, coloured sun, sky and fill,
    ground occlusion; otherwise the plain white light. environment=False turns reflections off
    (the materials ablation); the sky still lights the object."""
    plain = _plain_lighting(rng)
    if not photo_like:
        reflection = float(rng.uniform(0.5, 1.0)) * environment
        return Lighting(**{**plain.__dict__, "environment": reflection,
                           "sky_colour": (0.85, 0.88, 0.95), "ground_colour": (0.35, 0.33, 0.3)})
    sunny = rng.random() < 0.6
    # Sun: mostly from above and the camera's side; one view in six is backlit (rim light).
    backlit = rng.random() < 1.0 / 6.0
    direction = np.array([rng.uniform(-1.0, 1.0), rng.uniform(0.05, 1.0),
                          rng.uniform(-0.8, -0.1) if backlit else rng.uniform(0.1, 1.0)])
    direction /= np.linalg.norm(direction)
    intensity = rng.uniform(0.55, 1.05) if sunny else rng.uniform(0.05, 0.3)
    ambient = rng.uniform(0.2, 0.45) if sunny else rng.uniform(0.55, 0.95)
    sun = kelvin_to_rgb(rng.uniform(3500.0, 6500.0))
    if sunny:
        sky = kelvin_to_rgb(rng.uniform(7000.0, 16000.0)) * rng.uniform(0.8, 1.0)
    else:
        sky = np.full(3, rng.uniform(0.75, 1.0)) * kelvin_to_rgb(rng.uniform(6000.0, 8000.0))
    ground_value = rng.uniform(0.15, 0.55)
    ground = ground_value * (1.0 + np.array([0.08, 0.03, -0.08]) * rng.uniform(-1.0, 2.0))
    fill = -direction + rng.normal(0.0, 0.5, 3)
    fill[2] = abs(fill[2]) + 0.2  # the fill comes from the camera's side
    fill /= np.linalg.norm(fill)
    gain = 1.0 + np.clip(rng.normal(0.0, 0.04, 3), -0.1, 0.1)
    return Lighting(
        *(float(x) for x in direction), intensity=float(intensity), ambient=float(ambient),
        specular=float(rng.uniform(0.4, 1.0) if sunny else rng.uniform(0.1, 0.4)),
        gain_r=float(gain[0]), gain_g=float(gain[1]), gain_b=float(gain[2]),
        sun_colour=_triple(sun), sky_colour=_triple(sky), ground_colour=_triple(np.clip(ground, 0, 1)),
        fill_dir=_triple(fill), fill_intensity=float(rng.uniform(0.0, 0.35)),
        fill_colour=_triple(kelvin_to_rgb(rng.uniform(3000.0, 9000.0))),
        environment=float(rng.uniform(0.5, 1.0)) * environment,
        occlusion=float(rng.uniform(0.2, 0.6)))


def lighting_arguments(lights: list[Lighting]) -> dict[str, np.ndarray]:
    """The lighting keyword arguments of `Renderer.render_batch` for these views."""
    column = lambda name: np.array([getattr(light, name) for light in lights], dtype=np.float64)  # noqa: E731
    return {
        "light_dir": np.stack([column("light_x"), column("light_y"), column("light_z")], 1),
        "light_intensity": column("intensity"), "ambient": column("ambient"),
        "specular_scale": column("specular"),
        "colour_gain": np.stack([column("gain_r"), column("gain_g"), column("gain_b")], 1),
        "sun_colour": column("sun_colour"), "sky_colour": column("sky_colour"),
        "ground_colour": column("ground_colour"), "fill_dir": column("fill_dir"),
        "fill_intensity": column("fill_intensity"), "fill_colour": column("fill_colour"),
        "environment": column("environment"), "occlusion": column("occlusion"),
    }


__all__ = ["Lighting", "MATERIAL_RESPONSE", "kelvin_to_rgb", "lighting_arguments", "material_colour",
           "part_materials", "sample_lighting"]
