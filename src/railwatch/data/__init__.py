"""Data for railwatch: readers of real formats and seeded synthetic generators.

- :mod:`railwatch.data.rail_masks`: binary rail masks of cab-view scenes drawn through a
  pinhole camera, with the exact image position of every rail and object.
"""

from railwatch.data.rail_masks import (
    ObjectTruth,
    RailMaskSample,
    RailMaskScene,
    RailTruth,
    SceneObject,
    Track,
    random_scene,
    render_rail_mask,
)

__all__ = [
    "ObjectTruth",
    "RailMaskSample",
    "RailMaskScene",
    "RailTruth",
    "SceneObject",
    "Track",
    "random_scene",
    "render_rail_mask",
]
