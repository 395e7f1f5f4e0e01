"""Load a trained detector and find objects in RGB images (letterbox -> network -> NMS -> image px)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from railwatch.checkpoint import load_checkpoint
from railwatch.config import DetInferConfig, DetModelConfig
from railwatch.errors import InputError
from railwatch.intrusion.det.data import letterbox, unletterbox_boxes
from railwatch.intrusion.det.model import DecodedDetector, build_detector
from railwatch.intrusion.det.postprocess import select_detections
from railwatch.intrusion.det.train import TASK
from railwatch.intrusion.det.types import Detections
from railwatch.nn.inference import prepare_for_inference


def load_detector_net(path: str | Path) -> tuple[DecodedDetector, DetModelConfig, dict[str, Any]]:
    """The decoded network of a detector checkpoint (eval mode), its settings and its meta.

    Raises:
        InputError: missing or unreadable file, not a detector, or weights that do not fit.
    """
    payload = load_checkpoint(path, TASK)
    cfg = DetModelConfig.model_validate(payload["model"])
    net = build_detector(cfg)
    try:
        net.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    except RuntimeError as err:
        raise InputError(f"{path}: weights do not fit a {cfg.arch} network ({str(err).splitlines()[0]})") from None
    return DecodedDetector(net).eval(), cfg, payload.get("meta", {})


class Detector:
    """A trained detector, ready to find objects.

    Args:
        net: The decoded network (:class:`~railwatch.intrusion.det.model.DecodedDetector`).
        cfg: Its settings (classes, input size).
        infer: Score threshold, NMS IoU and detection limit.
        device: Where to run it.
        meta: What its checkpoint recorded.
    """

    def __init__(
        self,
        net: DecodedDetector,
        cfg: DetModelConfig,
        infer: DetInferConfig | None = None,
        device: str | torch.device = "cpu",
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.cfg, self.infer = cfg, infer or DetInferConfig()
        self.meta = meta or {}
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.class_names: tuple[str, ...] = cfg.classes

    @classmethod
    def load(cls, path: str | Path, infer: DetInferConfig | None = None, device: str | torch.device = "cpu") -> Detector:
        """Rebuild the detector from a railwatch checkpoint (read with ``weights_only=True``), ready to detect.

        The network is prepared for inference (:func:`~railwatch.nn.inference.prepare_for_inference`:
        batch norms folded, channels-last), so it is for detecting and exporting, not training.
        """
        net, cfg, meta = load_detector_net(path)
        return cls(prepare_for_inference(net), cfg, infer, device, meta)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(H, W)`` the network sees: the inference settings' size, else the training size."""
        return self.infer.input_height or self.cfg.input_height, self.infer.input_width or self.cfg.input_width

    @torch.no_grad()
    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        """Objects in ``(H, W, 3)`` uint8 RGB images, boxes in each image's own pixels."""
        if not images:
            return []
        h, w = self.input_size
        boxed = [letterbox(image, h, w) for image in images]
        batch = torch.from_numpy(np.stack([b[0] for b in boxed])).permute(0, 3, 1, 2).float().div(255)
        decoded = self.net(batch.to(self.device))
        found = select_detections(decoded, self.infer.conf_threshold, self.infer.iou_threshold, self.infer.max_detections)
        out = []
        for (boxes, scores, labels), (_, scale, pad), image in zip(found, boxed, images):
            boxes = unletterbox_boxes(boxes.cpu().numpy(), scale, pad, orig_size=image.shape[:2])
            out.append(Detections(boxes, scores.cpu().numpy(), labels.cpu().numpy().astype(np.int64), self.class_names))
        return out

    def detect(self, image: np.ndarray) -> Detections:
        """Objects in one ``(H, W, 3)`` uint8 RGB image."""
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
        return self.detect_batch([image])[0]
