"""YOLOv8's building blocks: bottleneck, C2f, SPPF (shared by both detectors' necks and the baseline backbone).

torchvision has no YOLO blocks, and the reference implementation (ultralytics) is AGPL and
config-driven; these are the few small modules the detectors need, written as plain ``nn.Module``s.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from railwatch.nn.blocks import ConvBNSiLU


class Bottleneck(nn.Module):
    """Two 3x3 convs, with a residual connection when ``shortcut`` and the widths match."""

    def __init__(self, c_in: int, c_out: int, shortcut: bool = True, expansion: float = 1.0) -> None:
        super().__init__()
        hidden = int(c_out * expansion)
        self.cv1 = ConvBNSiLU(c_in, hidden, 3)
        self.cv2 = ConvBNSiLU(hidden, c_out, 3)
        self.add = shortcut and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """CSP block with two convolutions and ``n`` bottlenecks whose outputs are all concatenated (YOLOv8)."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = False) -> None:
        super().__init__()
        self.hidden = c_out // 2
        self.cv1 = ConvBNSiLU(c_in, 2 * self.hidden, 1)
        self.cv2 = ConvBNSiLU((2 + n) * self.hidden, c_out, 1)
        self.m = nn.ModuleList(Bottleneck(self.hidden, self.hidden, shortcut) for _ in range(n))

    def forward(self, x: Tensor) -> Tensor:
        parts = list(self.cv1(x).chunk(2, dim=1))
        for block in self.m:
            parts.append(block(parts[-1]))
        return self.cv2(torch.cat(parts, dim=1))


class SPPF(nn.Module):
    """Spatial pyramid pooling, fast: three chained ``k x k`` max-pools concatenated (YOLOv5/v8)."""

    def __init__(self, c_in: int, c_out: int, k: int = 5) -> None:
        super().__init__()
        hidden = c_in // 2
        self.cv1 = ConvBNSiLU(c_in, hidden, 1)
        self.cv2 = ConvBNSiLU(hidden * 4, c_out, 1)
        self.pool = nn.MaxPool2d(k, stride=1, padding=k // 2)

    def forward(self, x: Tensor) -> Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.pool(y[-1]))
        return self.cv2(torch.cat(y, dim=1))
