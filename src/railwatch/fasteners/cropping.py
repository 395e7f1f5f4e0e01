"""Fastener crops cut from annotated track images (paper 000, section 2.5.1).

The paper annotates fasteners in track images (later located by YOLOv5), cuts each box out,
zero-pads it to a square and resizes it to 128x128 bilinearly (:func:`crop_boxes`,
:func:`railwatch.fasteners.data.square_resize`). :func:`crops_from_annotations` does this for a
folder of annotated images::

    YOLO                                      Pascal VOC
    ROOT/images/.../NAME.jpg                  ROOT/Annotations/ID.xml
    ROOT/labels/.../NAME.txt                  ROOT/JPEGImages/ID.jpg
        ``cls cx cy w h [conf]``, normalised  or NAME.xml beside NAME.jpg
    or NAME.txt beside NAME.jpg
    class names: ROOT/data.yaml ``names``, or classes.txt in ROOT or ROOT/labels

The files are read by :mod:`railwatch.annotations`. Unlike the detector's data sets, fastener
classes are free-form (``broken_clip``, ``missing_bolt``, ...), often without any names file,
and boxes found by YOLOv5 may come with a confidence, so class ids without names are kept as
text and a 6th field is allowed. Boxes are ``x1, y1, x2, y2`` in pixel-edge coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from railwatch.annotations import (
    VocAnnotation,
    parse_yolo_line,
    read_data_yaml,
    read_voc_objects,
    read_yolo_lines,
    voc_image_path,
    yolo_class_names,
    yolo_label_path,
)
from railwatch.errors import InputError
from railwatch.fasteners.data import IMAGE_SIZE, read_grey, square_resize, to_grey
from railwatch.imageio import IMAGE_SUFFIXES, write_image


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
    grey = to_grey(image)
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


def _class_names(root: Path) -> dict[int, str] | None:
    """Class names by id from ``root/data.yaml`` (``names``) or a ``classes.txt`` in ``root`` or ``root/labels``."""
    spec_path = root / "data.yaml"
    if spec_path.is_file():
        names = yolo_class_names(read_data_yaml(spec_path), spec_path)
        if names is not None:
            return names
    for listing in (root / "classes.txt", root / "labels" / "classes.txt"):
        if listing.is_file():
            try:
                lines = listing.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as err:
                raise InputError(f"{listing}: not a readable class list ({type(err).__name__})") from None
            return dict(enumerate(line.strip() for line in lines if line.strip()))
    return None


def _read_yolo(label: Path, size: tuple[int, int], names: dict[int, str] | None) -> tuple[np.ndarray, tuple[str, ...]]:
    """The ``(N, 4)`` boxes of one YOLO label file in px and their class names (the class id as text without ``names``)."""
    height, width = size
    boxes, box_names = [], []
    for where, line in read_yolo_lines(label):
        cls, (cx, cy, w, h) = parse_yolo_line(line, where, confidence_field=True)
        if w <= 0 or h <= 0:
            raise InputError(f"{where}: box width and height must be > 0, got {line.strip()!r}")
        if names is not None and cls not in names:
            raise InputError(f"{where}: class id {cls} is not in the class list ({len(names)} names)")
        boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
        box_names.append(names[cls] if names is not None else str(cls))
    return np.array(boxes, dtype=np.float64).reshape(-1, 4), tuple(box_names)


def _inside(path: Path, folder: Path) -> bool:
    return folder == path or folder in path.parents


def _find_annotations(root: Path, out: Path) -> list[tuple[Path, Path, VocAnnotation | None]]:
    """Each annotated image as ``(image, annotation file, its VOC objects)``, in file-name order.

    VOC files are read here (the image's name may be inside), so a bad one stops the run before
    any crop is written; YOLO labels (``None``) are read with their image, whose size they need.
    """
    if (root / "Annotations").is_dir():
        found = []
        for xml_path in sorted((root / "Annotations").glob("*.xml")):
            voc = read_voc_objects(xml_path)
            found.append((voc_image_path(root, xml_path.stem, voc.filename, xml_path), xml_path, voc))
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
        label, xml_path = yolo_label_path(image), image.with_suffix(".xml")
        if label.is_file():
            found.append((image, label, None))
        elif xml_path.is_file():
            found.append((image, xml_path, read_voc_objects(xml_path)))
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
    names = _class_names(root) if any(voc is None for _, _, voc in found) else None
    keep = None if classes is None else {c.strip().lower() for c in classes}
    stems: dict[str, Path] = {}
    written: list[Path] = []
    seen_names: set[str] = set()
    for done, (image_path, annotation_path, voc) in enumerate(found, 1):
        if image_path.stem in stems:
            raise InputError(f"{image_path}: same name as {stems[image_path.stem]}; their crops would overwrite each other")
        stems[image_path.stem] = image_path
        grey = read_grey(image_path)
        boxes, box_names = _read_yolo(annotation_path, grey.shape, names) if voc is None else (voc.boxes, voc.names)
        seen_names.update(box_names)
        chosen = [k for k, name in enumerate(box_names) if keep is None or name.lower() in keep]
        if chosen:
            try:
                crops = crop_boxes(grey, boxes[chosen], size, margin)
            except InputError as err:
                raise InputError(f"{annotation_path}: {err} ({image_path.name})") from None
            for k, crop in zip(chosen, crops):
                written.append(write_image(Image.fromarray(crop), out / f"{image_path.stem}_{k}.png"))
        if progress is not None:
            progress(done, len(found))
    if not written:
        if not seen_names:
            raise InputError(f"{root}: the annotations hold no boxes")
        raise InputError(f"{root}: no box of class(es) {', '.join(sorted(keep or ()))} (found: {', '.join(sorted(seen_names))})")
    return written
