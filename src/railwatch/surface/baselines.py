"""The baselines paper 002 compares against (section 4.2): FCN-8s on VGG16, and a SegNet.

- :class:`FCN8s` (Long et al.): VGG16's 13 convolutions and 5 pools, fc6/fc7 as 7x7 and 1x1
  convolutions (4096 wide, dropout 0.5), class scores at I/32 upsampled x2 (+ pool4 scores),
  x2 (+ pool3 scores) and x8 by transposed convolutions. fc6 pads its 7x7 window by 3 and the input
  is padded only to a multiple of 32 (instead of by 100 px), so the 55-px-wide Type 2 tiles keep a
  spatial map and every pixel is scored.
- :class:`SegNet` (Badrinarayanan et al.): VGG16's convolutions with batch norm as the encoder,
  a mirrored decoder that unpools with the encoder's max-pool indices; 13 + 13 convolutions,
  26 batch norms and 5 + 5 pools and unpools (the "59 layers" of paper 002's reference [7]).

Both return class scores at the input's size; crops and pads use :func:`.model.fit_to`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import vgg16, vgg16_bn

from railwatch.surface.model import fit_to, init_fcn_head, vgg_feature_keys

VGG16_BLOCKS: tuple[int, ...] = (2, 2, 3, 3, 3)
"""Convolutions per VGG16 block."""


class FCN8s(nn.Module):
    """FCN-8s on VGG16 for ``num_classes`` classes."""

    def __init__(self, num_classes: int = 2, dropout: float = 0.5) -> None:
        super().__init__()
        layers = list(vgg16(weights=None).features.children())
        self.to_pool3 = nn.Sequential(*layers[:17])  # I/8, 256
        self.to_pool4 = nn.Sequential(*layers[17:24])  # I/16, 512
        self.to_pool5 = nn.Sequential(*layers[24:])  # I/32, 512
        self.fc = nn.Sequential(
            nn.Conv2d(512, 4096, 7, padding=3), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Conv2d(4096, 4096, 1), nn.ReLU(inplace=True), nn.Dropout(dropout),
        )  # fmt: skip
        self.score_fr = nn.Conv2d(4096, num_classes, 1)
        self.score_pool4 = nn.Conv2d(512, num_classes, 1)
        self.score_pool3 = nn.Conv2d(256, num_classes, 1)
        self.up2 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
        self.up2_pool4 = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=1, bias=False)
        self.up8 = nn.ConvTranspose2d(num_classes, num_classes, 16, stride=8, padding=4, bias=False)
        init_fcn_head([self.score_fr, self.score_pool4, self.score_pool3], [self.up2, self.up2_pool4, self.up8])

    def backbone_state_keys(self) -> dict[str, str]:
        """Map from torchvision ``vgg16`` state-dict keys (``features.N.*``) to this network's keys."""
        return vgg_feature_keys({"to_pool3": (0, self.to_pool3), "to_pool4": (17, self.to_pool4), "to_pool5": (24, self.to_pool5)})

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2:]
        # Pad to a multiple of 32 (centred, zeros) and crop the scores back at the end, so the x8
        # upsampling from pool3 covers every input pixel. Without it, a 100-row tile ends as 96
        # scored rows (pool3 has 12, not 12.5) and a 55-px Type 2 tile as 48 scored columns, the
        # rest tied zero padding. The original FCN pads the input by 100 px for the same reason.
        pad_h, pad_w = -h % 32, -w % 32
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        pool3 = self.to_pool3(x)
        pool4 = self.to_pool4(pool3)
        features = self.fc(self.to_pool5(pool4))
        # The class-score convolution runs in float32 even under bf16 autocast: oneDNN's bf16 backward
        # of a 1x1 convolution from 4096 to 2 channels on a tiny map corrupts the heap on CPU
        # (torch 2.15, AMX). It is 0.006% of the network's work, so nothing is lost by it.
        with torch.autocast(x.device.type, enabled=False):
            scores = self.score_fr(features.float())
        scores = fit_to(self.up2(scores), *pool4.shape[2:]) + self.score_pool4(pool4)
        scores = fit_to(self.up2_pool4(scores), *pool3.shape[2:]) + self.score_pool3(pool3)
        return fit_to(self.up8(scores), h + pad_h, w + pad_w)[:, :, pad_h // 2 : pad_h // 2 + h, pad_w // 2 : pad_w // 2 + w]


def max_unpool(x: Tensor, indices: Tensor, size: tuple[int, int]) -> Tensor:
    """Put each pooled value back where its maximum was (``F.max_unpool2d``), zeros elsewhere.

    Written as a scatter because torch's ONNX exporter has no ``max_unpool2d``; the scatter
    exports as ``ScatterElements`` and computes the same.
    """
    n, c = x.shape[:2]
    flat = x.new_zeros(n, c, size[0] * size[1]).scatter(2, indices.flatten(2), x.flatten(2))
    return flat.view(n, c, size[0], size[1])


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class SegNet(nn.Module):
    """SegNet: VGG16-BN encoder, decoder unpooling with the encoder's pool indices."""

    def __init__(self, num_classes: int = 2) -> None:
        super().__init__()
        features = list(vgg16_bn(weights=None).features.children())
        self.encoder = nn.ModuleList()
        start = 0
        for n in VGG16_BLOCKS:
            self.encoder.append(nn.Sequential(*features[start : start + 3 * n]))
            start += 3 * n + 1  # skip the max-pool; pooling with indices happens in forward
        widths = (64, 128, 256, 512, 512)
        self.decoder = nn.ModuleList()
        for i in reversed(range(5)):
            c_in, c_out = widths[i], widths[i - 1] if i else 64
            layers = []
            for j in range(VGG16_BLOCKS[i]):
                last = j == VGG16_BLOCKS[i] - 1
                layers += _conv_bn_relu(c_in, c_out if last else c_in)
            self.decoder.append(nn.Sequential(*layers))
        self.classifier = nn.Conv2d(64, num_classes, 3, padding=1)

    def backbone_state_keys(self) -> dict[str, str]:
        """Map from torchvision ``vgg16_bn`` state-dict keys (``features.N.*``) to the encoder's keys."""
        starts = [sum(3 * n + 1 for n in VGG16_BLOCKS[:i]) for i in range(len(VGG16_BLOCKS))]
        return vgg_feature_keys({f"encoder.{i}": (start, block) for i, (start, block) in enumerate(zip(starts, self.encoder))})

    def forward(self, x: Tensor) -> Tensor:
        pooled = []
        for block in self.encoder:
            x = block(x)
            size = (int(x.shape[2]), int(x.shape[3]))  # plain ints: ONNX export takes constant sizes
            x, indices = F.max_pool2d(x, 2, 2, return_indices=True)
            pooled.append((indices, size))
        for block, (indices, size) in zip(self.decoder, reversed(pooled)):
            x = block(max_unpool(x, indices, size))
        return self.classifier(x)
