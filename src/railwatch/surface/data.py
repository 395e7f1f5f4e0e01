"""Rail-surface data: RSDDs and image/mask folders, tiles, normalisation and splits (paper 002, section 2.1).

Preparation as in the paper:

- every strip is cut into tiles 100 px high across its full width (section 2.1.2: 100x160 for
  Type 1, 100x55 for Type 2); rows left over at the bottom are dropped for training;
- ground-truth masks are thresholded at 127, which removes the JPEG noise of RSDDs' masks;
- pixels are normalised by the training tiles' mean and standard deviation (section 2.1.3),
  which travel with the checkpoint so evaluation and prediction reuse them;
- tiles go 90/10 into training and test sets, or into k folds for cross-validation (section 4.2).

Two layouts are read:

- RSDDs: ``<root>/Type-I RSDDs dataset/Rail surface images/*.jpg`` with masks of the same names
  in ``.../GroundTruth/``, likewise ``Type-II RSDDs dataset``;
- any folder with ``images/`` and ``masks/`` holding files of the same stem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from railwatch.data.surface_strips import RAIL_TYPES
from railwatch.errors import InputError
from railwatch.imageio import IMAGE_SUFFIXES, _open_image

MASK_THRESHOLD = 127
"""Mask pixels above this value are defects (paper 002, section 2.1.2)."""
MAX_AMBIGUOUS_FRACTION = 0.05
"""A mask with more of its pixels than this far from both black and white is not a binary mask."""


@dataclass(frozen=True)
class SurfacePair:
    """A rail-surface image and its defect mask."""

    image: Path
    mask: Path


def _image_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _match(images_dir: Path, masks_dir: Path) -> list[SurfacePair]:
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise InputError(f"{folder}: folder not found")
    images, masks = _image_files(images_dir), _image_files(masks_dir)
    if not images:
        raise InputError(f"{images_dir}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    missing = sorted(set(images) - set(masks))
    if missing:
        raise InputError(f"{images[missing[0]]}: no mask of the same name in {masks_dir} ({len(missing)} image(s) without one)")
    return [SurfacePair(images[stem], masks[stem]) for stem in images]


def rsdds_pairs(root: str | Path, rail_type: str) -> list[SurfacePair]:
    """Image/mask pairs of one rail type in an RSDDs folder (``root`` holds the ``Type-I ...`` folders).

    Raises:
        InputError: unknown rail type, missing folders, no images, or an image without a mask.
    """
    if rail_type not in RAIL_TYPES:
        raise InputError(f"unknown rail type {rail_type!r}; known: {', '.join(RAIL_TYPES)}")
    base = Path(root) / RAIL_TYPES[rail_type].folder
    return _match(base / "Rail surface images", base / "GroundTruth")


def folder_pairs(root: str | Path) -> list[SurfacePair]:
    """Pairs from ``root/images`` and ``root/masks`` matched by file stem."""
    root = Path(root)
    return _match(root / "images", root / "masks")


def find_pairs(root: str | Path, rail_type: str) -> list[SurfacePair]:
    """RSDDs pairs of ``rail_type`` when ``root`` is in that layout, else an ``images/`` + ``masks/`` folder.

    Raises:
        InputError: ``root`` is missing or in neither layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: folder not found")
    if rail_type in RAIL_TYPES and (root / RAIL_TYPES[rail_type].folder).is_dir():
        return rsdds_pairs(root, rail_type)
    if (root / "images").is_dir():
        return folder_pairs(root)
    raise InputError(f"{root}: neither an RSDDs folder ({RAIL_TYPES[rail_type].folder}/ ...) nor images/ + masks/")


def read_grey(path: str | Path) -> np.ndarray:
    """A rail image as ``(H, W)`` uint8 grey; colour images are converted by luminance.

    Raises:
        InputError: missing or unreadable.
    """
    array, mode = _open_image(path)
    if mode == "1":  # 1-bit black and white
        return array.astype(np.uint8) * 255
    if array.ndim == 3:
        array = (array[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round()
    elif array.dtype == np.uint16 or mode.startswith("I"):  # 16-bit grey
        array = array.astype(np.float32) / 257
    return np.clip(array, 0, 255).astype(np.uint8)


def read_defect_mask(path: str | Path, threshold: int = MASK_THRESHOLD) -> np.ndarray:
    """A ground-truth mask as ``(H, W)`` bool: pixels above ``threshold`` are defects.

    Raises:
        InputError: missing, unreadable, or not a binary mask: more than 5% of its pixels lie far
            from both black and white (a photograph or a soft map passed as a mask).
    """
    grey = read_grey(path)
    ambiguous = float(((grey > 48) & (grey < 207)).mean())
    if ambiguous > MAX_AMBIGUOUS_FRACTION:
        raise InputError(
            f"{path}: not a binary mask: {ambiguous:.0%} of its pixels are neither near black nor near white "
            f"(threshold {threshold})"
        )
    return grey > threshold


def load_pair(pair: SurfacePair, threshold: int = MASK_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Image (uint8) and thresholded mask (bool) of ``pair``, checked to be the same size.

    Raises:
        InputError: unreadable files, a mask that is not binary, or sizes that differ.
    """
    image, mask = read_grey(pair.image), read_defect_mask(pair.mask, threshold)
    if image.shape != mask.shape:
        raise InputError(
            f"{pair.mask}: mask is {mask.shape[1]}x{mask.shape[0]} px but its image {pair.image.name} is "
            f"{image.shape[1]}x{image.shape[0]}"
        )
    return image, mask


@dataclass
class SurfaceTiles:
    """Tiles of a set of strips: pixels, masks and where each tile came from."""

    images: np.ndarray  # (N, h, w) uint8
    masks: np.ndarray  # (N, h, w) bool
    sources: list[tuple[str, int]]  # (image file name, first row)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: np.ndarray) -> SurfaceTiles:
        """The tiles at ``indices``."""
        return SurfaceTiles(self.images[indices], self.masks[indices], [self.sources[i] for i in indices])


def cut_tiles(array: np.ndarray, tile_height: int) -> np.ndarray:
    """Non-overlapping full-width tiles from the top; rows left over at the bottom are dropped."""
    n = array.shape[0] // tile_height
    return array[: n * tile_height].reshape(n, tile_height, *array.shape[1:])


def load_tiles(pairs: list[SurfacePair], tile_height: int = 100, threshold: int = MASK_THRESHOLD) -> SurfaceTiles:
    """Read ``pairs`` and cut every strip into full-width tiles ``tile_height`` high (section 2.1.2).

    Raises:
        InputError: no pairs, a bad pair, an image shorter than a tile, or images of different widths.
    """
    if not pairs:
        raise InputError("no image/mask pairs to read")
    images, masks, sources = [], [], []
    width = None
    for pair in pairs:
        image, mask = load_pair(pair, threshold)
        if width is None:
            width = image.shape[1]
        if image.shape[1] != width:
            raise InputError(f"{pair.image}: {image.shape[1]} px wide, but the first image is {width}; tiles must share a width")
        if image.shape[0] < tile_height:
            raise InputError(f"{pair.image}: {image.shape[0]} px high, shorter than one {tile_height}-px tile")
        images.append(cut_tiles(image, tile_height))
        masks.append(cut_tiles(mask, tile_height))
        sources += [(pair.image.name, i * tile_height) for i in range(len(images[-1]))]
    return SurfaceTiles(np.concatenate(images), np.concatenate(masks), sources)


@dataclass(frozen=True)
class Normalisation:
    """Pixel mean and standard deviation of the training tiles (paper 002, section 2.1.3), on the 0-255 scale."""

    mean: float
    std: float

    @classmethod
    def fit(cls, images: np.ndarray) -> Normalisation:
        """Mean and standard deviation of ``images`` (uint8)."""
        values = images.astype(np.float64)
        return cls(float(values.mean()), float(max(values.std(), 1e-6)))

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "std": self.std}

    def apply(self, images: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``(..., h, w)`` grey pixels -> ``(..., 3, h, w)`` float32 network input, grey replicated to 3 channels."""
        x = torch.as_tensor(images, dtype=torch.float32)
        x = (x - self.mean) / self.std
        return x.unsqueeze(-3).expand(*x.shape[:-2], 3, *x.shape[-2:]).contiguous()


def holdout_split(n: int, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded shuffle of ``n`` tiles into training and test indices (90/10 by default, section 2.1.2).

    Raises:
        InputError: too few tiles for both sides.
    """
    n_val = int(round(n * val_fraction))
    if n < 2 or not 0 < n_val < n:
        raise InputError(f"{n} tile(s) cannot be split {1 - val_fraction:.0%}/{val_fraction:.0%}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def kfold_splits(n: int, folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded k-fold cross-validation: ``folds`` disjoint validation sets covering all ``n`` tiles (section 4.2).

    Raises:
        InputError: fewer tiles than folds, or fewer than 2 folds.
    """
    if folds < 2 or n < folds:
        raise InputError(f"{n} tile(s) cannot be cut into {folds} folds")
    parts = np.array_split(np.random.default_rng(seed).permutation(n), folds)
    return [(np.sort(np.concatenate(parts[:i] + parts[i + 1 :])), np.sort(part)) for i, part in enumerate(parts)]


class TileDataset(Dataset):
    """Normalised tiles and their class maps (0 background, 1 defect) for training and evaluation.

    Args:
        tiles: The tiles.
        norm: Normalisation of the training set.
        flips: Flip tiles at random along and across the rail (off in the paper).
        seed: Seed of the flips; each (seed, epoch, index) flips the same way.
    """

    def __init__(self, tiles: SurfaceTiles, norm: Normalisation, flips: bool = False, seed: int = 0) -> None:
        self.tiles, self.norm, self.flips, self.seed = tiles, norm, flips, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.tiles.images[index], self.tiles.masks[index]
        if self.flips:
            rng = np.random.default_rng([self.seed, self.epoch, index])
            for axis in (0, 1):
                if rng.random() < 0.5:
                    image, mask = np.flip(image, axis), np.flip(mask, axis)
        return self.norm.apply(image.copy()), torch.from_numpy(mask.astype(np.int64))
