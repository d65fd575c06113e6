"""Procedural cars: thousands of distinct, part-coloured car meshes from integer seeds.

The body is a side profile (hood, windshield, roof, rear window, trunk / hatch / bed) lofted
along the car's width through convex cross-sections with a bevelled sill, a shoulder and a
narrower roof (tumblehome). Glass, lights, grille, plates, bumpers, wheel arches, mirrors and
wheels are separate parts so the renderer can colour each one.

Front and rear must be unmistakable even at 64x64 pixels (DESIGN.md section 8: a prototype's
errors were nearly all front/rear flips), so the two ends differ in several independent ways:
the hood is longer than the trunk, the windshield is larger and more raked than the rear window,
the front carries a dark grille between the headlights, the rear wide red tail lights; mirrors
sit at the front of the cabin. Most modern cars (`painted_bumpers`) have bumpers in the body's
paint with a dark air intake low on the front one, as in photographs; the rest have black ones.

Built in metres with the ground at z = 0, then `normalise_to_frame` puts the car into the binding
object frame (DESIGN.md section 2): +z up, front toward -y, +x the car's own left, bounding box
centred, diagonal 1.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

from data_tools.meshes.mesh import (
    ObjectMesh,
    box,
    cylinder,
    lathe,
    loft,
    make_part,
    normalise_to_frame,
    panel,
)

VARIANTS = ("sedan", "hatchback", "suv", "pickup", "van", "sports")
#: Sports cars (low, wide coupes with a long hood and a sloping rear window) replace this share of
#: the cars. Their shape is drawn after every other parameter, so adding them left the rest as
#: they were; the first five variants are drawn first, uniformly.
SPORTS_FRACTION = 0.15
ROUNDED_FRACTION = 0.5  # cars with a rounded body (modern cars); the rest keep crisp panels
PAINTED_BUMPER_FRACTION = 0.6  # cars with body-coloured bumpers and a front intake; the rest black

# Sampling ranges (low, high) per variant; lengths in metres, angles in degrees from vertical.
# Fractions: hood / trunk / wheelbase / front overhang of the length, cowl of the height.
_RANGES = {
    "sedan": dict(length=(4.3, 5.1), width=(1.72, 1.9), height=(1.36, 1.5),
                  ride_height=(0.12, 0.18), hood=(0.26, 0.32), trunk=(0.15, 0.2),
                  cowl=(0.62, 0.69), windshield_rake=(58, 66), rear_rake=(40, 52),
                  wheel_radius=(0.3, 0.35), wheelbase=(0.56, 0.62)),
    "hatchback": dict(length=(3.7, 4.4), width=(1.65, 1.8), height=(1.42, 1.55),
                      ride_height=(0.13, 0.18), hood=(0.22, 0.28), trunk=(0.0, 0.0),
                      cowl=(0.62, 0.68), windshield_rake=(56, 64), rear_rake=(15, 35),
                      wheel_radius=(0.28, 0.33), wheelbase=(0.6, 0.66)),
    "suv": dict(length=(4.3, 5.0), width=(1.8, 2.0), height=(1.65, 1.85),
                ride_height=(0.2, 0.28), hood=(0.24, 0.3), trunk=(0.0, 0.0),
                cowl=(0.58, 0.65), windshield_rake=(50, 58), rear_rake=(8, 22),
                wheel_radius=(0.35, 0.42), wheelbase=(0.57, 0.62)),
    "pickup": dict(length=(5.0, 5.8), width=(1.85, 2.0), height=(1.75, 1.95),
                   ride_height=(0.22, 0.3), hood=(0.26, 0.31), trunk=(0.3, 0.36),
                   cowl=(0.6, 0.66), windshield_rake=(50, 58), rear_rake=(3, 10),
                   wheel_radius=(0.37, 0.43), wheelbase=(0.58, 0.64)),
    "van": dict(length=(4.6, 5.4), width=(1.8, 2.0), height=(1.9, 2.15),
                ride_height=(0.15, 0.22), hood=(0.08, 0.16), trunk=(0.0, 0.0),
                cowl=(0.48, 0.56), windshield_rake=(52, 62), rear_rake=(3, 10),
                wheel_radius=(0.31, 0.36), wheelbase=(0.55, 0.62)),
    "sports": dict(length=(4.1, 4.7), width=(1.8, 1.98), height=(1.15, 1.32),
                   ride_height=(0.08, 0.13), hood=(0.3, 0.36), trunk=(0.1, 0.16),
                   cowl=(0.6, 0.68), windshield_rake=(62, 70), rear_rake=(45, 58),
                   wheel_radius=(0.31, 0.36), wheelbase=(0.56, 0.61)),
}


@dataclass(frozen=True)
class CarParams:
    """Independent shape parameters of one car (metres, degrees from vertical).

    The cabin sits between the hood and the trunk: it starts `hood_length` behind the front
    bumper, is `length - hood_length - trunk_length` long and `height - hood_height` tall; its
    roof length follows from the windshield and rear-window rakes.
    """

    variant: str
    length: float
    width: float
    height: float  # ground to roof
    ride_height: float  # ground to the body's underside
    hood_length: float  # front bumper to the windshield base
    trunk_length: float  # rear-window base to the rear bumper (trunk, hatch sill or bed)
    hood_height: float  # ground to the windshield base (cowl)
    nose_drop: float  # how much lower the front edge of the hood is than the cowl
    deck_height: float  # ground to the rear-window base (trunk lid, hatch sill, bed rail)
    windshield_rake: float
    rear_window_rake: float
    roof_taper: float  # roof width / body width (tumblehome)
    wheel_radius: float
    tire_width: float
    wheelbase: float
    front_overhang: float  # front bumper to the front axle
    track: float  # distance between the left and right tyre centres
    headlight_width: float  # fraction of the half width
    headlight_height: float
    grille_width: float  # fraction of the space between the headlights
    grille_height: float
    taillight_width: float  # fraction of the half width
    taillight_height: float
    taillight_bar: bool  # a light strip joining the tail lights across the rear
    plate_width: float
    bumper_height: float
    side_windows: int  # windows per side (1 to 3)
    spare_wheel: bool  # a spare wheel on the tailgate (SUVs)
    rounded: bool = False  # a smooth, rounded body (corner-cut cross-sections and profile)
    painted_bumpers: bool = False  # bumpers in the body's paint, a dark intake on the front one
    intake_width: float = 0.7  # the front intake's width, a fraction of the bumper's


def _ranged_draws(rng: np.random.Generator, variant: str):
    """draw(key): a uniform draw from `variant`'s range for `key` (`_RANGES`)."""
    ranges = _RANGES[variant]

    def draw(key: str) -> float:
        low, high = ranges[key]
        return float(rng.uniform(low, high))

    return draw


def car_params(rng: np.random.Generator, sports: bool = True) -> CarParams:
    """Draw one car's parameters: a variant, then each parameter uniformly in its range; last,
    whether it is a sports car instead (`SPORTS_FRACTION`; `sports=False` draws the same numbers
    and keeps the first variant, as the first generator did)."""
    variant = VARIANTS[int(rng.integers(len(VARIANTS) - 1))]  # the five before "sports"
    draw = _ranged_draws(rng, variant)
    length, width, height = draw("length"), draw("width"), draw("height")
    hood_height = draw("cowl") * height
    tire_width = float(rng.uniform(0.18, 0.27))
    wheel_poke = float(rng.uniform(0.015, 0.04))  # the tyre's outer face beyond the body side
    if variant in ("hatchback", "suv", "van"):
        trunk_length = float(rng.uniform(0.1, 0.16))
        deck_height = hood_height + float(rng.uniform(0.0, 0.08))
    elif variant == "pickup":
        trunk_length = draw("trunk") * length
        deck_height = hood_height + float(rng.uniform(-0.1, 0.0))
    else:
        trunk_length = draw("trunk") * length
        deck_height = hood_height + float(rng.uniform(-0.02, 0.08))
    wheelbase = draw("wheelbase") * length
    front_overhang = float(rng.uniform(0.17, 0.22)) * length
    front_overhang = min(front_overhang, length - wheelbase - 0.4)  # keep the rear axle inside
    params = CarParams(
        variant=variant,
        length=length,
        width=width,
        height=height,
        ride_height=draw("ride_height"),
        hood_length=draw("hood") * length,
        trunk_length=trunk_length,
        hood_height=hood_height,
        nose_drop=float(rng.uniform(0.04, 0.3 if variant == "van" else 0.16)),
        deck_height=deck_height,
        windshield_rake=draw("windshield_rake"),
        rear_window_rake=draw("rear_rake"),
        roof_taper=float(rng.uniform(0.76, 0.88)),
        wheel_radius=draw("wheel_radius"),
        tire_width=tire_width,
        wheelbase=wheelbase,
        front_overhang=front_overhang,
        track=2.0 * (width / 2.0 - tire_width / 2.0 + wheel_poke),
        headlight_width=float(rng.uniform(0.3, 0.45)),
        headlight_height=float(rng.uniform(0.1, 0.18)),
        grille_width=float(rng.uniform(0.5, 0.95)),
        grille_height=float(rng.uniform(0.1, 0.3 if variant in ("suv", "pickup") else 0.2)),
        taillight_width=float(rng.uniform(0.32, 0.5)),
        taillight_height=float(rng.uniform(0.12, 0.22)),
        taillight_bar=bool(rng.random() < 0.35),
        plate_width=float(rng.uniform(0.32, 0.52)),
        bumper_height=float(rng.uniform(0.16, 0.26)),
        side_windows=1 if variant == "pickup" and rng.random() < 0.5 else
        (int(rng.integers(2, 4)) if variant in ("suv", "van") else 2),
        spare_wheel=bool(variant == "suv" and rng.random() < 0.4),
        rounded=bool(rng.random() < ROUNDED_FRACTION),  # drawn late: the other draws stay as before
        painted_bumpers=bool(rng.random() < PAINTED_BUMPER_FRACTION),
        intake_width=float(rng.uniform(0.45, 0.9)),
    )
    is_sports = bool(rng.random() < SPORTS_FRACTION)
    sports_shape = _sports_shape(rng, params)  # drawn for every car: the stream stays the same
    return replace(params, **sports_shape) if sports and is_sports else params


def _sports_shape(rng: np.random.Generator, base: CarParams) -> dict:
    """The shape parameters that turn `base` into a sports car (the rest, lights, plates and
    paint, stay): low and wide, a long hood over a dropped nose, a short raised deck."""
    draw = _ranged_draws(rng, "sports")
    length, width, height = draw("length"), draw("width"), draw("height")
    hood_height = draw("cowl") * height
    wheelbase = draw("wheelbase") * length
    front_overhang = min(float(rng.uniform(0.16, 0.2)) * length, length - wheelbase - 0.4)
    return dict(
        variant="sports", length=length, width=width, height=height,
        ride_height=draw("ride_height"), hood_length=draw("hood") * length,
        trunk_length=draw("trunk") * length, hood_height=hood_height,
        nose_drop=float(rng.uniform(0.08, 0.2)),
        deck_height=hood_height + float(rng.uniform(0.03, 0.1)),  # the rear window stays smaller
        windshield_rake=draw("windshield_rake"), rear_window_rake=draw("rear_rake"),
        wheel_radius=draw("wheel_radius"), wheelbase=wheelbase, front_overhang=front_overhang,
        track=base.track + (width - base.width),  # the same tyre and its poke, a wider body
        grille_height=float(rng.uniform(0.06, 0.14)), side_windows=1, spare_wheel=False,
    )


# Cross-section ring corners (the +x half; the -x half mirrors it): bottom, sill, belt, roof edge.
_SILL, _BELT, _TOP = 2, 3, 4
# Profile stations, front to rear; a trunk or bed adds a deck-rear station before the tail.
_NOSE, _HOOD_FRONT, _COWL, _ROOF_FRONT, _ROOF_REAR, _DECK = range(6)


def _body_stations(p: CarParams) -> dict[str, np.ndarray]:
    """Side-profile stations from front (-y) to rear (+y): y, bottom, belt and top heights,
    body half width and top half width, one entry each per station."""
    half_l, half_w = p.length / 2.0, p.width / 2.0
    cowl_y = -half_l + p.hood_length
    deck_y = half_l - p.trunk_length
    cabin = deck_y - cowl_y
    windshield_run = (p.height - p.hood_height) * np.tan(np.radians(p.windshield_rake))
    rear_run = (p.height - p.deck_height) * np.tan(np.radians(p.rear_window_rake))
    shrink = min(1.0, 0.7 * cabin / (windshield_run + rear_run))  # keep a roof of >= 30 %
    windshield_run, rear_run = windshield_run * shrink, rear_run * shrink
    nose_len, tail_len = 0.12, 0.1
    hood_front = p.hood_height - p.nose_drop
    bevel = 0.04
    roof_w = half_w * p.roof_taper
    ride = p.ride_height
    # (y, top, half width, top half width, bottom) per station, front to rear.
    rows = [
        (-half_l, hood_front - 0.05, 0.93 * half_w, 0.93 * half_w - 0.08, ride + 0.08),  # nose
        (-half_l + nose_len, hood_front, half_w, half_w - 0.06, ride),  # hood front
        (cowl_y, p.hood_height, half_w, half_w - 0.06, ride),  # cowl: windshield base
        (cowl_y + windshield_run, p.height, half_w, roof_w, ride),  # roof front
        (deck_y - rear_run, p.height - 0.02, half_w, roof_w, ride),  # roof rear
        (deck_y, p.deck_height, half_w, half_w - 0.06, ride),  # deck: rear-window base
    ]
    if p.trunk_length > tail_len + 0.05:  # trunk lid or bed
        rows.append((half_l - tail_len, p.deck_height, 0.99 * half_w, half_w - 0.07, ride))
    rows.append((half_l, p.deck_height - 0.04, 0.95 * half_w, 0.95 * half_w - 0.08, ride + 0.06))
    y, top, width, top_w, bottom = np.array(rows).T
    belt = top - bevel
    # Across the cabin the belt line runs straight from the cowl to the deck.
    cabin_stations = [_ROOF_FRONT, _ROOF_REAR]
    belt[cabin_stations] = np.interp(y[cabin_stations], y[[_COWL, _DECK]], belt[[_COWL, _DECK]])
    return dict(y=y, top=top, width=width, top_w=top_w, bottom=bottom, belt=belt)


def _rings(s: dict[str, np.ndarray]) -> np.ndarray:
    """(S, 8, 3) convex cross-section rings, counter-clockwise in x-z seen from the front."""
    w, bw, tw = s["width"], s["width"] - 0.05, s["top_w"]
    xs = np.stack([-bw, bw, w, w, tw, -tw, -w, -w], axis=1)
    sill = s["bottom"] + 0.06
    zs = np.stack([s["bottom"], s["bottom"], sill, s["belt"], s["top"], s["top"],
                   s["belt"], sill], axis=1)
    ys = np.repeat(s["y"][:, None], 8, axis=1)
    return np.stack([xs, ys, zs], axis=-1)


def _chaikin(points: np.ndarray, axis: int, closed: bool, iterations: int) -> np.ndarray:
    """Chaikin corner cutting along `axis` of `points`: each pass replaces every edge by its
    1/4 and 3/4 points, converging to a quadratic B-spline; convex rings stay convex. An open
    curve keeps its end points."""
    points = np.moveaxis(np.asarray(points, dtype=np.float64), axis, 0)
    for _ in range(iterations):
        nxt = np.roll(points, -1, axis=0) if closed else points[1:]
        cur = points if closed else points[:-1]
        cut = np.stack([0.75 * cur + 0.25 * nxt, 0.25 * cur + 0.75 * nxt], axis=1)
        cut = cut.reshape(-1, *points.shape[1:])
        points = cut if closed else np.concatenate([points[:1], cut, points[-1:]])
    return np.moveaxis(points, 0, axis)


def rounded_body(rings: np.ndarray, iterations: int = 2) -> np.ndarray:
    """The body rings (S, K, 3) smoothed: corner-cut round each cross-section and along the
    side profile (a rounder body: curved roof, bonnet and flanks) with the same silhouette
    landmarks (nose, cowl, roof, deck and tail stay where they were, slightly eased)."""
    smooth = _chaikin(rings, axis=1, closed=True, iterations=iterations)
    return _chaikin(smooth, axis=0, closed=False, iterations=max(1, iterations - 1))


def _ring_at(rings: np.ndarray, ys: np.ndarray, y: float) -> np.ndarray:
    """The cross-section ring (8, 3) at position `y`, interpolated between stations."""
    i = int(np.clip(np.searchsorted(ys, y) - 1, 0, len(ys) - 2))
    f = (y - ys[i]) / (ys[i + 1] - ys[i])
    return (1.0 - f) * rings[i] + f * rings[i + 1]


def _quad_inset(corners: np.ndarray, inset: float) -> np.ndarray:
    """Shrink a quad (4, 3) toward its centre by `inset` (fraction) along both directions."""
    p00, p10, p11, p01 = corners
    lo, hi = inset, 1.0 - inset
    uv = np.array([[lo, lo], [hi, lo], [hi, hi], [lo, hi]])
    u, v = uv[:, :1], uv[:, 1:]
    return (1 - u) * (1 - v) * p00 + u * (1 - v) * p10 + u * v * p11 + (1 - u) * v * p01


def _glass_on_top(rings, front: int, back: int, centre, inset: float = 0.07):
    """A glass panel on the top strip (roof-edge corners) between two stations."""
    left, right = _TOP, _TOP + 1  # the +x and -x roof-edge corners
    quad = np.stack([rings[front, left], rings[front, right], rings[back, right],
                     rings[back, left]])
    quad = _quad_inset(quad, inset)
    normal = np.cross(quad[1] - quad[0], quad[3] - quad[0])
    if np.dot(normal, quad.mean(axis=0) - centre) < 0:
        normal = -normal
    normal /= np.linalg.norm(normal)
    return panel(quad - 0.004 * normal, normal, 0.014)


def _side_window(rings, ys, y_start: float, y_end: float, side: float):
    """A glass ribbon on the greenhouse side (belt to roof edge) from y_start to y_end."""
    inner = ys[(ys > y_start) & (ys < y_end)]
    columns = []
    for y in np.concatenate([[y_start], inner, [y_end]]):
        ring = _ring_at(rings, ys, y)
        belt, edge = ring[_BELT], ring[_TOP]
        bottom, top = belt + 0.1 * (edge - belt), belt + 0.86 * (edge - belt)
        d = edge - belt
        normal = np.array([d[2], 0.0, -d[0]]) / np.hypot(d[0], d[2])
        columns.append([bottom - 0.004 * normal, bottom + 0.012 * normal,
                        top + 0.012 * normal, top - 0.004 * normal])
    columns = np.asarray(columns)
    columns[..., 0] *= side
    return loft(columns)


def _face_rect(x0, x1, z0, z1, y, outward: float, depth: float = 0.018):
    """A slab over the rectangle [x0, x1] x [z0, z1] on the plane y, sticking out by `depth`
    toward `outward` (-1 front, +1 rear)."""
    corners = np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]])
    corners[:, 1] -= outward * 0.004
    return panel(corners, [0.0, outward, 0.0], depth)


def _side_rect(rings, ys, y0: float, y1: float, z0: float, z1: float, side: float):
    """A thin slab on the body side (x = +-belt width) over [y0, y1] x [z0, z1]."""
    x0, x1 = (_ring_at(rings, ys, y)[_BELT, 0] for y in (y0, y1))
    corners = np.array([[x0, y0, z0], [x1, y1, z0], [x1, y1, z1], [x0, y0, z1]])
    corners[:, 0] = side * (corners[:, 0] - 0.004)
    return panel(corners, [side, 0.0, 0.0], 0.014)


def _wheel(centre, axis, p: CarParams, segments: int = 18):
    """A tyre (rounded lathe) and a metal hub on its outer face, as two (vertices, faces)."""
    r, half = p.wheel_radius, p.tire_width / 2.0
    tire_profile = [(0.62 * r, -half), (0.92 * r, -half), (r, -0.55 * half),
                    (r, 0.55 * half), (0.92 * r, half), (0.62 * r, half)]
    tire = lathe(tire_profile, centre, axis, segments)
    hub_centre = np.asarray(centre) + np.asarray(axis) * (half - 0.004)
    hub = cylinder(hub_centre, axis, 0.64 * r, 0.02, 12)
    return tire, hub


def _glass(p: CarParams, rings: np.ndarray, ys: np.ndarray) -> list:
    """Windshield, rear window and side windows (split by pillars), just outside the body."""
    centre = np.array([0.0, 0.0, (p.ride_height + p.height) / 2.0])
    glass = [_glass_on_top(rings, _COWL, _ROOF_FRONT, centre),
             _glass_on_top(rings, _ROOF_REAR, _DECK, centre)]
    y_start = ys[_COWL] + 0.45 * (ys[_ROOF_FRONT] - ys[_COWL])
    y_end = ys[_ROOF_REAR] + 0.5 * (ys[_DECK] - ys[_ROOF_REAR]) - 0.05
    edges = np.linspace(y_start, y_end, p.side_windows + 1)
    pillar = 0.05
    for k in range(p.side_windows):
        a = edges[k] + (pillar if k > 0 else 0.0)
        b = edges[k + 1] - (pillar if k < p.side_windows - 1 else 0.0)
        glass += [_side_window(rings, ys, a, b, +1.0), _side_window(rings, ys, a, b, -1.0)]
    return glass


def _ends(p: CarParams, rings: np.ndarray, ys: np.ndarray) -> dict[str, list]:
    """The front (headlights, grille) and rear (tail lights) faces, bumpers, plates and, with
    painted bumpers, the front intake."""
    half_l = p.length / 2.0
    fw, f_belt = rings[0, _BELT, 0], rings[0, _BELT, 2]
    rw, r_belt = rings[-1, _BELT, 0], rings[-1, _BELT, 2]
    bumper_top = p.ride_height + p.bumper_height
    hl_in = fw * (0.95 - p.headlight_width)
    hl_z = (f_belt - 0.02 - p.headlight_height, f_belt - 0.02)
    headlights = [_face_rect(sx * hl_in, sx * fw * 0.95, *hl_z, -half_l, -1.0) for sx in (1, -1)]
    grille_half = (hl_in - 0.03) * p.grille_width
    grille_top = f_belt - 0.03
    grille_bottom = max(bumper_top + 0.02, grille_top - p.grille_height - 0.1)
    grille = _face_rect(-grille_half, grille_half, grille_bottom, grille_top, -half_l, -1.0, 0.01)
    tl_in = rw * (0.95 - p.taillight_width)
    tl_z = (r_belt - 0.02 - p.taillight_height, r_belt - 0.02)
    taillights = [_face_rect(sx * tl_in, sx * rw * 0.95, *tl_z, half_l, 1.0) for sx in (1, -1)]
    if p.taillight_bar:
        bar_z = (tl_z[1] - 0.5 * p.taillight_height, tl_z[1])
        taillights.append(_face_rect(-tl_in, tl_in, *bar_z, half_l, 1.0, 0.012))
    # The lights wrap round the corners onto the sides, so side views show the ends too.
    for sx in (1.0, -1.0):
        headlights.append(_side_rect(rings, ys, ys[_HOOD_FRONT], ys[_HOOD_FRONT] + 0.18, *hl_z, sx))
        taillights.append(_side_rect(rings, ys, ys[-2] - 0.22, ys[-2], *tl_z, sx))

    bumper_y = 0.05  # how far the bumpers stick out beyond the body ends
    bumper_z = p.ride_height + p.bumper_height / 2
    bumpers = [box([0.0, -half_l + 0.1 - bumper_y / 2, bumper_z],
                   [2 * fw * 0.98, 0.2 + bumper_y, p.bumper_height]),
               box([0.0, half_l - 0.1 + bumper_y / 2, bumper_z],
                   [2 * rw * 0.98, 0.2 + bumper_y, p.bumper_height])]
    plate_x, plate_h = p.plate_width / 2, 0.12
    plate_z = p.ride_height + 0.55 * p.bumper_height
    # The rear plate sits above the bumper, or on it when a spare wheel covers the tailgate.
    rear_plate_y = half_l + bumper_y if p.spare_wheel else half_l
    rear_plate_z = plate_z if p.spare_wheel else min(bumper_top + 0.03 + plate_h / 2,
                                                      tl_z[0] - plate_h / 2 - 0.02)
    plates = [_face_rect(-plate_x, plate_x, plate_z - plate_h / 2, plate_z + plate_h / 2,
                         -half_l - bumper_y, -1.0, 0.008),
              _face_rect(-plate_x, plate_x, rear_plate_z - plate_h / 2,
                         rear_plate_z + plate_h / 2, rear_plate_y, 1.0, 0.008)]
    # A dark air intake across the lower front bumper, behind the plate (which sticks out further).
    intake_x = fw * 0.98 * p.intake_width
    intake = _face_rect(-intake_x, intake_x, p.ride_height + 0.025,
                        p.ride_height + 0.75 * p.bumper_height, -half_l - bumper_y, -1.0, 0.004)
    return dict(headlights=headlights, taillights=taillights, grille=[grille], bumpers=bumpers,
                plates=plates, intakes=[intake] if p.painted_bumpers else [])


def _wheels(p: CarParams, rings: np.ndarray, ys: np.ndarray) -> dict[str, list]:
    """Tyres, hubs and dark wheel-arch panels on the body sides behind the tyres."""
    half_l = p.length / 2.0
    axle_ys = (-half_l + p.front_overhang, -half_l + p.front_overhang + p.wheelbase)
    tires, hubs, arches = [], [], []
    arc = np.linspace(0.0, np.pi, 9)
    arch_r = 1.12 * p.wheel_radius
    for axle_y, sx in itertools.product(axle_ys, (1.0, -1.0)):
        tire, hub = _wheel([sx * p.track / 2, axle_y, p.wheel_radius], [sx, 0.0, 0.0], p)
        tires.append(tire)
        hubs.append(hub)
        side_x = _ring_at(rings, ys, axle_y)[_SILL, 0] + 0.002
        outline = np.column_stack([
            np.full(11, sx * side_x),
            np.concatenate([[axle_y + arch_r], axle_y + arch_r * np.cos(arc), [axle_y - arch_r]]),
            np.concatenate([[p.ride_height], p.wheel_radius + arch_r * np.sin(arc),
                            [p.ride_height]]),
        ])
        arches.append(panel(outline, [sx, 0.0, 0.0], 0.004))
    if p.spare_wheel:
        r_belt = rings[-1, _BELT, 2]
        spare_z = max(r_belt - p.wheel_radius - 0.02,
                      p.ride_height + p.bumper_height + p.wheel_radius + 0.02)
        tire, hub = _wheel([0.0, half_l + p.tire_width / 2, spare_z], [0.0, 1.0, 0.0], p)
        tires.append(tire)
        hubs.append(hub)
    return dict(tires=tires, hubs=hubs, arches=arches)


def build_car(params: CarParams, instance: str) -> ObjectMesh:
    """Build the car described by `params`, in the binding object frame (diagonal 1)."""
    p = params
    if p.variant not in VARIANTS:
        raise ValueError(f"unknown car variant {p.variant!r}; choose one of {VARIANTS}")
    stations = _body_stations(p)
    rings = _rings(stations)
    ys = stations["y"]
    ends = _ends(p, rings, ys)
    wheels = _wheels(p, rings, ys)
    # Mirrors at the base of the windshield pillars: a front-of-cabin cue from the side.
    mirror_y = ys[_COWL] + 0.15 * (ys[_ROOF_FRONT] - ys[_COWL])
    mirror_z = stations["belt"][_COWL] + 0.1
    mirrors = [box([sx * (p.width / 2 + 0.06), mirror_y, mirror_z], [0.13, 0.07, 0.1])
               for sx in (1.0, -1.0)]
    parts = [
        make_part("body", "paint", [loft(rounded_body(rings) if p.rounded else rings)]),
        make_part("window", "glass", _glass(p, rings, ys)),
        make_part("light_front", "light_front", ends["headlights"]),
        make_part("light_rear", "light_rear", ends["taillights"]),
        make_part("grille", "dark", ends["grille"]),
        make_part("plate", "plate", ends["plates"]),
        make_part("bumper", "paint" if p.painted_bumpers else "dark", ends["bumpers"]),
        make_part("wheel_arch", "dark", wheels["arches"]),
        make_part("tire", "rubber", wheels["tires"]),
        make_part("wheel", "metal", wheels["hubs"]),
        make_part("mirror", "paint", mirrors),
    ]
    if ends["intakes"]:
        parts.append(make_part("intake", "dark", ends["intakes"]))
    if p.variant == "pickup":  # a dark bed floor between the cab and the tailgate
        y0, y1 = ys[_DECK] + 0.08, ys[-2] - 0.02
        half_w = stations["top_w"][_DECK] - 0.06
        z = p.deck_height + 0.001
        floor = [[-half_w, y0, z], [half_w, y0, z], [half_w, y1, z], [-half_w, y1, z]]
        parts.append(make_part("bed", "dark", [panel(floor, [0.0, 0.0, 1.0], 0.004)]))
    return normalise_to_frame(ObjectMesh(category="car", instance=instance, parts=tuple(parts)))


def random_car(seed: int, rounded: bool = True) -> ObjectMesh:
    """The car of `seed`: same seed, identical mesh; instance name "car_<seed>".
    `rounded=False` keeps the first generator's shapes, for the ablation: every body crisp, every
    bumper black, no sports cars."""
    params = car_params(np.random.default_rng(seed), sports=rounded)
    if not rounded:
        params = replace(params, rounded=False, painted_bumpers=False)
    return build_car(params, instance=f"car_{seed}")
