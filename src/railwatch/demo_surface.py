"""The rail-surface part of ``railwatch demo``: train a small defect segmenter and segment new strips.

Generated Type-2 strips (55x1250, paper 002's common / heavy rail) train the modified FCN for a
few hundred steps; three strips it has not seen are then segmented end to end (tiles, stitching,
defect list) and drawn as overlays beside their true masks, with the defect-class scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from railwatch.cli_support import console
from railwatch.config import SurfaceTrainConfig
from railwatch.data.surface_strips import render_strip, write_rsdds
from railwatch.imageio import write_image
from railwatch.surface.infer import SurfaceSegmenter, overlay
from railwatch.surface.metrics import DefectScores
from railwatch.surface.train import train_surface
from railwatch.training import cpu_precision, quiet_lightning

TRAIN_STRIPS = 16
SHOWN_STRIPS = 3


def run_surface_demo(out: Path, steps: int = 240, seed: int = 7) -> dict[str, Any]:
    """Train on generated strips, segment unseen ones, write ``strips.png`` and per-strip overlays."""
    out.mkdir(parents=True, exist_ok=True)
    write_rsdds(out / "data", "type2", TRAIN_STRIPS, seed=seed)
    cfg = SurfaceTrainConfig(
        rail_type="type2", max_steps=steps, val_every_steps=steps, lr=1e-3, accelerator="cpu",
        precision=cpu_precision(), seed=seed,
    )  # fmt: skip
    console.print(f"[bold]rail surface[/]: training fcn-type2 for {steps} steps on {TRAIN_STRIPS} generated strips")
    with quiet_lightning():
        result = train_surface(out / "data", out / "model", cfg, progress=False)
    segmenter = SurfaceSegmenter.load(result.checkpoint)
    panels, strips = [], []
    for i in range(SHOWN_STRIPS):
        strip = render_strip(np.random.default_rng([seed, 10_000 + i, 1]), "type2")
        found = segmenter.segment(strip.image)
        truth = strip.mask
        scores = DefectScores.from_masks(found.mask, truth)
        picture = overlay(strip.image, found)
        write_image(picture, out / f"strip_{i + 1}_overlay.png")
        true_rgb = np.repeat(strip.image[..., None], 3, axis=2)
        true_rgb[truth] = (0.45 * true_rgb[truth] + [0, 140, 0]).astype(np.uint8)
        panels += [np.asarray(picture), true_rgb, np.full((strip.image.shape[0], 12, 3), 255, np.uint8)]
        strips.append({"strip": i + 1, "defects": len(found.defects), "f1": scores.f1, "iou": scores.iou})
    write_image(Image.fromarray(np.concatenate(panels[:-1], axis=1)), out / "strips.png")
    console.print(
        f"  held-out F1 {result.metrics.get('val/f1', 0):.3f}, IoU {result.metrics.get('val/iou', 0):.3f} "
        f"({result.step_ms:.0f} ms/step); unseen strips: "
        + ", ".join(f"{s['defects']} defects (F1 {s['f1']:.2f})" for s in strips)
    )
    console.print(f"  wrote {out / 'strips.png'} (found in red, truth in green) and per-strip overlays")
    return {"validation": result.metrics, "step_ms": result.step_ms, "strips": strips, "figure": "surface/strips.png"}
