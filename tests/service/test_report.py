"""`railwatch report`: one self-contained HTML file over stored runs of all four modules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.errors import InputError
from railwatch.service import report
from railwatch.service.report import level_name, write_report
from railwatch.service.store import EventStore, default_url

runner = CliRunner()
EVIL_LABEL = "<script>alert('x')</script> person"
MISSING = "pictures/vibration/gone.png"
DATA_URI = "data:image/png;base64,"

# module -> events: (key, chainage_km, level, score, label, picture name or None)
EVENTS: dict[str, list[tuple]] = {
    "intrusion": [
        ("obj:1", 12.10, 1, 2.4, EVIL_LABEL, "frame_000001.png"),
        ("obj:2", 12.30, 3, 0.9, "car", "frame_000002.png"),
        ("obj:3", 12.35, 5, 0.1, "animal", None),
    ],
    "surface": [
        ("defect:0", 12.400, 1, 0.8, "squat", "strip_overlay.png"),
        ("defect:1", 12.402, 1, 0.6, "scar", "strip_mask.png"),
    ],
    "fasteners": [
        ("crop:a", 12.50, 1, 3.1, "missing_bolt", "heat_a.png"),
        ("crop:b", 12.51, 0, 0.2, "normal", None),
        ("crop:c", 12.52, 1, 2.0, "broken_clip", "heat_c.png"),
    ],
    "vibration": [
        ("impact:1", 12.60, 3, 0.95, "FFI 3 loose", "spectrum_1.png"),
        ("impact:2", None, 0, 0.10, "FFI 0 tight", "gone.png"),
    ],
}
PICTURES_ON_DISK = sum(1 for events in EVENTS.values() for *_, pic in events if pic and pic != "gone.png")


def _picture(path: Path, colour: tuple[int, int, int]) -> None:
    """Write a small PNG of one colour at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 32), colour).save(path)


@pytest.fixture
def filled(tmp_path: Path):
    """A data folder with a SQLite store holding one finished run per module, and its pictures."""
    data = tmp_path / "data"
    data.mkdir()
    store = EventStore(default_url(data))
    run_ids: dict[str, str] = {}
    for m, (module, events) in enumerate(EVENTS.items()):
        run_id = store.create_run(module, f"{module}_input.bin", line_id="L1", summary={"events": len(events)})
        rows = []
        for k, (key, km, level, score, label, pic) in enumerate(events):
            picture = None
            if pic is not None:
                picture = f"pictures/{module}/{pic}"
                if pic != "gone.png":
                    _picture(data / picture, (40 * m, 60 * k, 200))
            time = f"2026-11-21T08:{10 * m + k:02d}:00+00:00"
            rows.append(dict(key=key, chainage_km=km, level=level, score=score, label=label, picture=picture, time=time))
        store.add_events(run_id, rows)
        store.finish_run(run_id, "done")
        run_ids[module] = run_id
    yield store, data, run_ids
    store.close()


def _images(html: str) -> int:
    return html.count(DATA_URI)


def test_report_is_one_self_contained_file(filled, tmp_path):
    store, data, run_ids = filled
    out = tmp_path / "out" / "report.html"
    assert write_report(store, data, list(run_ids.values()), out) == out
    html = out.read_text(encoding="utf-8")

    assert html.startswith("<!DOCTYPE html>") and "railwatch inspection report" in html
    # one summary row per run, with its module, status and event count
    for module, run_id in run_ids.items():
        row = re.search(rf'<tr class="run-row" data-run-id="{run_id}">(.*?)</tr>', html)
        assert row is not None, module
        assert f"<td>{module}</td>" in row.group(1) and "<td>done</td>" in row.group(1)
        assert f'<td class="num">{len(EVENTS[module])}</td>' in row.group(1)
    # events per level in the summary: intrusion I..V, vibration FFI
    assert "I&nbsp;&times;&nbsp;1" in html and "FFI 3&nbsp;&times;&nbsp;1" in html
    # one section per module, in the fixed order
    sections = re.findall(r'<section class="module" id="module-(\w+)"', html)
    assert sections == ["fasteners", "surface", "vibration", "intrusion"]
    # a strip chart per module and every picture on disk, all embedded
    assert _images(html) == 4 + PICTURES_ON_DISK
    assert html.count('<img class="chart"') == 4
    # self-contained: no resource fetched from anywhere
    assert "http://" not in html and "https://" not in html
    assert not re.search(r'(src|href)="(?!data:)', html)
    # every event is listed in a table
    assert html.count("<tr data-event-id=") == sum(len(v) for v in EVENTS.values())
    # no temporary file left behind
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_labels_are_escaped(filled, tmp_path):
    store, data, run_ids = filled
    html = write_report(store, data, [run_ids["intrusion"]], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; person" in html


def test_missing_picture_is_listed_not_an_error(filled, tmp_path):
    store, data, run_ids = filled
    html = write_report(store, data, [run_ids["vibration"]], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Missing pictures (1)" in html
    assert re.search(rf'<ul class="missing"><li data-event-id="\d+">{re.escape(MISSING)}: not on disk', html)
    assert _images(html) == 1 + 1  # the strip chart and the one spectrum on disk
    assert "FFI 0 tight" in html  # the event without chainage is still in the table


def test_pictures_are_capped_most_severe_first(filled, tmp_path):
    store, data, run_ids = filled
    html = write_report(store, data, list(run_ids.values()), tmp_path / "r.html", max_pictures=1).read_text(encoding="utf-8")
    assert _images(html) == 4 + 4
    intrusion = html[html.index('id="module-intrusion"') :]
    figure = re.search(r'<figure data-event-id="\d+"><img src="data:image/png;base64,[^"]+" alt="([^"]*)"', intrusion)
    assert figure is not None and figure.group(1).startswith("&lt;script&gt;")  # level I before level III


def test_events_are_read_page_by_page(filled, tmp_path, monkeypatch):
    store, data, run_ids = filled
    monkeypatch.setattr(report, "_PAGE", 2)
    html = write_report(store, data, list(run_ids.values()), tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.count("<tr data-event-id=") == sum(len(v) for v in EVENTS.values())
    assert len(set(re.findall(r'<tr data-event-id="(\d+)"', html))) == sum(len(v) for v in EVENTS.values())


def test_overwrites_an_existing_report(filled, tmp_path):
    store, data, run_ids = filled
    out = tmp_path / "r.html"
    out.write_text("old")
    write_report(store, data, [run_ids["surface"]], out)
    assert "Rail surface" in out.read_text(encoding="utf-8")


def test_unknown_run_id_is_an_input_error(filled, tmp_path):
    store, data, run_ids = filled
    out = tmp_path / "r.html"
    with pytest.raises(InputError, match="no-such-run"):
        write_report(store, data, [run_ids["surface"], "no-such-run"], out)
    assert not out.exists()
    with pytest.raises(InputError, match="no runs"):
        write_report(store, data, [], out)


def test_run_without_events_gets_an_empty_section(tmp_path):
    with EventStore(default_url(tmp_path)) as store:
        run_id = store.create_run("intrusion", "clip.mp4")
        store.finish_run(run_id, "failed")
        html = write_report(store, tmp_path, [run_id], tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'id="module-intrusion"' in html and "no events" in html and "<td>failed</td>" in html
    assert _images(html) == 0


def test_unreadable_picture_is_listed(tmp_path):
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "broken.png").write_bytes(b"not a png")
    with EventStore(default_url(tmp_path)) as store:
        run_id = store.create_run("surface", "strip.png")
        store.add_events(run_id, [dict(key="d0", level=1, label="squat", picture="pictures/broken.png")])
        html = write_report(store, tmp_path, [run_id], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Missing pictures (1)" in html and "pictures/broken.png: unreadable (not a picture Pillow can read)" in html


def test_level_names():
    assert [level_name("intrusion", lv) for lv in (1, 5)] == ["I", "V"]
    assert level_name("vibration", 2) == "FFI 2"
    assert level_name("fasteners", 1) == "anomalous" and level_name("fasteners", 0) == "normal"
    assert level_name("surface", 1) == "defect" and level_name("surface", None) == "-"


def test_cli_report_all(filled, tmp_path):
    store, data, run_ids = filled
    out = tmp_path / "cli" / "all.html"
    result = runner.invoke(app, ["report", "all", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out) in result.output.replace("\n", "")
    html = out.read_text(encoding="utf-8")
    assert all(f'data-run-id="{run_id}"' in html for run_id in run_ids.values())
    assert _images(html) == 4 + PICTURES_ON_DISK


def test_cli_report_latest_and_default_out(filled):
    store, data, run_ids = filled
    newer = store.create_run("surface", "again.png", line_id="L2")
    store.finish_run(newer, "done")
    result = runner.invoke(app, ["report", "latest", "--data", str(data)])
    assert result.exit_code == 0, result.output
    html = (data / "reports" / "report.html").read_text(encoding="utf-8")
    assert f'data-run-id="{newer}"' in html and f'data-run-id="{run_ids["surface"]}"' not in html
    assert f'data-run-id="{run_ids["intrusion"]}"' in html
    assert html.count('class="run-row"') == 4


def test_cli_errors_are_one_line(filled, tmp_path):
    store, data, run_ids = filled
    result = runner.invoke(app, ["report", "nope", "--data", str(data), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope" in lines[0]

    result = runner.invoke(app, ["report", "all", "--data", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "data folder not found" in result.output
    assert not (tmp_path / "nowhere").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["report", "all", "--data", str(empty)])
    assert result.exit_code == 2 and "no runs" in result.output
