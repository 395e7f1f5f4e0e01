"""Detector backbones: ST-YOLO's ShuffleNetV2 + SE + DilateFormer, and YOLOv8s' CSP-Darknet.

Each returns the feature maps at strides 8, 16 and 32 and reports their widths in ``channels``,
so both plug into the same PAN neck (paper 003, section 2.2.2, Figure 8).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchvision.models import shufflenet_v2_x1_0
from torchvision.models.shufflenetv2 import InvertedResidual

from railwatch.intrusion.det.layers import SPPF, C2f
from railwatch.nn.attention import MultiScaleDilatedAttention, SqueezeExcite
from railwatch.nn.blocks import ConvBNSiLU


class DilateFormerBlock(nn.Module):
    """A DilateFormer block in convolutional form: ``x + MSDA(norm(x))``, then ``x + MLP(norm(x))``.

    MSDA is Eq. 5-8 (:class:`~railwatch.nn.attention.MultiScaleDilatedAttention`); the MLP is
    two 1x1 convolutions with GELU between. Batch norm stands in for layer norm so the block
    folds into the convolutions at export.
    """

    def __init__(self, channels: int, dilations: Sequence[int], window: int = 3, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.norm1 = nn.BatchNorm2d(channels)
        self.attn = MultiScaleDilatedAttention(channels, dilations, window)
        self.norm2 = nn.BatchNorm2d(channels)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ShuffleUnit(nn.Module):
    """A ShuffleNetV2 unit: torchvision's ``InvertedResidual`` with a channel shuffle that keeps the layout.

    The branches, and so the parameters and their state-dict names, are those of ``unit``;
    the output is the same. torchvision concatenates the branches, then shuffles by viewing the
    map as ``(N, 2, C/2, H, W)`` and calling ``contiguous()`` on the transpose, which turns a
    channels-last map into an NCHW one after every unit, so each following convolution
    converts it back. Here the two halves are interleaved in one stack in the ``(N, H, W, C)``
    view of a channels-last map, which stays channels-last (ST-YOLO on one CPU thread: 94 -> 84
    ms). In ONNX the shuffle is one gather of the channels in a fixed order, which needs no
    shape arithmetic in the exported graph.
    """

    def __init__(self, unit: InvertedResidual) -> None:
        super().__init__()
        self.stride = unit.stride
        self.branch1, self.branch2 = unit.branch1, unit.branch2
        self.half = unit.branch2[0].out_channels  # each branch gives half of the output
        # out[2i] = in[i], out[2i + 1] = in[C/2 + i]: torchvision's channel_shuffle with 2 groups
        self.register_buffer("order", torch.arange(2 * self.half).view(2, self.half).t().reshape(-1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.split([self.half, self.half], dim=1)
            return self._concat_shuffled(x1, self.branch2(x2))
        return self._concat_shuffled(self.branch1(x), self.branch2(x))

    def _concat_shuffled(self, a: Tensor, b: Tensor) -> Tensor:
        """torchvision's ``channel_shuffle(cat(a, b), 2)``: the channels of ``a`` and ``b`` interleaved.

        Written as one stack (one copy, where concatenating and then shuffling copies twice),
        in ``b``'s memory layout.
        """
        if torch.onnx.is_in_onnx_export():
            return torch.cat((a, b), dim=1).index_select(1, self.order)
        if b.is_contiguous(memory_format=torch.channels_last):
            nhwc = torch.stack((a.permute(0, 2, 3, 1), b.permute(0, 2, 3, 1)), dim=-1)  # (N, H, W, C/2, 2)
            return nhwc.flatten(3).permute(0, 3, 1, 2)
        return torch.stack((a, b), dim=2).flatten(1, 2)  # (N, C/2, 2, H, W) -> channel 2i + k


class ShuffleNetV2SE(nn.Module):
    """ShuffleNetV2 1.0x (torchvision's units, as :class:`ShuffleUnit`) with SE after the last 1x1 conv of every branch.

    Paper 003, section 2.2.1 and Figure 5-7: SE attention follows the 1x1 convolutions.
    ``msda`` adds a :class:`DilateFormerBlock` after the deepest stage (ST-YOLO, Figure 8/9).
    Outputs: stage 2 (stride 8, 116 channels), stage 3 (16, 232), stage 4 (32, 464).
    """

    def __init__(self, se: bool = True, msda: bool = True, dilations: Sequence[int] = (1, 1, 1, 1), window: int = 3) -> None:
        super().__init__()
        net = shufflenet_v2_x1_0(weights=None)
        if se:
            for stage in (net.stage2, net.stage3, net.stage4):
                for unit in stage:
                    for branch in (unit.branch1, unit.branch2):
                        if len(branch):  # stride-1 units have an empty branch1
                            branch.append(SqueezeExcite(branch[-3].out_channels))
        self.stem = nn.Sequential(net.conv1, net.maxpool)
        self.stage2, self.stage3, self.stage4 = (nn.Sequential(*map(ShuffleUnit, s)) for s in (net.stage2, net.stage3, net.stage4))
        self.channels = (116, 232, 464)
        self.context = DilateFormerBlock(464, dilations, window) if msda else nn.Identity()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p3 = self.stage2(self.stem(x))
        p4 = self.stage3(p3)
        p5 = self.context(self.stage4(p4))
        return p3, p4, p5


class CSPDarknet(nn.Module):
    """YOLOv8's backbone: strided convs, C2f stages and SPPF; ``width``/``depth`` give its sizes.

    The defaults are YOLOv8s (width 0.5, depth 0.33): widths 32-64-128-256-512, C2f repeats 1-2-2-1.
    """

    def __init__(self, width: float = 0.5, depth: float = 0.33, max_channels: int = 1024) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = (int(min(c, max_channels) * width) for c in (64, 128, 256, 512, 1024))
        n2, n3, n4, n5 = (max(round(n * depth), 1) for n in (3, 6, 6, 3))
        self.stem = nn.Sequential(ConvBNSiLU(3, c1, 3, 2), ConvBNSiLU(c1, c2, 3, 2), C2f(c2, c2, n2, shortcut=True))
        self.stage3 = nn.Sequential(ConvBNSiLU(c2, c3, 3, 2), C2f(c3, c3, n3, shortcut=True))
        self.stage4 = nn.Sequential(ConvBNSiLU(c3, c4, 3, 2), C2f(c4, c4, n4, shortcut=True))
        self.stage5 = nn.Sequential(ConvBNSiLU(c4, c5, 3, 2), C2f(c5, c5, n5, shortcut=True), SPPF(c5, c5))
        self.channels = (c3, c4, c5)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        p3 = self.stage3(self.stem(x))
        p4 = self.stage4(p3)
        return p3, p4, self.stage5(p4)
