"""Convolution + batch-norm (+ activation) blocks, the unit most railwatch networks are built from."""

from __future__ import annotations

from torch import nn


class ConvBN(nn.Sequential):
    """``Conv2d -> BatchNorm2d`` with 'same' padding and no conv bias (the norm has one)."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, k, stride=s, padding=k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        )


class ConvBNReLU(nn.Sequential):
    """``Conv2d -> BatchNorm2d -> ReLU``: the "Conv2d" of paper 003's Table 1."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1, groups: int = 1) -> None:
        super().__init__(*ConvBN(c_in, c_out, k, s, groups), nn.ReLU(inplace=True))


class DWConvBN(ConvBN):
    """Depth-wise ``k x k`` convolution (one filter per channel, optional channel multiplier) + BN."""

    def __init__(self, c_in: int, c_out: int | None = None, k: int = 3, s: int = 1) -> None:
        super().__init__(c_in, c_out or c_in, k, s, groups=c_in)


class ConvBNSiLU(nn.Sequential):
    """``Conv2d -> BatchNorm2d -> SiLU``: YOLOv8's "Conv" module."""

    def __init__(self, c_in: int, c_out: int, k: int = 3, s: int = 1, groups: int = 1) -> None:
        super().__init__(*ConvBN(c_in, c_out, k, s, groups), nn.SiLU(inplace=True))
