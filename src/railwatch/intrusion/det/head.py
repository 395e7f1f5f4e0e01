"""YOLOv8's PAN neck and decoupled anchor-free head with distribution focal loss bins.

The head predicts, at every cell of the stride-8/16/32 maps, ``reg_max`` bins for each of the
distances from the cell centre to the box's four sides (DFL), and one logit per class.
:func:`decode` turns that into boxes in input pixels and class probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from railwatch.intrusion.det.layers import C2f
from railwatch.nn.blocks import ConvBNSiLU

STRIDES: tuple[int, int, int] = (8, 16, 32)


class PANNeck(nn.Module):
    """Top-down then bottom-up feature pyramid of YOLOv8 (FPN + PAN), ``C2f`` after each join.

    Args:
        in_channels: Widths of the backbone's stride-8/16/32 maps.
        widths: Widths of the neck's outputs (YOLOv8s: 128, 256, 512).
        depth: C2f repeats.
    """

    def __init__(self, in_channels: Sequence[int], widths: Sequence[int] = (128, 256, 512), depth: int = 1) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        w3, w4, w5 = widths
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.top_down4 = C2f(c5 + c4, w4, depth)
        self.top_down3 = C2f(w4 + c3, w3, depth)
        self.down3 = ConvBNSiLU(w3, w3, 3, 2)
        self.bottom_up4 = C2f(w3 + w4, w4, depth)
        self.down4 = ConvBNSiLU(w4, w4, 3, 2)
        self.bottom_up5 = C2f(w4 + c5, w5, depth)
        self.channels = tuple(widths)

    def forward(self, features: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        p3, p4, p5 = features
        t4 = self.top_down4(torch.cat([self.up(p5), p4], 1))
        n3 = self.top_down3(torch.cat([self.up(t4), p3], 1))
        n4 = self.bottom_up4(torch.cat([self.down3(n3), t4], 1))
        n5 = self.bottom_up5(torch.cat([self.down4(n4), p5], 1))
        return n3, n4, n5


class DecoupledHead(nn.Module):
    """Separate box (``4 * reg_max`` DFL bins) and class branches per level, anchor-free (YOLOv8 Detect).

    ``forward`` returns the raw outputs of all levels joined: ``(B, 4 * reg_max + classes, N)``,
    with ``N`` cells ordered stride 8 first, row-major within each level.
    """

    def __init__(self, in_channels: Sequence[int], num_classes: int, reg_max: int = 16) -> None:
        super().__init__()
        self.num_classes, self.reg_max = num_classes, reg_max
        box_width = max(16, in_channels[0] // 4, reg_max * 4)
        cls_width = max(in_channels[0], min(num_classes, 100))
        self.box = nn.ModuleList(
            nn.Sequential(ConvBNSiLU(c, box_width, 3), ConvBNSiLU(box_width, box_width, 3), nn.Conv2d(box_width, 4 * reg_max, 1))
            for c in in_channels
        )
        self.cls = nn.ModuleList(
            nn.Sequential(ConvBNSiLU(c, cls_width, 3), ConvBNSiLU(cls_width, cls_width, 3), nn.Conv2d(cls_width, num_classes, 1))
            for c in in_channels
        )

    def init_biases(self, input_size: tuple[int, int]) -> None:
        """YOLOv8's prior: box bins start even, class logits start at about 5 objects per 640x640 image."""
        for conv_box, conv_cls, stride in zip(self.box, self.cls, STRIDES):
            nn.init.constant_(conv_box[-1].bias, 1.0)
            cells = (input_size[0] / stride) * (input_size[1] / stride)
            nn.init.constant_(conv_cls[-1].bias, float(torch.log(torch.tensor(5 / self.num_classes / cells))))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        outputs = [torch.cat([box(x), cls(x)], 1).flatten(2) for x, box, cls in zip(features, self.box, self.cls)]
        return torch.cat(outputs, 2)


def make_anchors(input_size: tuple[int, int], device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Cell centres ``(N, 2)`` (x, y) in input pixels and each cell's stride ``(N, 1)``, levels in order."""
    points, strides = [], []
    for stride in STRIDES:
        h, w = input_size[0] // stride, input_size[1] // stride
        ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
        points.append((torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * stride)
        strides.append(torch.full((h * w, 1), float(stride), device=device))
    return torch.cat(points), torch.cat(strides)


def split_outputs(raw: Tensor, reg_max: int) -> tuple[Tensor, Tensor]:
    """Raw head output ``(B, 4*reg_max + C, N)`` -> DFL logits ``(B, N, 4, reg_max)`` and class logits ``(B, N, C)``."""
    raw = raw.transpose(1, 2)
    return raw[..., : 4 * reg_max].unflatten(-1, (4, reg_max)), raw[..., 4 * reg_max :]


def expected_distances(dfl_logits: Tensor) -> Tensor:
    """The DFL decode: expected bin index of each side, ``(..., 4, reg_max) -> (..., 4)`` in cell units."""
    bins = torch.arange(dfl_logits.shape[-1], device=dfl_logits.device, dtype=dfl_logits.dtype)
    return F.softmax(dfl_logits, dim=-1) @ bins


def distances_to_boxes(points: Tensor, distances: Tensor) -> Tensor:
    """``(left, top, right, bottom)`` distances from points -> ``x1, y1, x2, y2`` boxes."""
    return torch.cat([points - distances[..., :2], points + distances[..., 2:]], -1)


def decode(raw: Tensor, input_size: tuple[int, int], reg_max: int) -> Tensor:
    """Raw head output -> ``(B, N, 4 + C)``: boxes ``x1, y1, x2, y2`` in input px and class probabilities."""
    points, strides = make_anchors(input_size, raw.device)
    dfl_logits, cls_logits = split_outputs(raw, reg_max)
    boxes = distances_to_boxes(points, expected_distances(dfl_logits) * strides)
    return torch.cat([boxes, cls_logits.sigmoid()], -1)
