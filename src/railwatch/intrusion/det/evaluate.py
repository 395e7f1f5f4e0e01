"""``eval-det``: score a detector on a labelled split (paper 003 section 3.2.1: mAP, P, R per class)."""

from __future__ import annotations

from pathlib import Path

import torch
from rich.progress import track
from torch.utils.data import DataLoader

from railwatch.intrusion.det.data import DetectionDataset, collate_detections, read_detection_split
from railwatch.intrusion.det.infer import Detector
from railwatch.intrusion.det.metrics import DetectionMetrics


@torch.no_grad()
def evaluate_detector(detector: Detector, data: str | Path, split: str = "val", batch_size: int = 8, progress: bool = True) -> dict:
    """mAP@0.5, mAP@0.5:0.95, precision and recall (at the detector's score threshold), overall and per class.

    Images are letterboxed to the detector's input size; boxes are compared there.
    """
    records = read_detection_split(Path(data), split, detector.class_names)
    dataset = DetectionDataset(records, *detector.input_size, None)
    loader = DataLoader(dataset, batch_size, collate_fn=collate_detections)
    metrics = DetectionMetrics(detector.class_names, detector.infer.conf_threshold)
    batches = track(loader, description=f"scoring {split}", disable=not progress, transient=True)
    for images, targets, _ in batches:
        metrics.update_batch(detector.net(images.to(detector.device)), targets, detector.infer.iou_threshold)
    return {"split": split, "arch": detector.cfg.arch, **metrics.compute()}
