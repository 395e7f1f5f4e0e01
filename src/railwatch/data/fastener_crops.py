"""Seeded rail-fastener crops, normal and with three defects, with exact defect masks.

A fastener anomaly detector (Appl. Sci. 2025, 15, 5933, knowledge-distilled GAN) looks at one
fastener at a time: a 128 x 128 grey crop that a top-down inspection camera took of a concrete
sleeper, centred on the bolt. It learns from normal crops only and is tested on the defects of
that paper's Table 4; three of them are drawn here.

What a crop shows, seen from above, all from one seed:

- the concrete sleeper: light grey with fine grain, mottling and a few dark pores;
- ballast stones (irregular grey polygons with dark gaps) beyond one or both sleeper edges;
- along the left side the edge of the rail foot: a darker metal band with streaks, a bright
  bevel, the rail pad peeking out under it, and the shadow it casts on the sleeper;
- the elastic spring clip: a thick, round, dark metal bar bent into a sideways omega whose two
  toes rest on the rail foot, shaded as a tube with a specular highlight;
- at its centre the bolt: a washer ring, a hexagon nut with chamfered corners and the end of the
  threaded stud, each casting a soft shadow.

Each seed moves, turns (a few degrees) and scales (+-10%) the fastener, and changes the light
direction, a smooth brightness gradient, overall brightness (+-25%), contrast, sensor noise and
blur, so normal crops vary while staying alike.

Defects (``FASTENER_DEFECTS``):

- ``broken_clip``: one arm of the clip is snapped; a piece of the bar is missing so the sleeper
  shows through, and the toe-side piece stays put, lies displaced, or is gone;
- ``missing_bolt``: no nut or washer; the empty bolt hole (dark, with a rust ring) shows;
- ``occlusion``: a foreign object (stone, piece of wood, leaf or plastic bag) lies over part of
  the clip or bolt, covering about 8-25% of the crop.

``render_fastener(seed, defect)`` draws the same scene as ``render_fastener(seed)`` and changes
only what the defect changes, so the mask (the pixels that differ, widened by 2 px) is exact.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import cKDTree

from railwatch.errors import InputError
from railwatch.imageio import _atomic_write

FASTENER_DEFECTS: tuple[str, ...] = ("broken_clip", "missing_bolt", "occlusion")
"""Defects drawn into the crops (Appl. Sci. 2025, 15, 5933, Table 4)."""

_REF = 128.0  # scene coordinates are pixels of a 128 x 128 crop, origin at the bolt
_BAR_STEP = 0.5  # spacing of the points along the clip's centre line, scene px
_RAIL_EDGE = -37.0  # x of the rail foot's edge
_WASHER_R, _NUT_APOTHEM, _STUD_R, _HOLE_R = 15.0, 9.5, 4.8, 5.6

# centre line of the upper half of the clip, from the toe on the rail foot to the middle of the bar
_HALF_CLIP = np.array(
    [(-47, -26), (-36, -27.5), (-22, -31), (-7, -36), (8, -37.5), (20, -33), (25.5, -24), (22, -15), (14, -9.5), (10, -4), (9.5, 0)],
    dtype=float,
)


@dataclass(frozen=True)
class FastenerCrop:
    """One generated crop: grey image, defect kind and the pixels the defect changed."""

    image: np.ndarray  # (size, size) uint8 grey
    defect: str | None  # one of FASTENER_DEFECTS, None for a normal fastener
    mask: np.ndarray  # (size, size) bool, True where the defect changed the image; all False when normal


@dataclass(frozen=True)
class _Scene:
    """Everything a crop needs that does not depend on the defect."""

    sx: np.ndarray  # (H, W) scene x of each pixel
    sy: np.ndarray  # (H, W) scene y of each pixel
    px_per_unit: float  # image pixels per scene unit
    to_pixel: np.ndarray  # (2, 3) affine map from scene (x, y, 1) to pixel (column, row)
    light: np.ndarray  # (3,) unit vector towards the light
    shadow_dir: np.ndarray  # (2,) unit scene vector along which shadows fall
    bar_radius: float
    clip_points: np.ndarray  # (N, 2) centre line of the clip, toe to toe
    nut_angle: float
    metal: float  # albedo of the clip and the nut
    washer: float  # albedo of the washer
    background: np.ndarray  # (H, W) sleeper, ballast and rail, lit, before shadows


def _check_defect(defect: str | None) -> None:
    if defect is not None and defect not in FASTENER_DEFECTS:
        raise InputError(f"unknown fastener defect {defect!r}; known kinds: {', '.join(FASTENER_DEFECTS)}")


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple[float, float]) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma, mode="wrap")
    return field / (field.std() + 1e-6)


def _catmull_rom(points: np.ndarray, step: float) -> np.ndarray:
    """Points every ``step`` along a Catmull-Rom spline through ``points``."""
    padded = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    t = np.linspace(0, 1, 24, endpoint=False)[:, None]
    pieces = []
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1 : i + 3]
        pieces.append(
            0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * t**3)
        )
    dense = np.vstack([*pieces, points[-1:]])
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(dense, axis=0).T))])
    s = np.arange(0.0, arc[-1], step)
    return np.stack([np.interp(s, arc, dense[:, 0]), np.interp(s, arc, dense[:, 1])], axis=1)


@functools.lru_cache(maxsize=4)
def _clip_centre_line() -> np.ndarray:
    """The whole clip's centre line, toe to toe, evenly spaced."""
    half = _catmull_rom(_HALF_CLIP, _BAR_STEP)
    lower = half[::-1] * np.array([1.0, -1.0])
    line = np.vstack([half, lower[1:]])
    line.setflags(write=False)
    return line


@functools.lru_cache(maxsize=4)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel centres relative to the crop's centre: ``(x, y)``, read-only."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = cols + 0.5 - size / 2, rows + 0.5 - size / 2
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _lambert(light: np.ndarray, nx: np.ndarray, ny: np.ndarray, nz: np.ndarray) -> np.ndarray:
    return np.maximum(nx * light[0] + ny * light[1] + nz * light[2], 0.0)


def _specular(light: np.ndarray, nx: np.ndarray, ny: np.ndarray, nz: np.ndarray, power: float) -> np.ndarray:
    half = light + np.array([0.0, 0.0, 1.0])
    half /= np.linalg.norm(half)
    return np.maximum(nx * half[0] + ny * half[1] + nz * half[2], 0.0) ** power


def _coverage(inside_distance: np.ndarray, px_per_unit: float) -> np.ndarray:
    """Anti-aliased coverage from a signed distance (scene units, positive inside)."""
    return np.clip(inside_distance * px_per_unit + 0.5, 0.0, 1.0)


def _shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` moved by (dx, dy) pixels (rounded), zero where nothing moved in."""
    dx, dy = int(np.rint(dx)), int(np.rint(dy))
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)]
    return out


# ---------------------------------------------------------------- the background


def _sleeper(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Concrete: grain, mottling and a few pores."""
    h, w = shape
    concrete = rng.uniform(0.6, 0.7) + 0.03 * _smooth_noise(rng, shape, 0.7) + 0.035 * _smooth_noise(rng, shape, 7.0)
    concrete += 0.02 * rng.standard_normal(shape).astype(np.float32)
    n_pores = int(rng.integers(6, 22))
    rows, cols = rng.uniform(0, h, n_pores), rng.uniform(0, w, n_pores)
    radii = rng.uniform(0.6, 1.7, n_pores) * (h / _REF)
    depth = rng.uniform(0.15, 0.35, n_pores)
    for r, c, rad, d in zip(rows, cols, radii, depth):
        r0, r1, c0, c1 = int(max(r - 3 * rad, 0)), int(min(r + 3 * rad + 1, h)), int(max(c - 3 * rad, 0)), int(min(c + 3 * rad + 1, w))
        yy, xx = np.mgrid[r0:r1, c0:c1]
        concrete[r0:r1, c0:c1] -= d * np.clip(rad + 0.5 - np.hypot(yy + 0.5 - r, xx + 0.5 - c), 0, 1)
    return concrete


def _ballast(rng: np.random.Generator, sx: np.ndarray, sy: np.ndarray, region: np.ndarray, ppu: float, light: np.ndarray) -> np.ndarray:
    """Stones filling ``region``: Voronoi cells of varied grey with dark gaps, each lit like a dome."""
    out = np.zeros(sx.shape, np.float32)
    if not region.any():
        return out
    px, py = sx[region], sy[region]
    x0, x1, y0, y1 = px.min() - 10, px.max() + 10, py.min() - 10, py.max() + 10
    n = max(6, int((x1 - x0) * (y1 - y0) / 90))
    seeds = np.stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)], axis=1)
    dist, idx = cKDTree(seeds).query(np.stack([px, py], axis=1), k=2)
    albedo = rng.uniform(0.28, 0.72, n).astype(np.float32)
    cell = idx[:, 0]
    ox, oy = (px - seeds[cell, 0]) / 8.0, (py - seeds[cell, 1]) / 8.0
    nz = np.sqrt(np.clip(1 - ox**2 - oy**2, 0.05, 1))
    shade = 0.3 + 0.7 * _lambert(light, ox, oy, nz)
    gap = np.clip((dist[:, 1] - dist[:, 0]) * ppu / 2.2, 0, 1)  # dark crevices between stones
    grain = 0.05 * rng.standard_normal(len(px)).astype(np.float32)
    out[region] = albedo[cell] * shade * (0.25 + 0.75 * gap) + grain * gap
    return out


def _background(rng: np.random.Generator, sx: np.ndarray, sy: np.ndarray, ppu: float, light: np.ndarray) -> np.ndarray:
    """Sleeper, ballast beyond its edges and the rail foot, before any shadow of the fastener."""
    shape = sx.shape
    image = _sleeper(rng, shape)
    # sleeper edges: one or both visible, with a chamfer
    top = rng.uniform(44, 55)
    bottom = rng.uniform(46, 57) if rng.random() < 0.55 else 200.0
    if rng.random() < 0.5:
        top, bottom = bottom, top
    wobble = 0.5 * _smooth_noise(rng, (1, shape[1]), (0, 6))  # a slightly chipped edge
    beyond_top = -sy - top + wobble
    beyond_bottom = sy - bottom + wobble
    beyond = np.maximum(beyond_top, beyond_bottom)
    chamfer = _coverage(beyond + 3, ppu)  # the edge's bevel, facing out, lit or in shade
    facing = np.where(beyond_top > beyond_bottom, -light[1], light[1])
    image *= 1 + chamfer * (0.6 * facing - 0.15)
    stones = _ballast(rng, sx, sy, beyond > -1, ppu, light)
    crevice = np.exp(-np.maximum(beyond, 0) / 4.0)  # ballast next to the sleeper lies in its shadow
    weight = _coverage(beyond, ppu)
    image = image * (1 - weight) + stones * (1 - 0.45 * crevice) * weight
    # the rail foot at the left: pad, bevel, sloping flange with lengthwise streaks
    u = _RAIL_EDGE - sx  # distance into the rail foot
    streaks = 0.03 * _smooth_noise(rng, shape, (6.0, 0.8))
    flange = rng.uniform(0.36, 0.46) * (0.8 + 0.2 * np.clip(1 - u / 30, 0, 1)) + streaks
    flange = np.where(u > 24, flange * 0.6, flange)  # the start of the web, in shadow
    bevel = np.clip(1 - np.abs(u - 1.2) / 1.2, 0, 1)
    rail = flange + 0.25 * bevel
    image *= 1 - 0.35 * np.clip(1 - (-u - 3.5) / 4, 0, 1)  # the rail's shadow on the sleeper
    pad = _coverage(u + 3.5, ppu)  # the rail pad, black rubber, peeking out under the foot
    image = image * (1 - pad) + (0.14 + 0.03 * streaks) * pad
    weight = _coverage(u, ppu)
    return (image * (1 - weight) + rail * weight).astype(np.float32)


# ---------------------------------------------------------------- the fastener


def _random_scene(rng: np.random.Generator, size: int) -> _Scene:
    gx, gy = _pixel_grid(size)
    scale = rng.uniform(0.9, 1.1) * size / _REF
    angle = np.deg2rad(rng.uniform(-4, 4))
    shift = rng.uniform(-4, 4, 2) * size / _REF
    cos, sin = np.cos(angle), np.sin(angle)
    x, y = gx - shift[0], gy - shift[1]
    sx = ((cos * x + sin * y) / scale).astype(np.float32)
    sy = ((-sin * x + cos * y) / scale).astype(np.float32)
    to_pixel = np.array(
        [[scale * cos, -scale * sin, shift[0] + size / 2 - 0.5], [scale * sin, scale * cos, shift[1] + size / 2 - 0.5]]
    )
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = np.deg2rad(rng.uniform(45, 70))
    light = np.array([np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation), np.sin(elevation)])
    background = _background(rng, sx, sy, scale, light)
    return _Scene(
        sx=sx,
        sy=sy,
        px_per_unit=scale,
        to_pixel=to_pixel,
        light=light,
        shadow_dir=-light[:2] / np.linalg.norm(light[:2]),
        bar_radius=rng.uniform(3.4, 4.0),
        clip_points=_clip_centre_line() + rng.normal(0, 0.4, 2),
        nut_angle=rng.uniform(0, np.pi / 3),
        metal=rng.uniform(0.16, 0.26),
        washer=rng.uniform(0.42, 0.56),
        background=background,
    )


def _draw_bar(scene: _Scene, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coverage and shaded grey of a round bar along ``points`` (any number of pieces)."""
    shape = scene.sx.shape
    if len(points) == 0:
        return np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    r = scene.bar_radius
    reach = r + 1.5
    # only pixels within reach of a point of the centre line need the exact distance
    cols, rows = np.rint(scene.to_pixel[:, :2] @ points.T + scene.to_pixel[:, 2:]).astype(int)
    inside = (cols >= 0) & (cols < shape[1]) & (rows >= 0) & (rows < shape[0])
    marks = np.zeros(shape, np.uint8)
    marks[rows[inside], cols[inside]] = 1
    marks = ndimage.maximum_filter(marks, 2 * int(np.ceil(reach * scene.px_per_unit)) + 3)
    sx, sy = scene.sx.ravel(), scene.sy.ravel()
    candidates = np.flatnonzero(marks.ravel())
    query = np.stack([sx[candidates], sy[candidates]], axis=1)
    dist, idx = cKDTree(points).query(query, distance_upper_bound=reach)
    found = np.isfinite(dist)
    near = candidates[found]
    cover = np.zeros(sx.shape, np.float32)
    grey = np.zeros(sx.shape, np.float32)
    cover[near] = _coverage(r - dist[found], scene.px_per_unit)
    nearest = points[idx[found]]
    nx, ny = (query[found, 0] - nearest[:, 0]) / r, (query[found, 1] - nearest[:, 1]) / r
    edge = np.minimum(1.0, 0.98 / np.maximum(np.hypot(nx, ny), 1e-6))
    nx, ny = nx * edge, ny * edge
    nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0, 1))
    grey[near] = scene.metal * (0.25 + 0.9 * _lambert(scene.light, nx, ny, nz)) + 0.55 * _specular(scene.light, nx, ny, nz, 24)
    return cover.reshape(shape), grey.reshape(shape)


def _bolt_layers(scene: _Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Washer and nut (with the stud): coverage and grey of each."""
    sx, sy, ppu, light = scene.sx, scene.sy, scene.px_per_unit, scene.light
    rho = np.hypot(sx, sy)
    radial_x, radial_y = sx / np.maximum(rho, 1e-3), sy / np.maximum(rho, 1e-3)

    def tilted(albedo: float, tilt: np.ndarray, ambient: float = 0.3) -> np.ndarray:
        """A surface whose normal leans outwards by ``tilt`` (0 flat, 1 vertical)."""
        return albedo * (ambient + 0.85 * _lambert(light, radial_x * tilt, radial_y * tilt, np.sqrt(1 - tilt**2)))

    washer_cover = _coverage(_WASHER_R - rho, ppu)
    washer_grey = tilted(scene.washer, 0.65 * np.clip((rho - (_WASHER_R - 2.0)) / 2.0, 0, 1))
    washer_grey = washer_grey * (1 - 0.4 * np.clip(1 - (rho - _NUT_APOTHEM) / 3.0, 0, 1))  # occluded next to the nut
    # hexagon nut: the largest of the distances along its three face normals
    hexagon = np.zeros_like(sx)
    for k in range(3):
        a = scene.nut_angle + k * np.pi / 3
        hexagon = np.maximum(hexagon, np.abs(sx * np.cos(a) + sy * np.sin(a)))
    nut_cover = _coverage(_NUT_APOTHEM - hexagon, ppu)
    chamfer = np.clip((rho - _NUT_APOTHEM * 0.9) / 1.2, 0, 1)  # the corners outside the top circle slope down
    nut_grey = tilted(scene.metal * 1.5, 0.75 * chamfer, ambient=0.35)
    nut_grey = nut_grey + 0.25 * _specular(light, radial_x * 0.75 * chamfer, radial_y * 0.75 * chamfer, np.sqrt(1 - (0.75 * chamfer) ** 2), 12) * chamfer
    nut_grey = nut_grey * (1 - 0.45 * np.clip(1 - (_NUT_APOTHEM - hexagon) / 1.0, 0, 1))  # dark rim along the faces
    # the threaded stud's end, domed, with thread rings and a highlight
    stud = np.clip(rho / _STUD_R, 0, 0.97)
    snz = np.sqrt(1 - stud**2)
    stud_grey = scene.washer * 1.1 * (0.3 + 0.8 * _lambert(light, radial_x * stud, radial_y * stud, snz))
    stud_grey = stud_grey * (1 - 0.3 * (np.sin(rho * 2.8) > 0.5)) + 0.4 * _specular(light, radial_x * stud, radial_y * stud, snz, 20)
    stud_cover = _coverage(_STUD_R - rho, ppu)
    nut_grey = nut_grey * (1 - stud_cover) + stud_grey * stud_cover
    return washer_cover, washer_grey, nut_cover, nut_grey


# ---------------------------------------------------------------- defects


def _broken_clip(rng: np.random.Generator, points: np.ndarray) -> np.ndarray:
    """The clip with one arm snapped: a gap, and the toe-side piece left, moved or gone."""
    n = len(points)
    half = n // 2
    upper = rng.random() < 0.5
    centre = int(rng.uniform(0.22, 0.62) * half)  # along the arm, away from the toe and the washer
    gap = int(rng.uniform(9, 16) / _BAR_STEP)
    lo, hi = centre - gap // 2, centre + gap // 2
    if not upper:
        lo, hi = n - 1 - hi, n - 1 - lo
        toe_piece, body = points[hi + 1 :], points[:lo]
    else:
        toe_piece, body = points[:lo], points[hi + 1 :]
    mode = rng.choice(["gap", "moved", "gone"], p=[0.3, 0.5, 0.2])
    if mode == "gone":
        return body
    pivot = points[lo] if upper else points[hi]
    if mode == "gap":
        turn, shift = np.deg2rad(rng.uniform(-4, 4)), rng.normal(0, 0.8, 2)
    else:
        turn = np.deg2rad(rng.choice([-1, 1]) * rng.uniform(12, 35))
        shift = rng.uniform(5, 11) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    cos, sin = np.cos(turn), np.sin(turn)
    rel = toe_piece - pivot
    moved = np.stack([cos * rel[:, 0] - sin * rel[:, 1], sin * rel[:, 0] + cos * rel[:, 1]], axis=1) + pivot + shift
    return np.vstack([body, moved])


def _foreign_object(rng: np.random.Generator, scene: _Scene) -> tuple[np.ndarray, np.ndarray, float]:
    """A stone, piece of wood, leaf or plastic bag over the clip or bolt: coverage, grey and height."""
    kind = rng.choice(["stone", "wood", "leaf", "bag"])
    target = rng.uniform(0.1, 0.21) * _REF * _REF  # area in scene units: 8-25% of the crop once clipped
    anchor = scene.clip_points[int(rng.integers(len(scene.clip_points)))] if rng.random() < 0.6 else np.zeros(2)
    anchor = anchor * 0.7 + rng.normal(0, 4, 2)
    rot = rng.uniform(0, np.pi)
    x, y = scene.sx - anchor[0], scene.sy - anchor[1]
    u, v = np.cos(rot) * x + np.sin(rot) * y, -np.sin(rot) * x + np.cos(rot) * y
    theta, rho = np.arctan2(v, u), np.hypot(u, v)
    ppu, light = scene.px_per_unit, scene.light
    tex_fine = _smooth_noise(rng, scene.sx.shape, 0.8)
    tex_broad = _smooth_noise(rng, scene.sx.shape, 4.0)
    if kind in ("stone", "bag"):
        radius = np.sqrt(target / np.pi)
        wobble = sum(rng.uniform(0.03, 0.12) * np.cos(k * theta + rng.uniform(0, 6.3)) for k in range(2, 6))
        outline = radius * (1 + wobble) * (1.0 if kind == "bag" else rng.uniform(0.9, 1.0))
        inside = outline - rho
        cover = _coverage(inside, ppu)
        depth = np.clip(inside / (0.5 * radius), 0, 1)
        if kind == "stone":
            nx, ny = u / radius * (1 - depth) * 1.2, v / radius * (1 - depth) * 1.2
            nx, ny = np.clip(nx, -0.95, 0.95), np.clip(ny, -0.95, 0.95)
            nz = np.sqrt(np.clip(1 - nx**2 - ny**2, 0.05, 1))
            back = np.cos(rot) * nx - np.sin(rot) * ny, np.sin(rot) * nx + np.cos(rot) * ny
            grey = rng.uniform(0.35, 0.6) * (0.3 + 0.8 * _lambert(light, back[0], back[1], nz)) + 0.05 * tex_fine + 0.04 * tex_broad
            return cover, grey, 6.0
        folds = np.abs(_smooth_noise(rng, scene.sx.shape, 2.5))  # creases of thin plastic
        base = rng.choice([rng.uniform(0.75, 0.9), rng.uniform(0.1, 0.2)])
        grey = base * (0.85 + 0.2 * depth) - 0.12 * np.exp(-folds * 3) + 0.06 * tex_broad
        return cover, grey, 3.0
    if kind == "wood":
        length = rng.uniform(60, 85)
        width = np.clip(target / length, 14, 34)
        ragged = 2.5 * tex_broad
        inside = np.minimum(width / 2 - np.abs(v), length / 2 + ragged - np.abs(u))
        cover = _coverage(inside, ppu)
        grain = 0.05 * np.sin(v * rng.uniform(1.2, 1.8) + 0.5 * tex_broad) + 0.03 * np.sin(v * 3.1 + u * 0.02) + 0.03 * tex_fine
        edge = np.clip(inside / 2.5, 0, 1)
        grey = rng.uniform(0.42, 0.55) * (0.7 + 0.3 * edge) + grain
        return cover, grey, 5.0
    # leaf: a lens with pointed ends, a midrib and veins
    length = np.sqrt(target * 2.2)
    half_width = target / length * 0.75
    along = np.clip(u / (length / 2), -1, 1)
    inside = np.minimum(half_width * (1 - along**2) - np.abs(v), length / 2 - np.abs(u))
    cover = _coverage(inside, ppu)
    veins = (np.abs(np.sin((u - 0.8 * np.abs(v)) * 0.45)) < 0.12) * 0.06
    midrib = np.clip(1 - np.abs(v) / 1.2, 0, 1) * 0.12
    grey = rng.uniform(0.2, 0.38) + veins + midrib + 0.04 * tex_broad + 0.02 * tex_fine
    return cover, grey, 1.5


def _compose(
    scene: _Scene,
    defect: str | None,
    defect_seed: np.random.SeedSequence,
    bar: tuple[np.ndarray, np.ndarray],
    bolt: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> np.ndarray:
    """The fastener on its background, lit but before noise and blur.

    ``bar`` and ``bolt`` are the intact clip and bolt (``_draw_bar``, ``_bolt_layers``), drawn once
    for the normal and the defective crop.
    """
    rng = np.random.default_rng(defect_seed)
    bar_cover, bar_grey = _draw_bar(scene, _broken_clip(rng, scene.clip_points)) if defect == "broken_clip" else bar
    sx, sy, ppu = scene.sx, scene.sy, scene.px_per_unit
    dx, dy = scene.shadow_dir * ppu
    shadow = _shifted(bar_cover, 3.5 * dx, 3.5 * dy)
    image = scene.background.copy()
    if defect == "missing_bolt":
        rho = np.hypot(sx, sy)
        ring = np.clip(1 - np.abs(rho - _HOLE_R - 2.0) / 2.5, 0, 1) * (0.75 + 0.25 * _smooth_noise(rng, sx.shape, 1.2))
        footprint = _coverage(_WASHER_R - rho, ppu) * np.clip((rho - _HOLE_R - 2) / 3, 0, 1)  # where the washer sat
        image = image * (1 + 0.1 * footprint) * (1 - 0.12 * np.clip(1 - np.abs(rho - _WASHER_R) / 1.2, 0, 1))
        image = image * (1 - 0.55 * np.clip(ring, 0, 1))  # rust around the hole
        hole = _coverage(_HOLE_R - rho, ppu)
        depth = np.clip(rho / _HOLE_R, 0, 1)
        image = image * (1 - hole) + hole * (0.04 + 0.1 * depth * _lambert(scene.light, -sx / (rho + 1e-3), -sy / (rho + 1e-3), 0.5))
    else:
        washer_cover, washer_grey, nut_cover, nut_grey = bolt
        shadow = np.maximum(shadow, _shifted(washer_cover, 1.5 * dx, 1.5 * dy))
        shadow = np.maximum(shadow, _shifted(nut_cover, 5 * dx, 5 * dy))
    image *= 1 - 0.45 * ndimage.gaussian_filter(shadow, 1.6 * ppu)
    image = image * (1 - bar_cover) + bar_grey * bar_cover
    if defect != "missing_bolt":
        image = image * (1 - washer_cover) + washer_grey * washer_cover
        image = image * (1 - nut_cover) + nut_grey * nut_cover
    if defect == "occlusion":
        cover, grey, height = _foreign_object(rng, scene)
        cast = ndimage.gaussian_filter(_shifted(cover, height * dx, height * dy), 1.5 * ppu)
        image *= 1 - 0.4 * cast * (1 - cover)
        image = image * (1 - cover) + grey * cover
    return image


def render_fastener(seed: int, defect: str | None = None, size: int = 128) -> FastenerCrop:
    """Draw one top-down crop of a rail fastener on a concrete sleeper.

    Args:
        seed: The same seed draws the same crop; ``render_fastener(seed, kind)`` is the scene of
            ``render_fastener(seed)`` with only the defect added.
        defect: ``None`` for a normal fastener, or one of ``FASTENER_DEFECTS``.
        size: Side of the square crop in px (the scene scales with it).

    Returns:
        The crop, with the mask of the pixels the defect changed (widened by 2 px).

    Raises:
        InputError: unknown defect, a size below 32 px or a negative seed.
    """
    _check_defect(defect)
    if size < 32:
        raise InputError(f"fastener crop size must be at least 32 px, got {size}")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    scene_seed, defect_seed, camera_seed = np.random.SeedSequence(seed).spawn(3)
    scene = _random_scene(np.random.default_rng(scene_seed), size)
    camera = np.random.default_rng(camera_seed)
    gx, gy = _pixel_grid(size)
    tilt = camera.normal(0, 0.18, 2) / size
    lighting = camera.uniform(0.75, 1.25) * (1 + tilt[0] * gx + tilt[1] * gy)
    contrast = camera.uniform(0.85, 1.15)
    blur = camera.uniform(0.35, 0.8) * size / _REF
    noise = camera.normal(0, camera.uniform(0.008, 0.025), (size, size)).astype(np.float32)

    def finish(lit: np.ndarray) -> np.ndarray:
        lit = lit * lighting
        lit = 0.5 + (lit - 0.5) * contrast
        lit = ndimage.gaussian_filter(lit, blur) + noise
        return (np.clip(lit, 0, 1) * 255).round().astype(np.uint8)

    bar, bolt = _draw_bar(scene, scene.clip_points), _bolt_layers(scene)
    clean = _compose(scene, None, defect_seed, bar, bolt)
    if defect is None:
        return FastenerCrop(finish(clean), None, np.zeros((size, size), bool))
    changed = _compose(scene, defect, defect_seed, bar, bolt)
    difference = ndimage.gaussian_filter(np.abs(changed - clean) * lighting * contrast, blur)
    mask = ndimage.binary_fill_holes(ndimage.binary_dilation(difference > 6 / 255, iterations=2))
    return FastenerCrop(finish(changed), defect, mask)


def _crop_seed(seed: int, index: int, defect: str | None) -> int:
    """The seed of crop ``index`` of a set: different for every set, index and defect kind."""
    kind = 0 if defect is None else 1 + FASTENER_DEFECTS.index(defect)
    return int(np.random.SeedSequence([seed, index, kind]).generate_state(1)[0])


def generate_fastener_crops(count: int, seed: int, defect: str | None = None, size: int = 128) -> list[FastenerCrop]:
    """``count`` crops of one kind (``None``: normal); the same seed gives the same crops.

    Crop ``i`` is ``render_fastener`` of a seed derived from ``seed``, ``i`` and the kind, so it
    does not depend on ``count``, and normal and defective sets of one seed show different scenes.

    Raises:
        InputError: an unknown defect kind or a negative seed.
    """
    _check_defect(defect)
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    return [render_fastener(_crop_seed(seed, i, defect), defect, size) for i in range(count)]


def _write_png(array: np.ndarray, path: Path) -> None:
    image = Image.fromarray(array)
    _atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def write_fastener_folder(
    out: str | Path,
    normal: int,
    per_kind: int,
    seed: int = 0,
    kinds: Sequence[str] = FASTENER_DEFECTS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Write a fastener anomaly data set of PNG crops; returns how many images each folder got.

    ``out/normal/normal_NNNN.png`` holds ``normal`` normal crops,
    ``out/abnormal/<kind>/<kind>_NNNN.png`` ``per_kind`` crops of each defect kind and
    ``out/masks/<kind>/<kind>_NNNN.png`` their defect masks (white = defect). Every file is written
    atomically. ``progress(done, total)`` is called after each crop.

    Raises:
        InputError: an unknown defect kind, a negative count or a negative seed.
    """
    kinds = list(dict.fromkeys(kinds))
    for kind in kinds:
        _check_defect(kind)
    if normal < 0 or per_kind < 0:
        raise InputError(f"crop counts must be >= 0, got normal={normal}, per_kind={per_kind}")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    root = Path(out)
    jobs: list[tuple[str | None, int]] = [(None, i) for i in range(normal)] + [(k, i) for k in kinds for i in range(per_kind)]
    counts: dict[str, int] = {"normal": normal} | {kind: per_kind for kind in kinds}
    for done, (kind, i) in enumerate(jobs, start=1):
        crop = render_fastener(_crop_seed(seed, i, kind), kind)
        if kind is None:
            _write_png(crop.image, root / "normal" / f"normal_{i:04d}.png")
        else:
            _write_png(crop.image, root / "abnormal" / kind / f"{kind}_{i:04d}.png")
            _write_png(crop.mask.astype(np.uint8) * 255, root / "masks" / kind / f"{kind}_{i:04d}.png")
        if progress is not None:
            progress(done, len(jobs))
    return counts
