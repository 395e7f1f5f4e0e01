"""Crops for the fastener tests, made in the test: nothing on disk."""

from __future__ import annotations

import numpy as np

from railwatch.fasteners.data import CropSet


def blob_crops(normal: int, anomalous: int, rng: np.random.Generator) -> CropSet:
    """Dark noisy crops with a grey band (normal); anomalies add a bright 30 px square somewhere."""
    n = normal + anomalous
    images = rng.normal(40, 6, (n, 128, 128))
    images[:, 56:72, :] += 120
    for i in range(normal, n):
        y, x = rng.integers(8, 90, 2)
        images[i, y : y + 30, x : x + 30] = 250
    labels = np.r_[np.zeros(normal, np.int64), np.ones(anomalous, np.int64)]
    kinds = ("normal",) * normal + ("blob",) * anomalous
    return CropSet(images.clip(0, 255).astype(np.uint8), labels, kinds, tuple(f"c{i}" for i in range(n)))
