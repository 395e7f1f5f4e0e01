"""Generated clips: the train's and the walkers' motion show in the truth, frame by frame."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from railwatch.camera import Camera, load_camera
from railwatch.cli import app
from railwatch.data.scene_clips import (
    STILL_TYPES,
    WALKER_TYPES,
    make_clip,
    random_clip_spec,
    render_clip_frame,
    write_clip,
)
from railwatch.errors import InputError
from railwatch.intrusion.risk import assess_risk
from railwatch.videoio import VideoReader

SMALL = Camera(width_px=256, height_px=128, focal_px=187.0)  # the scene camera's field of view, 1/16 the pixels


@pytest.fixture(scope="module")
def clip():
    return make_clip(5, frames=6, fps=10, camera=SMALL, train_speed_mps=12.0)


def test_truth_follows_the_train_and_the_walkers(clip):
    spec = clip.spec
    dt = 1 / spec.fps
    assert [f.index for f in clip.frames] == list(range(6))
    first = {o.id: o for o in clip.frames[0].objects}
    assert set(first) == {o.id for o in spec.objects}
    for prev, frame in zip(clip.frames, clip.frames[1:]):
        before = {o.id: o for o in prev.objects}
        for obj in frame.objects:
            was = before[obj.id]
            assert obj.type == was.type  # ids are stable
            assert obj.distance_m == pytest.approx(was.distance_m - spec.train_speed_mps * dt, abs=1e-9)
            assert obj.offset_mm == pytest.approx(was.offset_mm + 1000 * obj.lateral_speed_mps * dt, abs=1e-6)
            assert obj.speed_mps == pytest.approx(abs(obj.lateral_speed_mps))
            if obj.type in STILL_TYPES:
                assert obj.lateral_speed_mps == 0 and obj.offset_mm == was.offset_mm
            else:
                assert 0.5 <= abs(obj.lateral_speed_mps) <= 2.0


def test_levels_are_the_risk_of_the_true_values(clip):
    objects = [o for frame in clip.frames for o in frame.objects]
    risk = assess_risk(
        [o.offset_mm for o in objects], [o.distance_m for o in objects], [o.type for o in objects], [o.speed_mps for o in objects]
    )
    assert [o.level for o in objects] == risk.level_names()
    assert [o.z for o in objects] == pytest.approx(risk.z.tolist())


def test_objects_are_drawn_where_the_truth_says(clip):
    frame = clip.frames[-1]
    for obj in frame.objects:
        if obj.in_view and obj.visible:
            u0, v0, u1, v1 = obj.box
            assert u0 - 1 <= obj.foot_u <= u1 + 1 and obj.foot_v == pytest.approx(v1, abs=1.0)


def test_walkers_cross_the_track_and_all_start_in_view():
    for seed in range(12):
        spec = random_clip_spec(seed, frames=40, fps=20, camera=SMALL)
        assert spec.objects and spec.objects[0].type in WALKER_TYPES
        for obj in spec.objects:
            u, _ = SMALL.project(spec.scene.tracks[0].centre_x(obj.distance_m) + obj.offset_m, obj.distance_m)
            assert 0 <= float(u) <= SMALL.width_px - 1
            assert obj.distance_at(spec.travelled_m(spec.frames - 1)) >= 10.0
            if obj.type in WALKER_TYPES:  # beside the track at one end of the clip, across at the other
                assert obj.offset_at(0.0) * obj.offset_at(spec.duration_s) < 0


def test_same_seed_same_clip():
    spec = random_clip_spec(3, frames=4, fps=10, camera=SMALL)
    assert spec == random_clip_spec(3, frames=4, fps=10, camera=SMALL)
    a, b = render_clip_frame(spec, 2), render_clip_frame(spec, 2)
    assert np.array_equal(a.image, b.image) and a.objects == b.objects
    assert not np.array_equal(render_clip_frame(spec, 0).image, a.image)
    assert random_clip_spec(4, frames=4, fps=10, camera=SMALL) != spec


def test_write_clip_frames_and_video(tmp_path):
    spec = random_clip_spec(2, frames=3, fps=5, camera=SMALL)
    truth = write_clip(tmp_path / "png", spec, progress=False)
    lines = [json.loads(line) for line in truth.read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2]
    assert all((tmp_path / "png" / line["image"]).is_file() for line in lines)
    assert lines[1]["time_s"] == pytest.approx(0.2) and lines[1]["train_speed_mps"] == spec.train_speed_mps
    assert {"id", "class", "box", "foot_px", "offset_mm", "distance_m", "speed_mps", "level"} <= set(lines[0]["objects"][0])
    assert load_camera(tmp_path / "png" / "camera.yaml") == SMALL
    write_clip(tmp_path / "mp4", spec, video=True, progress=False)
    with VideoReader(tmp_path / "mp4" / "clip.mp4") as reader:
        frames = list(reader)
        assert reader.fps == pytest.approx(5.0)
    assert len(frames) == 3 and frames[0].shape == (128, 256, 3)
    assert not list((tmp_path / "mp4").glob(".tmp-*"))


def test_bad_clip_arguments():
    with pytest.raises(InputError, match="seed"):
        random_clip_spec(-1, frames=3, fps=10)
    with pytest.raises(InputError, match="frames"):
        random_clip_spec(0, frames=0, fps=10)
    with pytest.raises(InputError, match="weather"):
        random_clip_spec(0, frames=3, fps=10, weathers="snow")
    with pytest.raises(InputError, match="not in the clip"):
        random_clip_spec(0, frames=3, fps=10).scene_at(3)


def test_cli_synth_clip(tmp_path):
    result = CliRunner().invoke(app, ["data", "synth", "clip", str(tmp_path / "c"), "--frames", "2", "--fps", "5", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "c" / "frames").iterdir()) == ["000000.png", "000001.png"]
    assert len((tmp_path / "c" / "truth.jsonl").read_text().splitlines()) == 2
    bad = CliRunner().invoke(app, ["data", "synth", "clip", str(tmp_path / "d"), "--frames", "0"])
    assert bad.exit_code == 2 and "error:" in bad.output
