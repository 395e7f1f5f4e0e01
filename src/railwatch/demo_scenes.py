"""The camera half of ``railwatch demo``: rendered cab-view scenes through segmentation and rail fitting.

Four scenes (clear, fog, rain, night) are rendered with exact labels. The packaged BiSeNetV2
segments each one, rails are fitted on its rail mask with the ego track marked, and every
object is placed against that track from its true foot point (detection comes from the
detector; here the truth stands in for it) and graded. The report sets each measured offset
beside the renderer's truth, and the rail IoU beside the true rail mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from rich.table import Table

from railwatch.cli_support import console
from railwatch.config import IntrusionConfig, RailwatchConfig
from railwatch.data.rail_masks import ObjectTruth
from railwatch.data.scenes import SCENE_CAMERA, SceneSample, make_scene, scene_seed
from railwatch.errors import GeometryError
from railwatch.imageio import write_image
from railwatch.intrusion.grading import GradedObjects, grade_objects
from railwatch.intrusion.railfit import RailFit
from railwatch.viz import blend_classes, draw_rail_overlay

DEMO_WEATHERS: tuple[str, ...] = ("clear", "fog", "rain", "night")


def demo_scenes(seed: int) -> list[SceneSample]:
    """One rendered scene per weather in :data:`DEMO_WEATHERS`, at the scene camera's 512x1024."""
    return [make_scene(scene_seed(seed, i), SCENE_CAMERA, (weather,)) for i, weather in enumerate(DEMO_WEATHERS)]


def _iou(pred: np.ndarray, truth: np.ndarray) -> float:
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def run_scene_demo(out: Path, seed: int = 7, config: RailwatchConfig | None = None) -> list[dict[str, Any]]:
    """Segment, fit and grade the demo scenes; write one overlay per scene and ``scenes.png``.

    Returns:
        One record per scene: weather, rail IoU, rails found, and the graded objects.
    """
    from railwatch.intrusion.seg_cli import load_segmenter

    config = config or RailwatchConfig()
    cfg = config.intrusion.model_copy(update={"camera": SCENE_CAMERA})
    segmenter = load_segmenter(None)
    out.mkdir(parents=True, exist_ok=True)
    records, tiles = [], []
    for index, sample in enumerate(demo_scenes(seed)):
        seg = segmenter.segment(sample.image, cfg.railfit, source=f"demo scene {index}")
        objects = _grade(sample, seg.rails, cfg)
        painted = blend_classes(sample.image, seg.classes, segmenter.cfg.classes)
        overlay = draw_rail_overlay(painted, seg.rails, objects, gauge=cfg.gauge) if seg.rails else Image.fromarray(painted)
        name = f"scene_{index}_{sample.spec.weather}.png"
        write_image(overlay, out / name)
        tiles.append(overlay)
        records.append(
            {
                "weather": sample.spec.weather,
                "overlay": name,
                "rail_iou": round(_iou(seg.rail_mask, sample.rail_mask), 4),
                "rails": 0 if seg.rails is None else len(seg.rails.rails),
                "ego_track": bool(seg.rails and seg.rails.ego is not None),
                "objects": objects,
            }
        )
    write_image(_contact_sheet(tiles), out / "scenes.png")
    _print(records, out)
    return records


def grade_at_true_feet(fit: RailFit, objects: Sequence[ObjectTruth], cfg: IntrusionConfig) -> GradedObjects:
    """Grade objects from their true foot points, classes and speeds (standing in for detection)."""
    return grade_objects(
        fit,
        np.array([o.foot_u for o in objects]),
        np.array([o.foot_v for o in objects]),
        [o.type for o in objects],
        np.array([o.speed_mps for o in objects]),
        cfg,
    )


def _grade(sample: SceneSample, rails: RailFit | None, cfg: IntrusionConfig) -> list[dict[str, Any]]:
    """Grade the visible objects whose foot point is in the image, with their truth beside them."""
    height, width = sample.image.shape[:2]
    seen = [o for o in sample.objects if 0 <= o.foot_u <= width - 1 and 0 <= o.foot_v <= height - 1]
    if not seen or rails is None or rails.ego is None:
        return []
    try:
        graded = grade_at_true_feet(rails, seen, cfg)
    except GeometryError:
        return []
    records = graded.records()
    for record, obj in zip(records, seen):
        record["box"] = [round(c, 1) for c in obj.box]
        record["truth"] = {"offset_mm": round(obj.offset_mm, 1), "distance_m": round(obj.depth_m, 2)}
    return records


def _contact_sheet(tiles: list[Image.Image], columns: int = 2) -> Image.Image:
    """Tiles in a grid, each at half size."""
    w, h = tiles[0].width // 2, tiles[0].height // 2
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w, rows * h))
    for i, tile in enumerate(tiles):
        sheet.paste(tile.resize((w, h), Image.BILINEAR), ((i % columns) * w, (i // columns) * h))
    return sheet


def _print(records: list[dict[str, Any]], out: Path) -> None:
    table = Table(title="Generated scenes: segmentation, rail fitting and grading (measured / truth)")
    for column in ("weather", "rail IoU", "rails", "ego", "objects placed (offset m, measured / truth)"):
        table.add_column(column)
    for r in records:
        placed = [o for o in r["objects"] if o.get("level")]
        text = ", ".join(
            f"{o['type']} {o['offset_mm'] / 1000:+.2f}/{o['truth']['offset_mm'] / 1000:+.2f} {o['level']}" for o in placed
        )
        table.add_row(r["weather"], f"{r['rail_iou']:.3f}", str(r["rails"]), "yes" if r["ego_track"] else "no", text or "-")
    console.print(table)
    console.print(f"wrote {out / 'scenes.png'} and one overlay per scene")
