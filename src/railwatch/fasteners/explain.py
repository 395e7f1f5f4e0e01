"""Grad-CAM heatmaps of where a crop looks anomalous (paper 000, section 2.1: "the discriminator calculates
anomaly scores and generates Grad-CAM heatmaps to localize anomalous regions").

Grad-CAM (captum's ``LayerGradCam``) weights a layer's feature maps by the gradient of the raw
anomaly score and keeps the positive part. For KD-GAN scored by its discriminator, the layer is
the discriminator's finest fused map (E-JPU's ``y_c``, 32 x 32, or level 3 without E-JPU); for
reconstruction, ssim and distillation scores it is the student generator's last level; for GANomaly and f-AnoGAN the
(first) encoder's 16 x 16 level, and for MemAE its encoder's 16 x 16 level. Maps are upsampled to the crop and scaled to ``[0, 1]`` per crop.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from captum.attr import LayerAttribution, LayerGradCam
from matplotlib import colormaps
from PIL import Image
from torch import nn

from railwatch.fasteners.fanogan import FAnoGAN
from railwatch.fasteners.ganomaly import GANomaly
from railwatch.fasteners.infer import FastenerDetector
from railwatch.fasteners.memae import MemAE
from railwatch.fasteners.scoring import raw_scores
from railwatch.imageio import write_image
from railwatch.nn.device import module_device

DCGAN_CAM_LEVEL = 7
"""Index of the DCGAN encoder's layer (GANomaly's first, f-AnoGAN's) whose output is 16 x 16 (for a 128 px crop)."""
MEMAE_CAM_LEVEL = 2
"""Index of the MemAE encoder's block whose output is 16 x 16 (for a 128 px crop)."""


def cam_layer(net: nn.Module, source: str) -> nn.Module:
    """The layer Grad-CAM reads for ``net`` scored by ``source``."""
    if isinstance(net, GANomaly):
        return net.encoder[DCGAN_CAM_LEVEL]
    if isinstance(net, FAnoGAN):
        return net.encoder[0][DCGAN_CAM_LEVEL]
    if isinstance(net, MemAE):
        return net.encoder[MEMAE_CAM_LEVEL]
    if source in ("reconstruction", "ssim", "distillation"):
        return net.student.level1
    return net.discriminator.cam_layer


def gradcam(detector: FastenerDetector, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Heatmaps ``(N, S, S)`` in ``[0, 1]`` for grey crops ``(N, S, S)`` uint8."""
    net, source = detector.net.eval(), detector.stats.source
    cam = LayerGradCam(lambda x: raw_scores(net, x, source), cam_layer(net, source))
    maps, device = [], module_device(net)
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start : start + batch_size]).to(device).float().div(255).unsqueeze(1).requires_grad_(True)
        with torch.enable_grad():
            attribution = cam.attribute(x, relu_attributions=True)
        up = LayerAttribution.interpolate(attribution.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
        maps.append(up.squeeze(1).clamp_min(0).float().cpu().numpy())
    heat = np.concatenate(maps) if maps else np.zeros((0, *images.shape[1:]), np.float32)
    peak = heat.reshape(len(heat), -1).max(axis=1, initial=0).reshape(-1, 1, 1)
    return np.where(peak > 0, heat / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def heatmap_overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """A grey crop with its heatmap blended on top in the ``jet`` colours, ``(S, S, 3)`` uint8."""
    grey = np.repeat(image[..., None].astype(np.float32), 3, axis=2)
    colour = colormaps["jet"](heat)[..., :3] * 255
    weight = alpha * heat[..., None]  # cold areas stay the crop itself
    return (grey * (1 - weight) + colour * weight).clip(0, 255).astype(np.uint8)


def write_heatmaps(
    detector: FastenerDetector, images: np.ndarray, names: list[str], out: str | Path, heat: np.ndarray | None = None
) -> list[Path]:
    """Write ``<name>_heatmap.png`` (crop | reconstruction | overlay) for every crop; returns the paths."""
    from railwatch.fasteners.data import CropSet

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    heat = gradcam(detector, images) if heat is None else heat
    crops = CropSet(images, np.zeros(len(images), np.int64), ("",) * len(images), tuple(names))
    recon = detector.reconstruct(crops)
    paths = []
    for name, image, rec, h in zip(names, images, recon, heat):
        grey = lambda a: np.repeat(a[..., None], 3, axis=2)  # noqa: E731
        panel = np.concatenate([grey(image), grey(rec), heatmap_overlay(image, h)], axis=1)
        paths.append(write_image(Image.fromarray(panel), out / f"{Path(name).stem}_heatmap.png"))
    return paths
