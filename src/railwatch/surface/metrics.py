"""Scores of the defect class (paper 002, Tables 3 and 5-7): accuracy, F1, precision, recall, IoU."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class DefectScores:
    """Pixel counts of the defect class over a whole set, and the scores they give.

    The counts are summed over every pixel of every tile before dividing, so a tile without
    defects counts through its false positives only.
    """

    tp: int
    fp: int
    tn: int
    fn: int

    @classmethod
    def from_masks(cls, predicted: np.ndarray, truth: np.ndarray) -> DefectScores:
        """Counts of two boolean defect masks of the same shape."""
        return cls(
            int((predicted & truth).sum()), int((predicted & ~truth).sum()),
            int((~predicted & ~truth).sum()), int((~predicted & truth).sum()),
        )  # fmt: skip

    @property
    def accuracy(self) -> float:
        """Share of pixels classed right, defect or not."""
        return (self.tp + self.tn) / max(1, self.tp + self.fp + self.tn + self.fn)

    @property
    def precision(self) -> float:
        return self.tp / max(1, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self.tp / max(1, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """2TP / (2TP + FP + FN); 1 when there are no defects and none was predicted."""
        return 2 * self.tp / (2 * self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else 1.0

    @property
    def iou(self) -> float:
        """TP / (TP + FP + FN) of the defect class; 1 when there are no defects and none was predicted."""
        return self.tp / (self.tp + self.fp + self.fn) if self.tp + self.fp + self.fn else 1.0

    def to_dict(self) -> dict[str, float]:
        """Counts and scores, for JSON."""
        return {
            **asdict(self),
            "accuracy": self.accuracy, "f1": self.f1, "precision": self.precision, "recall": self.recall, "iou": self.iou,
        }  # fmt: skip
