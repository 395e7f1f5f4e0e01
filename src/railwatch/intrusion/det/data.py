"""Object-detection data: YOLO and Pascal VOC readers, letterboxing, the training data set, collation.

Two layouts are read, both onto the detector's class list (names are matched through
:func:`railwatch.intrusion.risk.canonical_type`, so ``pedestrian`` is ``person``)::

    YOLO (``railwatch data synth scenes``)      Pascal VOC
    DATA/data.yaml   train, val, names          DATA/Annotations/ID.xml
    DATA/images/{train,val}/NAME.png            DATA/JPEGImages/ID.jpg
    DATA/labels/{train,val}/NAME.txt            DATA/ImageSets/Main/{train,val}.txt
        one ``cls cx cy w h`` per line, normalised

The files themselves are read by :mod:`railwatch.annotations`; this module maps their classes
onto the detector's and refuses YOLO boxes reaching past the image. Boxes are ``x1, y1, x2, y2``
in pixel-edge coordinates: an image ``W`` px wide spans ``[0, W]``, its first pixel ``[0, 1]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from railwatch.annotations import (
    parse_yolo_line,
    read_data_yaml,
    read_voc_objects,
    read_yolo_lines,
    voc_image_path,
    yolo_class_names,
    yolo_label_path,
)
from railwatch.config import DetAugmentConfig
from railwatch.errors import InputError
from railwatch.imageio import read_rgb
from railwatch.intrusion.det.augment import clip_boxes, hsv_jitter, mosaic4, random_affine, random_flip
from railwatch.intrusion.risk import canonical_type
from railwatch.intrusion.seg.data import image_files, to_tensor

LABEL_TOLERANCE = 0.005
"""How far (as a fraction of the image size) a YOLO box may reach past the image edge before it is an error."""


@dataclass(frozen=True)
class DetectionRecord:
    """One image of a detection data set and its objects.

    Attributes:
        image_path: The image file.
        boxes: ``(N, 4)`` float32 boxes ``x1, y1, x2, y2`` in px of the original image.
        class_ids: ``(N,)`` int64 ids into the detector's class list.
    """

    image_path: Path
    boxes: np.ndarray
    class_ids: np.ndarray


# ---------------------------------------------------------------------------------------------
# class names


def _class_key(name: Any) -> str:
    """The canonical spelling of a class name: a known object type, else the lower-case name."""
    try:
        return canonical_type(str(name))
    except InputError:
        return str(name).strip().lower()


def match_classes(names: Sequence[Any], class_names: Sequence[str], source: Path) -> list[int]:
    """Index into ``class_names`` of each data-set class name (synonyms allowed).

    Raises:
        InputError: naming ``source`` when a data-set name matches none of ``class_names``.
    """
    keys = {_class_key(name): i for i, name in enumerate(class_names)}
    ids = []
    for name in names:
        if _class_key(name) not in keys:
            raise InputError(f"{source}: class {name!r} is none of the detector's classes ({', '.join(class_names)})")
        ids.append(keys[_class_key(name)])
    return ids


# ---------------------------------------------------------------------------------------------
# YOLO


def _image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an RGB image from its header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            (width, height), mode = image.size, image.mode
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: not a readable image ({type(err).__name__})") from None
    if mode != "RGB":
        raise InputError(f"{path}: expected a 3-channel RGB image, got mode {mode}")
    return height, width


def _yolo_class_ids(spec: dict, class_names: Sequence[str], spec_path: Path) -> dict[int, int]:
    """Data-set class id -> detector class id, from ``names`` as a list or an ``{id: name}`` mapping."""
    names = yolo_class_names(spec, spec_path)
    if names is None:
        raise InputError(f"{spec_path}: no names list")
    return dict(zip(names, match_classes(list(names.values()), class_names, spec_path)))


def _split_images(root: Path, spec: dict, split: str) -> list[Path]:
    """Images of ``split``: the folder(s) or list file ``data.yaml`` gives, else ``images/SPLIT``.

    Relative entries are looked up beside ``data.yaml`` first (so a moved data set still
    works), then under its ``path`` key.
    """
    entries = spec.get(split, f"images/{split}")
    files: list[Path] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        where = root / str(entry)
        if not where.exists() and spec.get("path") and (Path(str(spec["path"])) / str(entry)).exists():
            where = Path(str(spec["path"])) / str(entry)
        if where.suffix == ".txt" and where.is_file():
            listed = [line.strip() for line in where.read_text(encoding="utf-8").splitlines() if line.strip()]
            if not listed:
                raise InputError(f"{where}: no images listed")
            files += [(where.parent / name).resolve() for name in listed]
        else:
            files += image_files(where)
    return files


def _parse_yolo_line(line: str, where: str, ids: dict[int, int]) -> tuple[int, list[float]]:
    """Detector class id and normalised ``x1, y1, x2, y2`` of one label line."""
    cls, (cx, cy, w, h) = parse_yolo_line(line, where)
    if cls not in ids:
        raise InputError(f"{where}: class id {cls} out of range (data.yaml names {len(ids)} classes)")
    box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
    lo, hi = -LABEL_TOLERANCE, 1 + LABEL_TOLERANCE
    if w < 0 or h < 0 or not all(lo <= v <= hi for v in [cx, cy, w, h, *box]):
        raise InputError(f"{where}: box {line.strip()!r} is not inside [0, 1] (normalised cx cy w h)")
    return ids[cls], box


def _read_yolo_labels(label: Path, size: tuple[int, int], ids: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes in px and detector class ids of one label file; none when the file does not exist."""
    if not label.is_file():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    parsed = [_parse_yolo_line(line, where, ids) for where, line in read_yolo_lines(label)]
    height, width = size
    boxes = np.array([box for _, box in parsed], dtype=np.float64).reshape(-1, 4) * [width, height, width, height]
    class_ids = np.array([cls for cls, _ in parsed], dtype=np.int64)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    return boxes.astype(np.float32), class_ids


def read_yolo_split(root: str | Path, split: str, class_names: Sequence[str]) -> list[DetectionRecord]:
    """Read one split of a YOLO data set (as ``railwatch data synth scenes`` writes it).

    ``root/data.yaml`` names the split's image folder (``train: images/train``) and the classes
    (``names``, a list or an ``{id: name}`` mapping). Each image's labels are in the matching
    ``labels/`` folder, ``NAME.txt`` with one ``cls cx cy w h`` line (normalised) per object;
    an image without a label file has no objects.

    Args:
        root: Data-set folder (holds ``data.yaml``).
        split: Key of ``data.yaml`` naming the images (``train``, ``val``, ``test``).
        class_names: The detector's classes, in id order.

    Returns:
        One record per image, in file-name order.

    Raises:
        InputError: missing or bad ``data.yaml``, a class name that matches none of
            ``class_names``, no images, a non-RGB or unreadable image, or a bad label line
            (naming the file and line).
    """
    root = Path(root)
    spec = read_data_yaml(root / "data.yaml")
    ids = _yolo_class_ids(spec, class_names, root / "data.yaml")
    records = []
    for image in _split_images(root, spec, split):
        boxes, class_ids = _read_yolo_labels(yolo_label_path(image), _image_size(image), ids)
        records.append(DetectionRecord(image, boxes, class_ids))
    return records


# ---------------------------------------------------------------------------------------------
# Pascal VOC


def _voc_ids(root: Path, split: str) -> list[str]:
    """Image ids of a VOC split: ``ImageSets/Main/SPLIT.txt``, or every annotation for ``train``."""
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if listing.is_file():
        ids = [line.split()[0] for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not ids:
            raise InputError(f"{listing}: no images listed")
        return ids
    if split != "train":
        raise InputError(f"{listing}: split list not found (without ImageSets/Main lists all annotations are 'train')")
    ids = sorted(p.stem for p in (root / "Annotations").glob("*.xml"))
    if not ids:
        raise InputError(f"{root / 'Annotations'}: no annotations (.xml) in folder")
    return ids


def read_voc_annotation(
    xml_path: Path, class_names: Sequence[str], skip_difficult: bool = False
) -> tuple[str | None, np.ndarray, np.ndarray]:
    """Image file name, boxes (0-based px edges) and class ids of one VOC annotation file.

    VOC corners are 1-based pixel indices, ``xmax`` inclusive, so the box is
    ``xmin - 1, ymin - 1, xmax, ymax`` in pixel-edge coordinates.

    Raises:
        InputError: naming the file when it is not well-formed XML, lacks a field, or names a
            class that matches none of ``class_names``.
    """
    annotation = read_voc_objects(xml_path, skip_difficult)
    class_ids = np.array(match_classes(annotation.names, class_names, xml_path), dtype=np.int64)
    return annotation.filename, annotation.boxes.astype(np.float32), class_ids


def read_voc_split(
    root: str | Path, split: str, class_names: Sequence[str], skip_difficult: bool = False
) -> list[DetectionRecord]:
    """Read one split of a Pascal VOC data set.

    The split's ids come from ``ImageSets/Main/SPLIT.txt``; without that file every
    ``Annotations/*.xml`` is the ``train`` split and other splits are an error.

    Args:
        root: Data-set folder (holds ``Annotations/`` and ``JPEGImages/``).
        split: Split name (``train``, ``val``, ``trainval``, ``test``).
        class_names: The detector's classes, in id order.
        skip_difficult: Leave out objects marked ``difficult``.

    Returns:
        One record per listed image, in list order; boxes clipped to the image.

    Raises:
        InputError: naming the file: no list or an empty one, a missing annotation or image,
            bad XML, a missing field or an unknown class.
    """
    root = Path(root)
    records = []
    for image_id in _voc_ids(root, split):
        xml_path = root / "Annotations" / f"{image_id}.xml"
        filename, boxes, class_ids = read_voc_annotation(xml_path, class_names, skip_difficult)
        image = voc_image_path(root, image_id, filename, xml_path)
        height, width = _image_size(image)
        boxes, class_ids = clip_boxes(boxes, class_ids, height, width)
        records.append(DetectionRecord(image, boxes, class_ids))
    return records


def read_detection_split(
    root: str | Path, split: str, class_names: Sequence[str], skip_difficult: bool = False
) -> list[DetectionRecord]:
    """Read a split of a YOLO (``data.yaml``) or Pascal VOC (``Annotations/``) data set.

    Args:
        root: Data-set folder.
        split: Split name.
        class_names: The detector's classes, in id order.
        skip_difficult: Leave out VOC objects marked ``difficult``.

    Raises:
        InputError: the folder is neither format, the split is empty, or anything
            :func:`read_yolo_split` or :func:`read_voc_split` refuses.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: folder not found")
    if (root / "data.yaml").is_file():
        records = read_yolo_split(root, split, class_names)
    elif (root / "Annotations").is_dir():
        records = read_voc_split(root, split, class_names, skip_difficult)
    else:
        raise InputError(f"{root}: neither a YOLO data set (data.yaml) nor Pascal VOC (Annotations/)")
    if not records:
        raise InputError(f"{root}: split {split!r} has no images")
    return records


# ---------------------------------------------------------------------------------------------
# letterbox


def resize_to_fit(image: np.ndarray, height: int, width: int) -> tuple[np.ndarray, float]:
    """Resize (Pillow bilinear) keeping the aspect ratio so the image just fits ``(height, width)``.

    Returns:
        The resized ``(h, w, 3)`` image and the scale factor (new px per original px).
    """
    h, w = image.shape[:2]
    scale = min(height / h, width / w)
    new_h, new_w = min(height, max(1, round(h * scale))), min(width, max(1, round(w * scale)))
    if (new_h, new_w) != (h, w):
        image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BILINEAR))
    return image, scale


def pad_to(image: np.ndarray, height: int, width: int, fill: int = 114) -> tuple[np.ndarray, tuple[float, float]]:
    """Pad an image no larger than ``(height, width)`` evenly to that size.

    Returns:
        The ``(height, width, 3)`` image and the padding ``(pad_x, pad_y)`` in px left of and above it.
    """
    h, w = image.shape[:2]
    left, top = (width - w) // 2, (height - h) // 2
    out = np.full((height, width, 3), fill, dtype=np.uint8)
    out[top : top + h, left : left + w] = image
    return out, (float(left), float(top))


def letterbox(
    image: np.ndarray, height: int, width: int, fill: int = 114
) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio, then pad evenly to ``(height, width)``.

    Args:
        image: ``(h, w, 3)`` uint8 image.
        height: Output rows.
        width: Output columns.
        fill: Grey level of the padding.

    Returns:
        The ``(height, width, 3)`` image, the scale (output px per input px) and the padding
        ``(pad_x, pad_y)`` in px left of and above the image; a box maps as
        ``x' = x * scale + pad_x`` (:func:`letterbox_boxes`).
    """
    resized, scale = resize_to_fit(image, height, width)
    out, pad = pad_to(resized, height, width, fill)
    return out, scale, pad


def letterbox_boxes(boxes: np.ndarray, scale: float, pad: tuple[float, float]) -> np.ndarray:
    """Map ``(N, 4)`` boxes in px of the original image into the letterboxed image."""
    px, py = pad
    return (np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * scale + [px, py, px, py]).astype(np.float32)


def unletterbox_boxes(
    boxes: np.ndarray, scale: float, pad: tuple[float, float], orig_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Map ``(N, 4)`` boxes in px of the letterboxed image back to the original image.

    Args:
        boxes: Boxes ``x1, y1, x2, y2`` in px of the network input.
        scale: Scale :func:`letterbox` returned.
        pad: ``(pad_x, pad_y)`` :func:`letterbox` returned.
        orig_size: ``(h, w)`` of the original image to clip to, or ``None`` not to clip.

    Returns:
        ``(N, 4)`` float32 boxes in px of the original image.
    """
    px, py = pad
    out = (np.asarray(boxes, dtype=np.float64).reshape(-1, 4) - [px, py, px, py]) / scale
    if orig_size is not None:
        h, w = orig_size
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# data set


class DetectionDataset(Dataset):
    """Letterboxed detection images with their boxes, augmented for training.

    Without ``augment`` an item is the letterboxed image (validation). With it, an item is
    a mosaic of itself and three random other images (chance ``augment.mosaic``) or the
    letterboxed image, zoomed and shifted at random, then flipped and HSV-jittered; boxes are
    clipped to the image and those narrower or lower than ``augment.min_box_px`` dropped.

    The randomness of item ``i`` comes from ``(seed, epoch, i)`` only, so an item is the same
    in every DataLoader worker and every run; call :meth:`set_epoch` before each epoch (workers
    copy the data set when an epoch starts unless they are persistent).

    Args:
        records: The images and their objects (:func:`read_detection_split`).
        height: Rows the network sees.
        width: Columns the network sees.
        augment: Training augmentation, or ``None`` for none.
        seed: Seed of the augmentation.
    """

    def __init__(
        self,
        records: Sequence[DetectionRecord],
        height: int,
        width: int,
        augment: DetAugmentConfig | None = None,
        seed: int = 0,
    ) -> None:
        if not records:
            raise InputError("a detection data set needs at least one image")
        self.records = list(records)
        self.height = height
        self.width = width
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the random draws of ``epoch`` from now on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, tuple[int, int]]:
        """Image ``index`` resized to fit the input, its boxes and classes, scale and original ``(h, w)``."""
        record = self.records[index]
        image = read_rgb(record.image_path)
        fitted, scale = resize_to_fit(image, self.height, self.width)
        return fitted, letterbox_boxes(record.boxes, scale, (0.0, 0.0)), record.class_ids, scale, image.shape[:2]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, dict[str, Any]]:
        """Image ``(3, H, W)`` float in [0, 1], targets ``(N, 5)`` ``[cls, x1, y1, x2, y2]`` in input px, and meta.

        ``meta`` holds ``path``, and the letterbox of this image (``scale``, ``pad``,
        ``orig_size`` as ``(h, w)``) to map predictions back with :func:`unletterbox_boxes`;
        it ignores the augmentation.
        """
        fitted, fitted_boxes, class_ids, scale, orig_size = self._load(index)
        image, pad = pad_to(fitted, self.height, self.width)
        boxes = letterbox_boxes(fitted_boxes, 1.0, pad)
        if self.augment is not None:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            if rng.random() < self.augment.mosaic:
                parts = [(fitted, fitted_boxes, class_ids)]
                parts += [self._load(int(i))[:3] for i in rng.integers(len(self.records), size=3)]
                images, part_boxes, part_ids = zip(*parts)
                image, boxes, class_ids = mosaic4(images, part_boxes, part_ids, rng, self.height, self.width)
            image, boxes, class_ids = _augment(image, boxes, class_ids, rng, self.augment, self.height, self.width)
        targets = np.concatenate([class_ids[:, None].astype(np.float32), boxes], axis=1)
        meta = {"path": str(self.records[index].image_path), "scale": scale, "pad": pad, "orig_size": orig_size}
        return to_tensor(image), torch.from_numpy(targets), meta


def _augment(
    image: np.ndarray,
    boxes: np.ndarray,
    class_ids: np.ndarray,
    rng: np.random.Generator,
    cfg: DetAugmentConfig,
    height: int,
    width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zoom and shift into ``(height, width)``, flip, jitter HSV, and drop boxes below ``cfg.min_box_px``."""
    image, boxes, class_ids = random_affine(image, boxes, class_ids, rng, height, width, cfg.scale, cfg.translate)
    image, boxes = random_flip(image, boxes, rng, cfg.hflip, cfg.vflip)
    image = hsv_jitter(image, rng, cfg.hsv_h, cfg.hsv_s, cfg.hsv_v)
    boxes, class_ids = clip_boxes(boxes, class_ids, height, width, cfg.min_box_px)
    return image, boxes, class_ids


def collate_detections(
    batch: Sequence[tuple[Tensor, Tensor, dict[str, Any]]],
) -> tuple[Tensor, Tensor, list[dict[str, Any]]]:
    """Stack :class:`DetectionDataset` items into a batch.

    Returns:
        Images ``(B, 3, H, W)``, targets ``(M, 6)`` ``[batch_index, cls, x1, y1, x2, y2]`` of
        all ``M`` objects in the batch, and the ``B`` metas.
    """
    images = torch.stack([image for image, _, _ in batch])
    targets = [
        torch.cat([torch.full((len(t), 1), float(i), dtype=t.dtype), t], dim=1) for i, (_, t, _) in enumerate(batch)
    ]
    return images, torch.cat(targets), [meta for _, _, meta in batch]
