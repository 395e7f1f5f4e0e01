"""Task-aligned label assignment (TAL, from TOOD; YOLOv8's assigner).

For every object, the alignment metric of a cell is ``t = s^alpha * u^beta`` with ``s`` the cell's
predicted score for the object's class and ``u`` the CIoU of its predicted box with the object's
box. The ``topk`` cells with the largest ``t`` whose centres lie inside the box become positives;
a cell claimed by several objects goes to the one its box overlaps most. Soft targets are
``t`` rescaled per object so its best cell gets that cell's IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import complete_box_iou

EPS = 1e-9


@dataclass(frozen=True)
class Assignment:
    """Targets of one image's ``N`` cells.

    Attributes:
        boxes: ``(N, 4)`` object box of each cell (meaningful where ``foreground``).
        scores: ``(N, C)`` soft class targets (zero on background cells).
        foreground: ``(N,)`` bool, the positive cells.
    """

    boxes: Tensor
    scores: Tensor
    foreground: Tensor


class TaskAlignedAssigner:
    """Assign objects to cells by the task-alignment metric (``topk`` 10, ``alpha`` 0.5, ``beta`` 6 in YOLOv8)."""

    def __init__(self, num_classes: int, topk: int = 10, alpha: float = 0.5, beta: float = 6.0) -> None:
        self.num_classes, self.topk, self.alpha, self.beta = num_classes, topk, alpha, beta

    @torch.no_grad()
    def __call__(self, scores: Tensor, boxes: Tensor, points: Tensor, gt_boxes: Tensor, gt_labels: Tensor) -> Assignment:
        """Assign one image.

        Args:
            scores: ``(N, C)`` predicted class probabilities.
            boxes: ``(N, 4)`` predicted boxes, ``x1, y1, x2, y2`` in px.
            points: ``(N, 2)`` cell centres in px.
            gt_boxes: ``(M, 4)`` object boxes in px.
            gt_labels: ``(M,)`` object class ids.
        """
        n = scores.shape[0]
        if gt_boxes.shape[0] == 0:
            return Assignment(
                torch.zeros_like(boxes), torch.zeros_like(scores), torch.zeros(n, dtype=torch.bool, device=scores.device)
            )
        inside = self.centres_inside(points, gt_boxes)  # (M, N)
        overlaps = complete_box_iou(gt_boxes, boxes.to(gt_boxes.dtype)).clamp_(min=0) * inside
        class_scores = scores[:, gt_labels.long()].T  # (M, N)
        metric = class_scores.pow(self.alpha) * overlaps.pow(self.beta) * inside
        top = metric.topk(min(self.topk, n), dim=1).indices
        positive = torch.zeros_like(inside).scatter_(1, top, True) & inside
        # a cell claimed by several objects keeps the object it overlaps most
        claimed = positive.sum(0) > 1
        if claimed.any():
            best = F.one_hot(overlaps.argmax(0), gt_boxes.shape[0]).T.bool()
            positive = torch.where(claimed[None], best, positive)
        foreground = positive.any(0)
        owner = positive.float().argmax(0)  # (N,)
        metric = metric * positive
        best_metric = metric.amax(1, keepdim=True)
        best_overlap = (overlaps * positive).amax(1, keepdim=True)
        weight = (metric * best_overlap / (best_metric + EPS)).amax(0)  # (N,)
        target_scores = F.one_hot(gt_labels.long()[owner], self.num_classes).to(scores.dtype)
        target_scores = target_scores * (weight * foreground)[:, None]
        return Assignment(gt_boxes[owner], target_scores, foreground)

    @staticmethod
    def centres_inside(points: Tensor, gt_boxes: Tensor) -> Tensor:
        """``(M, N)`` whether each cell centre lies strictly inside each object box."""
        lt = points[None] - gt_boxes[:, None, :2]
        rb = gt_boxes[:, None, 2:] - points[None]
        return torch.cat([lt, rb], -1).amin(-1) > EPS
