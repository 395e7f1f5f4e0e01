"""Segment full-length rail images with a trained surface model and list the defects found (paper 002).

A strip is cut into full-width tiles along the rail (:mod:`.tiling`), each tile goes through the
network with the training set's normalisation, and the defect probabilities are stitched back.
Connected defect regions become a defect list: where along the rail, how long, how large.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from torch import Tensor, nn

from railwatch.checkpoint import load_checkpoint
from railwatch.errors import InputError
from railwatch.nn.inference import prepare_for_inference
from railwatch.surface.data import Normalisation, read_grey
from railwatch.surface.models import build_surface_model
from railwatch.surface.tiling import cut_along, stitch_along
from railwatch.surface.train import TASK


class NormalisedSegmenter(nn.Module):
    """A surface network with its input preparation built in: grey pixels in, class scores out.

    Input ``(N, 1, H, W)`` grey values on the 0-255 scale; the training set's mean and standard
    deviation are applied and the grey channel is replicated to the three the network takes.
    This is what gets exported to ONNX, so the ONNX file needs nothing else.
    """

    def __init__(self, net: nn.Module, norm: Normalisation) -> None:
        super().__init__()
        self.net = net
        self.mean, self.std = norm.mean, norm.std

    def forward(self, grey: Tensor) -> Tensor:
        x = (grey - self.mean) / self.std
        return self.net(x.expand(-1, 3, -1, -1))


@dataclass(frozen=True)
class Defect:
    """One connected defect region of a strip; rows run along the rail."""

    id: int
    row_start: int
    row_end: int  # exclusive
    col_start: int
    col_end: int  # exclusive
    area_px: int
    length_px: int  # extent along the rail
    mean_probability: float

    def to_dict(self) -> dict:
        return asdict(self)


def find_defects(mask: np.ndarray, probability: np.ndarray, min_area_px: int = 1) -> list[Defect]:
    """Connected regions (8-neighbour) of ``mask`` with at least ``min_area_px`` pixels, top to bottom."""
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), bool))
    defects = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        region = labels[box] == index
        area = int(region.sum())
        if area < min_area_px:
            continue
        rows, cols = box
        defects.append(
            Defect(
                len(defects) + 1, rows.start, rows.stop, cols.start, cols.stop, area, rows.stop - rows.start,
                float(probability[box][region].mean()),
            )
        )  # fmt: skip
    return defects


@dataclass(frozen=True)
class StripResult:
    """Defect probability, mask and defect list of one strip."""

    probability: np.ndarray  # (H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) bool
    defects: list[Defect]


class SurfaceSegmenter:
    """A trained surface model ready to segment strips of any length.

    Args:
        net: The network, wrapped with its normalisation.
        tile_height: Rows per tile (as trained).
        name: Network name, e.g. ``fcn-type1``.
        device: Where to run.
        mask_threshold: Grey level above which a ground-truth mask pixel is a defect (as trained).
        meta: What the checkpoint recorded about its training (data, split, seed, scores).
        tile_width: Width of the training tiles (the network takes any width).
    """

    def __init__(
        self, net: NormalisedSegmenter, tile_height: int, name: str, device: str = "cpu",
        mask_threshold: int = 127, meta: dict | None = None, tile_width: int | None = None,
    ) -> None:  # fmt: skip
        self.net = net.eval().to(device)
        self.tile_height, self.name, self.device = tile_height, name, device
        self.mask_threshold, self.meta, self.tile_width = mask_threshold, meta or {}, tile_width

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> SurfaceSegmenter:
        """Load a ``surface train`` checkpoint (``weights_only=True``), ready to segment.

        The network is prepared for inference (:func:`~railwatch.nn.inference.prepare_for_inference`:
        batch norms folded, channels-last), so it is for predicting and exporting, not training.

        Raises:
            InputError: missing, unreadable, or not a surface model.
        """
        payload = load_checkpoint(path, TASK)
        settings = payload["model"]
        net = build_surface_model(settings["name"])
        net.load_state_dict(payload["state_dict"])
        norm = Normalisation(**settings["normalisation"])
        return cls(
            prepare_for_inference(NormalisedSegmenter(net, norm)), int(settings["tile_height"]), settings["name"], device,
            int(settings.get("mask_threshold", 127)), payload["meta"], int(settings["tile_width"]),
        )  # fmt: skip

    @torch.no_grad()
    def probabilities(self, tiles: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """Defect probability of each pixel of ``(n, h, w)`` uint8 tiles."""
        out = []
        for i in range(0, len(tiles), batch_size):
            grey = torch.as_tensor(tiles[i : i + batch_size], dtype=torch.float32, device=self.device).unsqueeze(1)
            out.append(self.net(grey).float().softmax(1)[:, 1].cpu().numpy())
        return np.concatenate(out)

    def segment(self, image: np.ndarray, threshold: float = 0.5, min_area_px: int = 4) -> StripResult:
        """Tile ``image`` (``(H, W)`` uint8 grey, rail along H), segment, stitch and list the defects.

        Raises:
            InputError: the image is shorter than one tile.
        """
        tiles, starts = cut_along(image, self.tile_height)
        probability = stitch_along(self.probabilities(tiles), starts, image.shape[0]).astype(np.float32)
        mask = probability > threshold
        return StripResult(probability, mask, find_defects(mask, probability, min_area_px))


def overlay(image: np.ndarray, result: StripResult, alpha: float = 0.55) -> Image.Image:
    """The strip in grey with its defects in red and each defect's number and extent boxed."""
    from PIL import ImageDraw

    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    rgb[result.mask] = (1 - alpha) * rgb[result.mask] + alpha * np.array([230.0, 30.0, 30.0])
    canvas = Image.fromarray(rgb.round().astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for d in result.defects:
        draw.rectangle((d.col_start - 2, d.row_start - 2, d.col_end + 1, d.row_end + 1), outline=(255, 200, 0))
        draw.text((min(d.col_end + 3, image.shape[1] - 8), d.row_start), str(d.id), fill=(255, 200, 0))
    return canvas


def segment_file(segmenter: SurfaceSegmenter, path: str | Path, threshold: float = 0.5, min_area_px: int = 4) -> tuple[np.ndarray, StripResult]:
    """Read ``path`` as grey and segment it; returns the pixels and the result.

    Raises:
        InputError: unreadable, or shorter than one tile (naming the file).
    """
    image = read_grey(path)
    try:
        return image, segmenter.segment(image, threshold, min_area_px)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
