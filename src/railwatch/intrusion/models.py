"""The intrusion module's networks, listed with their size and cost, like ``timm.list_models``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from railwatch.config import DetModelConfig, SegModelConfig
from railwatch.nn.device import module_device


@dataclass(frozen=True)
class ModelInfo:
    """One network: its task, size and cost at its default input.

    Attributes:
        gflops: Multiply-adds count twice (torch's FLOP counter), for one image, inference form.
    """

    name: str
    task: str
    description: str
    input_size: tuple[int, int]
    params: int
    gflops: float

    def to_dict(self) -> dict:
        return asdict(self)


def _segmenters() -> dict[str, tuple[str, Callable[[], nn.Module], tuple[int, int]]]:
    from railwatch.intrusion.seg.model import build_segmenter

    default = SegModelConfig()
    return {
        "bisenetv2": (
            "BiSeNetV2 of paper 003 Table 1, reference head",
            lambda: build_segmenter(default, aux=False),
            (default.input_height, default.input_width),
        ),
        "bisenetv2-small": (
            "BiSeNetV2, 128-wide pixel-shuffle head (shipped)",
            lambda: build_segmenter(default.model_copy(update={"head_channels": 128, "upsample": "shuffle"}), aux=False),
            (default.input_height, default.input_width),
        ),
        "fcn": (
            "plain FCN baseline, FCN-8s skips",
            lambda: build_segmenter(default.model_copy(update={"arch": "fcn"})),
            (default.input_height, default.input_width),
        ),
    }


def _detectors() -> dict[str, tuple[str, Callable[[], nn.Module], tuple[int, int]]]:
    from railwatch.intrusion.det.model import build_detector

    default = DetModelConfig()
    size = (default.input_height, default.input_width)
    return {
        "st-yolo": (
            "ST-YOLO: ShuffleNetV2+SE, DilateFormer (r=1), YOLOv8 neck/head",
            lambda: build_detector(default),
            size,
        ),
        "yolov8s": ("YOLOv8s baseline: CSP-Darknet, same neck/head", lambda: build_detector(default.model_copy(update={"arch": "yolov8s"})), size),
    }


def count_params(net: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in net.parameters())


@torch.no_grad()
def count_gflops(net: nn.Module, input_size: tuple[int, int]) -> float:
    """GFLOPs of one ``(1, 3, H, W)`` forward pass in eval mode (2 FLOPs per multiply-add)."""
    net = net.eval()
    with FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, *input_size, device=module_device(net)))
    return counter.get_total_flops() / 1e9


def list_models() -> list[ModelInfo]:
    """Every intrusion network with parameters and GFLOPs at its default input size."""
    out = []
    for task, networks in (("object-det", _detectors()), ("track-seg", _segmenters())):
        for name, (description, build, size) in networks.items():
            net = build()
            out.append(ModelInfo(name, task, description, size, count_params(net), round(count_gflops(net, size), 2)))
    return out
