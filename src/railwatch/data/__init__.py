"""Data for railwatch: readers of real formats and seeded synthetic generators.

- :mod:`railwatch.data.rail_masks`: binary rail masks of cab-view scenes drawn through a
  pinhole camera, with the exact image position of every rail and object.
- :mod:`railwatch.data.scenes`: rendered cab-view images (tracks, turnouts, objects, weather)
  with rail, track and semantic masks, YOLO boxes and metric truth.
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
from railwatch.data.scenes import (
    SCENE_CAMERA,
    SEMANTIC_CLASSES,
    WEATHERS,
    SceneSample,
    SceneSpec,
    SceneTrack,
    make_scene,
    random_scene_spec,
    render_scene,
    scene_truth,
    write_scene_dataset,
    yolo_lines,
)

__all__ = [
    "SCENE_CAMERA",
    "SEMANTIC_CLASSES",
    "WEATHERS",
    "ObjectTruth",
    "RailMaskSample",
    "RailMaskScene",
    "RailTruth",
    "SceneObject",
    "SceneSample",
    "SceneSpec",
    "SceneTrack",
    "Track",
    "make_scene",
    "random_scene",
    "random_scene_spec",
    "render_rail_mask",
    "render_scene",
    "scene_truth",
    "write_scene_dataset",
    "yolo_lines",
]
