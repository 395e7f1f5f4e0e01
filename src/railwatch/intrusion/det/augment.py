"""Training augmentation of detection images: mosaic, random scale and shift, flips, HSV jitter.

YOLOv8's recipe (ultralytics ``Mosaic``, ``RandomPerspective`` without rotation, shear or
perspective, ``RandomFlip`` and ``RandomHSV``), written with numpy and Pillow instead of OpenCV.

Every function is pure: it takes an ``(H, W, 3)`` uint8 RGB image, its boxes as an ``(N, 4)``
float32 array ``x1, y1, x2, y2`` in pixel-edge coordinates (the image spans ``[0, W] x [0, H]``),
their ``(N,)`` int64 class ids and a :class:`numpy.random.Generator`, and returns new arrays.
A function draws the same random numbers whatever its probabilities are, so one seed gives one
sequence of draws.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image


def clip_boxes(
    boxes: np.ndarray, class_ids: np.ndarray, height: int, width: int, min_size: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the image and drop those left narrower or lower than ``min_size``.

    Args:
        boxes: ``(N, 4)`` boxes ``x1, y1, x2, y2`` in px.
        class_ids: ``(N,)`` class ids.
        height: Image rows.
        width: Image columns.
        min_size: Smallest width and height a kept box has, in px; empty boxes are always dropped.

    Returns:
        ``(M, 4)`` float32 boxes inside the image and their ``(M,)`` class ids.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (w > 0) & (h > 0) & (w >= min_size) & (h >= min_size)
    return boxes[keep], np.asarray(class_ids, dtype=np.int64)[keep]


def hsv_jitter(image: np.ndarray, rng: np.random.Generator, hue: float, saturation: float, value: float) -> np.ndarray:
    """Shift the hue and scale saturation and brightness by random amounts.

    Args:
        image: ``(H, W, 3)`` uint8 RGB image.
        rng: Source of the three random amounts.
        hue: Largest hue shift, as a fraction of the hue circle.
        saturation: Largest relative saturation change (gain in ``[1 - s, 1 + s]``).
        value: Largest relative brightness change (gain in ``[1 - v, 1 + v]``).

    Returns:
        The jittered ``(H, W, 3)`` uint8 image; a copy of ``image`` when every amount is zero
        (Pillow's 8-bit HSV round trip is not lossless, so it is skipped then).
    """
    shift = round(rng.uniform(-hue, hue) * 256)
    s_gain, v_gain = 1 + rng.uniform(-saturation, saturation), 1 + rng.uniform(-value, value)
    if shift == 0 and s_gain == 1 and v_gain == 1:
        return image.copy()
    h, s, v = Image.fromarray(image).convert("HSV").split()
    h = h.point([(x + shift) % 256 for x in range(256)])
    s = s.point([min(255, round(x * s_gain)) for x in range(256)])
    v = v.point([min(255, round(x * v_gain)) for x in range(256)])
    return np.asarray(Image.merge("HSV", (h, s, v)).convert("RGB"))


def random_flip(
    image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, horizontal: float, vertical: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right and/or top-bottom, with the boxes (``x1' = W - x2``).

    Args:
        image: ``(H, W, 3)`` image.
        boxes: ``(N, 4)`` boxes in px.
        rng: Source of the two coin flips.
        horizontal: Chance of a left-right flip.
        vertical: Chance of a top-bottom flip.

    Returns:
        The image and boxes, flipped or copied.
    """
    height, width = image.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    if rng.random() < horizontal:
        image = image[:, ::-1]
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    if rng.random() < vertical:
        image = image[::-1]
        boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
    return np.ascontiguousarray(image), boxes


def random_affine(
    image: np.ndarray,
    boxes: np.ndarray,
    class_ids: np.ndarray,
    rng: np.random.Generator,
    height: int,
    width: int,
    scale: float,
    translate: float,
    fill: int = 114,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zoom about the image centre and shift, into a ``(height, width)`` output (bilinear).

    The input's centre lands at ``(u * width, v * height)`` with ``u, v`` uniform in
    ``[0.5 - translate, 0.5 + translate]``, zoomed by a factor uniform in ``[1 - scale, 1 + scale]``;
    a mosaic canvas twice the output size is thereby cut down to it, as in YOLOv8. With both
    ranges zero and an input of the output size, the image is returned unchanged.

    Args:
        image: ``(h, w, 3)`` uint8 image, any size.
        boxes: ``(N, 4)`` boxes in px of ``image``.
        class_ids: ``(N,)`` class ids.
        rng: Source of the zoom and the shift.
        height: Output rows.
        width: Output columns.
        scale: Largest relative zoom, in ``[0, 1)``.
        translate: Largest shift, as a fraction of the output size.
        fill: Grey level of the uncovered border.

    Returns:
        The ``(height, width, 3)`` image, its boxes clipped to it (empty ones dropped) and their class ids.
    """
    in_h, in_w = image.shape[:2]
    zoom = rng.uniform(1 - scale, 1 + scale)
    tx = rng.uniform(0.5 - translate, 0.5 + translate) * width
    ty = rng.uniform(0.5 - translate, 0.5 + translate) * height
    if zoom == 1 and (in_h, in_w) == (height, width) and (tx, ty) == (in_w / 2, in_h / 2):
        out = image.copy()
    else:
        # Pillow wants the inverse map, output -> input: x_in = (x_out - tx) / zoom + in_w / 2
        inverse = (1 / zoom, 0.0, in_w / 2 - tx / zoom, 0.0, 1 / zoom, in_h / 2 - ty / zoom)
        out = np.asarray(
            Image.fromarray(image).transform(
                (width, height), Image.Transform.AFFINE, inverse, Image.Resampling.BILINEAR, fillcolor=(fill,) * 3
            )
        )
    offset = np.array([tx - zoom * in_w / 2, ty - zoom * in_h / 2] * 2, dtype=np.float32)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * np.float32(zoom) + offset
    boxes, class_ids = clip_boxes(boxes, class_ids, height, width)
    return out, boxes, class_ids


def mosaic4(
    images: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray],
    class_ids: Sequence[np.ndarray],
    rng: np.random.Generator,
    height: int,
    width: int,
    fill: int = 114,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tile four images around a random centre of a ``(2 height, 2 width)`` canvas (YOLOv8 mosaic).

    The centre is uniform in ``[width / 2, 3 width / 2] x [height / 2, 3 height / 2]``; the images
    meet there with their bottom-right, bottom-left, top-right and top-left corners, and what
    falls outside the canvas is cut off. Follow with :func:`random_affine` to get back to
    ``(height, width)``.

    Args:
        images: Four ``(h_k, w_k, 3)`` uint8 images, each at most ``(height, width)``.
        boxes: Their ``(N_k, 4)`` boxes in px.
        class_ids: Their ``(N_k,)`` class ids.
        rng: Source of the centre.
        height: Output rows of the detector (the canvas has twice as many).
        width: Output columns of the detector (the canvas has twice as many).
        fill: Grey level where no image lies.

    Returns:
        The ``(2 height, 2 width, 3)`` canvas, the boxes on it (clipped, empty ones dropped) and their class ids.
    """
    if not len(images) == len(boxes) == len(class_ids) == 4:
        raise ValueError(f"a mosaic needs 4 images with boxes and classes, got {len(images)}")
    xc = int(rng.uniform(width / 2, 3 * width / 2))
    yc = int(rng.uniform(height / 2, 3 * height / 2))
    canvas = np.full((2 * height, 2 * width, 3), fill, dtype=np.uint8)
    placed = []
    for k, (image, image_boxes) in enumerate(zip(images, boxes)):
        h, w = image.shape[:2]
        x0 = xc - w if k in (0, 2) else xc  # left column of the image on the canvas
        y0 = yc - h if k in (0, 1) else yc
        left, top = max(x0, 0), max(y0, 0)
        right, bottom = min(x0 + w, 2 * width), min(y0 + h, 2 * height)
        canvas[top:bottom, left:right] = image[top - y0 : bottom - y0, left - x0 : right - x0]
        placed.append(np.asarray(image_boxes, dtype=np.float32).reshape(-1, 4) + np.float32([x0, y0, x0, y0]))
    all_boxes, all_ids = clip_boxes(np.concatenate(placed), np.concatenate(class_ids), 2 * height, 2 * width)
    return canvas, all_boxes, all_ids
