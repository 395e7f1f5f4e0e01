"""Seeded rail running-surface strips in the RSDDs shapes, with defect masks (paper 002, section 2.1.1).

RSDDs images look down on a rail head: the rail runs along the long (vertical) side, a
polished running band is brighter than the worn edges, and lighting changes along the length.
Type-I strips (express rail) are 160 px wide and 1000 tall, Type-II (common / heavy rail) 55 x
1250. Defects cover about 1% of the pixels.

What is drawn, all from one seed:

- the rail head: a lateral brightness profile, lengthwise illumination bands, polishing streaks
  along the rail and fine sensor noise;
- look-alikes that are *not* defects: longitudinal scratches (thin, slightly brighter or darker)
  and stains (broad, soft-edged, low contrast);
- defects, each with a sharp-edged irregular outline that is exactly its mask: spalls and squats
  (dark blobs with a rough floor), cracks (thin dark jagged lines across the rail) and pits
  (clusters of small dark holes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from railwatch.imageio import _atomic_write

DEFECT_KINDS: tuple[str, ...] = ("spall", "squat", "crack", "pit")
"""Defects drawn into the strips."""


@dataclass(frozen=True)
class RailTypeSpec:
    """One RSDDs rail type: its folder name, strip size and training tile size (paper 002, section 2.1.2)."""

    name: str
    folder: str
    strip_height: int
    strip_width: int
    tile_height: int = 100

    @property
    def tile_size(self) -> tuple[int, int]:
        """``(height, width)`` of a training tile: 100x160 (Type 1) or 100x55 (Type 2)."""
        return self.tile_height, self.strip_width


RAIL_TYPES: dict[str, RailTypeSpec] = {
    "type1": RailTypeSpec("type1", "Type-I RSDDs dataset", 1000, 160),
    "type2": RailTypeSpec("type2", "Type-II RSDDs dataset", 1250, 55),
}
"""Express rail (Type 1) and common / heavy-haul rail (Type 2)."""


@dataclass(frozen=True)
class SurfaceStrip:
    """One generated strip: grey image, defect mask, and what was drawn where."""

    image: np.ndarray  # (H, W) uint8
    mask: np.ndarray  # (H, W) bool, True on defects
    defects: list[dict]  # kind, row, col of each defect's centre


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: tuple[float, float]) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / (field.std() + 1e-9)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """The rail head without anything on it, as floats in about [0, 1]."""
    x = (np.arange(w) + 0.5) / w
    centre, half = rng.uniform(0.42, 0.58), rng.uniform(0.28, 0.42)
    band = np.exp(-(np.abs(x - centre) / half) ** 4)  # polished running band, flat-topped
    profile = rng.uniform(0.30, 0.42) + rng.uniform(0.25, 0.38) * band
    lengthwise = 0.06 * _smooth_noise(rng, (h, 1), (rng.uniform(25, 60), 0))[:, 0]
    lengthwise += rng.uniform(0.02, 0.05) * np.sin(2 * np.pi * np.arange(h) / rng.uniform(150, 400) + rng.uniform(0, 6.3))
    streaks = 0.025 * _smooth_noise(rng, (h, w), (rng.uniform(6, 14), 0.6))  # polishing marks along the rail
    return profile[None, :] + lengthwise[:, None] + streaks + rng.normal(0, 0.018, (h, w))


def _add_scratches(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    """Thin lengthwise scratches, a little brighter or darker than the rail: not defects."""
    h, w = image.shape
    for _ in range(count):
        length = int(rng.integers(60, min(420, h)))
        top = int(rng.integers(0, h - length))
        rows = np.arange(top, top + length)
        cols = np.clip(np.round(rng.uniform(3, w - 4) + np.cumsum(rng.normal(0, 0.15, length))), 0, w - 1).astype(int)
        image[rows, cols] += rng.choice([-1, 1]) * rng.uniform(0.04, 0.09)


def _add_stains(rng: np.random.Generator, image: np.ndarray, count: int) -> None:
    """Broad soft-edged stains of low contrast (rust, grease, water): not defects."""
    h, w = image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(count):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(12, 45), rng.uniform(6, max(8, w / 3))
        blob = np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2))
        image -= rng.uniform(0.05, 0.11) * blob


def _irregular_blob(rng: np.random.Generator, ry: float, rx: float, roughness: float) -> np.ndarray:
    """A boolean shape with a ragged outline inside an ellipse of radii ``ry, rx``."""
    hh, hw = int(np.ceil(ry * 1.6)), int(np.ceil(rx * 1.6))
    yy, xx = np.mgrid[-hh : hh + 1, -hw : hw + 1]
    radius = np.sqrt((yy / ry) ** 2 + (xx / rx) ** 2)
    ragged = radius + roughness * _smooth_noise(rng, radius.shape, (max(1.0, ry / 4), max(1.0, rx / 4)))
    shape = ragged < 1.0
    labels, n = ndimage.label(shape)
    if n > 1:  # keep the largest piece, so a defect is one region
        sizes = ndimage.sum(shape, labels, range(1, n + 1))
        shape = labels == 1 + int(np.argmax(sizes))
    return shape


def _crack(rng: np.random.Generator, w: int) -> np.ndarray:
    """A thin jagged line running roughly across the rail."""
    length = int(rng.integers(max(8, w // 5), max(10, int(w * 0.7))))
    angle = rng.uniform(-0.5, 0.5)
    steps = np.arange(length)
    dy = np.cumsum(rng.normal(np.tan(angle), 0.35, length))
    height = int(np.ceil(np.abs(dy).max())) * 2 + 5
    shape = np.zeros((height, length + 2), bool)
    rows = np.round(height / 2 + dy - dy.mean()).astype(int)
    thickness = int(rng.integers(5, 8))
    for t in range(thickness):
        shape[np.clip(rows + t - thickness // 2, 0, height - 1), steps + 1] = True
    return shape


def _pits(rng: np.random.Generator) -> np.ndarray:
    """A cluster of small round holes."""
    size = int(rng.integers(20, 30))
    yy, xx = np.mgrid[0:size, 0:size]
    shape = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(3, 6))):
        cy, cx, r = rng.uniform(3, size - 3), rng.uniform(3, size - 3), rng.uniform(3.5, 5.5)
        shape |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    return shape


def _defect_shape(rng: np.random.Generator, kind: str, w: int, scale: float) -> np.ndarray:
    if kind == "spall":
        return _irregular_blob(rng, rng.uniform(12, 24) * scale, rng.uniform(10, 18) * scale, 0.3)
    if kind == "squat":  # wider than long, darker centre
        return _irregular_blob(rng, rng.uniform(8, 14) * scale, rng.uniform(12, 20) * scale, 0.25)
    if kind == "crack":
        return _crack(rng, w)
    return _pits(rng)


def _paste_defect(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray, shape: np.ndarray) -> tuple[int, int]:
    """Darken ``shape`` (with a rough floor) somewhere on the rail head; returns its centre."""
    h, w = image.shape
    sh, sw = shape.shape
    if sw > w:
        shape, sw = shape[:, (sw - w) // 2 : (sw - w) // 2 + w], w
    top = int(rng.integers(0, h - sh))
    left = int(rng.integers(0, w - sw + 1))
    region = (slice(top, top + sh), slice(left, left + sw))
    depth = rng.uniform(0.22, 0.38) + 0.06 * _smooth_noise(rng, shape.shape, (1.0, 1.0))
    image[region][shape] -= depth[shape]
    mask[region] |= shape
    return top + sh // 2, left + sw // 2


def render_strip(rng: np.random.Generator, rail_type: str = "type1", defect_fraction: float = 0.01) -> SurfaceStrip:
    """Draw one strip of ``rail_type`` whose defects cover about ``defect_fraction`` of its pixels.

    Args:
        rng: Source of randomness; the same state draws the same strip.
        rail_type: ``"type1"`` (160 x 1000) or ``"type2"`` (55 x 1250).
        defect_fraction: Target share of defect pixels (RSDDs: about 1%).
    """
    spec = RAIL_TYPES[rail_type]
    h, w = spec.strip_height, spec.strip_width
    image = _background(rng, h, w)
    _add_stains(rng, image, int(rng.integers(1, 4)))
    _add_scratches(rng, image, int(rng.integers(1, 5)))
    mask = np.zeros((h, w), bool)
    scale = 0.5 + 0.5 * w / 160  # defects on the narrow Type-2 head are smaller
    target = defect_fraction * h * w
    defects: list[dict] = []
    while mask.sum() < 0.7 * target and len(defects) < 40:
        kind = str(rng.choice(DEFECT_KINDS, p=(0.45, 0.35, 0.1, 0.1)))
        row, col = _paste_defect(rng, image, mask, _defect_shape(rng, kind, w, scale))
        defects.append({"kind": kind, "row": row, "col": col})
    pixels = np.clip(ndimage.gaussian_filter(image, 0.5), 0, 1)  # a slightly soft lens
    return SurfaceStrip((pixels * 255).round().astype(np.uint8), mask, defects)


def write_jpeg(image: Image.Image, path: Path, quality: int) -> None:
    """Save ``image`` as a JPEG of ``quality``, atomically."""
    _atomic_write(path, lambda tmp: image.save(tmp, format="JPEG", quality=quality))


def write_rsdds(out: str | Path, rail_type: str, count: int, seed: int = 0, start: int = 1) -> list[Path]:
    """Write ``count`` strips in the RSDDs layout; returns the image paths.

    ``out/<Type-I RSDDs dataset>/Rail surface images/rail_N.jpg`` holds the strips and
    ``.../GroundTruth/rail_N.jpg`` their masks (white defects), JPEG like the real data set, so
    the masks carry the compression noise that the 127 threshold removes.
    """
    spec = RAIL_TYPES[rail_type]
    root = Path(out) / spec.folder
    paths = []
    for i in range(start, start + count):
        strip = render_strip(np.random.default_rng([seed, i, 0 if rail_type == "type1" else 1]), rail_type)
        image_path = root / "Rail surface images" / f"rail_{i}.jpg"
        write_jpeg(Image.fromarray(strip.image), image_path, quality=95)
        write_jpeg(Image.fromarray(strip.mask.astype(np.uint8) * 255), root / "GroundTruth" / f"rail_{i}.jpg", quality=75)
        paths.append(image_path)
    return paths
