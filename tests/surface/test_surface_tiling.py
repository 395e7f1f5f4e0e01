"""Tiling a full-length strip along the rail and stitching per-tile outputs back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from railwatch.errors import InputError
from railwatch.surface.tiling import cut_along, stitch_along, tile_starts


@settings(max_examples=40, deadline=None)
@given(length=st.integers(100, 1300), width=st.integers(1, 8))
def test_cut_then_stitch_gives_the_image_back(length, width):
    image = np.random.default_rng(length).random((length, width))
    tiles, starts = cut_along(image, 100)
    assert tiles.shape[1:] == (100, width)
    assert np.allclose(stitch_along(tiles, starts, length), image)


def test_tiles_cover_every_row_and_only_the_last_overlaps():
    assert tile_starts(1000, 100) == list(range(0, 1000, 100))
    assert tile_starts(1250, 100)[-2:] == [1100, 1150]
    assert tile_starts(100, 100) == [0]


def test_overlapping_rows_are_averaged():
    tiles = np.stack([np.zeros((100, 1)), np.ones((100, 1))])
    stitched = stitch_along(tiles, [0, 50], 150)
    assert stitched[:50].max() == 0 and np.allclose(stitched[50:100], 0.5) and stitched[100:].min() == 1


def test_strip_shorter_than_a_tile_is_refused():
    with pytest.raises(InputError, match="99 rows is shorter than one 100-row tile"):
        tile_starts(99, 100)
