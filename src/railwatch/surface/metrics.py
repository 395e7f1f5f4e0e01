"""Scores of the defect class (paper 002, Tables 3 and 5-7): accuracy, F1, precision, recall, IoU; and where the wrong pixels lie."""

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


@dataclass(frozen=True)
class ErrorLocations:
    """Where a segmenter's wrong pixels lie: next to a true outline or not, and at which row and column phase.

    A network that predicts from I/4 features through upsampling draws each outline from a 4x4
    grid of coarse pixels. Where an upsampling has only ``stride`` taps (Table 1's 2-tap kernels),
    nothing is interpolated between coarse pixels and outlines snap to their grid: errors then
    pile up at the first and last row (or column) of each cell, phases 0 and 3 of ``period``.
    """

    false_positives: int
    false_negatives: int
    in_band: int
    """Wrong pixels within ``band`` pixels of a true defect's outline (inside or outside it)."""
    by_row_phase: list[int]
    """Wrong pixels per row index modulo ``period``."""
    by_column_phase: list[int]
    """Wrong pixels per column index modulo ``period``."""

    @property
    def errors(self) -> int:
        return self.false_positives + self.false_negatives

    @property
    def band_share(self) -> float:
        """Share of the wrong pixels that lie in the outline band."""
        return self.in_band / max(1, self.errors)

    def to_dict(self) -> dict:
        return {**asdict(self), "errors": self.errors, "band_share": self.band_share}


def error_locations(predicted: np.ndarray, truth: np.ndarray, period: int = 4, band: int = 1) -> ErrorLocations:
    """Locate the wrong pixels of boolean ``(tiles, H, W)`` masks (see :class:`ErrorLocations`).

    The outline band is the true mask dilated by ``band`` pixels minus the true mask eroded by
    ``band`` pixels (3x3 neighbourhoods, each tile on its own).
    """
    from scipy import ndimage  # only this diagnostic needs it

    if predicted.shape != truth.shape or predicted.ndim != 3:
        raise ValueError(f"expected two (tiles, H, W) masks of one shape, got {predicted.shape} and {truth.shape}")
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    wrong = predicted != truth
    per_tile = np.zeros((1, 3, 3), bool)
    per_tile[0] = True  # 8-neighbourhood within a tile, never across tiles
    outline = ndimage.binary_dilation(truth, per_tile, iterations=band) & ~ndimage.binary_erosion(truth, per_tile, iterations=band)
    rows, columns = wrong.sum(axis=(0, 2)), wrong.sum(axis=(0, 1))
    return ErrorLocations(
        int((predicted & ~truth).sum()), int((~predicted & truth).sum()), int((wrong & outline).sum()),
        [int(rows[p::period].sum()) for p in range(period)], [int(columns[p::period].sum()) for p in range(period)],
    )  # fmt: skip


def snapped_to_cells(truth: np.ndarray, cell: int = 4, axis: int = 1) -> np.ndarray:
    """The boolean ``(tiles, H, W)`` truth as drawn by a model whose outlines along ``axis`` snap to ``cell``-pixel cells.

    Each run of ``cell`` rows (``axis=1``) or columns (``axis=2``), per column (row), becomes all
    defect where at least half of it is; pixels past the last whole cell are kept. Scoring this
    against the truth bounds what such a model can reach when it knows every defect exactly: the
    modified FCN draws Type 2's rows through 2-tap upsamplings from pool2's 4-row cells.
    """
    if axis not in (1, 2) or truth.ndim != 3:
        raise ValueError(f"expected (tiles, H, W) masks and axis 1 or 2, got shape {truth.shape} and axis {axis}")
    moved = np.moveaxis(truth.astype(bool), axis, -1)
    whole = moved.shape[-1] // cell * cell
    cells = moved[..., :whole].reshape(*moved.shape[:-1], whole // cell, cell).mean(-1) >= 0.5
    snapped = np.concatenate([np.repeat(cells, cell, axis=-1), moved[..., whole:]], axis=-1)
    return np.moveaxis(snapped, -1, axis)
