"""Metrics of paper 001 ("Model implementation"): MSE, accuracy after rounding, macro precision, recall, F1.

"Each predicted value was first mapped to the nearest discrete class label", so a prediction of
FFI/3 = 0.4 counts as FFI 1. MSE is on the model's own scale, FFI/3, as the paper's sigmoid output.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_f1_score, multiclass_precision, multiclass_recall

from railwatch.vibration.model import MAX_FFI

METRICS = ("mse", "accuracy", "precision", "recall", "f1")


def ffi_classes(scaled: np.ndarray) -> np.ndarray:
    """Nearest FFI class (0..3) of predictions on the FFI/3 scale."""
    return np.clip(np.rint(np.asarray(scaled) * MAX_FFI), 0, MAX_FFI).astype(np.int64)


def ffi_metrics(scaled_pred: np.ndarray, ffi: np.ndarray) -> dict[str, float]:
    """MSE (FFI/3 scale), accuracy and macro precision/recall/F1 over the four FFI classes."""
    pred = np.asarray(scaled_pred, dtype=np.float64)
    truth = np.asarray(ffi, dtype=np.int64)
    classes = torch.from_numpy(ffi_classes(pred))
    target = torch.from_numpy(truth)
    kw = {"num_classes": MAX_FFI + 1, "average": "macro"}
    return {
        "mse": float(np.mean((pred - truth / MAX_FFI) ** 2)),
        "accuracy": float((classes == target).float().mean()),
        "precision": float(multiclass_precision(classes, target, **kw)),
        "recall": float(multiclass_recall(classes, target, **kw)),
        "f1": float(multiclass_f1_score(classes, target, **kw)),
    }
