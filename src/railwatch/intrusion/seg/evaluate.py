"""``eval-seg``: per-class IoU of a segmenter on a scene data set, and the lateral offsets its rails give.

The offset check is the one that matters downstream: for every object within ``max_distance_m``
the rails fitted on the predicted rail mask place the object's true foot point against the ego
track (paper 003, Eq. 9-13), and the result is compared with the renderer's true offset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.progress import track
from torchmetrics.classification import MulticlassJaccardIndex

from railwatch.cli_support import console
from railwatch.config import GaugeConfig, RailFitConfig
from railwatch.errors import GeometryError, InputError
from railwatch.imageio import read_rgb
from railwatch.intrusion.geometry import lateral_position
from railwatch.intrusion.railfit import RailFit
from railwatch.intrusion.seg.data import SceneSegmentation
from railwatch.intrusion.seg.infer import Segmenter


@dataclass
class SegEvaluation:
    """Scores of a segmenter on one split.

    Attributes:
        iou: IoU per class name.
        miou: Mean IoU over the classes.
        offset_errors_mm: |predicted - true| lateral offset of each object within range whose
            foot row the fitted ego rails cover.
        offsets_missed: Objects within range that could not be placed (no ego track found, or
            the foot row outside the fitted rails).
        images: Images evaluated.
    """

    iou: dict[str, float]
    miou: float
    offset_errors_mm: list[float] = field(default_factory=list)
    offsets_missed: int = 0
    images: int = 0

    def summary(self) -> dict[str, Any]:
        """JSON-able figures, with the offset error's median, 95th percentile and maximum."""
        errors = np.asarray(self.offset_errors_mm)
        stats = (
            {"median": float(np.median(errors)), "p95": float(np.percentile(errors, 95)), "max": float(errors.max())}
            if errors.size
            else {}
        )
        return {
            "images": self.images,
            "iou": self.iou,
            "miou": self.miou,
            "offset_error_mm": stats,
            "objects_placed": int(errors.size),
            "objects_missed": self.offsets_missed,
        }


def evaluate_segmenter(
    segmenter: Segmenter,
    data: str | Path,
    split: str = "val",
    max_distance_m: float = 30.0,
    railfit: RailFitConfig | None = None,
    gauge: GaugeConfig | None = None,
    progress: bool = True,
) -> SegEvaluation:
    """IoU per class and lateral-offset errors of ``segmenter`` on ``data/images/<split>``."""
    cfg = segmenter.cfg
    h, w = segmenter.input_size
    dataset = SceneSegmentation(data, split, cfg.classes, size=(h, w))
    metric = MulticlassJaccardIndex(len(cfg.classes), average="none")
    meta_dir = Path(data) / "meta" / split
    result = SegEvaluation(iou={}, miou=0.0)
    items = range(len(dataset.images))
    for i in track(items, description="evaluating", console=console, disable=not progress):
        image_path = dataset.images[i]
        image = read_rgb(image_path)
        with Image.open(dataset.masks[i]) as m:
            target = dataset.lookup[np.asarray(m)]
        seg = segmenter.segment(image, railfit, source=str(image_path))
        metric.update(torch.from_numpy(seg.classes.astype(np.int64))[None], torch.from_numpy(target)[None])
        _score_offsets(result, seg.rails, image.shape[:2], meta_dir / f"{image_path.stem}.json", max_distance_m, gauge)
        result.images += 1
    ious = metric.compute()
    result.iou = {name: float(v) for name, v in zip(cfg.classes, ious)}
    result.miou = float(ious.mean())
    return result


def _score_offsets(
    result: SegEvaluation,
    rails: RailFit | None,
    shape: tuple[int, int],
    meta_path: Path,
    max_distance_m: float,
    gauge: GaugeConfig | None,
) -> None:
    """Add the offset errors of the objects in ``meta_path`` within range, feet in view, to ``result``."""
    if not meta_path.is_file():
        return
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{meta_path}: not valid JSON ({err.msg})") from None
    height, width = shape
    near = [
        o
        for o in meta.get("objects", [])
        if o["distance_m"] <= max_distance_m and 0 <= o["foot_u"] <= width - 1 and 0 <= o["foot_v"] <= height - 1
    ]
    if not near:
        return
    if rails is None or rails.ego_left is None:
        result.offsets_missed += len(near)
        return
    u = np.array([o["foot_u"] for o in near])
    v = np.array([o["foot_v"] for o in near])
    try:
        placed = lateral_position(u, v, rails, gauge)
    except GeometryError:
        result.offsets_missed += len(near)
        return
    truth = np.array([o["offset_mm"] for o in near])
    ok = placed.valid & np.isfinite(placed.offset_mm)
    result.offset_errors_mm.extend(np.abs(placed.offset_mm[ok] - truth[ok]).tolist())
    result.offsets_missed += int((~ok).sum())
