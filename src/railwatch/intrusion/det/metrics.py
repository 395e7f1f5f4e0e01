"""Detection metrics of paper 003 section 3.2.1: mAP@0.5, mAP@0.5:0.95, precision, recall, per class.

mAP comes from torchmetrics (COCO protocol, faster-coco-eval backend). Precision and recall are
counted at one operating point (score threshold, IoU 0.5) by greedy matching in score order,
with torchvision's box IoU.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import box_iou

from railwatch.intrusion.det.postprocess import select_detections

VAL_CONF = 0.001
"""mAP is computed over (almost) every detection, as in COCO evaluation."""
VAL_MAX_DETECTIONS = 100
"""At most this many detections per image count, COCO's limit (and torchmetrics')."""


def truth_per_image(targets: Tensor, batch: int) -> list[tuple[Tensor, Tensor]]:
    """``(M, 6)`` batch targets -> per image ``(boxes, labels)``."""
    return [(targets[targets[:, 0] == b, 2:6], targets[targets[:, 0] == b, 1].long()) for b in range(batch)]


def match_counts(
    boxes: Tensor, scores: Tensor, labels: Tensor, gt_boxes: Tensor, gt_labels: Tensor, num_classes: int, iou: float = 0.5
) -> Tensor:
    """``(num_classes, 3)`` counts of true positives, false positives and false negatives in one image.

    Each detection, best score first, takes the unmatched object of its class it overlaps most if
    that IoU is at least ``iou``.
    """
    counts = torch.zeros(num_classes, 3, dtype=torch.long)
    for c in range(num_classes):
        det = (labels == c).nonzero().flatten()
        det = det[scores[det].argsort(descending=True)]
        gts = (gt_labels == c).nonzero().flatten()
        taken = torch.zeros(len(gts), dtype=torch.bool)
        ious = box_iou(boxes[det].float(), gt_boxes[gts].float()) if len(det) and len(gts) else None
        tp = 0
        for i in range(len(det)):
            if ious is None:
                break
            row = ious[i].masked_fill(taken, -1.0)
            j = int(row.argmax())
            if row[j] >= iou:
                taken[j] = True
                tp += 1
        counts[c] = torch.tensor([tp, len(det) - tp, len(gts) - tp])
    return counts


class DetectionMetrics:
    """Accumulates detections and truth over images; :meth:`compute` gives the paper's metrics.

    Args:
        class_names: Class names in id order.
        conf_threshold: Score threshold for precision and recall (mAP uses every detection).
    """

    def __init__(self, class_names: Sequence[str], conf_threshold: float = 0.25) -> None:
        self.class_names = tuple(class_names)
        self.conf_threshold = conf_threshold
        kwargs = {"box_format": "xyxy", "iou_type": "bbox", "class_metrics": True, "backend": "faster_coco_eval"}
        self.coco = MeanAveragePrecision(**kwargs)
        self.coco50 = MeanAveragePrecision(iou_thresholds=[0.5], **kwargs)
        self.counts = torch.zeros(len(self.class_names), 3, dtype=torch.long)
        self.images = 0

    def update(self, detections: Sequence[tuple[Tensor, Tensor, Tensor]], truth: Sequence[tuple[Tensor, Tensor]]) -> None:
        """Add images: per image ``(boxes, scores, labels)`` detected and ``(boxes, labels)`` true."""
        preds = [{"boxes": b.detach().float().cpu(), "scores": s.detach().float().cpu(), "labels": l.long().cpu()} for b, s, l in detections]
        target = [{"boxes": b.float().cpu(), "labels": l.long().cpu()} for b, l in truth]
        self.coco.update(preds, target)
        self.coco50.update(preds, target)
        for p, t in zip(preds, target):
            keep = p["scores"] >= self.conf_threshold
            self.counts += match_counts(p["boxes"][keep], p["scores"][keep], p["labels"][keep], t["boxes"], t["labels"], len(self.class_names))
        self.images += len(preds)

    def update_batch(self, decoded: Tensor, targets: Tensor, iou_threshold: float) -> None:
        """Add a batch under the evaluation protocol: decoded outputs ``(B, N, 4 + C)``, targets ``(M, 6)``.

        Detections down to :data:`VAL_CONF`, at most :data:`VAL_MAX_DETECTIONS` per image after NMS.
        """
        found = select_detections(decoded, VAL_CONF, iou_threshold, VAL_MAX_DETECTIONS)
        self.update(found, truth_per_image(targets, decoded.shape[0]))

    def compute(self) -> dict:
        """``map50``, ``map``, ``precision``, ``recall`` over all classes, and ``per_class`` rows (-1: class absent)."""
        coco, coco50 = self.coco.compute(), self.coco50.compute()
        tp, fp, fn = self.counts.sum(0).tolist()
        present = {int(c): i for i, c in enumerate(coco["classes"].flatten().tolist())}
        per_class = {}
        for c, name in enumerate(self.class_names):
            ctp, cfp, cfn = self.counts[c].tolist()
            i = present.get(c)
            per_class[name] = {
                "map50": float(coco50["map_per_class"].flatten()[i]) if i is not None else -1.0,
                "map": float(coco["map_per_class"].flatten()[i]) if i is not None else -1.0,
                "precision": ctp / (ctp + cfp) if ctp + cfp else 0.0,
                "recall": ctp / (ctp + cfn) if ctp + cfn else 0.0,
                "objects": ctp + cfn,
            }
        return {
            "map50": float(coco["map_50"]),
            "map": float(coco["map"]),
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "images": self.images,
            "per_class": per_class,
        }

    def reset(self) -> None:
        """Forget everything added."""
        self.coco.reset()
        self.coco50.reset()
        self.counts.zero_()
        self.images = 0
