"""Procedural chairs: varied, part-coloured chair meshes from integer seeds.

A chair is a seat (a chamfered, possibly trapezoidal slab), a backrest at the rear (solid panel,
vertical slats or an open frame, tilted back), legs in one of several styles (four straight
square or round legs, four tapered legs, four splayed legs, or an office-chair pedestal with a
five-spoke star base and casters) and optional armrests. A fifth of the chairs are upholstered
armchairs instead: a thick cushion on a box base, padded arms from the base to above the seat, a
thick padded back across the full width, and short feet.

Frame (DESIGN.md section 2): +z up, the chair's front (where one sits down) toward -y, so the
backrest stands at +y; +x is the chair's own left. Built in metres with the floor at z = 0, then
`normalise_to_frame` centres the bounding box and scales its diagonal to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from data_tools.meshes.mesh import ObjectMesh, box, cylinder, lathe, loft, make_part, normalise_to_frame

LEG_STYLES = ("straight", "tapered", "splayed", "pedestal")
BACK_STYLES = ("solid", "slats", "frame")
#: Chairs drawn as upholstered armchairs (club chairs: common in photographs of rooms).
UPHOLSTERED_FRACTION = 0.2


@dataclass(frozen=True)
class ChairParams:
    """Independent shape parameters of one chair (metres, degrees)."""

    leg_style: str
    back_style: str
    seat_width: float  # along x, at the front edge
    seat_back_width: float  # fraction of seat_width at the rear edge
    seat_depth: float  # along y
    seat_height: float  # floor to the top of the seat
    seat_thickness: float
    seat_chamfer: float  # fraction of the smaller seat side cut off each corner
    back_height: float  # seat top to backrest top
    back_width: float  # fraction of the rear seat width
    back_thickness: float
    back_tilt: float  # degrees from vertical, leaning toward +y
    slats: int  # vertical slats in a "slats" backrest
    leg_thickness: float
    leg_taper: float  # bottom / top size of tapered legs
    leg_splay: float  # outward offset of splayed leg feet
    round_legs: bool
    stretchers: bool  # rails between the legs
    armrests: bool
    arm_height: float  # armrest height above the seat
    seat_material: str
    back_material: str
    leg_material: str
    # Upholstered armchairs (drawn after the rest, so the other chairs stay as they were).
    upholstered: bool
    arm_width: float  # padded arm, across (x)
    cushion_thickness: float  # seat cushion on the base
    foot_height: float  # short feet under the base
    padded_back_thickness: float


def chair_params(rng: np.random.Generator) -> ChairParams:
    """Draw one chair's parameters: styles first, then each parameter uniformly in its range."""
    leg_style = LEG_STYLES[int(rng.integers(len(LEG_STYLES)))]
    office = leg_style == "pedestal"
    back_style = "solid" if office else BACK_STYLES[int(rng.integers(len(BACK_STYLES)))]
    wood_legs = leg_style in ("tapered", "splayed") or rng.random() < 0.5
    seat_material = ("fabric", "wood", "plastic")[int(rng.integers(3))]
    return ChairParams(
        leg_style=leg_style,
        back_style=back_style,
        seat_width=float(rng.uniform(0.42, 0.56)),
        seat_back_width=float(rng.uniform(0.82, 1.0)),
        seat_depth=float(rng.uniform(0.38, 0.5)),
        seat_height=float(rng.uniform(0.42, 0.5)),
        seat_thickness=float(rng.uniform(0.05, 0.1) if office else rng.uniform(0.025, 0.06)),
        seat_chamfer=float(rng.uniform(0.02, 0.2)),
        back_height=float(rng.uniform(0.32, 0.58)),
        back_width=float(rng.uniform(0.8, 1.0)),
        back_thickness=float(rng.uniform(0.025, 0.07)),
        back_tilt=float(rng.uniform(2.0, 18.0)),
        slats=int(rng.integers(3, 6)),
        leg_thickness=float(rng.uniform(0.025, 0.05)),
        leg_taper=float(rng.uniform(0.45, 0.75)),
        leg_splay=float(rng.uniform(0.03, 0.08)),
        round_legs=bool(rng.random() < 0.4),
        stretchers=bool(leg_style != "pedestal" and rng.random() < 0.5),
        armrests=bool(rng.random() < (0.6 if office else 0.3)),
        arm_height=float(rng.uniform(0.18, 0.26)),
        seat_material=seat_material,
        back_material=seat_material if rng.random() < 0.7 else "fabric",
        leg_material="metal" if office else ("wood" if wood_legs else "metal"),
        upholstered=bool(rng.random() < UPHOLSTERED_FRACTION),
        arm_width=float(rng.uniform(0.07, 0.18)),
        cushion_thickness=float(rng.uniform(0.08, 0.16)),
        foot_height=float(rng.uniform(0.03, 0.12)),
        padded_back_thickness=float(rng.uniform(0.1, 0.2)),
    )


def _beam(p0, p1, across, half_across: float, half_other: float, end_scale: float = 1.0):
    """A square-section beam from p0 to p1; `across` sets the direction of its first side
    (made perpendicular to the beam), `end_scale` shrinks the section at p1 (tapering)."""
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    w = (p1 - p0) / np.linalg.norm(p1 - p0)
    a = np.asarray(across, dtype=np.float64)
    a = a - np.dot(a, w) * w
    a /= np.linalg.norm(a)
    b = np.cross(w, a)
    signs = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    section = signs[:, :1] * half_across * a + signs[:, 1:] * half_other * b  # (4, 3)
    return loft(np.stack([p0 + section, p1 + end_scale * section]))


def _leg(top, foot, p: ChairParams, end_scale: float = 1.0):
    """One leg from `top` to `foot`, square or round."""
    half = p.leg_thickness / 2.0
    if p.round_legs:
        top, foot = np.asarray(top, dtype=np.float64), np.asarray(foot, dtype=np.float64)
        length = float(np.linalg.norm(foot - top))
        profile = [(half, -length / 2.0), (half * end_scale, length / 2.0)]
        return lathe(profile, (top + foot) / 2.0, foot - top, 10)
    return _beam(top, foot, [1.0, 0.0, 0.0], half, half, end_scale)


def _seat(p: ChairParams):
    """The seat: a chamfered trapezoid (front edge at -y) extruded between its two faces."""
    hx_front, hx_back, hy = p.seat_width / 2, p.seat_width * p.seat_back_width / 2, p.seat_depth / 2
    c = p.seat_chamfer * min(p.seat_width, p.seat_depth)
    outline = np.array([
        [-hx_front + c, -hy], [hx_front - c, -hy], [hx_front, -hy + c], [hx_back, hy - c],
        [hx_back - c, hy], [-hx_back + c, hy], [-hx_back, hy - c], [-hx_front, -hy + c],
    ])
    z_top, z_bottom = p.seat_height, p.seat_height - p.seat_thickness
    rings = [np.column_stack([outline, np.full(8, z)]) for z in (z_bottom, z_top)]
    return loft(np.stack(rings))


def _backrest(p: ChairParams) -> list:
    """Backrest pieces standing on the rear of the seat and leaning back by `back_tilt`."""
    half_w = p.seat_width * p.seat_back_width * p.back_width / 2
    y0 = p.seat_depth / 2 - p.back_thickness / 2 - 0.01
    tilt = np.radians(p.back_tilt)
    up = np.array([0.0, np.sin(tilt), np.cos(tilt)])
    base = np.array([0.0, y0, p.seat_height])
    x_axis = np.array([1.0, 0.0, 0.0])
    half_t = p.back_thickness / 2

    def at(x: float, height: float) -> np.ndarray:
        return base + x * x_axis + height * up

    h = p.back_height
    if p.back_style == "solid":
        if p.leg_style != "pedestal":
            return [_beam(at(0, 0), at(0, h), x_axis, half_w, half_t)]
        # Office chairs: the back floats above the seat on a bar from under the seat.
        under_seat = np.array([0.0, 0.0, p.seat_height - p.seat_thickness - 0.02])
        bar_foot = np.array([0.0, y0 + half_t + 0.02, under_seat[2]])
        return [_beam(at(0, 0.1), at(0, h), x_axis, half_w, half_t),
                _beam(under_seat, bar_foot, [0, 0, 1], 0.02, 0.03),
                _beam(bar_foot, at(0, 0.35 * h) + (half_t + 0.02) * np.cross(x_axis, up),
                      x_axis, 0.03, 0.012)]
    post = max(0.02, p.leg_thickness / 2)
    rail = 0.06 if p.back_style == "slats" else 0.08
    pieces = [_beam(at(x, 0), at(x, h), x_axis, post, half_t)
              for x in (-half_w + post, half_w - post)]
    pieces.append(_beam(at(0, h - rail), at(0, h), x_axis, half_w - 2 * post, half_t))
    if p.back_style == "slats":
        for x in np.linspace(-half_w, half_w, p.slats + 2)[1:-1]:
            pieces.append(_beam(at(x, 0.0), at(x, h - rail), x_axis, 0.02, half_t * 0.8))
    else:  # frame: a second, lower rail
        pieces.append(_beam(at(0, 0.45 * h), at(0, 0.45 * h + rail), x_axis, half_w - 2 * post,
                            half_t * 0.8))
    return pieces


def _legs(p: ChairParams) -> tuple[list, list]:
    """Leg pieces and caster pieces (casters only for pedestal chairs)."""
    under = p.seat_height - p.seat_thickness
    if p.leg_style == "pedestal":
        pieces = [cylinder([0, 0, (under + 0.09) / 2], [0, 0, 1], 0.03, under - 0.09, 12),
                  cylinder([0, 0, under - 0.03], [0, 0, 1], 0.07, 0.05, 10)]
        casters = []
        reach = max(p.seat_width, p.seat_depth) * 0.62
        for angle in np.radians(90.0 + np.arange(5) * 72.0):  # one spoke straight ahead (-y)
            direction = np.array([np.cos(angle), -np.sin(angle), 0.0])
            end = direction * reach + [0, 0, 0.07]
            pieces.append(_beam([0, 0, 0.1], end, [0, 0, 1], 0.025, 0.022))
            casters.append(cylinder(end - [0, 0, 0.035], np.cross(direction, [0, 0, 1]),
                                    0.03, 0.03, 10))
        return pieces, casters
    inset = p.leg_thickness / 2 + 0.01
    hx_front = p.seat_width / 2 - inset
    hx_back = p.seat_width * p.seat_back_width / 2 - inset
    hy = p.seat_depth / 2 - inset
    pieces, lines = [], []
    for x, y in [(-hx_front, -hy), (hx_front, -hy), (-hx_back, hy), (hx_back, hy)]:
        top = np.array([x, y, under])
        foot = np.array([x, y, 0.0])
        if p.leg_style == "splayed":
            foot[:2] += np.sign([x, y]) * p.leg_splay
        pieces.append(_leg(top, foot, p, p.leg_taper if p.leg_style == "tapered" else 1.0))
        lines.append((top, foot))

    def on_leg(k: int, z: float) -> np.ndarray:  # the point of leg k's centre line at height z
        top, foot = lines[k]
        return top + (foot - top) * (under - z) / under

    if p.stretchers:  # side rails low between front and back legs, one cross rail at the front
        half = p.leg_thickness * 0.3
        for front, back in ((0, 2), (1, 3)):
            pieces.append(_beam(on_leg(front, 0.16), on_leg(back, 0.16), [0, 0, 1], half, half))
        pieces.append(_beam(on_leg(0, 0.21), on_leg(1, 0.21), [0, 0, 1], half, half))
    return pieces, []


def _armrests(p: ChairParams) -> list:
    """Two armrests: a post on each side of the seat carrying a pad that runs front to back."""
    pieces = []
    hy = p.seat_depth / 2
    top = p.seat_height + p.arm_height
    for sx in (-1.0, 1.0):
        x = sx * (p.seat_width / 2 + 0.01)
        pieces.append(_beam([x, -0.1 * hy, p.seat_height - 0.02], [x, -0.1 * hy, top],
                            [1, 0, 0], 0.015, 0.02))
        pieces.append(_beam([x, -0.85 * hy, top], [x, 0.85 * hy, top + 0.001], [0, 0, 1],
                            0.02, 0.03))
    return pieces


def _armchair(p: ChairParams) -> list:
    """An upholstered armchair's parts: cushion ("seat") on a box base, padded arms, a thick back
    across the full width leaning back by `back_tilt`, and four short feet ("leg")."""
    half_w, half_d = p.seat_width / 2, p.seat_depth / 2
    outer = half_w + p.arm_width
    t = p.padded_back_thickness
    rear = half_d + t  # the back's rear face at its foot
    low, under = p.foot_height, p.seat_height - p.cushion_thickness
    upholstery = "plastic" if p.seat_material == "plastic" else "fabric"  # leather or cloth
    cushion = box([0.0, 0.0, (under + p.seat_height) / 2], [2 * half_w, 2 * half_d, p.cushion_thickness])
    base = box([0.0, t / 2, (low + under) / 2], [2 * half_w, 2 * half_d + t, under - low])
    arm_top = p.seat_height + p.arm_height
    arms = [box([sx * (half_w + p.arm_width / 2), t / 2, (low + arm_top) / 2],
                [p.arm_width, 2 * half_d + t, arm_top - low]) for sx in (-1.0, 1.0)]
    tilt = np.radians(min(p.back_tilt, 12.0))
    up = np.array([0.0, np.sin(tilt), np.cos(tilt)])
    height = (p.seat_height + p.back_height - low) / np.cos(tilt)
    foot = np.array([0.0, rear - t / 2, low])
    back = _beam(foot, foot + height * up, [1.0, 0.0, 0.0], outer, t / 2)
    inset = p.leg_thickness
    feet = [_leg([x, y, low], [x, y, 0.0], p) for x in (-outer + inset, outer - inset)
            for y in (-half_d + inset, rear - inset)]
    return [
        make_part("seat", upholstery, [cushion]),
        make_part("base", upholstery, [base]),
        make_part("arm", upholstery, arms),
        make_part("back", upholstery, [back]),
        make_part("leg", p.leg_material, feet),
    ]


def build_chair(params: ChairParams, instance: str) -> ObjectMesh:
    """Build the chair described by `params`, in the binding object frame (diagonal 1)."""
    p = params
    if p.leg_style not in LEG_STYLES:
        raise ValueError(f"unknown leg style {p.leg_style!r}; choose one of {LEG_STYLES}")
    if p.back_style not in BACK_STYLES:
        raise ValueError(f"unknown back style {p.back_style!r}; choose one of {BACK_STYLES}")
    if p.upholstered:
        return normalise_to_frame(ObjectMesh(category="chair", instance=instance,
                                             parts=tuple(_armchair(p))))
    legs, casters = _legs(p)
    parts = [
        make_part("seat", p.seat_material, [_seat(p)]),
        make_part("back", p.back_material, _backrest(p)),
        make_part("leg", p.leg_material, legs),
    ]
    if casters:
        parts.append(make_part("caster", "rubber", casters))
    if p.armrests:
        parts.append(make_part("arm", "plastic" if p.leg_style == "pedestal" else p.leg_material,
                               _armrests(p)))
    return normalise_to_frame(ObjectMesh(category="chair", instance=instance, parts=tuple(parts)))


def random_chair(seed: int) -> ObjectMesh:
    """The chair of `seed`: same seed, identical mesh; instance name "chair_<seed>"."""
    return build_chair(chair_params(np.random.default_rng(seed)), instance=f"chair_{seed}")
