"""Pictures people look at: rail overlays with risk zones and graded objects, and risk maps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from railwatch.config import GaugeConfig, RiskConfig
from railwatch.intrusion.railfit import RailFit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from railwatch.intrusion.det.types import Detections

LEVEL_COLOURS: dict[str, tuple[int, int, int]] = {
    "I": (220, 30, 30),
    "II": (245, 130, 30),
    "III": (240, 210, 40),
    "IV": (60, 140, 230),
    "V": (150, 150, 150),
}
"""Colour of each risk level in every picture railwatch draws."""

EGO_RAIL = (40, 220, 90)
OTHER_RAIL = (60, 200, 230)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def _zone_polygon(fit: RailFit, rows: np.ndarray, half_width_mm: float, spacing_mm: float) -> list[tuple[float, float]]:
    left, right = fit.ego_left, fit.ego_right
    assert left is not None and right is not None
    x_l, x_r = left.x_at(rows), right.x_at(rows)
    centre, half_px = (x_l + x_r) / 2, (x_r - x_l) / 2 * half_width_mm / (spacing_mm / 2)
    ok = np.isfinite(centre) & np.isfinite(half_px)
    rows, centre, half_px = rows[ok], centre[ok], half_px[ok]
    return list(zip(centre - half_px, rows)) + list(zip((centre + half_px)[::-1], rows[::-1]))


def draw_rail_overlay(
    base: np.ndarray,
    fit: RailFit,
    objects: Sequence[dict] = (),
    gauge: GaugeConfig | None = None,
) -> Image.Image:
    """Draw fitted rails, the risk zones of the ego track (Table 2) and graded objects.

    Args:
        base: ``(H, W)`` mask (shown dim) or ``(H, W, 3)`` uint8 image.
        fit: Fitted rails; the ego track's zones are shaded red (high) and amber (medium).
        objects: Records as from :meth:`GradedObjects.records`; each needs ``foot_px`` and
            ``type``, and is coloured by its ``level`` when it has one; an optional ``box``
            ``[u0, v0, u1, v1]`` is outlined.
        gauge: Gauge and clearance for the zone widths.

    Returns:
        An RGB :class:`PIL.Image.Image` of the mask's size.
    """
    gauge = gauge or GaugeConfig()
    base = np.asarray(base)
    if base.ndim == 2:
        rgb = np.where(base[..., None], np.uint8(110), np.uint8(18)).repeat(3, axis=2)
    else:
        rgb = base[..., :3].astype(np.uint8)
    image = Image.fromarray(rgb).convert("RGBA")
    height, width = fit.shape
    line = max(2, round(width / 640))
    shade = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shade)
    if fit.ego is not None:
        left, right = fit.ego_left, fit.ego_right
        assert left is not None and right is not None
        rows = np.arange(max(left.y_min, right.y_min), min(left.y_max, right.y_max) + 1, 2, dtype=float)
        if rows.size >= 2:
            spacing = gauge.rail_line_spacing_mm
            draw.polygon(_zone_polygon(fit, rows, gauge.clearance_edge_mm, spacing), fill=(245, 160, 40, 55))
            draw.polygon(_zone_polygon(fit, rows, gauge.half_gauge_mm, spacing), fill=(230, 40, 40, 80))
    image = Image.alpha_composite(image, shade)
    draw = ImageDraw.Draw(image)
    for rail in fit.rails:
        rows = np.arange(rail.y_min, rail.y_max + 1, dtype=float)
        cols = rail.x_at(rows)
        ok = np.isfinite(cols)
        points = list(zip(cols[ok], rows[ok]))
        if len(points) >= 2:
            draw.line(points, fill=EGO_RAIL if rail.ego else OTHER_RAIL, width=line * (2 if rail.ego else 1))
    font = _font(max(12, height // 45))
    for obj in objects:
        u, v = obj["foot_px"]
        level = obj.get("level")
        colour = LEVEL_COLOURS.get(level, (255, 255, 255)) if level else (255, 255, 255)
        if "box" in obj:
            draw.rectangle(obj["box"], outline=colour, width=line)
        r = 2 * line + 2
        draw.ellipse([u - r, v - r, u + r, v + r], fill=colour, outline=(0, 0, 0))
        text = obj["type"]
        if level:
            text += f"  {level}  Z={obj['z']:.2f}  {obj['offset_mm'] / 1000:+.2f} m  {obj['distance_m']:.0f} m"
        else:
            text += "  (off track range)"
        top = v - (obj["box"][3] - obj["box"][1] if "box" in obj else 0) - font.size - 6
        box = draw.textbbox((u, top), text, font=font)
        draw.rectangle([box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2], fill=(0, 0, 0, 190))
        draw.text((u, top), text, fill=colour, font=font)
    return image.convert("RGB")


def plot_risk_map(
    object_type: str = "person",
    speed_mps: float = 2.0,
    risk: RiskConfig | None = None,
    gauge: GaugeConfig | None = None,
    max_offset_m: float = 4.0,
    max_distance_m: float = 120.0,
) -> Figure:
    """Figure of the risk level over lateral offset and distance for one object type (Eq. 15-17).

    Returns:
        A matplotlib ``Figure``; save it with ``fig.savefig(path)``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm, ListedColormap

    from railwatch.intrusion.risk import assess_risk

    gauge = gauge or GaugeConfig()
    offsets = np.linspace(-max_offset_m, max_offset_m, 401)
    distances = np.linspace(0.0, max_distance_m, 301)
    grid_o, grid_d = np.meshgrid(offsets * 1000.0, distances)
    result = assess_risk(grid_o, grid_d, object_type, speed_mps, risk=risk, gauge=gauge)
    names = ["I", "II", "III", "IV", "V"]
    cmap = ListedColormap([np.array(LEVEL_COLOURS[n]) / 255 for n in names])
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    mesh = ax.pcolormesh(offsets, distances, result.level, cmap=cmap, norm=BoundaryNorm(np.arange(0.5, 6), 5))
    contours = ax.contour(offsets, distances, result.z, levels=[0.2, 0.5, 0.8, 1.2], colors="k", linewidths=0.6)
    ax.clabel(contours, fmt="Z=%.1f", fontsize=7)
    for x in (gauge.half_gauge_mm, gauge.clearance_edge_mm):
        for sign in (-1, 1):
            ax.axvline(sign * x / 1000, color="k", lw=0.8, ls="--")
    bar = fig.colorbar(mesh, ax=ax, ticks=range(1, 6))
    bar.ax.set_yticklabels([f"level {n}" for n in names])
    ax.set_xlabel("lateral offset from track centre (m)")
    ax.set_ylabel("distance ahead (m)")
    ax.set_title(f"Risk level of a {object_type} at {speed_mps:g} m/s (paper 003, Eq. 15-17)")
    fig.tight_layout()
    return fig


SEG_COLOURS: dict[str, tuple[int, int, int]] = {"track": (250, 170, 40), "rail": (40, 230, 255)}
"""Colour of each segmentation class in overlays (classes not listed are left unpainted)."""


def blend_classes(image: np.ndarray, classes: np.ndarray, names: Sequence[str], alpha: float = 0.45) -> np.ndarray:
    """Paint predicted classes over an ``(H, W, 3)`` uint8 image, ``alpha`` opaque; returns a new image."""
    out = image.astype(np.float32)
    for class_id, name in enumerate(names):
        colour = SEG_COLOURS.get(name)
        if colour is None:
            continue
        hit = classes == class_id
        out[hit] = (1 - alpha) * out[hit] + alpha * np.asarray(colour, np.float32)
    return out.round().astype(np.uint8)


def class_map_image(classes: np.ndarray, names: Sequence[str]) -> Image.Image:
    """A colour picture of a class map (background black)."""
    rgb = np.zeros((*classes.shape, 3), np.uint8)
    for class_id, name in enumerate(names):
        rgb[classes == class_id] = SEG_COLOURS.get(name, (0, 0, 0))
    return Image.fromarray(rgb)


DETECTION_COLOURS: dict[str, tuple[int, int, int]] = {
    "person": (255, 80, 80),
    "car": (80, 160, 255),
    "animal": (255, 180, 40),
    "stone": (190, 120, 255),
}
"""Box colour of each object class in detection pictures."""


def draw_detections(image: np.ndarray, detections: Detections) -> Image.Image:
    """Boxes with class name and score drawn on a copy of an ``(H, W, 3)`` RGB image."""
    picture = Image.fromarray(image)
    draw = ImageDraw.Draw(picture)
    font = _font(12)
    for name, score, box in zip(detections.names, detections.scores, detections.boxes):
        colour = DETECTION_COLOURS.get(name, (255, 255, 255))
        x1, y1, x2, y2 = (float(c) for c in box)
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        draw.text((x1 + 2, max(0.0, y1 - 14)), f"{name} {score:.2f}", fill=colour, font=font)
    return picture
