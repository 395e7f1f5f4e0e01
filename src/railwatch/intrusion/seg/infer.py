"""Load a trained segmenter and turn images into class maps, rail masks and fitted rails."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from railwatch.checkpoint import load_checkpoint
from railwatch.config import IntrusionConfig, RailFitConfig, SegModelConfig
from railwatch.errors import InputError, NoRailsFoundError
from railwatch.imageio import read_rgb
from railwatch.intrusion.railfit import RailFit, fit_rails
from railwatch.intrusion.seg.data import to_tensor
from railwatch.intrusion.seg.model import build_segmenter
from railwatch.intrusion.seg.train import TASK
from railwatch.nn.inference import prepare_for_inference


@dataclass(frozen=True)
class Segmentation:
    """What the segmenter saw in one image.

    Attributes:
        classes: ``(H, W)`` uint8 class ids at the image's own size.
        rail_mask: ``(H, W)`` bool, the rail class.
        rails: Rails fitted on the rail mask (ego pair marked), or ``None`` when none were found.
    """

    classes: np.ndarray
    rail_mask: np.ndarray
    rails: RailFit | None


def load_segmenter_net(path: str | Path) -> tuple[nn.Module, SegModelConfig, dict[str, Any]]:
    """The network of a segmenter checkpoint as trained (eval mode, no auxiliary heads), its settings and meta.

    Raises:
        InputError: missing or unreadable file, not a segmenter, or weights that do not fit.
    """
    payload = load_checkpoint(path, TASK)
    cfg = SegModelConfig.model_validate(payload["model"])
    net = build_segmenter(cfg, aux=False)
    try:
        net.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
    except RuntimeError as err:
        raise InputError(f"{path}: weights do not fit a {cfg.arch} network ({str(err).splitlines()[0]})") from None
    return net.eval(), cfg, payload.get("meta", {})


class Segmenter:
    """A trained track segmenter, ready to predict.

    Args:
        net: The network (eval mode).
        cfg: Its settings (classes, input size).
        device: Where to run it.
        meta: What its checkpoint recorded.
    """

    def __init__(
        self, net: nn.Module, cfg: SegModelConfig, device: str | torch.device = "cpu", meta: dict[str, Any] | None = None
    ) -> None:
        self.cfg = cfg
        self.meta = meta or {}  # what the checkpoint recorded: data, steps, validation metrics
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.rail_id = cfg.classes.index("rail") if "rail" in cfg.classes else None

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Segmenter:
        """Rebuild the network from a railwatch checkpoint (read with ``weights_only=True``), ready to predict.

        The network is prepared for inference (:func:`~railwatch.nn.inference.prepare_for_inference`:
        batch norms folded, channels-last), so it is for predicting and exporting, not training.
        """
        net, cfg, meta = load_segmenter_net(path)
        return cls(prepare_for_inference(net), cfg, device, meta)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(H, W)`` the network sees."""
        return self.cfg.input_height, self.cfg.input_width

    @torch.no_grad()
    def predict(self, images: list[np.ndarray], source: str = "image") -> list[np.ndarray]:
        """Class maps of ``(H, W, 3)`` uint8 RGB images, each at its own size.

        Raises:
            InputError: an image is not ``(H, W, 3)``.
        """
        batch = []
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3:
                raise InputError(f"{source}: expected an (H, W, 3) RGB image, got shape {image.shape}")
            x = to_tensor(image)[None]
            if tuple(x.shape[-2:]) != self.input_size:
                x = F.interpolate(x, size=self.input_size, mode="bilinear", align_corners=False)
            batch.append(x)
        logits = self.net(torch.cat(batch).to(self.device))
        out = []
        for image, scores in zip(images, logits):
            if tuple(image.shape[:2]) != self.input_size:
                scores = F.interpolate(scores[None], size=image.shape[:2], mode="bilinear", align_corners=False)[0]
            out.append(scores.argmax(0).to(torch.uint8).cpu().numpy())
        return out

    def segment(self, image: np.ndarray, railfit: RailFitConfig | None = None, source: str = "image") -> Segmentation:
        """Class map, rail mask and fitted rails of one image."""
        classes = self.predict([image], source)[0]
        rail_mask = classes == self.rail_id if self.rail_id is not None else np.zeros(classes.shape, bool)
        try:
            rails = fit_rails(rail_mask, railfit, source=source)
        except NoRailsFoundError:
            rails = None
        return Segmentation(classes, rail_mask, rails)


def segment_to_files(segmenter: Segmenter, path: Path, out: Path, cfg: IntrusionConfig) -> dict[str, Any]:
    """Segment one image file and write NAME_classes.png, NAME_rail.png, NAME_overlay.png, NAME.json.

    Returns:
        The JSON record: image, output files, rail pixel count, fitted rails, and whether an ego
        track was found.
    """
    from railwatch.imageio import write_image, write_text
    from railwatch.viz import blend_classes, draw_rail_overlay

    image = read_rgb(path)
    seg = segmenter.segment(image, cfg.railfit, source=str(path))
    stem = out / path.stem
    files = {
        "classes": write_image(Image.fromarray(seg.classes), f"{stem}_classes.png"),
        "rail_mask": write_image(Image.fromarray(seg.rail_mask.astype(np.uint8) * 255), f"{stem}_rail.png"),
    }
    painted = blend_classes(image, seg.classes, segmenter.cfg.classes)
    overlay = draw_rail_overlay(painted, seg.rails, gauge=cfg.gauge) if seg.rails else Image.fromarray(painted)
    files["overlay"] = write_image(overlay, f"{stem}_overlay.png")
    record = {
        "image": str(path),
        **{k: str(v) for k, v in files.items()},
        "rail_pixels": int(seg.rail_mask.sum()),
        "rails": seg.rails.to_dict()["rails"] if seg.rails else [],
        "ego": bool(seg.rails and seg.rails.ego is not None),
    }
    write_text(json.dumps(record, indent=1), f"{stem}.json")
    return record
