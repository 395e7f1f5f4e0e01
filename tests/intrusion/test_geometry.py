"""Lateral position (Eq. 9-14) and gauge ranging, checked against the camera model's truth."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.config import GaugeConfig, IntrusionConfig
from railwatch.data.rail_masks import RailMaskScene, SceneObject, Track, render_rail_mask
from railwatch.errors import GeometryError, InputError
from railwatch.intrusion.geometry import gauge_distance_m, lateral_position
from railwatch.intrusion.grading import grade_objects
from railwatch.intrusion.railfit import Rail, RailFit, fit_rails


def straight_fit(left: float = 100.0, right: float = 250.0) -> RailFit:
    rails = (
        Rail(coeffs=np.array([left, 0, 0, 0]), y_min=0, y_max=199, ego=True),
        Rail(coeffs=np.array([right, 0, 0, 0]), y_min=0, y_max=199, ego=True),
    )
    return RailFit(rails=rails, shape=(200, 400), ego=(0, 1))


def test_equations_9_to_14_with_paper_gauge():
    # rail lines 150 px apart -> k = 1435/150 mm/px when the fitted lines are the gauge faces
    paper = GaugeConfig(rail_head_width_mm=0.0)
    pos = lateral_position(np.array([175.0, 100.0, 300.0]), 50.0, straight_fit(), paper)
    k = 1435.0 / 150.0
    np.testing.assert_allclose(pos.k_mm_per_px, k)
    np.testing.assert_allclose(pos.offset_mm, [0.0, -75 * k, 125 * k])
    np.testing.assert_allclose(pos.d_left_mm, pos.offset_mm + 717.5)
    np.testing.assert_allclose(pos.d_right_mm, pos.offset_mm - 717.5)
    assert pos.offset_mm[1] == pytest.approx(-717.5)  # on the left rail line


def test_rail_head_width_sets_line_spacing():
    pos = lateral_position(100.0, 50.0, straight_fit(), GaugeConfig())
    assert float(pos.offset_mm) == pytest.approx(-(1435 + 72) / 2)


def test_rows_outside_the_rails_are_not_placed():
    fit = RailFit(
        rails=tuple(Rail(np.array([x, 0, 0, 0]), y_min=100, y_max=199, ego=True) for x in (100.0, 250.0)),
        shape=(200, 400),
        ego=(0, 1),
    )
    pos = lateral_position([175.0, 175.0], [150.0, 20.0], fit, row_tolerance_px=8)
    assert pos.valid.tolist() == [True, False]
    assert np.isnan(pos.offset_mm[1])


def test_foot_point_outside_image():
    with pytest.raises(InputError, match="outside the 400x200 image"):
        lateral_position(450.0, 10.0, straight_fit())


def test_no_ego_track():
    fit = RailFit(rails=(Rail(np.array([5.0, 0, 0, 0]), 0, 199),), shape=(200, 400), ego=None)
    with pytest.raises(GeometryError, match="no ego track"):
        lateral_position(10.0, 10.0, fit)


def test_gauge_ranging_inverts_projection():
    # rail lines 1.507 m apart seen 70.33 px apart with f = 1400 px are 30 m away
    assert float(gauge_distance_m(1400 * 1.507 / 30.0, 1400.0)) == pytest.approx(30.0)
    with pytest.raises(InputError):
        gauge_distance_m(10.0, 0.0)


def _grade_scene(objects):
    scene = RailMaskScene(tracks=(Track(0.05, -1500.0),), max_distance_m=100, objects=objects)
    sample = render_rail_mask(scene)
    truth = sample.objects
    graded = grade_objects(
        fit_rails(sample.mask),
        np.array([o.foot_u for o in truth]),
        np.array([o.foot_v for o in truth]),
        [o.type for o in truth],
        0.0,
        IntrusionConfig(camera=scene.camera),
    )
    return graded, truth


def test_objects_on_generated_scene_match_truth():
    objects = (
        SceneObject("person", offset_m=-0.2, distance_m=15.0),  # between the rails, hides neither
        SceneObject("stone", offset_m=0.3, distance_m=25.0),
        SceneObject("car", offset_m=2.8, distance_m=30.0),
        SceneObject("animal", offset_m=-2.0, distance_m=50.0),
    )
    graded, truth = _grade_scene(objects)
    assert graded.placed.all()
    np.testing.assert_allclose(graded.risk.offset_mm, [o.offset_mm for o in truth], atol=50)
    np.testing.assert_allclose(graded.distance_m, [o.depth_m for o in truth], rtol=0.02)


def test_object_behind_a_rail_hiding_object():
    # a person by the left rail hides it over 160 rows around the car's; the joint fit of the two
    # ego rails carries the left one across from the right one's shape (alone it was 2.6 px off)
    objects = (SceneObject("person", offset_m=-0.5, distance_m=15.0), SceneObject("car", offset_m=2.8, distance_m=30.0))
    graded, truth = _grade_scene(objects)
    np.testing.assert_allclose(graded.risk.offset_mm, [o.offset_mm for o in truth], atol=50)
    np.testing.assert_allclose(graded.distance_m, [o.depth_m for o in truth], rtol=0.02)
