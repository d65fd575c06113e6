"""Car paint: a base colour with a procedural livery (two-tone, slashes, racing and side stripes,
decals, sponsor lettering, race numbers), paint grain and mud.

Drawn in the texture mapping of `data_tools.render.procedural.textures` (its module docstring: columns run
along object y, rows down object z in the side projection), so elements land on the body side,
the door and, seen from above, along hood and roof.
"""

from __future__ import annotations

import colorsys
from typing import Sequence

import numpy as np

from data_tools.render.procedural.texture_noise import (
    FONT, LETTERS, fractal_noise, paint_noise, to_uint8,
)

#: Probability that a car's paint has no livery (plain road car, only subtle paint noise).
PLAIN_PAINT_FRACTION = 0.4
#: Livery element -> probability that a liveried car carries it (drawn in this order).
LIVERY_ELEMENTS = {
    "two_tone": 0.3,       # a second colour on the lower body or on the front/rear half
    "slashes": 0.2,        # parallel diagonal bands, as on many rally cars
    "stripes": 0.35,       # one or two racing stripes along u (over hood and roof seen from above)
    "side_stripes": 0.3,   # thin lines or a tapered swoosh along the body side
    "decals": 0.55,        # roundels, rectangles, chevrons, sponsor blocks of small text
    "number": 0.4,         # race number in a white roundel or box on the door
}
#: Probability of mud and dust on the lower body, for plain and for liveried cars.
DIRT_FRACTION = {"plain": 0.1, "liveried": 0.3}


def sample_livery(rng: np.random.Generator) -> tuple[str, ...]:
    """The livery elements of one car: () for a plain car, else at least one element."""
    if rng.random() < PLAIN_PAINT_FRACTION:
        return ()
    names = list(LIVERY_ELEMENTS)
    chosen = [name for name in names if rng.random() < LIVERY_ELEMENTS[name]]
    return tuple(chosen) if chosen else (names[int(rng.integers(len(names)))],)


def paint_texture(colour: Sequence[float], rng: np.random.Generator, side: int = 128,
                  elements: Sequence[str] | None = None, dirt: bool | None = None) -> np.ndarray:
    """(side, side, 3) uint8 car paint: base `colour`, a livery, paint noise and maybe dirt.

    `elements` (names from `LIVERY_ELEMENTS`; () = plain) and `dirt` are drawn when None.
    """
    import cv2

    if elements is None:
        elements = sample_livery(rng)
    unknown = sorted(set(elements) - set(LIVERY_ELEMENTS))
    if unknown:
        raise ValueError(f"unknown livery element(s) {unknown}; "
                         f"choose from {tuple(LIVERY_ELEMENTS)}")
    if dirt is None:
        dirt = rng.random() < DIRT_FRACTION["liveried" if elements else "plain"]
    colour = np.asarray(colour, dtype=np.float32)
    canvas = np.empty((side, side, 3), np.uint8)
    canvas[:] = to_uint8(colour)
    palette = [_livery_colour(colour, rng) for _ in range(3)]
    for name in LIVERY_ELEMENTS:  # fixed order: big areas first, the number on top
        if name in elements:
            _DRAW[name](canvas, palette, rng)
    shade = paint_noise(rng, side, 0.012)
    if not dirt:
        return cv2.multiply(canvas, cv2.merge([shade] * 3), dtype=cv2.CV_8U)
    image = canvas.astype(np.float32) * (shade / 255.0)[..., None]
    return to_uint8(_add_dirt(image, rng))


def draw_race_number(canvas: np.ndarray, text: str, y: float, z: float, height: float,
                     boxed: bool = False, ink: Sequence[int] = (15, 15, 15),
                     ground: Sequence[int] = (245, 245, 245)) -> np.ndarray:
    """Draw `text` (digits) in a `ground` roundel (or box) centred at object (y, z), in place.

    `height` is the roundel's diameter (box height) in object units; the digits fill about
    60 % of it. Drawn on a (T, T, 3) uint8 canvas in the side projection; returns the canvas.
    """
    import cv2

    side = canvas.shape[0]
    radius = 0.5 * height * side
    centre = _pixel((y, z), side)
    if boxed:
        half_w = max(radius, 0.5 * radius * (1.0 + 0.6 * len(text)))
        corners = (_fixed((centre[0] - half_w, centre[1] - radius)),
                   _fixed((centre[0] + half_w, centre[1] + radius)))
        cv2.rectangle(canvas, *corners, tuple(ground), -1, cv2.LINE_AA, 4)
        _draw_text(canvas, text, centre, 1.7 * half_w, 1.3 * radius, ink)
    else:
        cv2.circle(canvas, _fixed(centre), int(radius * 16), tuple(ground), -1, cv2.LINE_AA, 4)
        _draw_text(canvas, text, centre, 1.5 * radius, 1.2 * radius, ink)
    return canvas


def _draw_text(canvas: np.ndarray, text: str, centre: tuple[float, float], width: float,
               height: float, ink: Sequence[int], weight: float = 0.14) -> None:
    """Blend bold `text` fitted into a `width` x `height` pixel box centred at `centre` (cv2
    coordinates), drawn at 4x and shrunk so even 5-pixel glyphs stay legible."""
    import cv2

    k = 4
    (text_w, text_h), _ = cv2.getTextSize(text, FONT, 1.0, 1)
    fit = k * min(width / text_w, height / text_h)
    thickness = max(1, int(round(weight * fit * text_h)))
    (w, h), _ = cv2.getTextSize(text, FONT, fit, thickness)
    side_y, side_x = canvas.shape[:2]
    x0, y0 = int(np.floor(centre[0] - w / (2 * k))) - 1, int(np.floor(centre[1] - h / (2 * k))) - 1
    x1, y1 = int(np.ceil(centre[0] + w / (2 * k))) + 2, int(np.ceil(centre[1] + h / (2 * k))) + 2
    patch = np.zeros(((y1 - y0) * k, (x1 - x0) * k), np.uint8)
    to_patch = lambda x, start: (x - start + 0.5) * k - 0.5  # noqa: E731 - canvas -> patch
    origin = (int(round(to_patch(centre[0], x0) - w / 2)),
              int(round(to_patch(centre[1], y0) + h / 2)))
    cv2.putText(patch, text, origin, FONT, fit, 255, thickness, cv2.LINE_AA)
    alpha = cv2.resize(patch, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, side_x), min(y1, side_y)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    alpha = alpha[cy0 - y0: cy1 - y0, cx0 - x0: cx1 - x0, None].astype(np.float32) / 255.0
    region = canvas[cy0:cy1, cx0:cx1].astype(np.float32)
    canvas[cy0:cy1, cx0:cx1] = np.rint(region + alpha * (np.asarray(ink, np.float32) - region))


def _two_tone(canvas: np.ndarray, palette: list, rng: np.random.Generator) -> None:
    """Lower body (below a line along u, slightly slanted) or front/rear half in a second colour.

    No "upper" variant: in the top projection rows are x, so an upper colour would cover one
    side of the roof and hood only.
    """
    import cv2

    side = canvas.shape[0]
    if rng.random() < 0.55:
        z_front, z_rear = rng.uniform(-0.09, -0.03) + rng.uniform(-0.02, 0.02, 2)
        line = [(-0.5, z_front), (0.5, z_rear)]
        polygon = line + [(0.5, -0.5), (-0.5, -0.5)]
    else:
        y_top, y_bottom = rng.uniform(-0.15, 0.15) + rng.uniform(-0.12, 0.12, 2)
        end = -0.5 if rng.random() < 0.5 else 0.5
        line = [(y_top, 0.5), (y_bottom, -0.5)]
        polygon = line + [(end, -0.5), (end, 0.5)]
    cv2.fillPoly(canvas, [_polygon(polygon, side)], palette[0], cv2.LINE_AA, 4)
    if rng.random() < 0.5:  # a pinstripe on the boundary
        cv2.polylines(canvas, [_polygon(line, side)], False, palette[1], 1, cv2.LINE_AA, 4)


def _slashes(canvas: np.ndarray, palette: list, rng: np.random.Generator) -> None:
    """2-4 parallel diagonal bands over the full height, on the front, middle or rear."""
    import cv2

    side = canvas.shape[0]
    count, width = int(rng.integers(2, 5)), rng.uniform(0.025, 0.06)
    pitch, slant = width * rng.uniform(1.5, 2.4), rng.choice([-1, 1]) * rng.uniform(0.1, 0.3)
    start = rng.uniform(-0.45, 0.3 - count * pitch)
    for k in range(count):
        y0 = start + k * pitch
        band = [(y0 - slant, 0.5), (y0 + width - slant, 0.5), (y0 + width + slant, -0.5),
                (y0 + slant, -0.5)]
        colour = palette[0] if k % 2 == 0 or rng.random() < 0.5 else palette[1]
        cv2.fillPoly(canvas, [_polygon(band, side)], colour, cv2.LINE_AA, 4)


def _stripes(canvas: np.ndarray, palette: list, rng: np.random.Generator) -> None:
    """One centred or two symmetric racing stripes along u, maybe with pinstripe edges."""
    side = canvas.shape[0]
    if rng.random() < 0.5:
        half = rng.uniform(0.015, 0.05)
        bands = [(-half, half)]
    else:
        width, gap = rng.uniform(0.012, 0.035), rng.uniform(0.006, 0.03)
        bands = [(gap / 2, gap / 2 + width), (-gap / 2 - width, -gap / 2)]
    edge = rng.random() < 0.4
    for low, high in bands:
        top, bottom = int(round(_row(high, side))), int(round(_row(low, side)))
        canvas[top: max(bottom, top + 1)] = palette[0]
        if edge:
            canvas[max(top - 1, 0)] = palette[1]
            canvas[min(bottom, side - 1)] = palette[1]


def _side_stripes(canvas: np.ndarray, palette: list, rng: np.random.Generator) -> None:
    """Thin straight lines or one tapered, curving swoosh along the body side."""
    import cv2

    side = canvas.shape[0]
    y_start, y_end = rng.uniform(-0.45, -0.15), rng.uniform(0.15, 0.45)
    z0 = rng.uniform(-0.09, 0.0)
    if rng.random() < 0.5:
        for k in range(int(rng.integers(1, 3))):
            z = z0 - k * rng.uniform(0.015, 0.03)
            thickness = rng.uniform(0.006, 0.02)
            rectangle = [(y_start, z + thickness / 2), (y_end, z - thickness / 2)]
            cv2.rectangle(canvas, *(_fixed(_pixel(p, side)) for p in rectangle), palette[k % 2],
                          -1, cv2.LINE_AA, 4)
        return
    t = np.linspace(0.0, 1.0, 24)
    y = y_start + (y_end - y_start) * t
    if rng.random() < 0.5:
        t = t[::-1]  # taper toward the front instead of the rear
    z = z0 + rng.uniform(-0.04, 0.04) * np.sin(np.pi * t * rng.uniform(0.5, 1.5))
    half = rng.uniform(0.008, 0.03) * t ** rng.uniform(0.5, 2.0) + 0.002
    outline = list(zip(y, z + half)) + list(zip(y[::-1], (z - half)[::-1]))
    cv2.fillPoly(canvas, [_polygon(outline, side)], palette[int(rng.integers(2))], cv2.LINE_AA, 4)


def _decals(canvas: np.ndarray, palette: list, rng: np.random.Generator) -> None:
    """1-4 roundels, rectangles, chevrons or sponsor blocks on the body side band."""
    import cv2

    side = canvas.shape[0]
    for _ in range(int(rng.integers(1, 5))):
        y, z = rng.uniform(-0.38, 0.38), rng.uniform(-0.09, 0.0)
        fill, trim = (palette[1], palette[2]) if rng.random() < 0.5 else (palette[2], palette[0])
        kind = int(rng.integers(4))
        if kind == 0:  # roundel with a ring
            radius = rng.uniform(0.015, 0.04) * side
            cv2.circle(canvas, _fixed(_pixel((y, z), side)), int(16 * radius), fill, -1,
                       cv2.LINE_AA, 4)
            cv2.circle(canvas, _fixed(_pixel((y, z), side)), int(16 * radius * 0.6), trim,
                       max(1, int(radius / 4)), cv2.LINE_AA, 4)
        elif kind == 1:  # chevron pointing along u
            size, sign = rng.uniform(0.02, 0.045), rng.choice([-1.0, 1.0])
            arrow = [(y, z + size), (y + sign * size, z), (y, z - size), (y + 0.6 * sign * size, z)]
            cv2.fillPoly(canvas, [_polygon(arrow, side)], fill, cv2.LINE_AA, 4)
        else:  # a rectangle, or a sponsor block: small random text on a plate or bare
            half_w, half_h = rng.uniform(0.03, 0.11), rng.uniform(0.01, 0.03)
            box = [(y - half_w, z + half_h), (y + half_w, z - half_h)]
            if kind == 2 or rng.random() < 0.6:
                cv2.rectangle(canvas, *(_fixed(_pixel(p, side)) for p in box), fill, -1,
                              cv2.LINE_AA, 4)
            if kind == 3:  # readable on whatever lies under the box's centre
                column, row = (int(round(c)) for c in _pixel((y, z), side))
                _sponsor_text(canvas, rng, box, _contrasting(trim, canvas[row, column]))


def _sponsor_text(canvas: np.ndarray, rng: np.random.Generator, box: list, ink) -> None:
    """3-7 random capitals fitted into `box` ((y, z) corners)."""
    side = canvas.shape[0]
    text = "".join(rng.choice(LETTERS, int(rng.integers(3, 8))))
    (x0, y0), (x1, y1) = (_pixel(p, side) for p in box)
    _draw_text(canvas, text, ((x0 + x1) / 2, (y0 + y1) / 2), 0.85 * (x1 - x0), 0.7 * (y1 - y0),
               ink, weight=0.1)


def _number(canvas: np.ndarray, palette: list, rng: np.random.Generator) -> None:
    """A 1-3 digit race number on the door (also seen on the hood/roof from above)."""
    digits = str(int(rng.integers(1, 10 ** int(rng.integers(1, 4)))))
    ground = (245, 245, 245) if rng.random() < 0.75 else (250, 210, 40)
    ink = (15, 15, 15) if rng.random() < 0.75 else _contrasting(palette[1], ground)
    draw_race_number(canvas, digits, rng.uniform(-0.1, 0.12), rng.uniform(-0.075, -0.035),
                     rng.uniform(0.07, 0.1), boxed=rng.random() < 0.5, ink=ink, ground=ground)


_DRAW = {"two_tone": _two_tone, "slashes": _slashes, "stripes": _stripes,
         "side_stripes": _side_stripes, "decals": _decals, "number": _number}
assert set(_DRAW) == set(LIVERY_ELEMENTS)


def _livery_colour(base: np.ndarray, rng: np.random.Generator) -> tuple[int, int, int]:
    """A livery colour (0-255 ints) that stands out from the base paint: white, black, silver
    or a saturated hue."""
    u = rng.random(4)
    if u[0] < 0.3:
        rgb = (0.95, 0.95, 0.94)
    elif u[0] < 0.45:
        rgb = (0.06, 0.06, 0.07)
    elif u[0] < 0.55:
        rgb = (0.7, 0.72, 0.74)
    else:
        rgb = colorsys.hsv_to_rgb(u[1], 0.65 + 0.35 * u[2], 0.55 + 0.45 * u[3])
    if np.abs(np.asarray(rgb) - base).max() < 0.3:  # too close to the paint: go light or dark
        rgb = (0.06, 0.06, 0.07) if base.mean() > 0.5 else (0.95, 0.95, 0.94)
    return tuple(int(round(255 * c)) for c in rgb)


def _contrasting(colour: tuple, against: Sequence[int]) -> tuple[int, int, int]:
    """`colour`, or near black / white when it is too close to `against` to read on it."""
    if np.abs(np.subtract(colour, against)).max() >= 80:
        return tuple(colour)
    return (15, 15, 15) if np.mean(against) > 110 else (245, 245, 245)


def _add_dirt(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brownish fractal mud and dust on the lowest rows (low z), with splashes a little above;
    in place."""
    import cv2

    side = image.shape[0]
    z = 0.5 - (np.arange(side, dtype=np.float32) + 0.5) / side
    top, reach = rng.uniform(-0.1, -0.04), rng.uniform(0.02, 0.06)
    ramp = np.clip((top - z) / reach, 0.0, 1.0)[:, None]  # (T, 1): 0 above `top`, 1 below
    near = np.clip((top + reach - z) / reach, 0.0, 1.0)[:, None]  # nothing above top + reach
    noise = fractal_noise(rng, side, 6, 4)
    speckle = cv2.resize(rng.random((side // 2, side // 2), dtype=np.float32), (side, side),
                         interpolation=cv2.INTER_NEAREST)
    alpha = np.clip(ramp * 1.4 + (noise - 0.5) * 3.0 - 0.5, 0.0, 1.0) * near
    alpha = np.maximum(alpha, 0.8 * near * (speckle > rng.uniform(0.85, 0.97)))
    alpha *= rng.uniform(0.5, 0.95)
    mud = np.array(colorsys.hsv_to_rgb(rng.uniform(0.06, 0.12), rng.uniform(0.25, 0.6),
                                       rng.uniform(0.25, 0.6)), np.float32)
    mud_tone = (0.7 + 0.6 * noise)[..., None] * mud
    image += alpha[..., None] * (mud_tone - image)
    return image


def _row(z: float, side: int) -> float:
    """Object z -> continuous texture row (texel i covers [i, i + 1), as GL samples it)."""
    return (0.5 - z) * side


def _pixel(point: tuple[float, float], side: int) -> tuple[float, float]:
    """Object (y, z) -> cv2 drawing coordinates (column, row), whose pixel centres are integers."""
    return (point[0] + 0.5) * side - 0.5, _row(point[1], side) - 0.5


def _fixed(pixel: tuple[float, float]) -> tuple[int, int]:
    """Pixel coordinates in cv2's 4-bit fixed point (drawing calls with shift=4)."""
    return int(round(16 * pixel[0])), int(round(16 * pixel[1]))


def _polygon(points: Sequence[tuple[float, float]], side: int) -> np.ndarray:
    """Object (y, z) points -> an int32 fixed-point polygon for cv2 (shift=4)."""
    return np.array([_fixed(_pixel(p, side)) for p in points], np.int32)


__all__ = ["DIRT_FRACTION", "LIVERY_ELEMENTS", "PLAIN_PAINT_FRACTION", "draw_race_number", "paint_texture",
           "sample_livery"]
