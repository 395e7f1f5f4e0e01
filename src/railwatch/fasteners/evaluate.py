"""``fasteners eval``: AUC, ACC, recall, F1 on labelled crops (paper 000, Tables 5-7, Eq. 18-20), and AUC per anomaly kind."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc

from railwatch.fasteners.data import CropSet
from railwatch.fasteners.infer import FastenerDetector, Rule
from railwatch.fasteners.scoring import DetectionScores, detection_scores


def auc_per_kind(raw: np.ndarray, crops: CropSet) -> dict[str, float]:
    """AUC of the normal crops against each anomaly kind alone."""
    normal = crops.labels == 0
    kinds = np.array(crops.kinds, dtype=object)
    result = {}
    for kind in sorted({k for k, y in zip(crops.kinds, crops.labels) if y == 1}):
        pick = normal | (kinds == kind)
        result[kind] = float(binary_auroc(torch.from_numpy(raw[pick]).double(), torch.from_numpy(crops.labels[pick])))
    return result


@dataclass(frozen=True)
class FastenerEvaluation:
    """Scores of one detector on one labelled set."""

    scores: DetectionScores
    per_kind_auc: dict[str, float]
    rule: str

    def to_dict(self) -> dict:
        return {**self.scores.to_dict(), "rule": self.rule, "per_kind_auc": self.per_kind_auc}


def evaluate_scores(raw: np.ndarray, crops: CropSet, threshold: float, rule: str) -> FastenerEvaluation:
    """Metrics of raw scores ``raw`` of ``crops`` at ``threshold``."""
    return FastenerEvaluation(detection_scores(raw, crops.labels, threshold), auc_per_kind(raw, crops), rule)


def evaluate_detector(detector: FastenerDetector, crops: CropSet, rule: Rule = "f1") -> FastenerEvaluation:
    """Score ``crops`` and measure; ``rule`` picks the threshold (best-F1 on validation, or ``mu + k sigma``)."""
    if rule == "f1" and detector.stats.f1_threshold is None:
        rule = "sigma"
    raw = detector.raw_scores(crops)
    return evaluate_scores(raw, crops, detector.stats.decision_threshold(rule), rule)
