"""BiSeNetV2 track segmentation (paper 003, section 2.1, Table 1, Figs. 3-4) and a plain FCN baseline.

BiSeNetV2 has two branches on the same image: a wide, shallow *detail branch* (1/8 resolution,
128 channels) and a narrow, deep *semantic branch* (stem, gather-and-expansion layers, context
embedding; 1/32 resolution). A bilateral guided aggregation layer merges them and a segmentation
head (3x3 conv, 1x1 conv) predicts classes. During training, auxiliary heads on the semantic
stages (stem, S3, S4, S5) add deep supervision.

Both networks take RGB in [0, 1] (``(N, 3, H, W)``, H and W multiples of 32) and normalise
inside, so exported ONNX models need no preprocessing beyond scaling to [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from railwatch.config import SegModelConfig
from railwatch.nn import ConvBN, ConvBNReLU, DWConvBN

Upsample = Literal["bilinear", "shuffle"]
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


class Normalise(nn.Module):
    """Subtract the channel means and divide by the standard deviations (ImageNet statistics)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class DetailBranch(nn.Sequential):
    """Table 1, detail branch: three stages of 3x3 Conv-BN-ReLU, each opening with stride 2.

    S1: 64 (s2), 64; S2: 64 (s2), 64, 64; S3: 128 (s2), 128, 128. Output: 128 channels at 1/8.
    """

    def __init__(self) -> None:
        super().__init__(
            ConvBNReLU(3, 64, 3, 2), ConvBNReLU(64, 64),
            ConvBNReLU(64, 64, 3, 2), ConvBNReLU(64, 64), ConvBNReLU(64, 64),
            ConvBNReLU(64, 128, 3, 2), ConvBNReLU(128, 128), ConvBNReLU(128, 128),
        )  # fmt: skip


class StemBlock(nn.Module):
    """Fig. 4a: a 3x3/2 conv, then a conv path and a max-pool path side by side (both /2), fused."""

    def __init__(self, c_out: int = 16) -> None:
        super().__init__()
        self.conv = ConvBNReLU(3, c_out, 3, 2)
        self.left = nn.Sequential(ConvBNReLU(c_out, c_out // 2, 1), ConvBNReLU(c_out // 2, c_out, 3, 2))
        self.right = nn.MaxPool2d(3, 2, 1)
        self.fuse = ConvBNReLU(2 * c_out, c_out)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return self.fuse(torch.cat([self.left(x), self.right(x)], dim=1))


class GatherExpand(nn.Module):
    """Fig. 4b/c: gather-and-expansion layer with expansion ratio ``e`` (6 in Table 1).

    Stride 1: 3x3 conv, depth-wise 3x3 expanding to ``e * c_in``, 1x1 projection, identity
    shortcut. Stride 2: the depth-wise part is two 3x3 depth-wise convs (the first strided) and
    the shortcut is a strided depth-wise conv plus a 1x1 projection.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, expand: int = 6) -> None:
        super().__init__()
        mid = c_in * expand
        self.conv = ConvBNReLU(c_in, c_in)
        if stride == 1:
            self.dw = DWConvBN(c_in, mid)
        else:
            self.dw = nn.Sequential(DWConvBN(c_in, mid, s=2), DWConvBN(mid))
        self.project = ConvBN(mid, c_out, 1)
        if stride == 1 and c_in == c_out:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(DWConvBN(c_in, s=stride), ConvBN(c_in, c_out, 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.project(self.dw(self.conv(x))) + self.shortcut(x))


class ContextEmbedding(nn.Module):
    """Fig. 4d: global average pooling -> BN -> 1x1 conv, added back to the map, then a 3x3 conv."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels)
        self.gap_conv = ConvBNReLU(channels, channels, 1)
        self.out = ConvBNReLU(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        context = self.gap_conv(self.norm(x.mean(dim=(2, 3), keepdim=True)))
        return self.out(x + context)


class SemanticBranch(nn.Module):
    """Table 1, semantic branch: Stem 16 (1/4); GE 32, 64, 128 (1/8, 1/16, 1/32; e = 6); CE 128.

    Returns the feature of every stage, so auxiliary heads can supervise them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = StemBlock(16)
        self.s3 = nn.Sequential(GatherExpand(16, 32, 2), GatherExpand(32, 32))
        self.s4 = nn.Sequential(GatherExpand(32, 64, 2), GatherExpand(64, 64))
        self.s5 = nn.Sequential(GatherExpand(64, 128, 2), *(GatherExpand(128, 128) for _ in range(3)))
        self.ce = ContextEmbedding(128)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        stem = self.stem(x)
        s3 = self.s3(stem)
        s4 = self.s4(s3)
        s5 = self.s5(s4)
        return stem, s3, s4, s5, self.ce(s5)


class BilateralGuidedAggregation(nn.Module):
    """Fig. 4e: each branch gates the other, at both resolutions, before a 3x3 fusion conv."""

    def __init__(self, channels: int = 128) -> None:
        super().__init__()
        c = channels
        self.detail_keep = nn.Sequential(DWConvBN(c), nn.Conv2d(c, c, 1, bias=False))
        self.detail_down = nn.Sequential(ConvBN(c, c, 3, 2), nn.AvgPool2d(3, 2, 1, ceil_mode=False))
        self.semantic_up = ConvBN(c, c)
        self.semantic_keep = nn.Sequential(DWConvBN(c), nn.Conv2d(c, c, 1, bias=False))
        self.fuse = ConvBNReLU(c, c)

    def forward(self, detail: Tensor, semantic: Tensor) -> Tensor:
        size = detail.shape[-2:]
        up = F.interpolate(self.semantic_up(semantic), size=size, mode="bilinear", align_corners=False)
        high = self.detail_keep(detail) * torch.sigmoid(up)
        low = self.detail_down(detail) * torch.sigmoid(self.semantic_keep(semantic))
        low = F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        return self.fuse(high + low)


class SegmentHead(nn.Module):
    """Section 2.1: a 3x3 conv and a 1x1 conv, then back to the input resolution.

    ``upsample="bilinear"`` interpolates the class scores ``factor`` times, as BiSeNetV2 does.
    ``upsample="shuffle"`` lets the 1x1 conv predict every sub-pixel of a ``factor x factor``
    block and rearranges them (pixel shuffle): the same head, but it can draw a 2-px rail at 1/8
    resolution, which interpolated scores cannot.
    """

    def __init__(
        self, c_in: int, c_mid: int, num_classes: int, factor: int, upsample: Upsample = "bilinear", dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.conv = ConvBNReLU(c_in, c_mid)
        self.drop = nn.Dropout(dropout)
        self.factor = factor
        self.upsample = upsample
        scores = num_classes * factor * factor if upsample == "shuffle" else num_classes
        self.cls = nn.Conv2d(c_mid, scores, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.cls(self.drop(self.conv(x)))
        if self.upsample == "shuffle":
            return F.pixel_shuffle(x, self.factor)
        return F.interpolate(x, scale_factor=float(self.factor), mode="bilinear", align_corners=False)


class BiSeNetV2(nn.Module):
    """BiSeNetV2 (Yu et al., 2021) as configured in paper 003, Table 1.

    Args:
        num_classes: Output classes (background, track bed, rail by default).
        head_channels: Width of the segmentation head's 3x3 conv (1024 in the reference setting).
        aux_head_channels: Width of each auxiliary head's 3x3 conv.
        upsample: How the heads return to full resolution: ``"bilinear"`` or ``"shuffle"``.
        aux: Build the auxiliary heads (only used in training; export drops them).

    Forward returns the ``(N, num_classes, H, W)`` logits in eval mode and a tuple of the main
    and four auxiliary logits in training mode.
    """

    def __init__(
        self,
        num_classes: int = 3,
        head_channels: int = 1024,
        aux_head_channels: int = 128,
        upsample: Upsample = "bilinear",
        aux: bool = True,
    ) -> None:
        super().__init__()
        self.normalise = Normalise()
        self.detail = DetailBranch()
        self.semantic = SemanticBranch()
        self.aggregate = BilateralGuidedAggregation(128)
        self.head = SegmentHead(128, head_channels, num_classes, 8, upsample)
        self.aux_heads = (
            nn.ModuleList(
                SegmentHead(c, aux_head_channels, num_classes, f, upsample)
                for c, f in ((16, 4), (32, 8), (64, 16), (128, 32))
            )
            if aux
            else None
        )
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor | tuple[Tensor, ...]:
        x = self.normalise(x)
        stem, s3, s4, s5, context = self.semantic(x)
        logits = self.head(self.aggregate(self.detail(x), context))
        if self.training and self.aux_heads is not None:
            return (logits, *(head(f) for head, f in zip(self.aux_heads, (stem, s3, s4, s5))))
        return logits


class PlainFCN(nn.Module):
    """Baseline: a plain fully convolutional net of similar width (Long et al., FCN-8s style).

    A VGG-like encoder of Conv-BN-ReLU pairs (32, 64, 128, 256 channels; stride 2 per stage,
    1/16 at the bottom), with 1x1 score layers on the 1/4, 1/8 and 1/16 features summed after
    bilinear upsampling (the FCN-8s skip scheme), then upsampled to the input size.
    """

    def __init__(self, num_classes: int = 3, widths: Sequence[int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        self.normalise = Normalise()
        stages, c_in = [], 3
        for c in widths:
            stages.append(nn.Sequential(ConvBNReLU(c_in, c, 3, 2), ConvBNReLU(c, c)))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.scores = nn.ModuleList(nn.Conv2d(c, num_classes, 1) for c in widths[1:])
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        size = x.shape[-2:]
        x = self.normalise(x)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        out = self.scores[-1](features[-1])
        for score, f in zip(reversed(self.scores[:-1]), reversed(features[1:-1])):
            out = F.interpolate(out, size=f.shape[-2:], mode="bilinear", align_corners=False) + score(f)
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)


def _init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions (fan-out), unit BN scales, zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_segmenter(cfg: SegModelConfig, aux: bool = True) -> nn.Module:
    """The network ``cfg`` describes; ``aux=False`` leaves out BiSeNetV2's training-only heads."""
    n = len(cfg.classes)
    if cfg.arch == "fcn":
        return PlainFCN(n)
    return BiSeNetV2(n, cfg.head_channels, cfg.aux_head_channels, cfg.upsample, aux=aux)
