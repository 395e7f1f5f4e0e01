"""`railwatch demo` end to end: files written, every object graded as its truth is."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from railwatch.demo import run_demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo run shared by the tests: its folder and its report."""
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out, seed=7)


def test_demo_writes_report_and_matches_truth(demo):
    tmp_path, report = demo
    assert {p.name for p in tmp_path.iterdir()} == {"overlay.png", "risk_map.png", "report.json", "scenes", "clip", "surface", "fasteners", "vibration", "service"}
    assert json.loads((tmp_path / "report.json").read_text())["objects"] == report["objects"]
    assert Image.open(tmp_path / "overlay.png").size == (1920, 1080)
    assert sum(r["ego"] for r in report["rails"]) == 2
    for obj in report["objects"]:
        assert obj["level"] == obj["truth"]["level"], obj
    near = [o for o in report["objects"] if o["truth"]["distance_m"] < 40]
    assert all(abs(o["offset_mm"] - o["truth"]["offset_mm"]) < 50 for o in near)


def test_demo_scenes_are_segmented_and_objects_placed_near_their_truth(demo):
    tmp_path, report = demo
    scenes = report["scenes"]
    assert [s["weather"] for s in scenes] == ["clear", "fog", "rain", "night"]
    assert Image.open(tmp_path / "scenes" / "scenes.png").size == (1024, 512)
    for scene in scenes:
        assert (tmp_path / "scenes" / scene["overlay"]).is_file()
        assert scene["ego_track"], scene
        assert scene["rail_iou"] > 0.6, scene
    near = [o for s in scenes for o in s["objects"] if o.get("level") and o["truth"]["distance_m"] <= 30]
    assert all(abs(o["offset_mm"] - o["truth"]["offset_mm"]) < 150 for o in near), near


def test_demo_clip_runs_the_whole_pipeline(demo):
    tmp_path, report = demo
    clip = report["clip"]
    run = tmp_path / "clip" / "run"
    assert {"annotated.mp4", "tracks.jsonl", "events.jsonl", "summary.json"} <= {p.name for p in run.iterdir()}
    assert (tmp_path / "clip" / "input" / "truth.jsonl").is_file()
    assert clip["frames"] == 30 and clip["objects_tracked"] >= 1
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert len(events) == clip["events"] and len(events) < clip["graded_object_frames"]  # hysteresis: not one per frame
    assert {"frame", "time_s", "track_id", "class", "box", "z", "level", "action"} <= set(events[0])
    assert clip["agreement"]["object_frames"] > 0


def test_demo_surface_model_finds_the_defects_of_unseen_strips(demo):
    tmp_path, report = demo
    surface = report["surface"]
    assert Image.open(tmp_path / "surface" / "strips.png").size[1] == 1250
    assert all((tmp_path / "surface" / f"strip_{s['strip']}_overlay.png").is_file() for s in surface["strips"])
    assert all(s["defects"] >= 1 for s in surface["strips"])
    assert sum(s["f1"] for s in surface["strips"]) / len(surface["strips"]) > 0.5


def test_demo_fastener_model_flags_the_defective_crops(demo):
    tmp_path, report = demo
    fasteners = report["fasteners"]
    assert (tmp_path / "fasteners" / "heatmaps.png").is_file()
    assert len(list((tmp_path / "fasteners" / "crops").glob("*_heatmap.png"))) == 12
    scores = json.loads((tmp_path / "fasteners" / "scores.json").read_text())
    assert {c["kind"] for c in scores["crops"]} == {"normal", "broken_clip", "missing_bolt", "occlusion"}
    assert all(0 <= c["A"] <= 1 for c in scores["crops"])
    assert set(fasteners["unseen"]["per_kind_auc"]) == {"broken_clip", "missing_bolt", "occlusion"}
    assert 0 <= fasteners["unseen"]["auc"] <= 1 and fasteners["validation"]["val/auc"] > 0, fasteners


def test_demo_vibration_models_score_unseen_hammer_tests(demo):
    from railwatch.vibration.hammer_io import read_hammer_h5

    tmp_path, report = demo
    folder = tmp_path / "vibration"
    assert len(read_hammer_h5(folder / "hammer.h5")) == report["vibration"]["events"] == 96
    for name in ("accel", "transfer"):
        assert (folder / f"{name}_lime_bars.png").is_file() and (folder / f"{name}_lime_spectra.png").is_file()
        model = report["vibration"]["models"][name]
        assert len(model["scores"]) == 19 and all(0 <= s["ffi"] <= 3 for s in model["scores"])
        assert 0 < model["lime_share_100_120_hz"] < 1
    assert report["vibration"]["models"]["accel"]["test"]["accuracy"] >= 0.6  # the accelerometer model has learnt


def test_demo_stores_every_module_and_writes_the_report(demo):
    from railwatch.service.store import EventStore, default_url

    tmp_path, report = demo
    data = tmp_path / "service"
    html = (data / "reports" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "https://" not in html
    store = EventStore(default_url(data))
    try:
        runs = store.runs()
        assert sorted(r["module"] for r in runs) == ["fasteners", "intrusion", "surface", "vibration"]
        assert all(r["status"] == "done" for r in runs)
        counts = report["service"]["events"]
        assert counts["fasteners"] == 12 and counts["vibration"] == 3 and counts["surface"] >= 1 and counts["intrusion"] >= 1
        assert sum(counts.values()) == store.count_events()
        das = store.events(module="vibration")
        planted = [7.0 + 2.0 * (channel + 2.5) / 1000 for channel in (30, 90, 150)]  # the middle of six 2 m channels
        assert [e["chainage_km"] for e in das] == pytest.approx(planted, abs=0.008)
    finally:
        store.close()
