"""Track-segmentation data: scene images with their semantic masks, as written by ``railwatch data synth scenes``.

Layout (YOLO data-set layout plus masks)::

    DATA/data.yaml                        semantic_classes: [background, track, rail, person, ...]
    DATA/images/{train,val}/NAME.png
    DATA/masks/semantic/{train,val}/NAME.png   one class id per pixel

The semantic classes are mapped by name onto the segmenter's classes; names the segmenter does
not predict (people, cars, ...) become background, since they hide the track.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from railwatch.errors import InputError
from railwatch.imageio import IMAGE_SUFFIXES, read_rgb


def image_files(folder: str | Path) -> list[Path]:
    """Images in ``folder`` (sorted); an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"{folder}: no images in folder")
    return files


def class_lookup(semantic_names: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """A 256-entry table from semantic id to segmenter class id; unknown names map to 0."""
    table = np.zeros(256, dtype=np.int64)
    for sid, name in enumerate(semantic_names):
        if name in classes:
            table[sid] = classes.index(name)
    return table


def to_tensor(image: np.ndarray) -> Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.float32, copy=True)).permute(2, 0, 1).div_(255)


class SceneSegmentation(Dataset):
    """Images and class masks of one split of a scene data set.

    Args:
        root: Data-set folder (holds ``data.yaml``).
        split: ``"train"`` or ``"val"`` (or any folder under ``images/``).
        classes: Segmenter class names.
        size: ``(H, W)`` the network sees; images of another size are resized.
        crop: ``(h, w)`` random crop for training, ``None`` for whole images.
        augment: Random horizontal flips and brightness/contrast jitter.
        seed: Seed of the crops and jitter (combined with the sample index and epoch).
        focus_class: With probability ``focus_prob`` a crop is centred near a random pixel of
            this class (when the image has one), so rare thin classes are seen often.
        focus_prob: See ``focus_class``.
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        classes: Sequence[str],
        size: tuple[int, int],
        crop: tuple[int, int] | None = None,
        augment: bool = False,
        seed: int = 0,
        focus_class: int | None = None,
        focus_prob: float = 0.0,
    ) -> None:
        self.root = Path(root)
        spec_path = self.root / "data.yaml"
        if not spec_path.is_file():
            raise InputError(f"{spec_path}: data set description not found (make one with `railwatch data synth scenes`)")
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8")) or {}
        names = spec.get("semantic_classes")
        if not names:
            raise InputError(f"{spec_path}: no semantic_classes list")
        self.lookup = class_lookup(names, classes)
        self.images = image_files(self.root / "images" / split)
        self.masks = [self.root / "masks" / "semantic" / split / f"{p.stem}.png" for p in self.images]
        missing = [m for m in self.masks if not m.is_file()]
        if missing:
            raise InputError(f"{missing[0]}: mask missing for image {self.images[self.masks.index(missing[0])].name}")
        self.size = size
        self.crop = crop
        self.augment = augment
        self.seed = seed
        self.focus_class = focus_class
        self.focus_prob = focus_prob
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = to_tensor(read_rgb(self.images[index]))
        with Image.open(self.masks[index]) as m:
            mask = torch.from_numpy(self.lookup[np.asarray(m)])
        if image.shape[-2:] != mask.shape:
            raise InputError(f"{self.masks[index]}: mask size {tuple(mask.shape)} differs from its image")
        if tuple(image.shape[-2:]) != self.size:
            image = F.interpolate(image[None], size=self.size, mode="bilinear", align_corners=False)[0]
            mask = F.interpolate(mask[None, None].float(), size=self.size, mode="nearest")[0, 0].long()
        if self.crop or self.augment:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            image, mask = self._augment(image, mask, rng)
        return image, mask

    def _augment(self, image: Tensor, mask: Tensor, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
        if self.crop:
            h, w = self.crop
            top, left = self._crop_corner(mask, h, w, rng)
            image, mask = image[:, top : top + h, left : left + w], mask[top : top + h, left : left + w]
        if self.augment:
            if rng.random() < 0.5:
                image, mask = image.flip(-1), mask.flip(-1)
            gain, bias = rng.uniform(0.7, 1.3), rng.uniform(-0.1, 0.1)
            image = (image * gain + bias).clamp_(0, 1)
        return image.contiguous(), mask.contiguous()

    def _crop_corner(self, mask: Tensor, h: int, w: int, rng: np.random.Generator) -> tuple[int, int]:
        """Top-left corner of a crop: uniform, or around a pixel of ``focus_class`` now and then."""
        rows, cols = mask.shape[0] - h, mask.shape[1] - w
        if self.focus_class is not None and rng.random() < self.focus_prob:
            hits = torch.nonzero(mask == self.focus_class)
            if len(hits):
                r, c = hits[int(rng.integers(len(hits)))].tolist()
                top = r - h // 2 + int(rng.integers(-h // 4, h // 4 + 1))
                left = c - w // 2 + int(rng.integers(-w // 4, w // 4 + 1))
                return min(max(top, 0), rows), min(max(left, 0), cols)
        return int(rng.integers(0, rows + 1)), int(rng.integers(0, cols + 1))
