"""`railwatch demo` end to end: files written, every object graded as its truth is."""

from __future__ import annotations

import json

from PIL import Image

from railwatch.demo import run_demo


def test_demo_writes_report_and_matches_truth(tmp_path):
    report = run_demo(tmp_path, seed=7)
    assert {p.name for p in tmp_path.iterdir()} == {"overlay.png", "risk_map.png", "report.json"}
    assert json.loads((tmp_path / "report.json").read_text())["objects"] == report["objects"]
    assert Image.open(tmp_path / "overlay.png").size == (1920, 1080)
    assert sum(r["ego"] for r in report["rails"]) == 2
    for obj in report["objects"]:
        assert obj["level"] == obj["truth"]["level"], obj
    near = [o for o in report["objects"] if o["truth"]["distance_m"] < 40]
    assert all(abs(o["offset_mm"] - o["truth"]["offset_mm"]) < 50 for o in near)
