"""The two detectors of paper 003 in one class: backbone -> PAN neck -> decoupled head.

- ``st-yolo``: ShuffleNetV2 + SE with a DilateFormer block at the deepest stage (section 2.2).
- ``yolov8s``: CSP-Darknet backbone (the baseline of Tables 8-9).
"""

from __future__ import annotations

from torch import Tensor, nn

from railwatch.config import DetModelConfig
from railwatch.intrusion.det.backbones import CSPDarknet, ShuffleNetV2SE
from railwatch.intrusion.det.head import DecoupledHead, PANNeck, decode


class YoloDetector(nn.Module):
    """Backbone, PAN neck and decoupled head; ``forward`` gives raw outputs ``(B, 4*reg_max + C, N)``."""

    def __init__(self, backbone: nn.Module, num_classes: int, reg_max: int = 16) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = PANNeck(backbone.channels)
        self.head = DecoupledHead(self.neck.channels, num_classes, reg_max)
        self.num_classes, self.reg_max = num_classes, reg_max

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.neck(self.backbone(x)))


class DecodedDetector(nn.Module):
    """A detector whose output is decoded: ``(B, N, 4 + C)`` boxes in input px and class probabilities.

    This is what inference and ONNX export run; NMS follows outside (torchvision's batched NMS).
    """

    def __init__(self, net: YoloDetector) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return decode(self.net(x), (x.shape[2], x.shape[3]), self.net.reg_max)


def build_detector(cfg: DetModelConfig) -> YoloDetector:
    """The detector ``cfg.arch`` for ``cfg.classes``, with YOLOv8's initial head biases."""
    if cfg.arch == "st-yolo":
        backbone: nn.Module = ShuffleNetV2SE(cfg.se, cfg.msda, cfg.msda_dilations, cfg.msda_window)
    else:
        backbone = CSPDarknet()
    net = YoloDetector(backbone, len(cfg.classes), cfg.reg_max)
    for m in net.modules():  # YOLOv8's norm settings
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
    net.head.init_biases((cfg.input_height, cfg.input_width))
    return net
