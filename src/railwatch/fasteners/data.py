"""Fastener crops: crop sets, grey square images, users' crop folders, generated crops, splits, augmentation (paper 000).

Preparation as in the paper:

- each crop is zero-padded on its short side to a square, keeping its aspect ratio, then
  resized to 128x128 with bilinear interpolation (section 2.5.1, :func:`square_resize`);
  cutting crops out of annotated track images is :mod:`railwatch.fasteners.cropping`;
- training crops are flipped horizontally and their brightness varied by +-20%
  (section 2.5.1, :func:`augment_batch`);
- the splits follow section 3.1.1 and Table 4: 1200 normal crops to train on, 600 normal and
  40 anomalous to validate, 200 normal and 60 anomalous to test, stratified per anomaly kind
  (:func:`split_generated`); the MNIST check of section 3.1.1 is :mod:`railwatch.fasteners.mnist`.

Users' crops (:func:`read_crop_folder`) are read from ``ROOT/normal/*`` and
``ROOT/abnormal/<kind>/*``. Images are grey ``uint8``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from railwatch.errors import InputError
from railwatch.imageio import IMAGE_SUFFIXES, _open_image

IMAGE_SIZE = 128
"""Side of the square crops the networks see (section 2.5.1)."""
NORMAL_KIND = "normal"

_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


# ---------------------------------------------------------------------------------------------
# crop sets


@dataclass(frozen=True, eq=False)  # eq=False: arrays do not compare to a single bool, so sets compare by identity
class CropSet:
    """Grey fastener crops with labels.

    Attributes:
        images: ``(N, H, W)`` uint8 crops (``H = W = 128`` in the paper).
        labels: ``(N,)`` int64, 0 normal, 1 anomalous.
        kinds: Per image ``"normal"`` or the anomaly kind (``"broken_clip"``, ``"digit-0"``).
        sources: Per image the file it came from, or e.g. ``"mnist-t10k#123"``.
    """

    images: np.ndarray
    labels: np.ndarray
    kinds: tuple[str, ...]
    sources: tuple[str, ...]

    def __post_init__(self) -> None:
        images, labels = np.asarray(self.images), np.asarray(self.labels).astype(np.int64, copy=False)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise InputError(f"crop images must be (N, H, W) uint8, got {images.shape} {images.dtype}")
        n = len(images)
        if labels.shape != (n,) or len(self.kinds) != n or len(self.sources) != n:
            raise InputError(
                f"a crop set of {n} images needs as many labels, kinds and sources "
                f"(got {labels.shape[0] if labels.ndim else 0}, {len(self.kinds)}, {len(self.sources)})"
            )
        if not np.isin(labels, (0, 1)).all():
            raise InputError(f"crop labels must be 0 (normal) or 1 (anomalous), got {sorted(set(labels.tolist()))}")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "sources", tuple(self.sources))

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: np.ndarray | Sequence[int]) -> CropSet:
        """The crops at ``idx`` (indices, or a boolean mask of length N), in that order."""
        idx = np.asarray(idx)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64).reshape(-1)
        return CropSet(self.images[idx], self.labels[idx], tuple(self.kinds[i] for i in idx), tuple(self.sources[i] for i in idx))

    def normal(self) -> CropSet:
        """Only the normal crops (label 0)."""
        return self.subset(self.labels == 0)

    def concat(self, other: CropSet) -> CropSet:
        """These crops followed by ``other``'s.

        Raises:
            InputError: the two sets hold crops of different sizes.
        """
        if len(self) and len(other) and self.images.shape[1:] != other.images.shape[1:]:
            raise InputError(f"cannot join crops of {self.images.shape[1:]} px with crops of {other.images.shape[1:]} px")
        images = other.images if not len(self) else self.images if not len(other) else np.concatenate([self.images, other.images])
        labels = np.concatenate([self.labels, other.labels])
        return CropSet(images, labels, self.kinds + other.kinds, self.sources + other.sources)

    @property
    def has_anomalies(self) -> bool:
        """Whether any crop is anomalous."""
        return bool((self.labels == 1).any())


@dataclass(frozen=True)
class CropSplits:
    """Training (normal only), validation and test crops (section 3.1.1, Table 4)."""

    train: CropSet
    val: CropSet
    test: CropSet


def crop_set(images: list[np.ndarray], labels: list[int], kinds: list[str], sources: list[str], size: int) -> CropSet:
    """A :class:`CropSet` of ``size x size`` crops from per-crop lists (an empty set when there are none)."""
    stacked = np.stack(images) if images else np.zeros((0, size, size), np.uint8)
    return CropSet(stacked, np.array(labels, dtype=np.int64), tuple(kinds), tuple(sources))


# ---------------------------------------------------------------------------------------------
# grey images, padding and resizing


def to_grey(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 1/3/4)`` uint8 -> ``(H, W)`` uint8; colour by ITU-R 601 luma (Pillow ``L``)."""
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        raise InputError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        return np.asarray(Image.fromarray(np.ascontiguousarray(image)).convert("L"))
    if image.ndim != 2:
        raise InputError(f"expected an (H, W) grey or (H, W, 3/4) colour image, got shape {image.shape}")
    return image


def read_grey(path: Path) -> np.ndarray:
    """An image file as ``(H, W)`` uint8 grey.

    Raises:
        InputError: missing, unreadable or corrupt (naming the file).
    """
    array, mode = _open_image(path)
    if mode == "1":
        return array.astype(np.uint8) * 255
    if mode.startswith("I"):  # 16-bit (or 32-bit integer) grey
        return (np.clip(array.astype(np.float64), 0, 65535) / 257).round().astype(np.uint8)
    if mode in ("L", "RGB", "RGBA"):
        return to_grey(array)
    try:  # palette, CMYK, grey with alpha and the like: Pillow knows how to map them to grey
        with Image.open(path) as image:
            return np.asarray(image.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: not a readable image ({type(err).__name__})") from None


def square_resize(image: np.ndarray, size: int = IMAGE_SIZE, resample: str = "bilinear") -> np.ndarray:
    """Zero-pad the short side (centred) to a square, then resize to ``size x size`` (section 2.5.1).

    The padding keeps the crop's aspect ratio; the paper resizes fastener crops bilinearly and
    MNIST digits bicubically (section 3.1.1).

    Args:
        image: ``(H, W)`` grey or ``(H, W, 3/4)`` colour uint8; colour is converted to grey by
            ITU-R 601 luma (Pillow's ``L``), alpha ignored.
        size: Side of the result.
        resample: ``"bilinear"``, ``"bicubic"`` or ``"nearest"``.

    Returns:
        ``(size, size)`` uint8.

    Raises:
        InputError: an empty image, an unsupported shape or dtype, or an unknown ``resample``.
    """
    if resample not in _RESAMPLE:
        raise InputError(f"unknown resampling {resample!r}; known: {', '.join(_RESAMPLE)}")
    grey = to_grey(image)
    h, w = grey.shape
    if h == 0 or w == 0:
        raise InputError(f"cannot resize an empty {w}x{h} image")
    side = max(h, w)
    if (h, w) != (side, side):
        square = np.zeros((side, side), np.uint8)
        top, left = (side - h) // 2, (side - w) // 2
        square[top : top + h, left : left + w] = grey
        grey = square
    if side != size:
        grey = np.asarray(Image.fromarray(grey).resize((size, size), _RESAMPLE[resample]))
    return np.array(grey, dtype=np.uint8, copy=True)


# ---------------------------------------------------------------------------------------------
# crop folders


def _image_list(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def read_crop_folder(root: str | Path, size: int = IMAGE_SIZE) -> CropSet:
    """Users' own crops: ``root/normal/*`` (label 0) and ``root/abnormal/<kind>/*`` (label 1, kind = folder name).

    Images directly in ``root/abnormal/`` get the kind ``"abnormal"``. Images are read as grey
    (colour by luma) and those not ``size x size`` are :func:`square_resize`'d. The order is
    sorted: normal images by name, then anomaly kinds by name and their images by name.
    Image files are ``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.tif`` and ``.tiff``.

    Raises:
        InputError: naming the path: ``root`` missing, no images at all (empty folder), no
            ``normal/`` folder or no images in it, or an unreadable or corrupt image.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: folder not found")
    normal = _image_list(root / "normal")
    abnormal = [(p, "abnormal") for p in _image_list(root / "abnormal")]
    if (root / "abnormal").is_dir():
        for folder in sorted(p for p in (root / "abnormal").iterdir() if p.is_dir() and not p.name.startswith(".")):
            kind_images = _image_list(folder)
            if kind_images and folder.name == NORMAL_KIND:
                raise InputError(f"{folder}: an anomaly kind cannot be called {NORMAL_KIND!r}; normal crops go in normal/")
            abnormal += [(p, folder.name) for p in kind_images]
    loose = _image_list(root)
    if not normal and not abnormal:
        hint = f" ({len(loose)} directly in it: put normal crops in normal/, anomalous ones in abnormal/<kind>/)" if loose else ""
        raise InputError(f"{root}: empty folder: no images in normal/ or abnormal/{hint}")
    if not normal:
        raise InputError(f"{root / 'normal'}: no normal images (a crop folder needs normal/ with at least one image)")
    entries = [(p, NORMAL_KIND) for p in normal] + abnormal
    images = [read_grey(p) for p, _ in entries]
    images = [g if g.shape == (size, size) else square_resize(g, size) for g in images]
    labels = [0] * len(normal) + [1] * len(abnormal)
    return crop_set(images, labels, [k for _, k in entries], [str(p) for p, _ in entries], size)


def read_crops(source: str | Path, size: int = IMAGE_SIZE) -> CropSet:
    """Crops to score: one image file, a labelled crop folder (:func:`read_crop_folder`), or a plain folder of images.

    Images of a plain folder (and a single file) are labelled normal with the kind ``"unknown"``.

    Raises:
        InputError: naming the path: missing, a folder without images, or an unreadable image.
    """
    source = Path(source)
    if source.is_file():
        files = [source]
    elif (source / "normal").is_dir() or (source / "abnormal").is_dir():
        return read_crop_folder(source, size)
    elif source.is_dir():
        files = _image_list(source)
        if not files:
            raise InputError(f"{source}: empty folder: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    else:
        raise InputError(f"{source}: not found")
    images = [square_resize(read_grey(p), size) for p in files]
    return crop_set(images, [0] * len(files), ["unknown"] * len(files), [str(p) for p in files], size)


def split_crop_folder(crops: CropSet, seed: int = 0, val_fraction: float = 0.3, test_fraction: float = 0.1) -> CropSplits:
    """Split users' crops as the paper does (section 3.1.1: 60/30/10 of the normal crops; anomalies 40/60 to val/test).

    Raises:
        InputError: fewer than 5 normal crops, or fractions that leave no training crops.
    """
    normal, anomalous = crops.normal(), crops.subset(crops.labels == 1)
    n = len(normal)
    if not (0 < val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise InputError(f"validation and test fractions must leave training crops, got {val_fraction} and {test_fraction}")
    if n < 5:
        raise InputError(f"{n} normal crops are too few to train and validate on (need at least 5)")
    val = max(2, round(n * val_fraction))
    test = round(n * test_fraction)
    return split_generated(normal, anomalous, seed=seed, train=n - val - test, val_normal=val, test_normal=test)


# ---------------------------------------------------------------------------------------------
# generated crops


TABLE4_ANOMALIES: dict[str, int] = {"broken_clip": 37, "missing_bolt": 30, "occlusion": 33}
"""Anomalous crops per kind in the paper's validation + test sets (Table 4)."""


def generated_crops(seed: int, normal: int, anomalies: dict[str, int] | None = None, tag: str = "synthetic") -> CropSet:
    """``normal`` generated normal crops, then ``anomalies[kind]`` crops of each defect kind, all from ``seed``.

    Sources read ``<tag>#<seed>/<kind>/<i>``.
    """
    from railwatch.data.fastener_crops import generate_fastener_crops

    images, labels, kinds, sources = [], [], [], []
    for kind, count in {NORMAL_KIND: normal, **(anomalies or {})}.items():
        crops = generate_fastener_crops(count, seed, None if kind == NORMAL_KIND else kind)
        images += [c.image for c in crops]
        labels += [int(kind != NORMAL_KIND)] * count
        kinds += [kind] * count
        sources += [f"{tag}#{seed}/{kind}/{i}" for i in range(count)]
    return crop_set(images, labels, kinds, sources, IMAGE_SIZE)


def synthetic_protocol(seed: int = 0, normal: int = 2000, anomalies: dict[str, int] | None = None) -> CropSplits:
    """The fastener experiment of section 3.1.1 on generated crops (:mod:`railwatch.data.fastener_crops`).

    ``normal`` normal crops and, per defect kind, Table 4's counts (37 broken clips, 30 missing
    bolts, 33 occlusions) are drawn from ``seed`` and split as Table 4: 1200 normal for
    training, 600 normal + 15/12/13 anomalous for validation, 200 normal + 22/18/20 for testing
    (scaled down when ``normal`` is smaller than 2000).
    """
    anomalies = TABLE4_ANOMALIES if anomalies is None else anomalies
    pool = generated_crops(seed, normal, anomalies)
    train, val, test = (round(normal * share) for share in (0.6, 0.3, 0.1))
    return split_generated(pool.normal(), pool.subset(pool.labels == 1), seed=seed, train=train, val_normal=val, test_normal=normal - train - val)


# ---------------------------------------------------------------------------------------------
# splits


def split_generated(
    normal: CropSet,
    anomalous: CropSet,
    seed: int = 0,
    train: int = 1200,
    val_normal: int = 600,
    test_normal: int = 200,
    val_anomalous_share: float = 0.4,
) -> CropSplits:
    """A Table-4-like split of a labelled pool (section 3.1.1), stratified per anomaly kind and seeded.

    ``train`` normal crops go to training, ``val_normal`` to validation and ``test_normal`` to
    testing, drawn at random (normal crops beyond their sum are left out). Of each anomaly kind,
    ``round(n * val_anomalous_share)`` crops go to validation and the rest to testing; with the
    paper's 37/30/33 crops of three kinds and 0.4 this gives Table 4's 15/12/13 and 22/18/20.
    Within a split, normal crops come first, then anomalies by kind, each in pool order.

    Raises:
        InputError: too few normal crops, an anomalous crop in ``normal`` or a normal one in
            ``anomalous``, negative counts or a share outside [0, 1].
    """
    if min(train, val_normal, test_normal) < 0 or not 0 <= val_anomalous_share <= 1:
        raise InputError(
            f"split counts must be >= 0 and the validation share in [0, 1], "
            f"got {train}/{val_normal}/{test_normal} and {val_anomalous_share}"
        )
    if (normal.labels != 0).any():
        raise InputError("the normal pool holds anomalous crops (label 1)")
    if (anomalous.labels != 1).any():
        raise InputError("the anomalous pool holds normal crops (label 0)")
    needed = train + val_normal + test_normal
    if len(normal) < needed:
        raise InputError(f"{len(normal)} normal crops are too few for {train} train + {val_normal} val + {test_normal} test")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(normal))
    parts = np.split(order[:needed], [train, train + val_normal])
    train_idx, val_idx, test_idx = (np.sort(p) for p in parts)
    val_anom, test_anom = [], []
    kinds = np.array(anomalous.kinds, dtype=object)
    for kind in sorted(set(anomalous.kinds)):
        members = np.flatnonzero(kinds == kind)
        n_val = int(math.floor(len(members) * val_anomalous_share + 0.5))
        shuffled = rng.permutation(members)
        val_anom.append(np.sort(shuffled[:n_val]))
        test_anom.append(np.sort(shuffled[n_val:]))

    def join(normal_idx: np.ndarray, anomalous_idx: list[np.ndarray]) -> CropSet:
        idx = np.concatenate(anomalous_idx) if anomalous_idx else np.zeros(0, np.int64)
        return normal.subset(normal_idx).concat(anomalous.subset(idx))

    return CropSplits(normal.subset(train_idx), join(val_idx, val_anom), join(test_idx, test_anom))


# ---------------------------------------------------------------------------------------------
# augmentation and the data set


def augment_batch(images: torch.Tensor, generator: torch.Generator, brightness: float = 0.2, flip: bool = True) -> torch.Tensor:
    """Flip and brighten a batch at random (section 2.5.1: horizontal flips and +-20% brightness).

    Per image, from ``generator``: a horizontal flip with probability 0.5 (when ``flip``) and a
    brightness factor uniform in ``[1 - brightness, 1 + brightness]``; the result is clamped to
    [0, 1]. Both draws are made whatever the options, so the stream does not depend on them.

    Args:
        images: ``(N, C, H, W)`` float in [0, 1] (``C = 1`` for grey crops), on any device.
        generator: Source of the draws (on the CPU or the images' device).
        brightness: Largest relative brightness change, in [0, 1].
        flip: Flip at random.

    Returns:
        A new ``(N, C, H, W)`` tensor.

    Raises:
        InputError: not a 4-D batch, or ``brightness`` outside [0, 1].
    """
    if images.ndim != 4:
        raise InputError(f"expected an (N, C, H, W) batch, got shape {tuple(images.shape)}")
    if not 0 <= brightness <= 1:
        raise InputError(f"brightness must be in [0, 1], got {brightness}")
    n = images.shape[0]
    flips = torch.rand(n, generator=generator, device=generator.device) < 0.5
    factors = 1 + (2 * torch.rand(n, generator=generator, device=generator.device) - 1) * brightness
    flips, factors = flips.to(images.device), factors.to(images.device, images.dtype)
    out = torch.where(flips.view(-1, 1, 1, 1), images.flip(-1), images) if flip else images
    return (out * factors.view(-1, 1, 1, 1)).clamp(0, 1)


class CropDataset(Dataset):
    """Crops as ``(image, label)``: a ``(1, H, W)`` float tensor in [0, 1] and 0 (normal) or 1.

    With ``augment`` each crop is flipped and brightened at random (:func:`augment_batch`); the
    draws of item ``i`` come from ``(seed, epoch, i)`` only, so runs repeat and DataLoader
    workers agree. Set :attr:`epoch` (or call :meth:`set_epoch`) before each epoch.

    Args:
        crops: The crops.
        augment: Augment as in section 2.5.1 (training).
        seed: Seed of the augmentation.
    """

    def __init__(self, crops: CropSet, augment: bool = False, seed: int = 0) -> None:
        self.crops, self.augment, self.seed = crops, augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the random draws of ``epoch`` from now on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(np.array(self.crops.images[index], dtype=np.float32)).div_(255).unsqueeze(0)
        if self.augment:
            state = np.random.SeedSequence([self.seed, self.epoch, index]).generate_state(2, np.uint32)
            generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
            image = augment_batch(image.unsqueeze(0), generator)[0]
        return image, int(self.crops.labels[index])
