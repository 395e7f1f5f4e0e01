"""The modified FCN of paper 002 (Table 1, Fig. 4): VGG19's first 12 convolutions and FCN-8s-style skips.

Layout (shared/DESIGN.md, "Rail-surface FCN"): a 3-channel input (grey replicated, so ImageNet
VGG19 weights fit), VGG19 blocks 1-4 (2, 2, 4, 4 convolutions, each block ending in a 2x2
max-pool: I/16), 1x1 convolutions 512 -> 1024 -> 1024 -> 2 with dropout 0.5, and four 2 -> 2
transposed convolutions back to full resolution, adding 1x1 class scores of pool3 (I/8) and
pool2 (I/4) after the first two. The transposed kernels differ by rail type:

- Type 1 (express rail, 100x160 tiles): 4x4, 3x2, 4x4, 4x4 -> 12,163,110 parameters;
- Type 2 (common/heavy rail, 100x55 tiles): 4x4, 3x3, 2x3, 2x3 -> 12,163,042 parameters.

Kernels are read rows x columns, as the paper writes its tiles (100x55x1). So read, each one
reaches the next map's size on the paper's tiles exactly: the 4x4 ones with "same" padding (2n),
the others unpadded ((n - 1) * 2 + k), e.g. Type 2's 25x13 pool2 scores -> 50x27 -> 100x55. Read
the other way round they would not (Type 2's 2x3 would give 51 rows from 25). The price of
Type 2's 2-tap rows: nothing is interpolated between coarse pixels along the rail, so outlines
there snap to pool2's 4-row cells (README, "Rail surface").

Each transposed convolution has stride 2. Its output is cropped to the map it is added to (pool3,
pool2, then I/2 and the input) from the offset that puts every coarse pixel's taps on the finer
pixels it was pooled from (FCN's "crop" step with its computed offset, Long et al. section 4.1),
and zero-padded at the far end where it falls short, so any tile size works; odd sizes lose a row
to each floor-halving pool. A centred crop is the same offset on the paper's tiles, but where a
pool has an odd size it moved the scores two coarse pixels.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import vgg19

KERNELS: dict[str, tuple[tuple[int, int], ...]] = {
    "type1": ((4, 4), (3, 2), (4, 4), (4, 4)),
    "type2": ((4, 4), (3, 3), (2, 3), (2, 3)),
}
"""Transposed-convolution kernels of Table 1, per rail type."""


def vgg_feature_keys(parts: dict[str, tuple[int, nn.Sequential]]) -> dict[str, str]:
    """Map torchvision VGG keys ``features.N.*`` onto slices of its ``features`` kept under other names.

    ``parts`` maps an attribute name to ``(index of its first layer in features, the slice)``.
    """
    return {
        f"features.{offset + i}.{key}": f"{name}.{i}.{key}"
        for name, (offset, part) in parts.items()
        for i, layer in enumerate(part)
        for key in layer.state_dict()
    }


def crop_offset(kernel: int, stride: int) -> int:
    """Leading rows (or columns) to crop from a ``kernel``-tap, ``stride``-step transposed convolution's output.

    Coarse pixel ``i`` was pooled from the finer pixels ``stride*i ... stride*i + stride - 1`` and
    its taps land on outputs ``stride*i ... stride*i + kernel - 1``; dropping ``(kernel - stride)
    // 2`` leading outputs centres the taps on those pixels (FCN-8s' padding of 1 for 4x4 at
    stride 2 and of 4 for 16x16 at stride 8 is the same offset). Where ``kernel - stride`` is odd,
    as for Table 1's 3-tap kernels, the taps cannot be centred: they sit half a finer pixel late.
    """
    return (kernel - stride) // 2


def bilinear_kernel(channels: int, kh: int, kw: int, stride: tuple[int, int] = (2, 2)) -> Tensor:
    """Weights that make a ``channels -> channels`` transposed convolution upsample bilinearly, channel by channel.

    FCN (Long et al., section 3.3) starts its in-network upsampling as bilinear interpolation: each
    axis gets a triangle of half-width ``stride`` about the kernel's middle, so 3x2 or 2x3 kernels
    work too. The taps that feed each output phase (position modulo the stride) are scaled to sum
    to 1, so that a constant map stays constant: the triangle alone gives a 2-tap kernel at stride
    2 half the gain.

    A 3-tap kernel at stride 2 has no middle that lines up with the finer pixels
    (:func:`crop_offset`); started as (0.5, 1, 0.5) it moves an edge half a finer pixel. Started
    about the true centre instead, (0.75, 1, 0.25), edges stay in place, but the trained Type 2
    FCN scored lower on each of four folds (F1 0.902, 0.896, 0.893, 0.897 against 0.906, 0.899,
    0.895, 0.898): training learns the shift away, and the symmetric start suits it better.
    """

    def triangle(k: int, step: int) -> Tensor:
        taps = (1 - (torch.arange(k, dtype=torch.float32) - (k - 1) / 2).abs() / step).clamp(min=0)
        for phase in range(min(step, k)):
            taps[phase::step] /= taps[phase::step].sum()
        return taps

    weight = torch.zeros(channels, channels, kh, kw)
    weight[range(channels), range(channels)] = torch.outer(triangle(kh, stride[0]), triangle(kw, stride[1]))
    return weight


def init_fcn_head(score_layers: list[nn.Conv2d], upsampling: list[nn.ConvTranspose2d]) -> None:
    """FCN's initialisation of the layers after the backbone: class-score convolutions at zero,
    upsampling at bilinear interpolation (Long et al., sections 3.3 and 4.2). Training then starts
    from an output of equal class scores everywhere instead of large random ones."""
    with torch.no_grad():
        for conv in score_layers:
            conv.weight.zero_()
            if conv.bias is not None:
                conv.bias.zero_()
        for up in upsampling:
            up.weight.copy_(bilinear_kernel(up.out_channels, *up.kernel_size, stride=up.stride))
            if up.bias is not None:
                up.bias.zero_()


def fit_to(x: Tensor, height: int, width: int, centred: bool = True) -> Tensor:
    """Crop or zero-pad ``x`` to ``height x width``: evenly on both sides, or (``centred=False``) at the far end."""
    top, left = (max(x.shape[2] - height, 0) // 2, max(x.shape[3] - width, 0) // 2) if centred else (0, 0)
    x = x[:, :, top : top + height, left : left + width]  # slicing, not negative padding: ONNX Runtime differs there
    dh, dw = height - x.shape[2], width - x.shape[3]
    if not (dh or dw):
        return x
    before_h, before_w = (dh // 2, dw // 2) if centred else (0, 0)
    return F.pad(x, (before_w, dw - before_w, before_h, dh - before_h))


class SurfaceFCN(nn.Module):
    """The modified FCN for one rail type.

    Args:
        rail_type: ``"type1"`` (express rail) or ``"type2"`` (common/heavy rail).
        num_classes: Output classes (2: background and defect).
        dropout: Rate of the dropout after each 1024-wide 1x1 convolution. It drops single units,
            as the paper's dropout layer "randomly sets input units to 0" (section 2.1.4) and FCN's
            does; dropping whole channels (``Dropout2d``) regularises far more strongly.
    """

    def __init__(self, rail_type: Literal["type1", "type2"] = "type1", num_classes: int = 2, dropout: float = 0.5) -> None:
        super().__init__()
        if rail_type not in KERNELS:
            raise ValueError(f"rail_type must be one of {', '.join(KERNELS)}, got {rail_type!r}")
        layers = list(vgg19(weights=None).features.children())
        # VGG19 features: block 1 ends at index 4 (pool), block 2 at 9, block 3 at 18, block 4 at 27
        self.block12 = nn.Sequential(*layers[:10])  # -> pool2, I/4, 128 channels
        self.block3 = nn.Sequential(*layers[10:19])  # -> pool3, I/8, 256
        self.block4 = nn.Sequential(*layers[19:28])  # -> pool4, I/16, 512
        self.classifier = nn.Sequential(
            nn.Conv2d(512, 1024, 1), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Conv2d(1024, 1024, 1), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Conv2d(1024, num_classes, 1),
        )  # fmt: skip
        self.score_pool3 = nn.Conv2d(256, num_classes, 1)
        self.score_pool2 = nn.Conv2d(128, num_classes, 1)
        self.up = nn.ModuleList(nn.ConvTranspose2d(num_classes, num_classes, k, stride=2) for k in KERNELS[rail_type])
        init_fcn_head([self.classifier[-1], self.score_pool3, self.score_pool2], list(self.up))

    def backbone_state_keys(self) -> dict[str, str]:
        """Map from torchvision ``vgg19`` state-dict keys (``features.N.*``) to this network's keys."""
        return vgg_feature_keys({"block12": (0, self.block12), "block3": (10, self.block3), "block4": (19, self.block4)})

    def upsample(self, stage: int, scores: Tensor, height: int, width: int) -> Tensor:
        """Transposed convolution ``stage`` of Table 1, cropped by :func:`crop_offset` to ``height x width``."""
        up = self.up[stage]
        top, left = (crop_offset(k, s) for k, s in zip(up.kernel_size, up.stride))
        return fit_to(up(scores)[:, :, top:, left:], height, width, centred=False)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2:]
        pool2 = self.block12(x)
        pool3 = self.block3(pool2)
        scores = self.classifier(self.block4(pool3))
        scores = self.upsample(0, scores, *pool3.shape[2:]) + self.score_pool3(pool3)
        scores = self.upsample(1, scores, *pool2.shape[2:]) + self.score_pool2(pool2)
        # half the input's size, so that the last stride-2 upsampling covers every input pixel: for
        # Type 2's 55-px width that is 27 columns (-> 55), where twice pool2's 13 (26 -> 53) would
        # leave the two edge columns to zero padding that can never be scored as a defect
        scores = self.upsample(2, scores, h // 2, w // 2)
        return self.upsample(3, scores, h, w)
