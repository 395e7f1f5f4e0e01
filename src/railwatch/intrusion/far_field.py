"""A second, magnified detector pass over the far end of the track.

Far objects are a few pixels high: in the 1024 x 512 frames of the generated clips a stone at
50 m is 6-8 px, below what a detector whose finest stride is 8 px finds reliably, and fog makes
it fainter still. The far end of a level track always lies near the camera's horizon row, around
the principal point's column, so one window there, magnified to the detector's input size, shows
every far object ``zoom`` times larger. The detector runs on the whole frame and on that window
in one batch, and the two sets of boxes are merged per class with torchvision's NMS: slicing-aided
inference with a single slice placed by the camera.

Boxes of the magnified pass that touch a window edge inside the frame are dropped: they belong to
objects the window cuts, which the whole-frame pass sees whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import batched_nms

from railwatch.camera import Camera
from railwatch.config import FarFieldConfig, IntrusionConfig
from railwatch.errors import InputError
from railwatch.intrusion.det.types import Detections, ObjectDetector


@dataclass(frozen=True)
class ZoomWindow:
    """A ``height x width`` window of a ``frame_height x frame_width`` frame, its top-left corner at ``(top, left)``."""

    top: int
    left: int
    height: int
    width: int
    frame_height: int
    frame_width: int

    @classmethod
    def around_horizon(cls, camera: Camera, zoom: float, above_horizon: float) -> ZoomWindow:
        """The frame divided by ``zoom`` in each direction, centred on the principal column, with
        ``above_horizon`` of its height above the horizon row; moved inside the frame where it would leave it."""
        h, w = round(camera.height_px / zoom), round(camera.width_px / zoom)
        top = min(max(round(camera.horizon_row - above_horizon * h), 0), camera.height_px - h)
        left = min(max(round(camera.cx - w / 2), 0), camera.width_px - w)
        return cls(top, left, h, w, camera.height_px, camera.width_px)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The window's pixels of a whole frame."""
        return np.ascontiguousarray(image[self.top : self.top + self.height, self.left : self.left + self.width])

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes ``(N, 4)`` in window pixels as frame pixels."""
        return boxes + np.array([self.left, self.top, self.left, self.top], dtype=boxes.dtype)

    def clear_of_inner_edges(self, boxes: np.ndarray, margin: float) -> np.ndarray:
        """``(N,)`` whether each box (window pixels) keeps ``margin`` px from every window edge that is not a frame edge."""
        x1, y1, x2, y2 = boxes.T
        keep = np.ones(len(boxes), dtype=bool)
        if self.left > 0:
            keep &= x1 > margin
        if self.top > 0:
            keep &= y1 > margin
        if self.left + self.width < self.frame_width:
            keep &= x2 < self.width - margin
        if self.top + self.height < self.frame_height:
            keep &= y2 < self.height - margin
        return keep


class FarFieldDetector:
    """``detector`` on the whole frame and on a magnified window around the horizon, boxes merged.

    Args:
        detector: The detector; with ``detect_batch`` (the trained one) both passes run as one batch.
        window: Where to look twice.
        iou_threshold: NMS IoU per class between the two passes' boxes.
        edge_px: Margin from the window's inner edges (see :meth:`ZoomWindow.clear_of_inner_edges`).
    """

    def __init__(self, detector: ObjectDetector, window: ZoomWindow, iou_threshold: float = 0.6, edge_px: float = 2.0) -> None:
        self.detector, self.window = detector, window
        self.iou_threshold, self.edge_px = iou_threshold, edge_px
        self.class_names = detector.class_names

    def detect(self, image: np.ndarray) -> Detections:
        """Objects in one ``(H, W, 3)`` uint8 RGB frame of the camera's size."""
        w = self.window
        if image.shape[:2] != (w.frame_height, w.frame_width):
            raise InputError(f"frame is {image.shape[1]}x{image.shape[0]} px, the camera {w.frame_width}x{w.frame_height} px")
        crop = w.crop(image)
        if hasattr(self.detector, "detect_batch"):
            whole, near = self.detector.detect_batch([image, crop])
        else:
            whole, near = self.detector.detect(image), self.detector.detect(crop)
        kept = w.clear_of_inner_edges(near.boxes, self.edge_px)
        boxes = np.concatenate([whole.boxes, w.to_frame(near.boxes[kept])]).astype(np.float32)
        scores = np.concatenate([whole.scores, near.scores[kept]]).astype(np.float32)
        class_ids = np.concatenate([whole.class_ids, near.class_ids[kept]]).astype(np.int64)
        if not len(boxes):
            return Detections.empty(self.class_names)
        order = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(class_ids), self.iou_threshold).numpy()
        return Detections(boxes[order], scores[order], class_ids[order], self.class_names)


def with_far_field(detector: ObjectDetector, config: IntrusionConfig) -> ObjectDetector:
    """``detector`` with the far-field pass of ``config.far_field`` for ``config.camera``; unchanged when its zoom is 1."""
    far: FarFieldConfig = config.far_field
    if far.zoom <= 1:
        return detector
    window = ZoomWindow.around_horizon(config.camera, far.zoom, far.above_horizon)
    return FarFieldDetector(detector, window, config.det_infer.iou_threshold, far.edge_px)
