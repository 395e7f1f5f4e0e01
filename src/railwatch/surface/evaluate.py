"""``surface eval``: score a trained model on the tiles of a data set (paper 002, Table 3)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from railwatch.errors import InputError
from railwatch.surface.data import find_pairs, holdout_split, load_tiles
from railwatch.surface.infer import SurfaceSegmenter
from railwatch.surface.metrics import DefectScores


@dataclass(frozen=True)
class SurfaceEvaluation:
    """Scores over a set of tiles, and how long the network took per tile."""

    scores: DefectScores
    tiles: int
    ms_per_tile: float

    def to_dict(self) -> dict:
        return {**self.scores.to_dict(), "tiles": self.tiles, "ms_per_tile": self.ms_per_tile}


def evaluate_surface(
    segmenter: SurfaceSegmenter,
    data: str | Path,
    rail_type: str,
    split: str = "all",
    threshold: float = 0.5,
) -> SurfaceEvaluation:
    """Score ``segmenter`` on the tiles of ``data``: all of them, or the held-out test split of ``surface train``.

    Args:
        segmenter: The trained model.
        data: RSDDs folder or ``images/`` + ``masks/``.
        rail_type: Which RSDDs type to read.
        split: ``"all"`` tiles, or ``"test"``: the tiles that ``surface train`` held out (the
            seed and fraction recorded in the checkpoint).
        threshold: Defect probability above which a pixel is a defect.

    Raises:
        InputError: bad data, or a tile height that differs from the model's.
    """
    if split not in ("all", "test"):
        raise InputError(f"--split must be all or test, got {split!r}")
    tiles = load_tiles(find_pairs(data, rail_type), segmenter.tile_height, segmenter.mask_threshold)
    if split == "test":
        meta = segmenter.meta
        if "val_fraction" not in meta:
            raise InputError("this checkpoint records no held-out split (trained by `surface cv`?); use --split all")
        tiles = tiles.subset(holdout_split(len(tiles), meta["val_fraction"], meta.get("seed", 0))[1])
    start = time.perf_counter()
    predicted = segmenter.probabilities(tiles.images) > threshold
    elapsed = time.perf_counter() - start
    scores = DefectScores.from_masks(predicted, tiles.masks)
    return SurfaceEvaluation(scores, len(tiles), 1000 * elapsed / max(1, len(tiles)))


