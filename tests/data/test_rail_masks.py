"""The rail-mask generator: deterministic, and its truth agrees with the camera model."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.camera import Camera
from railwatch.data.rail_masks import RailMaskScene, SceneObject, Track, random_scene, render_rail_mask
from railwatch.errors import InputError


def test_same_seed_same_mask():
    scene = random_scene("noisy", np.random.default_rng(1))
    a, b = render_rail_mask(scene, seed=4), render_rail_mask(scene, seed=4)
    assert np.array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, render_rail_mask(scene, seed=5).mask)


def test_camera_round_trip():
    camera = Camera(pitch_deg=3.0)
    x, z = np.array([-2.0, 0.0, 1.5]), np.array([8.0, 30.0, 90.0])
    u, v = camera.project(x, z)
    back_x, back_z = camera.ground_point(u, v)
    np.testing.assert_allclose(back_x, x, atol=1e-9)
    np.testing.assert_allclose(back_z, z, atol=1e-9)
    assert np.isnan(camera.ground_point(960.0, camera.horizon_row - 1)[1])


def test_rail_truth_matches_gauge_and_depth():
    scene = RailMaskScene(tracks=(Track(0.0),), max_distance_m=100)
    sample = render_rail_mask(scene)
    left, right = sample.rails
    camera = scene.camera
    rows = np.arange(600, 1000, 50)
    _, z = camera.ground_point(camera.cx, rows)
    expected_px = camera.focal_px * 1.507 / camera.depth(z)  # rail centre lines 1.507 m apart
    np.testing.assert_allclose(right.x_at(rows) - left.x_at(rows), expected_px, rtol=1e-3)
    # mask pixels lie on the truth: each row's rail pixels centre on the true column
    for row in rows:
        cols = np.flatnonzero(sample.mask[row])
        left_cols = cols[cols < camera.cx]
        assert abs(left_cols.mean() - float(left.x_at(np.array([row]))[0])) < 0.75


def test_objects_truth_and_occlusion():
    objects = (SceneObject("car", offset_m=0.0, distance_m=30.0), SceneObject("person", offset_m=1.0, distance_m=20.0))
    sample = render_rail_mask(RailMaskScene(objects=objects, max_distance_m=100))
    camera = sample.scene.camera
    for obj in sample.objects:
        u0, v0, u1, v1 = obj.box
        assert 0 <= u0 < obj.foot_u < u1 <= camera.width_px and v0 < v1 == pytest.approx(obj.foot_v)
        assert not sample.mask[int(v0) + 1 : int(v1) - 1, int(u0) + 1 : int(u1) - 1].any()
    car = sample.objects[0]
    assert car.offset_mm == 0.0 and car.depth_m == pytest.approx(float(camera.depth(30.0)))


def test_bad_scene_settings():
    with pytest.raises(InputError, match="unknown scene kind"):
        random_scene("wavy", np.random.default_rng(0))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown object type"):
        render_rail_mask(RailMaskScene(objects=(SceneObject("ufo", 0.0, 20.0),)))
