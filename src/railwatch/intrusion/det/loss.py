"""YOLOv8's detection loss: BCE on classes, CIoU and distribution focal loss on boxes.

``L = box_weight * L_CIoU + cls_weight * L_BCE + dfl_weight * L_DFL``, each normalised by the sum
of the soft class targets of the task-aligned assignment (:mod:`.assign`). CIoU comes from
``torchvision.ops.complete_box_iou_loss``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import complete_box_iou_loss

from railwatch.config import DetTrainConfig
from railwatch.intrusion.det.assign import TaskAlignedAssigner
from railwatch.intrusion.det.head import distances_to_boxes, expected_distances, make_anchors, split_outputs


def distribution_focal_loss(logits: Tensor, target: Tensor) -> Tensor:
    """DFL (Li et al., GFL): cross-entropy to the two bins around a continuous target, weighted linearly.

    Args:
        logits: ``(K, reg_max)`` bin logits of K box sides.
        target: ``(K,)`` side distances in cell units, within ``[0, reg_max - 1)``.

    Returns:
        ``(K,)`` losses.
    """
    left = target.floor().long()
    right = left + 1
    w_left = right.float() - target
    return F.cross_entropy(logits, left, reduction="none") * w_left + F.cross_entropy(
        logits, right.clamp(max=logits.shape[-1] - 1), reduction="none"
    ) * (1 - w_left)


def boxes_to_distances(points: Tensor, boxes: Tensor, limit: float) -> Tensor:
    """``x1, y1, x2, y2`` boxes -> ``(left, top, right, bottom)`` distances from points, clamped to ``[0, limit]``."""
    return torch.cat([points - boxes[..., :2], boxes[..., 2:] - points], -1).clamp(0, limit)


class DetectionLoss(nn.Module):
    """The detector's training loss for a batch.

    Args:
        num_classes: Number of classes.
        reg_max: DFL bins per side.
        cfg: Loss weights and assigner settings.
    """

    def __init__(self, num_classes: int, reg_max: int, cfg: DetTrainConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or DetTrainConfig()
        self.num_classes, self.reg_max = num_classes, reg_max
        self.weights = {"box": cfg.box_weight, "cls": cfg.cls_weight, "dfl": cfg.dfl_weight}
        self.assigner = TaskAlignedAssigner(num_classes, cfg.tal_topk, cfg.tal_alpha, cfg.tal_beta)

    def forward(self, raw: Tensor, targets: Tensor, input_size: tuple[int, int]) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss of a batch.

        Args:
            raw: Head output ``(B, 4*reg_max + C, N)``.
            targets: ``(M, 6)`` rows ``batch_index, class, x1, y1, x2, y2`` in input px.
            input_size: ``(H, W)`` of the input.

        Returns:
            The weighted total (per image) and its three parts, in float32 whatever precision the
            network ran in: in bfloat16 a box side near 640 px is kept only to 4 px, and the
            assignment and CIoU compare boxes a pixel apart.
        """
        with torch.autocast(raw.device.type, enabled=False):
            return self._loss(raw.float(), targets.float(), input_size)

    def _loss(self, raw: Tensor, targets: Tensor, input_size: tuple[int, int]) -> tuple[Tensor, dict[str, Tensor]]:
        batch = raw.shape[0]
        points, strides = make_anchors(input_size, raw.device)
        dfl_logits, cls_logits = split_outputs(raw, self.reg_max)
        cells = points / strides  # cell units: each level's boxes are decoded in its own cells
        pred_boxes = distances_to_boxes(cells, expected_distances(dfl_logits))  # (B, N, 4) in cells
        target_scores = torch.zeros_like(cls_logits)
        target_boxes = torch.zeros_like(pred_boxes)
        foreground = torch.zeros(pred_boxes.shape[:2], dtype=torch.bool, device=raw.device)
        probs = cls_logits.detach().sigmoid()
        for b in range(batch):
            rows = targets[targets[:, 0] == b]
            a = self.assigner(probs[b], pred_boxes[b].detach() * strides, points, rows[:, 2:6], rows[:, 1])
            target_scores[b], target_boxes[b], foreground[b] = a.scores, a.boxes / strides, a.foreground
        norm = target_scores.sum().clamp(min=1.0)
        loss_cls = F.binary_cross_entropy_with_logits(cls_logits, target_scores, reduction="sum") / norm
        if foreground.any():
            weight = target_scores.sum(-1)[foreground]
            loss_box = (complete_box_iou_loss(pred_boxes[foreground], target_boxes[foreground], reduction="none") * weight).sum() / norm
            sides = boxes_to_distances(cells.expand_as(pred_boxes[..., :2])[foreground], target_boxes[foreground], self.reg_max - 1.01)
            dfl = distribution_focal_loss(dfl_logits[foreground].reshape(-1, self.reg_max), sides.reshape(-1))
            loss_dfl = (dfl.view(-1, 4).mean(-1) * weight).sum() / norm
        else:
            loss_box = loss_dfl = raw.sum() * 0.0
        parts = {"box": loss_box, "cls": loss_cls, "dfl": loss_dfl}
        total = sum(self.weights[k] * v for k, v in parts.items())
        return total, parts
