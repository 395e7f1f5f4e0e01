"""The far-field pass: where its window lies, which of its boxes are kept, and how they join the whole frame's."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.camera import Camera
from railwatch.config import OBJECT_TYPES, FarFieldConfig, IntrusionConfig
from railwatch.errors import InputError
from railwatch.intrusion.det.types import Detections
from railwatch.intrusion.far_field import FarFieldDetector, ZoomWindow, with_far_field

CAMERA = Camera(width_px=1024, height_px=512, focal_px=747.0)  # the generated clips' camera


def _detections(boxes: list[list[float]], scores: list[float], classes: list[int]) -> Detections:
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), np.array(classes, np.int64), OBJECT_TYPES)


class ScriptedDetector:
    """Returns fixed boxes for the whole frame and for the window, and records the image sizes it saw."""

    class_names = OBJECT_TYPES

    def __init__(self, whole: Detections, window: Detections) -> None:
        self.whole, self.window = whole, window
        self.seen: list[tuple[int, int]] = []

    def detect_batch(self, images: list[np.ndarray]) -> list[Detections]:
        self.seen += [image.shape[:2] for image in images]
        return [self.whole, self.window]


def test_window_is_the_frame_over_zoom_around_the_horizon() -> None:
    window = ZoomWindow.around_horizon(CAMERA, zoom=2, above_horizon=0.25)
    assert (window.height, window.width) == (256, 512)
    assert window.left == 256  # centred on the principal column
    assert window.top == round(CAMERA.horizon_row - 64)  # a quarter of its height above the horizon (row 230.9)
    steep = Camera(width_px=1024, height_px=512, focal_px=747.0, pitch_deg=20.0)  # horizon above the frame
    assert ZoomWindow.around_horizon(steep, zoom=2, above_horizon=0.25).top == 0  # moved inside the frame


def test_boxes_cut_by_an_inner_window_edge_are_dropped_frame_edges_are_not() -> None:
    window = ZoomWindow(top=0, left=100, height=200, width=400, frame_height=512, frame_width=1024)
    boxes = np.array([[0.5, 50, 20, 80], [50, 0, 80, 30], [50, 50, 80, 80], [370, 150, 399, 199.5]], np.float32)
    # left edge is inside the frame: cut; top edge is the frame's: kept; right and bottom inside: cut
    assert window.clear_of_inner_edges(boxes, margin=2).tolist() == [False, True, True, False]


def test_merge_maps_window_boxes_to_the_frame_and_removes_duplicates() -> None:
    window = ZoomWindow.around_horizon(CAMERA, zoom=2, above_horizon=0.25)
    person = [600.0, 200.0, 640.0, 300.0]  # seen by both passes
    whole = _detections([person], [0.6], [0])
    in_window = [[person[0] - window.left, person[1] - window.top, person[2] - window.left, person[3] - window.top],
                 [240.0, 60.0, 250.0, 68.0],  # a stone only the magnified pass finds
                 [0.0, 100.0, 30.0, 140.0]]  # cut by the window's left edge  # fmt: skip
    scripted = ScriptedDetector(whole, _detections(in_window, [0.9, 0.5, 0.8], [0, 3, 1]))
    found = FarFieldDetector(scripted, window).detect(np.zeros((512, 1024, 3), np.uint8))
    assert scripted.seen == [(512, 1024), (256, 512)]  # one batch: the frame and the window
    assert len(found) == 2
    assert np.allclose(found.boxes[0], person) and found.scores[0] == pytest.approx(0.9)  # the better of the two
    assert np.allclose(found.boxes[1], [240 + window.left, 60 + window.top, 250 + window.left, 68 + window.top])
    assert found.class_ids.tolist() == [0, 3]


def test_far_field_is_off_at_zoom_one_and_checks_the_frame_size() -> None:
    scripted = ScriptedDetector(Detections.empty(OBJECT_TYPES), Detections.empty(OBJECT_TYPES))
    config = IntrusionConfig(camera=CAMERA)
    assert with_far_field(scripted, config.model_copy(update={"far_field": FarFieldConfig(zoom=1)})) is scripted
    far = with_far_field(scripted, config)
    assert isinstance(far, FarFieldDetector) and len(far.detect(np.zeros((512, 1024, 3), np.uint8))) == 0
    with pytest.raises(InputError, match="1920x1080"):
        far.detect(np.zeros((1080, 1920, 3), np.uint8))
