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
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from railwatch.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an RGB image as ``(H, W, 3)`` uint8; grey and RGBA images are refused with the reason.

    Raises:
        InputError: missing, unreadable, or not three-channel colour.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            array = np.asarray(image)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: not a readable image ({type(err).__name__})") from None
    if mode != "RGB" or array.ndim != 3 or array.shape[2] != 3:
        channels = 1 if array.ndim == 2 else array.shape[2]
        raise InputError(f"{path}: expected a 3-channel RGB image, got {channels} channel(s) ({mode})")
    return array


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
            top = int(rng.integers(0, image.shape[1] - h + 1))
            left = int(rng.integers(0, image.shape[2] - w + 1))
            image, mask = image[:, top : top + h, left : left + w], mask[top : top + h, left : left + w]
        if self.augment:
            if rng.random() < 0.5:
                image, mask = image.flip(-1), mask.flip(-1)
            gain, bias = rng.uniform(0.7, 1.3), rng.uniform(-0.1, 0.1)
            image = (image * gain + bias).clamp_(0, 1)
        return image.contiguous(), mask.contiguous()
