"""What a detector returns for one image, and the interface the pipeline needs from a detector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Objects found in one image, in that image's pixel coordinates.

    Attributes:
        boxes: ``(N, 4)`` float boxes ``x1, y1, x2, y2`` in px.
        scores: ``(N,)`` confidences in ``[0, 1]``.
        class_ids: ``(N,)`` int class ids, indexing ``class_names``.
        class_names: Names of every class the detector knows, in id order.
    """

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        n = len(self.boxes)
        if self.boxes.shape != (n, 4) or self.scores.shape != (n,) or self.class_ids.shape != (n,):
            raise ValueError(
                f"inconsistent detections: boxes {self.boxes.shape}, scores {self.scores.shape}, "
                f"class_ids {self.class_ids.shape}"
            )

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def names(self) -> list[str]:
        """Class name of each detection."""
        return [self.class_names[int(i)] for i in self.class_ids]

    @classmethod
    def empty(cls, class_names: tuple[str, ...]) -> Detections:
        """No detections."""
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), class_names)


class ObjectDetector(Protocol):
    """Anything that finds objects in an RGB image (the trained detector, or a stand-in in tests)."""

    class_names: tuple[str, ...]

    def detect(self, image: np.ndarray) -> Detections:
        """Detect objects in one ``(H, W, 3)`` uint8 RGB image."""
        ...
