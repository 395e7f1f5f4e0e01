"""The intrusion pipeline: tracking, speed over the ground, hysteresis, inputs, and a run on a generated clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from railwatch.camera import load_camera
from railwatch.cli import app
from railwatch.config import OBJECT_TYPES, IntrusionConfig, TrackingConfig
from railwatch.data.scene_clips import random_clip_spec, write_clip
from railwatch.errors import InputError
from railwatch.intrusion.clip_eval import level_agreement
from railwatch.intrusion.det.types import Detections
from railwatch.intrusion.events import LevelHysteresis
from railwatch.intrusion.pipeline import open_frames, run_pipeline
from railwatch.intrusion.tracking import GroundHistory, ObjectTracker, ground_velocity
from railwatch.videoio import VideoReader, VideoWriter

runner = CliRunner()
FIELDS = {"frame", "time_s", "track_id", "class", "box", "coasted", "offset_mm", "distance_m", "speed_mps", "z", "level", "action"}
CAMERA_YAML = "width_px: 1024\nheight_px: 512\nfocal_px: 747.0\nmount_height_m: 2.5\npitch_deg: 2.0\n"


class TruthDetector:
    """Stands in for the trained detector: the clip's true boxes of the objects one can see, frame by frame."""

    class_names = OBJECT_TYPES

    def __init__(self, truth_jsonl) -> None:
        self.frames = [json.loads(line) for line in truth_jsonl.read_text().splitlines()]
        self.calls = 0

    def detect(self, image: np.ndarray) -> Detections:
        objects = [o for o in self.frames[self.calls]["objects"] if o["in_view"] and o["visible"]]
        self.calls += 1
        if not objects:
            return Detections.empty(OBJECT_TYPES)
        return Detections(
            np.array([o["box"] for o in objects], dtype=float),
            np.ones(len(objects)),
            np.array([o["class_id"] for o in objects]),
            OBJECT_TYPES,
        )


def _detections(boxes, classes=None) -> Detections:
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    classes = np.zeros(len(boxes), int) if classes is None else np.asarray(classes)
    return Detections(boxes, np.full(len(boxes), 0.9), classes, OBJECT_TYPES)


# ---------------------------------------------------------------- tracking


def test_tracker_keeps_identity_of_two_crossing_objects():
    tracker = ObjectTracker(TrackingConfig(), fps=10)
    ids_a, ids_b = [], []
    for k in range(25):
        a = [100 + 8 * k, 200, 140 + 8 * k, 290]  # walks right
        b = [300 - 8 * k, 210, 336 - 8 * k, 292]  # walks left, slightly nearer; they overlap from k = 8 to 17
        order = [b, a] if k % 2 else [a, b]  # the detector's order means nothing
        tracked = tracker.update(_detections(order, [0, 2] if k % 2 else [2, 0]))
        by_left = {round(float(box[0])): int(tid) for box, tid in zip(tracked.boxes, tracked.track_ids)}
        ids_a.append(by_left[a[0]])
        ids_b.append(by_left[b[0]])
        assert sorted(tracked.names) == ["animal", "person"]
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]


def test_track_class_is_the_majority_of_its_detections():
    tracker = ObjectTracker(TrackingConfig(), fps=25)
    names = []
    for k, cls in enumerate([0, 0, 0, 2, 0, 2, 2, 2, 2]):
        names += tracker.update(_detections([[200 + k, 100, 230 + k, 180]], [cls])).names
    assert names[:7] == ["person"] * 7  # one animal frame does not flip it
    assert names[-1] == "animal"  # five of nine frames now say animal


def test_empty_and_inverted_boxes_are_not_tracked():
    tracker = ObjectTracker(TrackingConfig(coast_s=0), fps=25)
    for _ in range(2):
        tracked = tracker.update(_detections([[10, 20, 30, 60], [50, 60, 40, 90], [5, 5, 5, 9], [np.nan, 1, 2, 3]]))
    assert tracked.boxes.tolist() == [[10, 20, 30, 60]]
    assert len(tracker.update(Detections.empty(OBJECT_TYPES))) == 0


def test_a_missed_track_coasts_at_its_predicted_box_then_ends():
    tracker = ObjectTracker(TrackingConfig(coast_s=0.3), fps=10)  # 3 frames
    for k in range(12):  # walking right at 5 px a frame
        seen = tracker.update(_detections([[100 + 5 * k, 200, 130 + 5 * k, 280]], [2]))
    assert not seen.coasted.any()
    coasting = [tracker.update(Detections.empty(OBJECT_TYPES), (512, 1024)) for _ in range(4)]
    for k, tracked in enumerate(coasting[:3], start=12):
        assert tracked.track_ids.tolist() == seen.track_ids.tolist() and tracked.coasted.tolist() == [True]
        assert tracked.names == ["animal"] and tracked.scores == pytest.approx([0.9])
        np.testing.assert_allclose(tracked.boxes[0], [100 + 5 * k, 200, 130 + 5 * k, 280], atol=2)  # the Kalman filter's velocity
    assert len(coasting[3]) == 0  # 0.3 s is over
    back = tracker.update(_detections([[180, 200, 210, 280]], [2]))
    assert back.track_ids.tolist() == seen.track_ids.tolist() and back.coasted.tolist() == [False]


def test_coasting_stops_at_the_frame_edge_and_can_be_switched_off():
    walker = [[[800 + 20 * k, 200, 830 + 20 * k, 280]] for k in range(10)]  # walking right, last foot point at u = 995
    for coast_s, frame_size, expected in ((1.0, (512, 1024), [1, 0, 0]), (1.0, None, [1, 1, 1]), (0.0, (512, 1024), [0, 0, 0])):
        tracker = ObjectTracker(TrackingConfig(coast_s=coast_s), fps=10)
        for boxes in walker:
            tracker.update(_detections(boxes))
        counts = [len(tracker.update(Detections.empty(OBJECT_TYPES), frame_size)) for _ in range(3)]
        assert counts == expected, (coast_s, frame_size)  # predicted foot points near 1015, 1035, 1055


def test_foot_point_is_the_bottom_centre():
    tracked = ObjectTracker(fps=25).update(_detections([[10, 20, 30, 60]]))
    u, v = tracked.foot_points
    assert u.tolist() == [20.0] and v.tolist() == [60.0]


def test_speed_of_a_constant_velocity_track():
    rng = np.random.default_rng(0)
    train, fps = 15.0, 25.0
    history = GroundHistory(window_s=0.5, train_speed_mps=train)
    for k in range(40):  # walks across at 1.2 m/s and towards the train at 2 m/s
        t = k / fps
        history.add(7, t, -2.0 + 1.2 * t + rng.normal(0, 0.01), 60.0 - (train + 2.0) * t + rng.normal(0, 0.1))
    v = history.velocity(7, 39 / fps)
    assert v.samples == 13  # 0.5 s of 25 fps, both ends included
    assert v.lateral_mps == pytest.approx(1.2, abs=0.05)
    assert v.along_mps == pytest.approx(-2.0, abs=0.3)
    assert v.speed_mps == pytest.approx(np.hypot(1.2, 2.0), abs=0.2)


def test_still_object_seen_from_a_moving_train_has_no_speed():
    rng = np.random.default_rng(1)
    t = np.arange(13) / 25
    noisy = ground_velocity(t, 1.5 + rng.normal(0, 0.01, t.size), 40.0 - 20.0 * t + rng.normal(0, 0.3, t.size), 20.0)
    assert noisy.speed_mps == 0.0  # ranging noise alone is not significant
    raw = ground_velocity(t, 1.5 + rng.normal(0, 0.01, t.size), 40.0 - 20.0 * t + rng.normal(0, 0.3, t.size), 20.0, False)
    assert 0 < raw.speed_mps < 3.0
    assert ground_velocity(t[:2], [0.0, 1.0], [10.0, 9.0]).speed_mps == 0.0  # two samples: no estimate


def test_smoothed_position_is_the_fitted_line_now():
    history = GroundHistory(window_s=1.0)
    assert history.position(3, 0.0) is None
    for k, noise in enumerate([0.3, -0.3, 0.3, -0.3, 0.3, -0.3]):  # d = 50 - 8 t, x = 0.5 t, read +-0.3 m
        history.add(3, k * 0.1, 0.05 * k, 50.0 - 0.8 * k + noise)
    x, d = history.position(3, 0.5)
    assert x == pytest.approx(0.25) and abs(d - 46.0) < 0.2  # the last reading alone says 45.7


def test_history_keeps_only_the_window():
    history = GroundHistory(window_s=0.2)
    for k in range(10):
        history.add(1, k * 0.1, 0.1 * k, 30.0)
    assert history.velocity(1, 0.9).samples == 3
    assert history.velocity(1, 0.9).lateral_mps == pytest.approx(1.0)
    history.forget(5.0)
    assert history.velocity(1, 5.0).samples == 0


# ---------------------------------------------------------------- hysteresis


def test_flicker_at_a_boundary_raises_one_event():
    h = LevelHysteresis(hold_frames=3)
    levels = ["III", "III", "III"] + ["II", "III"] * 10
    events = [e for frame, level in enumerate(levels) if (e := h.update(1, level, frame))]
    assert [(e.previous, e.level, e.frame) for e in events] == [(None, "III", 2)]


def test_a_persistent_change_raises_exactly_one_event():
    h = LevelHysteresis(hold_frames=3)
    levels = ["IV"] * 4 + ["II"] * 8 + [None, "II"]
    events = [e for frame, level in enumerate(levels) if (e := h.update(5, level, frame))]
    assert [(e.previous, e.level, e.frame, e.since_frame) for e in events] == [(None, "IV", 2, 0), ("IV", "II", 6, 4)]
    assert h.level(5) == "II"


def test_ungraded_frames_neither_count_nor_break_a_run():
    h = LevelHysteresis(hold_frames=2)
    assert h.update(1, "V", 0) is None
    assert h.update(1, None, 1) is None
    assert h.update(1, "V", 2).level == "V"
    assert LevelHysteresis(hold_frames=1).update(2, "I", 0).level == "I"  # one frame confirms at once


def test_tracks_have_their_own_hysteresis():
    h = LevelHysteresis(hold_frames=2)
    out = [h.update(tid, "II", frame) for frame in range(2) for tid in (1, 2)]
    assert [e.track_id for e in out if e] == [1, 2]


# ---------------------------------------------------------------- inputs


def test_camera_yaml_missing_a_field(tmp_path):
    path = tmp_path / "cam.yaml"
    path.write_text(CAMERA_YAML.replace("pitch_deg: 2.0\n", ""))
    with pytest.raises(InputError, match=r"cam\.yaml: camera field pitch_deg is missing"):
        load_camera(path)
    path.write_text(CAMERA_YAML.replace("747.0", "-3"))
    with pytest.raises(InputError, match=r"cam\.yaml: camera field focal_px"):
        load_camera(path)
    path.write_text(CAMERA_YAML)
    assert load_camera(path).focal_px == 747.0
    args = ["intrusion", "run", str(tmp_path), "--camera", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "none.yaml: camera file not found" in result.output


def test_unreadable_video(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(InputError, match=r"broken\.mp4: not a readable video"):
        open_frames(bad)
    with pytest.raises(InputError, match="no such video file or image folder"):
        open_frames(tmp_path / "missing.mp4")
    cam = tmp_path / "cam.yaml"
    cam.write_text(CAMERA_YAML)
    result = runner.invoke(
        app, ["intrusion", "run", str(bad), "--camera", str(cam), "--out", str(tmp_path / "o"), "--detector", str(bad)]
    )
    assert result.exit_code == 2 and result.output.startswith("error:") and "broken.mp4" in result.output


def test_video_round_trip_and_frame_rate(tmp_path):
    frames = [np.full((34, 62, 3), 40 * k, np.uint8) for k in range(4)]
    with VideoWriter(tmp_path / "v.mp4", fps=12.5) as writer:
        for frame in frames:
            writer.write(frame)
    source = open_frames(tmp_path / "v.mp4")
    assert source.fps == pytest.approx(12.5) and source.count == 4
    got = [image for _, image in source.frames]
    assert len(got) == 4 and got[0].shape == (34, 62, 3)
    assert [int(g.mean()) for g in got] == pytest.approx([40 * k for k in range(4)], abs=3)
    assert open_frames(tmp_path / "v.mp4", fps=5).fps == 5
    with pytest.raises(InputError, match="no frames"):
        VideoWriter(tmp_path / "empty.mp4", 10).close()
    assert not list(tmp_path.glob(".tmp-*"))
    assert VideoReader(tmp_path / "v.mp4").width == 62


def test_frames_of_another_size_than_the_camera(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.new("RGB", (640, 480)).save(folder / "000000.png")
    cfg = IntrusionConfig()  # a 1920x1080 camera
    with pytest.raises(InputError, match=r"000000\.png is 640x480 px but the camera is 1920x1080 px"):
        run_pipeline(folder, tmp_path / "out", None, None, cfg, progress=False)  # type: ignore[arg-type]


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """A 12-frame clear clip at 10 fps through the packaged segmenter and the truth stand-in detector."""
    from railwatch.intrusion.seg_cli import load_segmenter

    root = tmp_path_factory.mktemp("clip_run")
    spec = random_clip_spec(4, frames=12, fps=10, weathers="clear")
    truth = write_clip(root / "clip", spec, progress=False)
    cfg = IntrusionConfig(camera=spec.scene.camera, tracking=TrackingConfig(train_speed_mps=spec.train_speed_mps))
    summary = run_pipeline(
        root / "clip" / "frames", root / "run", load_segmenter(None), TruthDetector(truth), cfg, fps=spec.fps, progress=False
    )
    return spec, truth, root / "run", summary


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_writes_frames_tracks_events_and_summary(clip_run):
    spec, truth, run, summary = clip_run
    assert sorted(p.name for p in (run / "frames").iterdir()) == [f"{k:06d}.png" for k in range(12)]
    tracks, events = _lines(run / "tracks.jsonl"), _lines(run / "events.jsonl")
    assert summary == json.loads((run / "summary.json").read_text())
    assert summary["frames"] == 12 and summary["fps"] == 10.0
    assert summary["frames_without_ego_track"] == 0
    seen = {o["id"] for line in _lines(truth) for o in line["objects"] if o["in_view"] and o["visible"]}
    assert summary["objects_tracked"] == len(seen) == len({t["track_id"] for t in tracks})
    assert summary["object_frames"] == len(tracks)
    assert summary["coasted_object_frames"] == sum(r["coasted"] for r in tracks)
    assert sum(summary["events_per_level"].values()) == summary["events"] == len(events) >= len(seen)
    for record in tracks:
        assert FIELDS <= set(record)
        assert record["level"] in ("I", "II", "III", "IV", "V")
    first = {}
    for event in events:
        assert FIELDS <= set(event)
        first.setdefault(event["track_id"], event)
    assert all(e["previous_level"] is None and e["frame"] == e["since_frame"] + 2 for e in first.values())  # hold 3
    for tid, level in summary["highest_level_per_track"].items():
        assert level == min((e["level"] for e in events if e["track_id"] == int(tid)), key=["I", "II", "III", "IV", "V"].index)
    assert set(summary["timing"]["ms_per_frame"]) == {"segment", "detect", "track", "grade", "draw_write"}


def test_run_keeps_identities_and_matches_the_truth(clip_run):
    spec, truth, run, summary = clip_run
    truth_rows, tracks = _lines(truth), _lines(run / "tracks.jsonl")
    pairs = set()
    assert not any(r["coasted"] for r in tracks if r["frame"] < 2)
    for record in tracks:
        if record["coasted"]:  # an object the stand-in stopped seeing, at its predicted box
            continue
        objects = truth_rows[record["frame"]]["objects"]
        gaps = [np.abs(np.subtract(o["box"], record["box"])).max() for o in objects]
        assert min(gaps) < 0.01  # the stand-in's boxes come back unchanged
        pairs.add((objects[int(np.argmin(gaps))]["id"], record["track_id"]))
    assert len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs})  # one track per object


def test_levels_agree_with_the_truth(clip_run):
    spec, truth, run, _ = clip_run
    result = level_agreement(run / "tracks.jsonl", truth, max_distance_m=50)
    assert result["object_frames"] >= 20
    assert result["matched"] == result["object_frames"] == result["graded"]
    assert result["fraction"] >= 0.75, result["confusion"]  # the first two frames of a track have no speed yet
    assert result["offset_error_mm"]["p95"] < 100 and result["distance_error_m"]["p95"] < 3
    near = [r for r in _lines(run / "tracks.jsonl") if r["frame"] >= 4 and r["distance_m"] < 50]
    walkers = [r for r in near if r["class"] in ("person", "animal")]
    still = [r for r in near if r["class"] in ("car", "stone")]
    assert walkers and still
    assert all(0.3 < r["speed_mps"] < 2.5 for r in walkers)  # they walk at 0.5-2 m/s
    assert all(r["speed_mps"] < 0.5 for r in still)  # the train's own 10 m/s is taken out


def test_a_folder_runs_at_25_fps_unless_told(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    assert open_frames(tmp_path).fps == 25.0 and open_frames(tmp_path, fps=12).fps == 12
    with pytest.raises(InputError, match="fps"):
        open_frames(tmp_path, fps=0)
