"""Rail fitting on generated masks: straight, curved, several tracks, gaps and noise."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.camera import Camera
from railwatch.config import RailFitConfig
from railwatch.data.rail_masks import RailMaskScene, SceneObject, Track, render_rail_mask
from railwatch.errors import InputError, NoRailsFoundError
from railwatch.intrusion.railfit import fit_rails


def worst_error(sample, fit, max_distance_m: float | None = None) -> float:
    """Largest distance (px) between each true rail and its best-matching fitted rail."""
    camera = sample.scene.camera
    worst = 0.0
    for truth in sample.rails:
        rows = truth.rows
        if max_distance_m is not None:
            _, z = camera.ground_point(camera.cx, rows)
            rows = rows[z <= max_distance_m]
        if rows.size < 20:
            continue
        best = np.inf
        for rail in fit.rails:
            seen = rows[(rows >= rail.y_min) & (rows <= rail.y_max)]
            if seen.size < 0.8 * rows.size:
                continue
            best = min(best, float(np.abs(rail.x_at(seen) - truth.x_at(seen)).max()))
        worst = max(worst, best)
    return worst


def test_straight_track_within_half_pixel():
    sample = render_rail_mask(RailMaskScene(tracks=(Track(0.1),), max_distance_m=150))
    fit = fit_rails(sample.mask)
    assert len(fit.rails) == 2 and fit.ego == (0, 1)
    assert worst_error(sample, fit) < 0.5


@pytest.mark.parametrize("radius", [-800.0, 800.0, -1500.0, 3000.0])
def test_curved_track_within_2px(radius):
    sample = render_rail_mask(RailMaskScene(tracks=(Track(0.05, radius),), max_distance_m=90))
    fit = fit_rails(sample.mask)
    assert len(fit.rails) == 2
    assert worst_error(sample, fit) < 2.0


def test_tight_curve_within_2px_out_to_150m():
    sample = render_rail_mask(RailMaskScene(tracks=(Track(0.0, 400.0),), max_distance_m=150))
    assert worst_error(sample, fit_rails(sample.mask), max_distance_m=60) < 1.0
    # where the rails converge into one run near the horizon, each rail fitted alone bent
    # towards the other's points (24 px); the pair's fit drops them
    assert worst_error(sample, fit_rails(sample.mask)) < 2.0
    assert worst_error(sample, fit_rails(sample.mask, RailFitConfig(joint_ego=False))) > 10.0


def test_cubic_model_is_the_papers_and_worse_on_curves():
    sample = render_rail_mask(RailMaskScene(tracks=(Track(0.05, 800.0),), max_distance_m=90))
    cubic = fit_rails(sample.mask, RailFitConfig(model="cubic"))
    perspective = fit_rails(sample.mask)
    assert cubic.rails[0].perspective_coeffs is None
    np.testing.assert_allclose(cubic.rails[0].x_at(700.0), np.polyval(cubic.rails[0].coeffs[::-1], 700.0))
    assert worst_error(sample, perspective) < worst_error(sample, cubic)


def test_three_parallel_tracks():
    tracks = (Track(0.0, -2000.0), Track(-4.5, -2000.0 + 4.5), Track(4.6, -2000.0 - 4.6))
    sample = render_rail_mask(RailMaskScene(tracks=tracks, max_distance_m=100))
    fit = fit_rails(sample.mask)
    assert len(fit.rails) == 6
    assert worst_error(sample, fit) < 2.0
    # the ego rails are the third and fourth from the left, and straddle the image centre
    assert fit.ego == (2, 3)
    assert fit.ego_left.x_at(1079) < 959.5 < fit.ego_right.x_at(1079)


def test_dashed_rails_are_bridged():
    sample = render_rail_mask(RailMaskScene(tracks=(Track(0.0, 1500.0),), max_distance_m=100, dash_m=(4.0, 1.5)), seed=3)
    fit = fit_rails(sample.mask)
    assert len(fit.rails) == 2
    assert worst_error(sample, fit) < 2.0


def test_noisy_mask():
    scene = RailMaskScene(tracks=(Track(0.1, -1200.0),), max_distance_m=100, dropout=0.15, salt=0.001)
    sample = render_rail_mask(scene, seed=5)
    fit = fit_rails(sample.mask)
    assert fit.ego is not None
    assert worst_error(sample, fit) < 2.0


def test_occluding_objects_do_not_split_rails():
    objects = (SceneObject("car", offset_m=0.0, distance_m=40.0),)
    sample = render_rail_mask(RailMaskScene(objects=objects, max_distance_m=100))
    fit = fit_rails(sample.mask)
    assert len(fit.rails) == 2
    assert worst_error(sample, fit, max_distance_m=35) < 2.0


def test_any_mask_size(small_camera):
    tiny = Camera(width_px=320, height_px=180, focal_px=240.0)
    for camera in (small_camera, tiny):
        sample = render_rail_mask(RailMaskScene(camera=camera, tracks=(Track(0.0, 1000.0),), max_distance_m=80))
        fit = fit_rails(sample.mask)
        assert fit.shape == (camera.height_px, camera.width_px)
        assert worst_error(sample, fit) < 2.0


def test_known_horizon_matches_estimate():
    scene = RailMaskScene(tracks=(Track(0.0, 900.0),), max_distance_m=100)
    sample = render_rail_mask(scene)
    estimated = fit_rails(sample.mask)
    given = fit_rails(sample.mask, RailFitConfig(horizon_row_px=scene.camera.horizon_row))
    # the ego rails' joint fit pins the horizon (each rail alone left it about 10 px loose)
    assert abs(estimated.rails[0].horizon_row - scene.camera.horizon_row) < 1.0
    assert {r.horizon_row for r in estimated.rails} == {estimated.rails[0].horizon_row}
    assert worst_error(sample, estimated) < 2.0
    assert worst_error(sample, given) < 2.0


def test_joint_fit_carries_a_hidden_rail_across_from_its_partner():
    # a person by the left rail near the camera hides its far stretch, rows 560-720
    objects = (SceneObject("person", offset_m=-0.5, distance_m=15.0),)
    sample = render_rail_mask(RailMaskScene(tracks=(Track(0.05, -1500.0),), max_distance_m=100, objects=objects))
    hidden = np.arange(560, 720)
    left_truth = next(t for t in sample.rails if t.side == "left")
    apart = fit_rails(sample.mask, RailFitConfig(joint_ego=False))
    joint = fit_rails(sample.mask)
    assert np.abs(apart.ego_left.x_at(hidden) - left_truth.x_at(hidden)).max() > 5.0
    assert np.abs(joint.ego_left.x_at(hidden) - left_truth.x_at(hidden)).max() < 1.0
    # the two curves differ only in their gauge term, and both hold over the rows either was seen on
    np.testing.assert_allclose(np.delete(joint.ego_left.perspective_coeffs, 1), np.delete(joint.ego_right.perspective_coeffs, 1))
    assert (joint.ego_left.y_min, joint.ego_left.y_max) == (joint.ego_right.y_min, joint.ego_right.y_max)


def test_rails_that_are_not_one_track_keep_their_own_fits():
    # the right rail bends away from a straight left one: no flat-ground track looks like that
    mask = np.zeros((400, 600), dtype=bool)
    up = 399 - np.arange(150, 400)
    for y, xl, xr in zip(range(150, 400), 260 - 0.25 * up, 340 + 0.25 * up - 0.0025 * up**2):
        mask[y, round(xl) - 2 : round(xl) + 3] = mask[y, round(xr) - 2 : round(xr) + 3] = True
    joint, apart = fit_rails(mask), fit_rails(mask, RailFitConfig(joint_ego=False))
    assert joint.ego == apart.ego == (0, 1)
    for a, b in zip(joint.rails, apart.rails):
        np.testing.assert_array_equal(a.perspective_coeffs, b.perspective_coeffs)
        assert a.rms_px == b.rms_px < 1.0


def test_json_form_has_issue_keys():
    sample = render_rail_mask(RailMaskScene(max_distance_m=80))
    data = fit_rails(sample.mask).to_dict()
    rail = data["rails"][0]
    assert set(rail) >= {"coeffs", "y_min", "y_max", "ego"}
    assert len(rail["coeffs"]) == 4
    assert sum(r["ego"] for r in data["rails"]) == 2


def test_empty_mask_is_an_error():
    with pytest.raises(NoRailsFoundError, match="no rails found in empty.png"):
        fit_rails(np.zeros((100, 200), dtype=bool), source="empty.png")


def test_speckle_alone_is_no_rail():
    rng = np.random.default_rng(0)
    with pytest.raises(NoRailsFoundError):
        fit_rails(rng.random((300, 400)) < 0.0005)


def test_colour_array_is_rejected():
    with pytest.raises(InputError, match="single-channel"):
        fit_rails(np.zeros((10, 10, 3)))


def test_vertical_bars_doctest_case():
    mask = np.zeros((200, 300), dtype=bool)
    mask[:, 95:100] = True
    mask[:, 200:205] = True
    fit = fit_rails(mask)
    np.testing.assert_allclose([float(r.x_at(100)) for r in fit.rails], [97.0, 202.0], atol=1e-6)
