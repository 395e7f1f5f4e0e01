"""Cutting a full-length rail image into tiles along the rail and stitching their outputs back."""

from __future__ import annotations

import numpy as np

from railwatch.errors import InputError


def tile_starts(length: int, tile: int) -> list[int]:
    """First rows of tiles ``tile`` high covering ``length`` rows; the last tile is moved up to end flush.

    Tiles do not overlap except the last, which overlaps its neighbour when ``length`` is not a
    multiple of ``tile`` (so no row is padded or left out).

    Raises:
        InputError: ``length`` is shorter than one tile.
    """
    if length < tile:
        raise InputError(f"{length} rows is shorter than one {tile}-row tile")
    starts = list(range(0, length - tile + 1, tile))
    if starts[-1] + tile < length:
        starts.append(length - tile)
    return starts


def cut_along(array: np.ndarray, tile: int) -> tuple[np.ndarray, list[int]]:
    """``(n, tile, ...)`` tiles of ``array`` (rows first) and their first rows, covering every row."""
    starts = tile_starts(array.shape[0], tile)
    return np.stack([array[s : s + tile] for s in starts]), starts


def stitch_along(tiles: np.ndarray, starts: list[int], length: int) -> np.ndarray:
    """Put per-tile outputs ``(n, tile, ...)`` back into ``length`` rows; overlapping rows are averaged."""
    tile = tiles.shape[1]
    total = np.zeros((length, *tiles.shape[2:]), np.float64)
    count = np.zeros((length,) + (1,) * (tiles.ndim - 2), np.float64)
    for start, values in zip(starts, tiles):
        total[start : start + tile] += values
        count[start : start + tile] += 1
    return (total / count).astype(tiles.dtype if tiles.dtype.kind == "f" else np.float64)
