"""Pixel painting for :mod:`railwatch.data.scenes`: ground fields, textures, sky, objects, weather.

Everything works on whole images with numpy. Ground pixels are back-projected once; a track
then needs its centre line only once per image row, because on flat ground a pixel's forward
distance depends on its row alone.

Thin features are box-filtered analytically instead of supersampled: a pixel's coverage of a
rail head is the overlap of the head with the pixel's footprint across the track, and its
coverage of the sleepers the overlap of the sleeper pattern with the footprint along the
track. That is what supersampling converges to, in a single pass, so far rails fade to partial
coverage instead of breaking up, and far sleepers blend into the ballast instead of aliasing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from railwatch.camera import Camera
from railwatch.config import OBJECT_TYPES
from railwatch.data.rail_masks import OBJECT_SIZES_M, ObjectTruth

if TYPE_CHECKING:
    from railwatch.data.scenes import SceneSpec

GAUGE_M = 1.435
RAIL_HEAD_M = 0.072
RAIL_CENTRE_M = (GAUGE_M + RAIL_HEAD_M) / 2
SLEEPER_PITCH_M = 0.6
SLEEPER_WIDTH_M = 0.25
SLEEPER_HALF_LENGTH_M = 1.3
BED_HALF_WIDTH_M = 1.6
BED_FADE_M = 0.5

TILE = 256
_FAR_M = 20_000.0  # ground beyond this is always hidden by the tree line
_OFFSET_M = 30_000.0  # keeps texture coordinates positive, so int() truncation is floor()
_SUPERSAMPLE = 4


@dataclass(frozen=True)
class GroundGrid:
    """Every pixel below the horizon back-projected to the ground; rows ``row0`` to the bottom.

    Per-row arrays have shape ``(R,)``; ``x`` has shape ``(R, W)``.
    """

    row0: int
    z: np.ndarray
    dz_dv: np.ndarray
    step: np.ndarray
    dlogt_dv: np.ndarray
    x: np.ndarray

    @property
    def along(self) -> np.ndarray:
        """Footprint of a pixel on the ground along the view direction (m), per row."""
        return np.abs(self.dz_dv)


def ground_grid(camera: Camera) -> GroundGrid:
    """Back-project every pixel below the horizon.

    Args:
        camera: The scene camera.

    Returns:
        A :class:`GroundGrid`; forward distances are capped at 20 km.
    """
    p = math.radians(camera.pitch_deg)
    f, h = camera.focal_px, camera.mount_height_m
    a = (np.arange(camera.height_px, dtype=float) - camera.cy) / f
    down = a * math.cos(p) + math.sin(p)
    ground = np.flatnonzero(down > 1e-12)
    row0 = int(ground[0]) if ground.size else camera.height_px
    a, down = a[row0:], down[row0:]
    t = np.minimum(h / down, _FAR_M)
    forward = math.cos(p) - a * math.sin(p)
    dt_dv = np.where(h / down > _FAR_M, 0.0, -h * math.cos(p) / (f * down**2))
    b = (np.arange(camera.width_px, dtype=float) - camera.cx) / f
    return GroundGrid(
        row0=row0,
        z=t * forward,
        dz_dv=dt_dv * forward - t * math.sin(p) / f,
        step=t / f,
        dlogt_dv=dt_dv / t,
        x=(t[:, None] * b[None, :]).astype(np.float32),
    )


def strip_coverage(pos: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float, width: np.ndarray) -> np.ndarray:
    """Fraction of a pixel footprint ``[pos - width/2, pos + width/2]`` that lies inside ``[lo, hi]``."""
    half = 0.5 * width
    return np.clip(np.minimum(pos + half, hi) - np.maximum(pos - half, lo), 0.0, None) / width


def _periodic_integral(s: np.ndarray, period: float, on: float) -> np.ndarray:
    k = np.floor(s / period)
    return k * on + np.minimum(s - k * period, on)


def periodic_coverage(s: np.ndarray, width: np.ndarray, period: float, on: float) -> np.ndarray:
    """Box-filtered square wave: the fraction of ``[s - width/2, s + width/2]`` inside the ``on`` parts.

    The pattern is ``on`` long at the start of every ``period``.
    """
    half = 0.5 * width
    return (_periodic_integral(s + half, period, on) - _periodic_integral(s - half, period, on)) / width


def noise_stack(rng: np.random.Generator, blob_texels: float) -> np.ndarray:
    """A tileable smooth noise and its blurred versions, one per mip level.

    Level ``k`` is what a pixel covering ``2**k`` texels sees, so far ground is sampled from a
    smoother level instead of aliasing.

    Returns:
        ``(levels, TILE, TILE)`` float32, unit standard deviation at level 0.
    """
    spectrum = np.fft.rfft2(rng.standard_normal((TILE, TILE)))
    k2 = np.fft.fftfreq(TILE)[:, None] ** 2 + np.fft.rfftfreq(TILE)[None, :] ** 2
    levels = int(math.log2(TILE)) + 1
    stack = np.empty((levels, TILE, TILE), dtype=np.float32)
    for level in range(levels):
        sigma = math.hypot(blob_texels, 0.5 * 2**level)
        stack[level] = np.fft.irfft2(spectrum * np.exp(-2 * (math.pi * sigma) ** 2 * k2), s=(TILE, TILE))
    stack /= stack[0].std()
    return stack


def sample_noise(stack: np.ndarray, texel_m: float, x: np.ndarray, z: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Sample a :func:`noise_stack` at ground points, picking the mip level per row.

    Args:
        stack: Output of :func:`noise_stack`.
        texel_m: Size of one texel on the ground, in metres.
        x: ``(R, W)`` lateral positions (m).
        z: ``(R,)`` forward distances (m).
        footprint: ``(R,)`` pixel size on the ground (m).

    Returns:
        ``(R, W)`` float32 noise values.
    """
    levels = stack.shape[0]
    level = np.clip(np.rint(np.log2(np.maximum(footprint / texel_m, 1.0))), 0, levels - 1).astype(np.int64)
    iz = ((z + _OFFSET_M) / texel_m).astype(np.int64) & (TILE - 1)
    ix = ((x + np.float32(_OFFSET_M)) * np.float32(1.0 / texel_m)).astype(np.int32) & (TILE - 1)
    return np.take(stack, ((level * TILE + iz) * TILE)[:, None] + ix)


def noise_line(rng: np.random.Generator, length: int, blob: float) -> np.ndarray:
    """A tileable smooth 1-D noise of unit standard deviation, ``length`` a power of two."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    line = np.fft.irfft(spectrum * np.exp(-2 * (math.pi * blob * np.fft.rfftfreq(length)) ** 2), n=length)
    return (line / line.std()).astype(np.float32)


def smooth_field(rng: np.random.Generator, rows: int, cols: int, cells: tuple[int, int]) -> np.ndarray:
    """Random values on a coarse ``cells`` grid, interpolated bicubically to ``(rows, cols)``."""
    coarse = rng.standard_normal(cells).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((cols, rows), Image.Resampling.BICUBIC))


def sky(rng: np.random.Generator, rows: int, width: int, horizon_row: float, palette: dict) -> np.ndarray:
    """Sky albedo for image rows ``0..rows-1``: a zenith-to-horizon gradient with soft clouds."""
    if rows <= 0:
        return np.zeros((0, width, 3), np.float32)
    v = np.arange(rows, dtype=np.float32)
    up = np.clip((horizon_row - v) / max(horizon_row, 1.0), 0.0, 1.0) ** 0.6
    colour = palette["horizon"] + (palette["zenith"] - palette["horizon"]) * up[:, None, None]
    colour = np.broadcast_to(colour, (rows, width, 3)).copy()
    cover = palette["cloud_cover"]
    if cover > 0:
        n = smooth_field(rng, rows, width, (3, 6)) + 0.5 * smooth_field(rng, rows, width, (8, 16))
        n += 0.25 * smooth_field(rng, rows, width, (20, 40))
        clouds = np.clip((n - (1.2 - 2.0 * cover)) * 0.8, 0.0, 1.0) * (0.35 + 0.65 * up[:, None])
        colour += (palette["cloud"] - colour) * clouds[..., None]
    return colour


@dataclass(frozen=True)
class TreeLine:
    """The band of trees and buildings at ``distance_m``, from image row ``r0`` down ``len(alpha)`` rows."""

    r0: int
    alpha: np.ndarray
    albedo: np.ndarray
    distance_m: float


def tree_line(rng: np.random.Generator, camera: Camera, distance_m: float, palette: dict) -> TreeLine:
    """Silhouettes of trees and buildings standing on the ground at ``distance_m``.

    Every column is at least 3.5 m high, more than the camera, so the band always reaches above
    the horizon and hides the ground beyond it.
    """
    width, f = camera.width_px, camera.focal_px
    _, v_base = camera.project(0.0, distance_m)
    v_base = float(v_base)
    px_per_m = f / camera.depth(distance_m)
    u = np.arange(width, dtype=np.float32)
    span_m = width / px_per_m
    height_m = 3.5 + 0.8 * np.abs(smooth_field(rng, 1, width, (1, max(4, int(span_m / 15))))[0])
    n_trees = int(rng.uniform(0.3, 1.0) * span_m / 6)
    centres = rng.uniform(0, width, n_trees)
    radii = rng.uniform(2.5, 8.0, n_trees) * px_per_m
    tops = rng.uniform(6.0, 22.0, n_trees)
    shape = np.clip(1 - ((u[None, :] - centres[:, None]) / radii[:, None]) ** 2, 0, 1) ** 0.5
    trees = (tops[:, None] * shape).max(axis=0, initial=0.0)
    trees += 0.6 * rng.standard_normal(width) * (trees > 3)  # ragged leaf edge
    houses = np.zeros(width)
    house_tone = np.ones(width)
    for _ in range(int(rng.integers(0, 1 + int(span_m / 60)))):
        c, w, top = rng.uniform(0, width), rng.uniform(8, 40) * px_per_m, rng.uniform(4, 14)
        front = (np.abs(u - c) < w / 2) & (top > houses)
        houses[front], house_tone[front] = top, rng.uniform(0.7, 1.3)
    profile = np.maximum(np.maximum(height_m, trees), houses)
    top_v = v_base - profile * px_per_m
    r0 = max(int(math.floor(top_v.min())), 0)
    r1 = min(int(math.ceil(v_base)) + 1, camera.height_px)
    if r1 <= r0:  # the band lies outside the image
        empty = np.zeros((0, width), np.float32)
        return TreeLine(r0=0, alpha=empty, albedo=empty[..., None].repeat(3, axis=2), distance_m=distance_m)
    v = np.arange(r0, r1, dtype=np.float32)[:, None]
    alpha = np.clip(v - top_v[None, :] + 0.5, 0, 1) * np.clip(v_base - v + 0.5, 0, 1)
    is_house = (houses >= np.maximum(height_m, trees))[None, :, None]
    leaf = 1 + 0.15 * smooth_field(rng, r1 - r0, width, (max(2, (r1 - r0) // 3), max(2, width // 3)))
    leaf *= 0.75 + 0.25 * np.clip((v - top_v[None, :]) / np.maximum(v_base - top_v[None, :], 1), 0, 1) ** 0.5
    green = palette["trees"] * rng.uniform(0.8, 1.2, (1, width, 1)) * leaf[..., None]
    albedo = np.where(is_house, palette["houses"] * house_tone[None, :, None], green).astype(np.float32)
    return TreeLine(r0=r0, alpha=alpha.astype(np.float32), albedo=albedo, distance_m=distance_m)


Part = tuple[str, tuple[float, ...], tuple[float, float, float]]


def _jitter(rng: np.random.Generator, colour: tuple[float, float, float], amount: float = 0.1) -> tuple[float, ...]:
    return tuple(float(c) for c in np.clip(np.asarray(colour) * rng.uniform(1 - amount, 1 + amount, 3), 0, 255))


def _person(rng: np.random.Generator) -> list[Part]:
    skin = _jitter(rng, [(225, 185, 150), (190, 140, 100), (120, 85, 60)][rng.integers(3)])
    hivis = rng.random() < 0.35
    shirt = (235, 120, 30) if hivis and rng.random() < 0.5 else (215, 225, 40) if hivis else None
    shirt = _jitter(rng, shirt or tuple(rng.uniform(30, 220, 3)))
    legs = _jitter(rng, [(40, 45, 60), (60, 60, 60), (70, 80, 120), (110, 95, 70)][rng.integers(4)])
    dark = _jitter(rng, (30, 28, 26))
    hair = _jitter(rng, [(30, 25, 20), (90, 60, 35), (160, 130, 80)][rng.integers(3)])
    return [
        ("rect", (0.26, 0.52, 0.48, 0.97), legs),
        ("rect", (0.52, 0.52, 0.74, 0.97), legs),
        ("rect", (0.22, 0.94, 0.49, 1.0), dark),
        ("rect", (0.51, 0.94, 0.78, 1.0), dark),
        ("polygon", (0.03, 0.2, 0.17, 0.17, 0.19, 0.53, 0.05, 0.54), shirt),
        ("polygon", (0.97, 0.2, 0.83, 0.17, 0.81, 0.53, 0.95, 0.54), shirt),
        ("polygon", (0.13, 0.16, 0.87, 0.16, 0.8, 0.57, 0.2, 0.57), shirt),
        ("ellipse", (0.0, 0.51, 0.13, 0.59), skin),
        ("ellipse", (0.87, 0.51, 1.0, 0.59), skin),
        ("rect", (0.43, 0.11, 0.57, 0.17), skin),
        ("ellipse", (0.33, 0.0, 0.67, 0.08), hair),
        ("ellipse", (0.35, 0.015, 0.65, 0.13), skin),
    ]


def _car(rng: np.random.Generator) -> list[Part]:
    paints = [(200, 200, 205), (30, 30, 35), (150, 20, 25), (30, 60, 140), (120, 125, 130), (230, 230, 225)]
    body = _jitter(rng, paints[rng.integers(len(paints))])
    glass = _jitter(rng, (45, 55, 65))
    lamp = (200, 35, 30) if rng.random() < 0.5 else (235, 230, 200)
    black = (22, 22, 24)
    return [
        ("rect", (0.05, 0.78, 0.25, 1.0), black),
        ("rect", (0.75, 0.78, 0.95, 1.0), black),
        ("polygon", (0.08, 0.44, 0.2, 0.0, 0.8, 0.0, 0.92, 0.44), body),
        ("rect", (0.0, 0.4, 1.0, 0.86), body),
        ("polygon", (0.14, 0.41, 0.24, 0.06, 0.76, 0.06, 0.86, 0.41), glass),
        ("rect", (0.02, 0.74, 0.98, 0.84), (45, 45, 48)),
        ("ellipse", (0.04, 0.48, 0.2, 0.59), lamp),
        ("ellipse", (0.8, 0.48, 0.96, 0.59), lamp),
        ("rect", (0.4, 0.6, 0.6, 0.68), (225, 225, 220)),
    ]


def _animal(rng: np.random.Generator) -> list[Part]:
    coats = [(120, 80, 45), (60, 45, 35), (200, 190, 175), (150, 120, 85), (40, 38, 36)]
    coat = _jitter(rng, coats[rng.integers(len(coats))], 0.15)
    darker = tuple(c * 0.7 for c in coat)
    parts: list[Part] = [
        ("rect", (0.22, 0.55, 0.3, 1.0), darker),
        ("rect", (0.34, 0.55, 0.42, 1.0), coat),
        ("rect", (0.62, 0.55, 0.7, 1.0), darker),
        ("rect", (0.72, 0.55, 0.8, 1.0), coat),
        ("polygon", (0.14, 0.3, 0.0, 0.62, 0.04, 0.64, 0.17, 0.37), darker),
        ("ellipse", (0.12, 0.22, 0.86, 0.68), coat),
        ("polygon", (0.7, 0.32, 0.83, 0.12, 0.95, 0.18, 0.86, 0.47), coat),
        ("polygon", (0.82, 0.0, 0.88, 0.07, 0.81, 0.08), darker),
        ("ellipse", (0.8, 0.04, 1.0, 0.27), coat),
    ]
    if rng.random() < 0.3:  # spotted coat
        for _ in range(int(rng.integers(2, 4))):
            cx, cy, r = rng.uniform(0.25, 0.7), rng.uniform(0.3, 0.55), rng.uniform(0.05, 0.1)
            parts.append(("ellipse", (cx - r, cy - r * 0.8, cx + r, cy + r * 0.8), (225, 222, 215)))
    if rng.random() < 0.5:  # face left
        parts = [(kind, tuple(1 - c if i % 2 == 0 else c for i, c in enumerate(xy)), col) for kind, xy, col in parts]
        parts = [(k, (xy[2], xy[1], xy[0], xy[3]) if k in ("rect", "ellipse") else xy, c) for k, xy, c in parts]
    return parts


def _stone(rng: np.random.Generator) -> list[Part]:
    n = int(rng.integers(8, 13))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radius = rng.uniform(0.7, 1.0, n)
    x, y = np.cos(angles) * radius, np.sin(angles) * radius * 0.85
    y = np.minimum(y, 0.6)  # flat underside resting on the ground
    x, y = (x - x.min()) / np.ptp(x), (y - y.min()) / np.ptp(y)
    grey = _jitter(rng, tuple(np.array([1.0, 0.97, 0.92]) * rng.uniform(100, 160)), 0.05)
    light = tuple(min(c * 1.25, 255) for c in grey)
    hx, hy = 0.25 + 0.5 * x * 0.6, 0.05 + y * 0.5
    return [
        ("polygon", tuple(np.column_stack([x, y]).ravel()), grey),
        ("polygon", tuple(np.column_stack([hx, hy]).ravel()), light),
    ]


_SHAPES = {"person": _person, "car": _car, "animal": _animal, "stone": _stone}


@dataclass(frozen=True)
class ObjectPatch:
    """An object drawn at image resolution: ``alpha`` and premultiplied ``colour`` from ``(r0, c0)``."""

    r0: int
    c0: int
    alpha: np.ndarray
    colour: np.ndarray
    box: tuple[float, float, float, float]


def draw_object(
    rng: np.random.Generator, kind: str, foot_u: float, foot_v: float, width_px: float, height_px: float
) -> ObjectPatch:
    """Draw one object standing at the foot pixel, shaded, antialiased by 4x4 supersampling.

    Args:
        rng: Random generator for colours and the stone's outline.
        kind: person, car, animal or stone.
        foot_u: Column of the foot point (px).
        foot_v: Row of the foot point (px).
        width_px: Width of the object's box (px).
        height_px: Height of the object's box (px).

    Returns:
        An :class:`ObjectPatch`; ``box`` is the drawn shape's extent, not clipped.
    """
    parts = _SHAPES[kind](rng)
    u0, v0 = foot_u - width_px / 2, foot_v - height_px
    c0, r0 = math.floor(u0 + 0.5), math.floor(v0 + 0.5)
    c1, r1 = math.floor(u0 + width_px + 0.5), math.floor(foot_v + 0.5)
    cols, rows = c1 - c0 + 1, r1 - r0 + 1
    ss = _SUPERSAMPLE
    paint = Image.new("RGB", (cols * ss, rows * ss))
    cover = Image.new("L", (cols * ss, rows * ss))
    draw_paint, draw_cover = ImageDraw.Draw(paint), ImageDraw.Draw(cover)
    # supersampled coordinates: pixel c spans [c - 0.5, c + 0.5] in image columns
    ox, oy = (u0 - (c0 - 0.5)) * ss, (v0 - (r0 - 0.5)) * ss
    sx, sy = width_px * ss, height_px * ss
    xs: list[float] = []
    ys: list[float] = []
    for shape, coords, colour in parts:
        pts = [(ox + coords[i] * sx, oy + coords[i + 1] * sy) for i in range(0, len(coords), 2)]
        xs += [p[0] for p in pts]
        ys += [p[1] for p in pts]
        fill = tuple(int(round(c)) for c in colour)
        if shape == "polygon":
            draw_paint.polygon(pts, fill=fill)
            draw_cover.polygon(pts, fill=255)
        else:
            method = "rectangle" if shape == "rect" else "ellipse"
            getattr(draw_paint, method)([pts[0], pts[1]], fill=fill)
            getattr(draw_cover, method)([pts[0], pts[1]], fill=255)
    alpha = np.asarray(cover, np.float32).reshape(rows, ss, cols, ss).mean(axis=(1, 3)) / 255
    colour = np.asarray(paint, np.float32).reshape(rows, ss, cols, ss, 3).mean(axis=(1, 3))
    yn = np.linspace(0, 1, rows, dtype=np.float32)[:, None]
    xn = np.linspace(-1, 1, cols, dtype=np.float32)[None, :]
    colour *= ((1.12 - 0.3 * yn) * (1 + 0.12 * rng.uniform(-1, 1) * xn))[..., None]
    box = (
        c0 - 0.5 + min(xs) / ss,
        r0 - 0.5 + min(ys) / ss,
        c0 - 0.5 + max(xs) / ss,
        r0 - 0.5 + max(ys) / ss,
    )
    return ObjectPatch(r0=r0, c0=c0, alpha=alpha, colour=colour, box=box)


def rain_streaks(rng: np.random.Generator, height: int, width: int, intensity: float) -> np.ndarray:
    """Thin bright slanted streaks: ``(H, W)`` float32 opacity in 0..1."""
    canvas = Image.new("L", (width, height))
    draw = ImageDraw.Draw(canvas)
    count = int(intensity * height * width / 900)
    angle = math.radians(rng.normal(12, 5))
    scale = height / 512
    x0 = rng.uniform(-0.2 * width, 1.2 * width, count)
    y0 = rng.uniform(-0.1 * height, height, count)
    length = rng.uniform(8, 30, count) * scale
    shade = rng.integers(35, 110, count)
    for x, y, n, g in zip(x0, y0, length, shade):
        draw.line([(x, y), (x + n * math.sin(angle), y + n * math.cos(angle))], fill=int(g), width=1)
    return np.asarray(canvas, np.float32) / 255


def vertical_blur(image: np.ndarray, length: int) -> np.ndarray:
    """Average every pixel with the ``length - 1`` rows above it, a short motion blur."""
    if length <= 1:
        return image
    padded = np.concatenate([np.repeat(image[:1], length - 1, axis=0), image], axis=0)
    total = np.cumsum(padded, axis=0, dtype=np.float32)
    total[length:] = total[length:] - total[:-length]
    return total[length - 1 :] / length


@dataclass(frozen=True)
class Painted:
    """The rendered image, its masks, and the truth of the objects as drawn."""

    image: np.ndarray
    rail_mask: np.ndarray
    track_mask: np.ndarray
    semantic: np.ndarray
    objects: tuple[ObjectTruth, ...]
    occlusion: tuple[float, ...]


_SKIES = {
    "clear": dict(zenith=(60, 120, 205), horizon=(175, 200, 225), cloud=(240, 242, 245), cover=(0.0, 0.5)),
    "overcast": dict(zenith=(150, 155, 162), horizon=(200, 202, 206), cloud=(125, 130, 138), cover=(0.5, 1.0)),
    "fog": dict(zenith=(185, 188, 192), horizon=(205, 207, 210), cloud=(170, 173, 178), cover=(0.3, 0.8)),
    "rain": dict(zenith=(90, 95, 104), horizon=(140, 145, 152), cloud=(70, 74, 80), cover=(0.6, 1.0)),
    "night": dict(zenith=(3, 5, 12), horizon=(14, 16, 26), cloud=(8, 9, 14), cover=(0.0, 0.4)),
}
_GROUNDS = {
    "grass": ((85, 108, 52), (135, 128, 80)),
    "soil": ((118, 98, 72), (92, 78, 58)),
    "gravel": ((132, 127, 116), (108, 102, 92)),
}
_SLEEPERS = {"concrete": (152, 149, 142), "wood": (92, 72, 56)}


def _palette(spec: SceneSpec, rng: np.random.Generator) -> dict:
    sky_set = _SKIES[spec.weather]

    def col(c: tuple[float, ...], amount: float = 0.08) -> np.ndarray:
        # mostly a change of brightness, with a slight tint, so greys stay grey
        tint = rng.uniform(1 - amount / 4, 1 + amount / 4, 3) * rng.uniform(1 - amount, 1 + amount)
        return (np.asarray(c, np.float32) * tint).astype(np.float32)

    wet = 1 - 0.35 * spec.intensity if spec.weather == "rain" else 1.0
    ground_a, ground_b = _GROUNDS[spec.ground]
    fog = {"fog": (198, 201, 205), "night": (9, 10, 15), "rain": (120, 125, 132)}.get(spec.weather, sky_set["horizon"])
    return {
        "zenith": col(sky_set["zenith"]),
        "horizon": col(sky_set["horizon"], 0.04),
        "cloud": col(sky_set["cloud"], 0.04),
        "cloud_cover": float(rng.uniform(*sky_set["cover"])),
        "fog": col(fog, 0.03),
        "ground_a": col(ground_a, 0.12) * wet,
        "ground_b": col(ground_b, 0.12) * wet,
        "ballast": col((124, 117, 107), 0.1) * wet,
        "sleeper": col(_SLEEPERS[spec.sleeper], 0.1) * wet,
        "rail_side": col((70, 60, 52), 0.15) * wet,
        "rail_head": col((190, 190, 196), 0.08),
        "trees": col((48, 70, 38), 0.2),
        "houses": col((130, 118, 108), 0.25),
    }


class _TrackLayers:
    """Per-pixel fields accumulated over all tracks of a scene (ground rows only)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.nearest = np.full(shape, np.inf, np.float32)  # |lateral| to the nearest track centre
        self.lat = np.full(shape, 1e3, np.float32)  # signed lateral of that nearest track
        self.lat_step = np.ones(shape, np.float32)
        self.along = np.zeros(shape, np.float32)
        self.along_step = np.ones(shape, np.float32)
        self.head = np.zeros(shape, np.float32)
        self.shine = np.zeros(shape, np.float32)
        self.body = np.zeros(shape, np.float32)


def _track_window(camera: Camera, grid: GroundGrid, rows: np.ndarray, xc: np.ndarray, cos_h: np.ndarray) -> slice:
    """Columns that can lie within the faded bed edge of ``track`` in any of ``rows``."""
    reach = (BED_HALF_WIDTH_M + BED_FADE_M + 0.5) / cos_h
    t = grid.step[rows] * camera.focal_px
    lo = camera.cx + camera.focal_px * (xc - reach) / t
    hi = camera.cx + camera.focal_px * (xc + reach) / t
    first = int(np.clip(math.floor(lo.min()), 0, camera.width_px))
    return slice(first, int(np.clip(math.ceil(hi.max()) + 1, first, camera.width_px)))


def _per_row(values: np.ndarray) -> np.ndarray:
    """Per-row values as a float32 column, to broadcast against the columns of a block."""
    return values.astype(np.float32)[:, None]


def _add_track(layers: _TrackLayers, spec: SceneSpec, grid: GroundGrid, track, shine: np.ndarray) -> None:
    """Fold one track's lateral/along-track fields and rail coverage into ``layers``."""
    start = track.branch_start_m if track.branch_of is not None else -math.inf
    rows = np.flatnonzero((grid.z <= spec.max_distance_m) & (grid.z > start))
    if rows.size == 0:
        return
    z = grid.z[rows]
    xc, heading, s_row = track.centre_x(z), track.heading(z), track.arc_length(z)
    cos_h, tan_h = np.cos(heading), np.tan(heading)
    cols = _track_window(spec.camera, grid, rows, xc, cos_h)
    if cols.start >= cols.stop:
        return
    block = (slice(int(rows[0]), int(rows[-1]) + 1), cols)
    x = grid.x[block]
    lat = (x - _per_row(xc)) * _per_row(cos_h)
    # footprint across the track: max(|d lat/du|, |d lat/dv|) makes a thin line's coverage its
    # exact area in the pixel at any slant
    lat_step = _per_row(cos_h) * np.maximum(
        _per_row(grid.step[rows]), np.abs(x * _per_row(grid.dlogt_dv[rows]) - _per_row(tan_h * grid.dz_dv[rows]))
    )
    along = _per_row(s_row) + lat * _per_row(tan_h)
    along_step_row = grid.along[rows] / cos_h + grid.step[rows] * np.abs(tan_h)
    nearer = np.abs(lat) < layers.nearest[block]
    fields = (("lat", lat), ("lat_step", lat_step), ("along", along), ("along_step", _per_row(along_step_row)))
    for name, value in fields:
        np.copyto(getattr(layers, name)[block], np.broadcast_to(value, lat.shape), where=nearer)
    np.copyto(layers.nearest[block], np.abs(lat), where=nearer)
    half = RAIL_HEAD_M / 2
    face = np.clip(0.14 * np.abs(xc) / spec.camera.mount_height_m, 0.01, 0.12)
    # shine changes every 25 cm along the rail; a pixel spanning many pieces sees their average
    glint_gain = _per_row(0.22 * np.clip(0.5 / along_step_row, 0, 1))
    for sign in (-1.0, 1.0):
        centre = sign * RAIL_CENTRE_M
        head = strip_coverage(lat, centre - half, centre + half, lat_step)
        rail_x = xc + centre * cos_h
        # the rail's side shows on the side facing the camera; a thin shadow on the other
        left = _per_row(np.where(rail_x > 0, face, 0.015))
        right = _per_row(np.where(rail_x > 0, 0.015, face))
        body = strip_coverage(lat, centre - half - left, centre + half + right, lat_step)
        index = ((along + np.float32(_OFFSET_M)) * np.float32(4.0)).astype(np.int32) + int(sign > 0) * 1031
        glint = 1 + glint_gain * np.take(shine, index & (shine.size - 1))
        stronger = head > layers.head[block]
        np.copyto(layers.shine[block], glint, where=stronger)
        np.maximum(layers.head[block], head, out=layers.head[block])
        np.maximum(layers.body[block], body, out=layers.body[block])


def _paint_ground(
    spec: SceneSpec, grid: GroundGrid, palette: dict, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Albedo of the ground rows, the rail-head coverage, and the track-bed label."""
    shape = grid.x.shape
    layers = _TrackLayers(shape)
    shine = noise_line(rng, 4096, 3.0)
    for track in spec.tracks:
        _add_track(layers, spec, grid, track, shine)
    z, x = grid.z, grid.x
    footprint = np.sqrt(grid.step * np.maximum(grid.along, grid.step)) * 1.5
    fine = noise_stack(rng, 1.2)
    blotch = noise_stack(rng, 4.0)
    n_ground = 0.6 * sample_noise(fine, 0.02, x, z, footprint)
    n_ground += 0.4 * sample_noise(fine, 0.047, -x, z + 13.0, footprint)
    mix = np.clip(0.5 + 0.6 * sample_noise(blotch, 0.5, x, z, footprint), 0, 1)
    n_stone = 0.7 * sample_noise(fine, 0.011, x, z + 7.0, footprint)
    n_stone += 0.5 * sample_noise(fine, 0.029, -x, z, footprint)
    ground = palette["ground_a"] + (palette["ground_b"] - palette["ground_a"]) * mix[..., None]
    albedo = ground * (1 + 0.2 * n_ground)[..., None]
    bed = np.clip((BED_HALF_WIDTH_M + BED_FADE_M - layers.nearest + 0.15 * n_stone) / BED_FADE_M, 0, 1)
    # lit stone faces, with dark gaps where the noise is low
    stones = palette["ballast"] * (0.92 + 0.16 * np.tanh(n_stone) - 0.25 * np.clip(-1.0 - n_stone, 0, 1))[..., None]
    albedo += (stones - albedo) * bed[..., None]
    phase = float(rng.uniform(0, SLEEPER_PITCH_M))
    sleeper = strip_coverage(layers.lat, -SLEEPER_HALF_LENGTH_M, SLEEPER_HALF_LENGTH_M, layers.lat_step)
    sleeper *= periodic_coverage(layers.along + phase, layers.along_step, SLEEPER_PITCH_M, SLEEPER_WIDTH_M)
    variation = rng.uniform(0.82, 1.12, 64).astype(np.float32)
    which = ((layers.along + phase + _OFFSET_M) / SLEEPER_PITCH_M).astype(np.int32) & 63
    tone = np.take(variation, which) * (1 + 0.06 * n_stone)
    albedo += (palette["sleeper"] * tone[..., None] - albedo) * sleeper[..., None]
    albedo += (palette["rail_side"] - albedo) * layers.body[..., None]
    albedo += (palette["rail_head"] * layers.shine[..., None] - albedo) * layers.head[..., None]
    return albedo, layers.head, layers.nearest <= BED_HALF_WIDTH_M


def _headlight(spec: SceneSpec, x: np.ndarray | float, z: np.ndarray | float, reach_m: float) -> np.ndarray:
    """Relative illumination of ground points by the train's headlights."""
    cone = np.exp(-((np.asarray(x) / (0.8 + 0.2 * np.asarray(z))) ** 2))
    return 1.15 * spec.brightness * cone / (1 + (np.asarray(z) / reach_m) ** 2)


def _light_ground(spec: SceneSpec, grid: GroundGrid, albedo: np.ndarray, head: np.ndarray, light: dict) -> np.ndarray:
    """Apply sun or headlights, then haze or fog, to the ground rows."""
    z = grid.z[:, None]
    if spec.weather == "night":
        lit = albedo * (light["ambient"] + _headlight(spec, grid.x, z, light["reach"]))[..., None].astype(np.float32)
        glint = 160 * spec.brightness / (1 + (z / (2.5 * light["reach"])) ** 2)  # rails catch the light
        lit += (head * glint.astype(np.float32))[..., None]
    else:
        lit = albedo * np.float32(spec.brightness)
    depth = spec.camera.depth(grid.z)
    clear = np.exp(-depth / spec.visibility_m).astype(np.float32)[:, None, None]
    return lit * clear + light["fog"] * (1 - clear)


def paint_scene(spec: SceneSpec, rng: np.random.Generator) -> Painted:
    """Render ``spec``: the image, rail/track/semantic masks and the drawn objects' truth.

    Args:
        spec: The scene.
        rng: Generator of every random detail not fixed by ``spec`` (textures, colours, noise).

    Returns:
        A :class:`Painted`.
    """
    camera = spec.camera
    height, width = camera.height_px, camera.width_px
    palette = _palette(spec, rng)
    light = {
        "ambient": 0.035 + 0.05 * (1 - spec.intensity),
        "reach": float(rng.uniform(30, 60)),
        "fog": palette["fog"] * (spec.brightness if spec.weather != "night" else 1.0),
    }
    grid = ground_grid(camera)
    image = np.empty((height, width, 3), np.float32)
    sky_rows = sky(rng, grid.row0, width, camera.horizon_row, palette)
    veil = {"fog": 0.85 + 0.15 * spec.intensity, "rain": 0.3 * spec.intensity}.get(spec.weather, 0.0)
    sky_gain = 1.0 if spec.weather == "night" else spec.brightness
    image[: grid.row0] = (sky_rows + (palette["fog"] - sky_rows) * veil) * sky_gain
    albedo, head, bed = _paint_ground(spec, grid, palette, rng)
    image[grid.row0 :] = _light_ground(spec, grid, albedo, head, light)
    _paint_tree_line(image, spec, rng, palette, light)
    rail_mask = np.zeros((height, width), bool)
    track_mask = np.zeros((height, width), bool)
    rail_mask[grid.row0 :] = head >= 0.5
    track_mask[grid.row0 :] = bed
    semantic = np.where(rail_mask, 2, np.where(track_mask, 1, 0)).astype(np.uint8)
    objects, occlusion = _paint_objects(image, semantic, spec, rng, light)
    covered = semantic >= 3
    rail_mask &= ~covered
    track_mask &= ~covered
    _camera_effects(image, spec, rng)
    return Painted(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
        rail_mask=rail_mask,
        track_mask=track_mask,
        semantic=semantic,
        objects=objects,
        occlusion=occlusion,
    )


def _paint_tree_line(image: np.ndarray, spec: SceneSpec, rng: np.random.Generator, palette: dict, light: dict) -> None:
    line = tree_line(rng, spec.camera, spec.horizon_m, palette)
    if line.alpha.size == 0:
        return
    if spec.weather == "night":
        lit = line.albedo * np.float32(light["ambient"] * 0.6)
        windows = rng.random(line.alpha.shape) < 0.002  # a few distant lights
        lit[windows] = (255, 210, 140)
    else:
        lit = line.albedo * np.float32(spec.brightness)
    clear = math.exp(-spec.camera.depth(line.distance_m) / spec.visibility_m)
    lit = lit * clear + light["fog"] * (1 - clear)
    band = image[line.r0 : line.r0 + line.alpha.shape[0]]
    band += (lit - band) * line.alpha[..., None]


def _paint_objects(
    image: np.ndarray, semantic: np.ndarray, spec: SceneSpec, rng: np.random.Generator, light: dict
) -> tuple[tuple[ObjectTruth, ...], tuple[float, ...]]:
    """Draw the objects far to near over ``image``; mark their pixels in ``semantic``."""
    camera = spec.camera
    height, width = semantic.shape
    ego = spec.tracks[spec.ego_index]
    owner = np.full(semantic.shape, -1, np.int32)
    drawn = [0] * len(spec.objects)
    found: list[ObjectTruth | None] = [None] * len(spec.objects)
    order = sorted(range(len(spec.objects)), key=lambda k: -spec.objects[k].distance_m)
    for k in order:
        obj = spec.objects[k]
        size = OBJECT_SIZES_M[obj.type]
        z = np.array([obj.distance_m])
        x = ego.centre_x(z) + obj.offset_m
        u, v = (float(c[0]) for c in camera.project(x, z))
        depth = float(camera.depth(z)[0])
        patch = draw_object(rng, obj.type, u, v, camera.focal_px * size[0] / depth, camera.focal_px * size[1] / depth)
        _contact_shadow(image, camera, u, v, size[0], obj.distance_m)
        if spec.weather == "night":
            gain = light["ambient"] + float(_headlight(spec, float(x[0]), obj.distance_m, light["reach"]))
        else:
            gain = spec.brightness
        clear = math.exp(-depth / spec.visibility_m)
        r0, c0 = max(patch.r0, 0), max(patch.c0, 0)
        r1, c1 = min(patch.r0 + patch.alpha.shape[0], height), min(patch.c0 + patch.alpha.shape[1], width)
        if r0 < r1 and c0 < c1:
            src = (slice(r0 - patch.r0, r1 - patch.r0), slice(c0 - patch.c0, c1 - patch.c0))
            alpha, colour = patch.alpha[src], patch.colour[src]
            target = image[r0:r1, c0:c1]
            target *= 1 - alpha[..., None]
            target += colour * np.float32(gain * clear) + light["fog"] * np.float32(1 - clear) * alpha[..., None]
            solid = alpha >= 0.5
            semantic[r0:r1, c0:c1][solid] = 3 + OBJECT_TYPES.index(obj.type)
            owner[r0:r1, c0:c1][solid] = k
            drawn[k] = int(solid.sum())
        u0, v0, u1, v1 = patch.box
        found[k] = ObjectTruth(
            type=obj.type,
            foot_u=u,
            foot_v=v,
            box=(
                float(np.clip(u0, -0.5, width - 0.5)),
                float(np.clip(v0, -0.5, height - 0.5)),
                float(np.clip(u1, -0.5, width - 0.5)),
                float(np.clip(v1, -0.5, height - 0.5)),
            ),
            offset_mm=obj.offset_m * 1000.0,
            distance_m=obj.distance_m,
            depth_m=depth,
            speed_mps=obj.speed_mps,
        )
    visible = np.bincount(owner[owner >= 0], minlength=len(spec.objects))
    occlusion = tuple(float(1 - visible[k] / drawn[k]) if drawn[k] else 1.0 for k in range(len(spec.objects)))
    return tuple(o for o in found if o is not None), occlusion


def _contact_shadow(image: np.ndarray, camera: Camera, u: float, v: float, width_m: float, distance_m: float) -> None:
    """Darken a soft ellipse of ground around an object's foot point, in place."""
    half_u = 0.6 * width_m * camera.focal_px / float(camera.depth(distance_m))
    # the ellipse spans about width_m of ground along the view, foreshortened by h / z
    half_v = max(0.6 * width_m * camera.focal_px * camera.mount_height_m / distance_m**2, 0.75)
    r0, r1 = max(int(v - half_v), 0), min(int(math.ceil(v + half_v)) + 1, image.shape[0])
    c0, c1 = max(int(u - half_u), 0), min(int(math.ceil(u + half_u)) + 1, image.shape[1])
    if r0 >= r1 or c0 >= c1:
        return
    dv = (np.arange(r0, r1, dtype=np.float32)[:, None] - v) / half_v
    du = (np.arange(c0, c1, dtype=np.float32)[None, :] - u) / half_u
    shade = 1 - 0.5 * np.clip(1 - dv**2 - du**2, 0, 1)
    image[r0:r1, c0:c1] *= shade[..., None]


def _camera_effects(image: np.ndarray, spec: SceneSpec, rng: np.random.Generator) -> None:
    """Rain streaks, contrast and colour temperature, motion blur and sensor noise, in place."""
    height, width = image.shape[:2]
    if spec.weather == "rain":
        streaks = rain_streaks(rng, height, width, spec.intensity)
        image += (np.float32(225) - image) * (streaks * 0.6)[..., None]
    w = spec.warmth
    gains = np.array([1 + 0.07 * w, 1 + 0.01 * w, 1 - 0.08 * w], np.float32) * np.float32(spec.contrast)
    pivot = np.float32(118 if spec.weather != "night" else 10)
    image -= pivot
    image *= gains
    image += pivot
    if spec.blur_px > 1:
        image[...] = vertical_blur(image, spec.blur_px)
    if spec.noise_sigma > 0:
        image += rng.standard_normal(image.shape, dtype=np.float32) * np.float32(spec.noise_sigma)
