"""The `railwatch` command: outputs people and scripts read, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from railwatch import __version__
from railwatch.cli import app
from railwatch.data.rail_masks import RailMaskScene, Track, render_rail_mask
from tests.conftest import save_mask

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:")
    return lines[0]


@pytest.fixture
def mask_png(tmp_path, small_camera):
    sample = render_rail_mask(RailMaskScene(camera=small_camera, tracks=(Track(0.0, 1200.0),), max_distance_m=80))
    return save_mask(sample.mask, tmp_path / "mask.png")


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and __version__ in result.output


def test_risk_json_keys_and_values():
    result = run("risk", "--offset-mm", "-300", "--distance-m", "30", "--type", "person", "--speed-mps", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"x_risk", "y_risk", "weight", "f_speed", "z", "level", "action"} <= set(data)
    assert data["level"] == "II" and data["action"] == "automatic speed restriction"
    assert data["z"] == pytest.approx(0.8746 * 0.9418 * 1.1 * 1.2, abs=1e-3)


def test_risk_table_and_paper_rule():
    table = run("risk", "--offset-mm", "0", "--distance-m", "10", "--type", "rock")
    assert table.exit_code == 0 and "level" in table.output
    paper = run("risk", "--offset-mm", "0", "--distance-m", "10", "--type", "rock", "--paper-stationary-rule", "--json")
    assert json.loads(paper.output)["level"] == "V"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--type", "dog"], "unknown object type 'dog'; known types: person, car, animal, stone"),
        (["--type", "car", "--speed-mps", "-1"], "speed (m/s) must be >= 0"),
        (["--type", "car", "--distance-m", "-5"], "distance (m) must be >= 0"),
    ],
)
def test_risk_bad_input(args, message):
    base = {"--offset-mm": "0", "--distance-m": "10"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [item for pair in base.items() for item in pair]
    assert message in one_line_error(run("risk", *flat))


def test_railfit_json_and_overlay(mask_png, tmp_path):
    overlay = tmp_path / "overlay.png"
    result = run("intrusion", "railfit", mask_png, "--json", "--out", str(overlay))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert len(data["rails"]) == 2
    for rail in data["rails"]:
        assert len(rail["coeffs"]) == 4 and rail["ego"] is True and rail["y_min"] < rail["y_max"]
    assert overlay.is_file() and overlay.stat().st_size > 1000


def test_railfit_cubic_model(mask_png):
    data = json.loads(run("intrusion", "railfit", mask_png, "--json", "--model", "cubic").output)
    assert "perspective_coeffs" not in data["rails"][0]


def test_railfit_bad_inputs(tmp_path):
    assert "file not found" in one_line_error(run("intrusion", "railfit", str(tmp_path / "missing.png")))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    assert "not a readable image" in one_line_error(run("intrusion", "railfit", str(broken)))
    empty = save_mask(np.zeros((60, 80), dtype=bool), tmp_path / "empty.png")
    assert f"no rails found in {empty}" in one_line_error(run("intrusion", "railfit", empty))
    colour = tmp_path / "colour.png"
    from PIL import Image

    Image.fromarray(np.dstack([np.full((20, 20), c, np.uint8) for c in (255, 0, 0)])).save(colour)
    assert "single-channel" in one_line_error(run("intrusion", "railfit", str(colour)))


def test_grade_objects(mask_png, tmp_path):
    result = run(
        "intrusion", "grade", mask_png, "--object", "480,400,person,2", "--object", "100,530,car",
        "--focal-px", "700", "--json", "--out", str(tmp_path / "graded.png"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    person, car = json.loads(result.output)["objects"]
    assert person["level"] in {"I", "II", "III", "IV", "V"} and person["f_speed"] == pytest.approx(1.2)
    assert car["zone"] in {"medium", "safe"}
    assert (tmp_path / "graded.png").is_file()


def test_grade_bad_inputs(mask_png):
    assert "outside the 960x540 image" in one_line_error(
        run("intrusion", "grade", mask_png, "--object", "2000,100,person")
    )
    assert "expected U,V,TYPE" in one_line_error(run("intrusion", "grade", mask_png, "--object", "1,2"))
    assert "known types" in one_line_error(run("intrusion", "grade", mask_png, "--object", "480,400,ufo"))


def test_config_show_and_load(tmp_path):
    shown = run("config", "show")
    assert shown.exit_code == 0 and "stationary_rule: speed" in shown.output
    settings = tmp_path / "rw.yaml"
    settings.write_text("intrusion:\n  risk:\n    stationary_rule: paper\n")
    result = run("risk", "--offset-mm", "0", "--distance-m", "10", "--type", "stone", "--config", str(settings), "--json")
    assert json.loads(result.output)["f_speed"] == 0.0
    settings.write_text("intrusion:\n  risk:\n    stationary_rul: paper\n")
    message = one_line_error(run("config", "show", "--config", str(settings)))
    assert str(settings) in message and "stationary_rul" in message


def test_data_synth_rail_masks(tmp_path):
    out = tmp_path / "masks"
    result = run("data", "synth", "rail-masks", "--out", str(out), "-n", "2", "--kind", "curved", "--width", "320", "--height", "180", "--focal-px", "240")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["mask_0000.json", "mask_0000.png", "mask_0001.json", "mask_0001.png"]
    truth = json.loads((out / "mask_0000.json").read_text())
    assert len(truth["rails"]) == 2
    assert "unknown scene kind" in one_line_error(run("data", "synth", "rail-masks", "--out", str(out), "--kind", "wavy"))
