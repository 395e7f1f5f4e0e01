"""From decoded head outputs to final detections: score threshold, then torchvision's batched NMS."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms


def select_detections(
    decoded: Tensor, conf_threshold: float = 0.25, iou_threshold: float = 0.6, max_detections: int = 100
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Per image: each cell's best class, cells above ``conf_threshold``, class-wise NMS, top ``max_detections``.

    Args:
        decoded: ``(B, N, 4 + C)`` boxes in px and class probabilities (:func:`.head.decode`).

    Returns:
        Per image ``(boxes (K, 4), scores (K,), labels (K,))``, highest score first.
    """
    out = []
    for image in decoded:
        scores, labels = image[:, 4:].max(-1)
        keep = scores > conf_threshold
        boxes, scores, labels = image[keep, :4], scores[keep], labels[keep]
        kept = batched_nms(boxes.float(), scores.float(), labels, iou_threshold)[:max_detections]
        out.append((boxes[kept], scores[kept], labels[kept]))
    return out


def empty_detections(device: torch.device | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """No boxes, no scores, no labels."""
    return torch.zeros(0, 4, device=device), torch.zeros(0, device=device), torch.zeros(0, dtype=torch.long, device=device)
