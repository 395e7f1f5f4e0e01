"""Box annotations in YOLO txt and Pascal VOC xml: what the files say, read once for every reader.

The detector's data sets (:mod:`railwatch.intrusion.det.data`) and the fastener cropper
(:mod:`railwatch.fasteners.cropping`) read the same two formats but want different things from
them (class ids mapped onto a detector's classes; class names to choose crops by), so this
module stops at what the files hold and leaves the mapping to them::

    YOLO                                        Pascal VOC
    DATA/data.yaml    names (list or {id: name})  DATA/Annotations/ID.xml
    DATA/images/.../NAME.png                      DATA/JPEGImages/ID.jpg
    DATA/labels/.../NAME.txt                      <object><name/><bndbox>xmin ymin xmax ymax</bndbox>
        one ``cls cx cy w h`` per line,               corners 1-based, max inclusive
        normalised to the image size
    or NAME.txt beside NAME.png

Boxes come out as ``x1, y1, x2, y2`` in pixel-edge coordinates: an image ``W`` px wide spans
``[0, W]``, its first pixel ``[0, 1]``. Every error is an :class:`~railwatch.errors.InputError`
naming the file, and the line for YOLO labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from railwatch.errors import InputError
from railwatch.imageio import IMAGE_SUFFIXES

try:  # safe against entity expansion and external references in untrusted files
    from defusedxml.ElementTree import ParseError
    from defusedxml.ElementTree import parse as parse_xml
except ImportError:  # pragma: no cover - defusedxml comes with supervision
    from xml.etree.ElementTree import ParseError
    from xml.etree.ElementTree import parse as parse_xml

VOC_CORNERS = ("xmin", "ymin", "xmax", "ymax")


# ---------------------------------------------------------------------------------------------
# YOLO


def read_data_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YOLO ``data.yaml`` (``train``, ``val``, ``names``, ...).

    Raises:
        InputError: naming ``path`` when it is missing, unreadable or not a mapping.
    """
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: data set description not found") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise InputError(f"{path}: not a readable YAML file ({type(err).__name__})") from None
    if not isinstance(spec, dict):
        raise InputError(f"{path}: expected a mapping with keys train, val, names")
    return spec


def yolo_class_names(spec: dict[str, Any], path: Path) -> dict[int, str] | None:
    """Class id -> name from ``data.yaml``'s ``names``, a list or an ``{id: name}`` mapping; None without one.

    Raises:
        InputError: naming ``path`` when the mapping's keys are not integer class ids.
    """
    names = spec.get("names")
    if isinstance(names, list) and names:
        return {i: str(name) for i, name in enumerate(names)}
    if isinstance(names, dict) and names:
        try:
            return {int(i): str(name) for i, name in names.items()}
        except (TypeError, ValueError):
            raise InputError(f"{path}: names must map integer class ids to names") from None
    return None


def yolo_label_path(image: Path) -> Path:
    """``.../images/.../NAME.png`` -> ``.../labels/.../NAME.txt`` (the last ``images`` folder; else beside the image)."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def parse_yolo_line(line: str, where: str, confidence_field: bool = False) -> tuple[int, tuple[float, float, float, float]]:
    """Class id and normalised ``cx, cy, w, h`` of one label line ``cls cx cy w h``.

    Args:
        line: The line.
        where: ``FILE:LINE`` for the error message.
        confidence_field: Also accept a 6th field (a detector's confidence, as YOLOv5 writes
            with ``--save-conf``), which is ignored.

    Raises:
        InputError: naming ``where`` for a wrong number of fields, a field that is not a finite
            number, or a class id that is not an integer >= 0.
    """
    fields = line.split()
    counts = (5, 6) if confidence_field else (5,)
    if len(fields) not in counts:
        expected = "5 fields, or 6 with a confidence" if confidence_field else "5 fields"
        raise InputError(f"{where}: expected 'class cx cy w h' ({expected}), got {len(fields)}")
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise InputError(f"{where}: not a number in {line.strip()!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise InputError(f"{where}: every field must be a finite number, got {line.strip()!r}")
    if not values[0].is_integer() or values[0] < 0:
        raise InputError(f"{where}: class id must be an integer >= 0, got {line.strip()!r}")
    cx, cy, w, h = values[1:5]
    return int(values[0]), (cx, cy, w, h)


def read_yolo_lines(label: Path) -> list[tuple[str, str]]:
    """``(FILE:LINE, text)`` of every non-blank line of a label file.

    Raises:
        InputError: naming ``label`` when it cannot be read as text.
    """
    try:
        lines = label.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{label}: not a readable label file ({type(err).__name__})") from None
    return [(f"{label}:{n}", line) for n, line in enumerate(lines, 1) if line.strip()]


# ---------------------------------------------------------------------------------------------
# Pascal VOC


@dataclass(frozen=True)
class VocAnnotation:
    """The objects of one VOC annotation file.

    Attributes:
        filename: The image's file name as the file gives it, if it does.
        boxes: ``(N, 4)`` float64 ``x1, y1, x2, y2`` in pixel-edge coordinates.
        names: Each box's class name, stripped of surrounding blanks.
    """

    filename: str | None
    boxes: np.ndarray
    names: tuple[str, ...]


def read_voc_xml(xml_path: Path) -> Any:
    """The root element of a Pascal VOC annotation file, parsed safely.

    Raises:
        InputError: naming the file when it is missing or not well-formed XML.
    """
    try:
        return parse_xml(xml_path).getroot()
    except FileNotFoundError:
        raise InputError(f"{xml_path}: annotation not found") from None
    except (ParseError, ValueError, OSError) as err:
        raise InputError(f"{xml_path}: not a readable VOC annotation ({type(err).__name__}: {err})") from None


def _voc_number(element: Any, tag: str, xml_path: Path) -> float:
    text = element.findtext(tag)
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{xml_path}: object bndbox has no number {tag} (got {text!r})") from None
    if not math.isfinite(value):
        raise InputError(f"{xml_path}: object bndbox {tag} is {text!r}, not a finite number")
    return value


def read_voc_objects(xml_path: Path, skip_difficult: bool = False) -> VocAnnotation:
    """Every object of one VOC annotation file.

    VOC corners are 1-based pixel indices with ``xmax`` inclusive, so a box is
    ``xmin - 1, ymin - 1, xmax, ymax`` in pixel-edge coordinates.

    Args:
        xml_path: The annotation file.
        skip_difficult: Leave out objects marked ``<difficult>1</difficult>``.

    Raises:
        InputError: naming the file when it is not well-formed XML, an object lacks its name or
            ``bndbox``, a corner is not a finite number, or a box's max corner is before its min.
    """
    root = read_voc_xml(xml_path)
    boxes, names = [], []
    for obj in root.findall("object"):
        name, box = (obj.findtext("name") or "").strip(), obj.find("bndbox")
        if not name or box is None:
            raise InputError(f"{xml_path}: an object lacks its name or bndbox")
        if skip_difficult and (obj.findtext("difficult") or "0").strip() == "1":
            continue
        x1, y1, x2, y2 = (_voc_number(box, tag, xml_path) for tag in VOC_CORNERS)
        if x2 < x1 or y2 < y1:
            raise InputError(f"{xml_path}: object {name!r} has xmax < xmin or ymax < ymin")
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        names.append(name)
    return VocAnnotation(root.findtext("filename"), np.array(boxes, dtype=np.float64).reshape(-1, 4), tuple(names))


def voc_image_path(root: Path, image_id: str, filename: str | None, xml_path: Path) -> Path:
    """The image of annotation ``image_id``: ``JPEGImages/<filename>``, else ``JPEGImages/<id>.<image suffix>``.

    Raises:
        InputError: naming ``xml_path`` when neither exists.
    """
    candidates = [root / "JPEGImages" / filename] if filename else []
    candidates += [root / "JPEGImages" / f"{image_id}{suffix}" for suffix in IMAGE_SUFFIXES]
    for path in candidates:
        if path.is_file():
            return path
    raise InputError(f"{xml_path}: its image {filename or image_id} is not in {root / 'JPEGImages'}")
