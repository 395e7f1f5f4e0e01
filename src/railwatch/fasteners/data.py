"""Fastener crops: cutting them from annotated track images, reading them, MNIST, splits and augmentation (paper 000).

Preparation as in the paper:

- fasteners are cut out of the track images by their boxes (section 2.5.1: annotated, then
  located by YOLOv5); each crop is zero-padded on its short side to a square, keeping its
  aspect ratio, then resized to 128x128 with bilinear interpolation (:func:`square_resize`);
- training crops are flipped horizontally and their brightness varied by +-20%
  (section 2.5.1, :func:`augment_batch`);
- the splits follow section 3.1.1 and Table 4: 1200 normal crops to train on, 600 normal and
  40 anomalous to validate, 200 normal and 60 anomalous to test, stratified per anomaly kind
  (:func:`split_generated`);
- the MNIST check of section 3.1.1 takes digit 0 as the anomaly and 1-9 as normal, resized to
  128x128 bicubic, and draws 2000 normal and 100 anomalous images (:func:`mnist_protocol`); the
  anomalies are zeros and, as Figure 7 shows, digits 1-9 made anomalous by swapping two of their
  parts (:func:`disorder_digit`) or erasing one (:func:`erase_digit_part`).

Layouts read:

- annotated track images (:func:`crops_from_annotations`)::

      YOLO                                      Pascal VOC
      ROOT/images/.../NAME.jpg                  ROOT/Annotations/ID.xml
      ROOT/labels/.../NAME.txt                  ROOT/JPEGImages/ID.jpg
          ``cls cx cy w h [conf]``, normalised  or NAME.xml beside NAME.jpg
      or NAME.txt beside NAME.jpg
      class names: ROOT/data.yaml ``names``, or classes.txt in ROOT or ROOT/labels

- crops (:func:`read_crop_folder`): ``ROOT/normal/*`` and ``ROOT/abnormal/<kind>/*``;
- MNIST idx files (:func:`read_mnist`).

Images are grey ``uint8``; boxes are ``x1, y1, x2, y2`` in pixel-edge coordinates (an image
``W`` px wide spans ``[0, W]``).
"""

from __future__ import annotations

import functools
import gzip
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from railwatch.errors import InputError
from railwatch.imageio import _open_image, write_image
from railwatch.intrusion.det.data import _label_path, _voc_image, _voc_number, read_voc_xml

IMAGE_SIZE = 128
"""Side of the square crops the networks see (section 2.5.1)."""
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"})
NORMAL_KIND = "normal"
MNIST_NORMAL, MNIST_ANOMALOUS = 2000, 100
"""Images drawn from MNIST for the protocol of section 3.1.1."""
MNIST_ANOMALY_KINDS: tuple[str, ...] = ("digit", "disorder", "missing")
"""The MNIST anomalies of section 3.1.1 and Figure 7 (b)-(d): the anomaly digit itself ("zero-position"),
normal digits with two parts swapped ("disorder") and normal digits with a part erased ("missing")."""

_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}
_MNIST_FILES = {"images": ("t10k-images-idx3-ubyte", 2051, 3), "labels": ("t10k-labels-idx1-ubyte", 2049, 1)}
"""Base name, magic number and number of dimensions of each MNIST idx file."""


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


def _crop_set(images: list[np.ndarray], labels: list[int], kinds: list[str], sources: list[str], size: int) -> CropSet:
    stacked = np.stack(images) if images else np.zeros((0, size, size), np.uint8)
    return CropSet(stacked, np.array(labels, dtype=np.int64), tuple(kinds), tuple(sources))


# ---------------------------------------------------------------------------------------------
# grey images, padding and resizing


def _to_grey(image: np.ndarray) -> np.ndarray:
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


def _read_grey(path: Path) -> np.ndarray:
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
        return _to_grey(array)
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
    grey = _to_grey(image)
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


def _box_window(box: np.ndarray, height: int, width: int, margin: float) -> tuple[int, int, int, int] | None:
    """Integer ``x1, y1, x2, y2`` of a box grown by ``margin`` of its size on each side and clipped; None when empty."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = margin * (x2 - x1), margin * (y2 - y1)
    x1, x2 = max(0, round(x1 - dx)), min(width, round(x2 + dx))
    y1, y2 = max(0, round(y1 - dy)), min(height, round(y2 + dy))
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def crop_boxes(image: np.ndarray, boxes_xyxy: np.ndarray, size: int = IMAGE_SIZE, margin: float = 0.0) -> list[np.ndarray]:
    """Cut each box out of ``image`` and :func:`square_resize` it (section 2.5.1).

    Args:
        image: ``(H, W)`` grey or ``(H, W, 3/4)`` colour uint8.
        boxes_xyxy: ``(N, 4)`` boxes ``x1, y1, x2, y2`` in px (edges rounded to whole pixels).
        size: Side of the square crops.
        margin: Each box grows by this fraction of its width (height) on the left and right
            (top and bottom) before it is clipped to the image.

    Returns:
        ``N`` crops ``(size, size)`` uint8, in box order.

    Raises:
        InputError: malformed boxes, a negative or non-finite margin, or a box with nothing left
            after clipping to the image.
    """
    grey = _to_grey(image)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.size == 0:
        return []
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
        raise InputError(f"boxes must be a finite (N, 4) array x1, y1, x2, y2, got shape {boxes.shape}")
    if not (math.isfinite(margin) and margin >= 0):
        raise InputError(f"margin must be a fraction >= 0, got {margin}")
    height, width = grey.shape
    crops = []
    for k, box in enumerate(boxes):
        window = _box_window(box, height, width, margin)
        if window is None:
            raise InputError(f"box {k} {np.round(box, 1).tolist()} is empty after clipping to the {width}x{height} image")
        x1, y1, x2, y2 = window
        crops.append(square_resize(grey[y1:y2, x1:x2], size))
    return crops


# ---------------------------------------------------------------------------------------------
# annotations
#
# The intrusion readers (railwatch.intrusion.det.data) map every class onto the detector's fixed
# list of object types (with its synonyms) and refuse any other name, and their YOLO line parser
# refuses boxes reaching past the image and YOLOv5's 6-field prediction lines. Fastener classes
# are free-form (broken_clip, missing_bolt, ...), often without any names file, and boxes found
# by YOLOv5 may come with a confidence, so the two small parsers below are generic; the file
# layout helpers (labels/ beside images/, VOC image lookup, safe XML, VOC numbers) are reused.


@dataclass(frozen=True)
class _Annotation:
    image: Path
    source: Path  # the annotation file
    boxes: np.ndarray  # (N, 4) float64 px, x1 y1 x2 y2
    names: tuple[str, ...]


def _parse_label_line(line: str, where: str) -> tuple[int, list[float]]:
    """Class id and normalised ``cx, cy, w, h`` of a YOLO line ``cls cx cy w h`` (a 6th field, a confidence, is ignored)."""
    fields = line.split()
    if len(fields) not in (5, 6):
        raise InputError(f"{where}: expected 'class cx cy w h' (5 fields, or 6 with a confidence), got {len(fields)}")
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise InputError(f"{where}: not a number in {line.strip()!r}") from None
    if not all(math.isfinite(v) for v in values) or not values[0].is_integer() or values[0] < 0:
        raise InputError(f"{where}: class id must be an integer >= 0 and coordinates finite, got {line.strip()!r}")
    if values[3] <= 0 or values[4] <= 0:
        raise InputError(f"{where}: box width and height must be > 0, got {line.strip()!r}")
    return int(values[0]), values[1:5]


def _yolo_names(root: Path) -> list[str] | None:
    """Class names by id from ``root/data.yaml`` (``names``) or a ``classes.txt`` in ``root`` or ``root/labels``."""
    spec_path = root / "data.yaml"
    if spec_path.is_file():
        try:
            spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise InputError(f"{spec_path}: not a readable YAML file ({type(err).__name__})") from None
        names = spec.get("names") if isinstance(spec, dict) else None
        if isinstance(names, list):
            return [str(n) for n in names]
        if isinstance(names, dict):
            try:
                by_id = {int(i): str(n) for i, n in names.items()}
            except (TypeError, ValueError):
                raise InputError(f"{spec_path}: names must map integer class ids to names") from None
            return [by_id.get(i, str(i)) for i in range(max(by_id, default=-1) + 1)]
    for listing in (root / "classes.txt", root / "labels" / "classes.txt"):
        if listing.is_file():
            try:
                return [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
            except (OSError, UnicodeDecodeError) as err:
                raise InputError(f"{listing}: not a readable class list ({type(err).__name__})") from None
    return None


def _read_yolo(image: Path, label: Path, size: tuple[int, int], names: list[str] | None) -> _Annotation:
    try:
        lines = label.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{label}: not a readable label file ({type(err).__name__})") from None
    height, width = size
    boxes, box_names = [], []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        cls, (cx, cy, w, h) = _parse_label_line(line, f"{label}:{n}")
        if names is not None and cls >= len(names):
            raise InputError(f"{label}:{n}: class id {cls} out of range (the class list has {len(names)} names)")
        boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
        box_names.append(names[cls] if names is not None else str(cls))
    return _Annotation(image, label, np.array(boxes, dtype=np.float64).reshape(-1, 4), tuple(box_names))


def _read_voc(xml_path: Path) -> tuple[str | None, np.ndarray, tuple[str, ...]]:
    """Image file name, boxes (0-based px edges: VOC corners are 1-based, max inclusive) and class names."""
    root = read_voc_xml(xml_path)
    boxes, names = [], []
    for obj in root.findall("object"):
        name, box = (obj.findtext("name") or "").strip(), obj.find("bndbox")
        if not name or box is None:
            raise InputError(f"{xml_path}: an object lacks its name or bndbox")
        x1, y1, x2, y2 = (_voc_number(box, tag, xml_path) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 < x1 or y2 < y1:
            raise InputError(f"{xml_path}: object {name!r} has xmax < xmin or ymax < ymin")
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        names.append(name)
    return root.findtext("filename"), np.array(boxes, dtype=np.float64).reshape(-1, 4), tuple(names)


def _inside(path: Path, folder: Path) -> bool:
    return folder == path or folder in path.parents


def _find_annotations(root: Path, out: Path) -> list[tuple[Path, str, Path]]:
    """Each annotated image as ``(image, "yolo" or "voc", annotation file)``, in file-name order."""
    if (root / "Annotations").is_dir():
        found = []
        for xml_path in sorted((root / "Annotations").glob("*.xml")):
            filename = _read_voc(xml_path)[0]
            found.append((_voc_image(root, xml_path.stem, filename, xml_path), "voc", xml_path))
        return found
    images = [
        p
        for p in sorted(root.rglob("*"))
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file() and not _inside(p.resolve(), out)
    ]
    if not images:
        raise InputError(f"{root}: no images in folder (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    found = []
    for image in images:
        label, xml_path = _label_path(image), image.with_suffix(".xml")
        if label.is_file():
            found.append((image, "yolo", label))
        elif xml_path.is_file():
            found.append((image, "voc", xml_path))
    return found


def crops_from_annotations(
    root: str | Path,
    out: str | Path,
    classes: Sequence[str] | None = None,
    size: int = IMAGE_SIZE,
    margin: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Crop every annotated box of a folder of track images into ``out/`` as ``<image-stem>_<k>.png`` (section 2.5.1).

    Each box is cut out, zero-padded to a square and resized to ``size`` (:func:`crop_boxes`);
    ``k`` is the box's position in its annotation file (0-based), so a crop can be traced back
    to its line. Files are written atomically. Annotation formats (see the module docstring):

    - YOLO: ``images/`` + ``labels/``, or ``NAME.txt`` beside ``NAME.jpg``; normalised
      ``cls cx cy w h`` lines (a 6th field, YOLOv5's confidence, is ignored); class names from
      ``data.yaml`` or ``classes.txt`` when present, else the class id as a string (``"0"``);
    - Pascal VOC: ``Annotations/*.xml`` + ``JPEGImages/``, or ``NAME.xml`` beside ``NAME.jpg``.

    An image without an annotation file has no boxes. Boxes reaching past the image are clipped.

    Args:
        root: Folder of track images and their annotations.
        out: Folder for the crops (created; a folder inside ``root`` is not read as input).
        classes: Class names to keep (case-insensitive), or None for every box.
        size: Side of the square crops.
        margin: Relative margin added around each box (:func:`crop_boxes`).
        progress: Called as ``progress(done, total)`` after each annotated image.

    Returns:
        The written crops, in image then box order.

    Raises:
        InputError: one line naming the file: the folder missing or without images, no
            annotations found, a malformed label line or XML, a class id past the class list, a
            box with nothing left after clipping, two images with the same name stem, or no box
            of the requested ``classes``.
    """
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise InputError(f"{root}: folder not found")
    found = _find_annotations(root, out.resolve())
    if not found:
        raise InputError(f"{root}: no annotations found (YOLO labels/ or NAME.txt, Pascal VOC Annotations/ or NAME.xml)")
    names = _yolo_names(root) if any(fmt == "yolo" for _, fmt, _ in found) else None
    keep = None if classes is None else {c.strip().lower() for c in classes}
    stems: dict[str, Path] = {}
    written: list[Path] = []
    seen_names: set[str] = set()
    for done, (image_path, fmt, annotation_path) in enumerate(found, 1):
        if image_path.stem in stems:
            raise InputError(f"{image_path}: same name as {stems[image_path.stem]}; their crops would overwrite each other")
        stems[image_path.stem] = image_path
        grey = _read_grey(image_path)
        if fmt == "yolo":
            annotation = _read_yolo(image_path, annotation_path, grey.shape, names)
        else:
            annotation = _Annotation(image_path, annotation_path, *_read_voc(annotation_path)[1:])
        seen_names.update(annotation.names)
        chosen = [k for k, name in enumerate(annotation.names) if keep is None or name.lower() in keep]
        if chosen:
            try:
                crops = crop_boxes(grey, annotation.boxes[chosen], size, margin)
            except InputError as err:
                raise InputError(f"{annotation.source}: {err} ({image_path.name})") from None
            for k, crop in zip(chosen, crops):
                written.append(write_image(Image.fromarray(crop), out / f"{image_path.stem}_{k}.png"))
        if progress is not None:
            progress(done, len(found))
    if not written:
        if not seen_names:
            raise InputError(f"{root}: the annotations hold no boxes")
        raise InputError(f"{root}: no box of class(es) {', '.join(sorted(keep or ()))} (found: {', '.join(sorted(seen_names))})")
    return written


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
    images = [_read_grey(p) for p, _ in entries]
    images = [g if g.shape == (size, size) else square_resize(g, size) for g in images]
    labels = [0] * len(normal) + [1] * len(abnormal)
    return _crop_set(images, labels, [k for _, k in entries], [str(p) for p, _ in entries], size)


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
    images = [square_resize(_read_grey(p), size) for p in files]
    return _crop_set(images, [0] * len(files), ["unknown"] * len(files), [str(p) for p in files], size)


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
# MNIST


def _read_idx(root: Path, key: str) -> tuple[Path, np.ndarray]:
    base, magic, ndim = _MNIST_FILES[key]
    path = next((p for p in (root / f"{base}.gz", root / base) if p.is_file()), None)
    if path is None:
        raise InputError(f"{root / base}(.gz): file not found")
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except EOFError:
        raise InputError(f"{path}: truncated gzip file") from None
    except (OSError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise InputError(f"{path}: not a readable gzip file ({type(err).__name__})") from None
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(f"{path}: truncated ({len(data)} bytes, shorter than the idx header)")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise InputError(f"{path}: wrong magic number {found:#010x} (expected {magic:#010x} for an idx{ndim} ubyte file)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise InputError(f"{path}: {problem} ({len(data)} bytes, expected {expected} for shape {shape})")
    return path, np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_mnist(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNIST test split from ``t10k-images-idx3-ubyte(.gz)`` and ``t10k-labels-idx1-ubyte(.gz)`` in ``root``.

    Returns:
        Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` int64.

    Raises:
        InputError: naming the file: missing, not gzip, truncated, wrong magic number, image
            and label counts that differ, or labels outside 0-9.
    """
    root = Path(root)
    _, images = _read_idx(root, "images")
    labels_path, labels = _read_idx(root, "labels")
    if len(labels) != len(images):
        raise InputError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
    if labels.size and labels.max() > 9:
        raise InputError(f"{labels_path}: label {int(labels.max())} is not a digit 0-9")
    return images.copy(), labels.astype(np.int64)


def _ink_moved(before: np.ndarray, after: np.ndarray) -> float:
    """Share of ``before``'s ink (grey mass) that is no longer where it was in ``after``."""
    ink = float(before.sum())
    return float(np.clip(before.astype(np.float64) - after, 0, None).sum()) / ink if ink else 0.0


def _draw_within(image: np.ndarray, draw: Callable[[], np.ndarray], share: tuple[float, float], tries: int = 64) -> np.ndarray:
    """``draw()`` again until it moves a ``share`` of ``image``'s ink within bounds (the closest of ``tries`` draws)."""
    best, best_gap = image, math.inf
    for _ in range(tries):
        out = draw()
        moved = _ink_moved(image, out)
        gap = max(share[0] - moved, moved - share[1], 0.0)
        if gap < best_gap:
            best, best_gap = out, gap
        if gap == 0:
            break
    return best


def disorder_digit(image: np.ndarray, rng: np.random.Generator, grid: int = 4, moved: tuple[float, float] = (0.2, 0.6)) -> np.ndarray:
    """A "disorder anomaly" (section 3.1.1, Figure 7c): two blocks of a ``grid x grid`` split of the digit swapped.

    Pairs of blocks are drawn until the swap moves between ``moved[0]`` and ``moved[1]`` of the
    digit's ink (the closest of 64 draws otherwise), so every result is visibly out of order but
    still mostly the digit. Only pixels move: the grey values are a permutation of the input's.
    """
    block_h, block_w = image.shape[0] // grid, image.shape[1] // grid

    def swap() -> np.ndarray:
        (ay, ax), (by, bx) = (divmod(int(k), grid) for k in rng.choice(grid * grid, 2, replace=False))
        first = (slice(ay * block_h, (ay + 1) * block_h), slice(ax * block_w, (ax + 1) * block_w))
        second = (slice(by * block_h, (by + 1) * block_h), slice(bx * block_w, (bx + 1) * block_w))
        out = image.copy()
        out[first], out[second] = image[second], image[first]
        return out

    return _draw_within(image, swap, moved)


def erase_digit_part(image: np.ndarray, rng: np.random.Generator, side: float = 1 / 3, removed: tuple[float, float] = (0.2, 0.6)) -> np.ndarray:
    """A "missing anomaly" (section 3.1.1, Figure 7d): a square of ``side`` of the image blanked over a stroke.

    The square is centred on a random stroke pixel and redrawn until it erases between
    ``removed[0]`` and ``removed[1]`` of the digit's ink (the closest of 64 draws otherwise).
    Pixels are only ever set to black.
    """
    half = max(1, round(min(image.shape) * side)) // 2
    strokes = np.argwhere(image > 127)
    if len(strokes) == 0:
        strokes = np.argwhere(image > 0)

    def erase() -> np.ndarray:
        y, x = strokes[rng.integers(len(strokes))] if len(strokes) else rng.integers(image.shape)
        out = image.copy()
        out[max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1] = 0
        return out

    return _draw_within(image, erase, removed)


def mnist_protocol(
    root: str | Path,
    seed: int = 0,
    anomaly_digit: int = 0,
    size: int = IMAGE_SIZE,
    anomalies: Sequence[str] = MNIST_ANOMALY_KINDS,
) -> CropSplits:
    """The MNIST experiment of section 3.1.1 on the test split in ``root`` (:func:`read_mnist`).

    Digit ``anomaly_digit`` (0 in the paper) is the anomaly class, the others normal. A seeded
    draw of 2000 normal and 100 anomalous images, resized to ``size`` bicubic, is split into 1200
    normal for training, 600 normal + 40 anomalous for validation and 200 normal + 60 anomalous
    for testing (:func:`split_generated`, stratified per kind). The 100 anomalies are shared
    evenly between the ``anomalies`` kinds of Figure 7 (34/33/33 for all three):

    - ``"digit"``: images of ``anomaly_digit`` (kind ``"digit-<d>"``, Figure 7b);
    - ``"disorder"``: other normal-class digits with two parts swapped (:func:`disorder_digit`, 7c);
    - ``"missing"``: other normal-class digits with a part erased (:func:`erase_digit_part`, 7d).

    The made anomalies start from digits outside the 2000 normal images, and are made at MNIST's
    28 x 28 before resizing. ``anomalies=("digit",)`` is the zeros-only reading (100 zeros).
    Sources read ``"mnist-t10k#<index>"``, with ``/disorder`` or ``/missing`` for made anomalies.

    Raises:
        InputError: unreadable files, a digit outside 0-9, an unknown anomaly kind, or too few
            images of a class.
    """
    if not 0 <= anomaly_digit <= 9:
        raise InputError(f"anomaly digit must be 0-9, got {anomaly_digit}")
    unknown = sorted(set(anomalies) - set(MNIST_ANOMALY_KINDS))
    if unknown or not anomalies:
        raise InputError(f"MNIST anomaly kinds must be some of {', '.join(MNIST_ANOMALY_KINDS)}, got {', '.join(anomalies) or 'none'}")
    kinds = list(dict.fromkeys(anomalies))
    counts = {kind: MNIST_ANOMALOUS // len(kinds) + (i < MNIST_ANOMALOUS % len(kinds)) for i, kind in enumerate(kinds)}
    images, labels = read_mnist(root)
    rng = np.random.default_rng([seed, 3011])  # the draw; split_generated shuffles with its own stream
    normal_pool = np.flatnonzero(labels != anomaly_digit)
    draws = {NORMAL_KIND: (normal_pool, MNIST_NORMAL)}
    if "digit" in counts:
        draws[f"digit-{anomaly_digit}"] = (np.flatnonzero(labels == anomaly_digit), counts["digit"])
    picked = {}
    for name, (pool, n) in draws.items():
        if len(pool) < n:
            raise InputError(f"{root}: only {len(pool)} {name} images, the protocol draws {n}")
        picked[name] = np.sort(rng.choice(pool, n, replace=False))
    made = {kind: counts[kind] for kind in kinds if kind != "digit"}
    to_make = sum(made.values())
    spare = np.setdiff1d(normal_pool, picked[NORMAL_KIND])
    if len(spare) < to_make:
        raise InputError(f"{root}: only {len(spare)} normal-class images left to make {to_make} anomalies from")
    make_rng = np.random.default_rng([seed, 3011, 1])  # its own stream, so the zeros-only draw stays as it was
    bases = make_rng.choice(spare, to_make, replace=False)
    makers = {"disorder": disorder_digit, "missing": erase_digit_part}
    sets = []
    for kind, idx in picked.items():
        crops = [square_resize(images[i], size, "bicubic") for i in idx]
        label = int(kind != NORMAL_KIND)
        sets.append(_crop_set(crops, [label] * len(idx), [kind] * len(idx), [f"mnist-t10k#{i}" for i in idx], size))
    start = 0
    for kind, n in made.items():
        idx = bases[start : start + n]
        start += n
        crops = [square_resize(makers[kind](images[i], make_rng), size, "bicubic") for i in idx]
        sets.append(_crop_set(crops, [1] * n, [kind] * n, [f"mnist-t10k#{i}/{kind}" for i in idx], size))
    return split_generated(sets[0], functools.reduce(CropSet.concat, sets[1:]), seed=seed)


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
    return _crop_set(images, labels, kinds, sources, IMAGE_SIZE)


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
