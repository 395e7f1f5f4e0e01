"""``railwatch vibration train|eval|predict|explain|export`` end to end on a small simulated file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.vibration.hammer_io import write_hammer_h5
from railwatch.vibration.simulate import simulate_hammer_tests

runner = CliRunner()

SMALL = """vibration:
  train:
    epochs: 4
    finetune_epochs: 2
    accelerator: cpu
    arch:
      conv_channels: [16, 16, 16]
      heads: 2
      feedforward: 32
      transformer_blocks: 1
      dense: [16, 8]
  lime:
    samples: 40
"""


@pytest.fixture(scope="module")
def hammer_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hammer")
    path = write_hammer_h5(folder / "hammer.h5", simulate_hammer_tests(repeats=4, seed=2))
    (folder / "small.yaml").write_text(SMALL)
    return path


def invoke(*args: str):
    result = runner.invoke(app, ["vibration", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("modality", ["accel", "transfer"])
def test_train_eval_predict_explain_export(hammer_file, tmp_path, modality):
    config = hammer_file.parent / "small.yaml"
    out = tmp_path / modality
    invoke("train", hammer_file, "--modality", modality, "--out", out, "--config", config, "--quiet")
    checkpoint = out / "best.pt"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"mse", "accuracy", "precision", "recall", "f1"}

    scored = json.loads(invoke("eval", hammer_file, "--checkpoint", checkpoint, "--json").stdout)
    assert scored["events"] == 24 and scored["modality"] == modality and 0 <= scored["accuracy"] <= 1

    rows = json.loads(invoke("predict", hammer_file, "-c", checkpoint, "--json", "--out", tmp_path / "p.jsonl").stdout)
    assert len(rows) == 24 and all(0 <= r["ffi"] <= 3 and r["loose_clips"] in (0, 1, 2, 3) for r in rows)
    assert len((tmp_path / "p.jsonl").read_text().splitlines()) == 24

    invoke("explain", hammer_file, "-c", checkpoint, "--out", tmp_path / "lime", "--config", config)
    report = json.loads((tmp_path / "lime" / "contributions.json").read_text())
    channels = 3 if modality == "accel" else 6
    assert np.array(report["contributions"]).shape == (4, channels, 25) and report["ffi"] == [0, 1, 2, 3]
    assert (tmp_path / "lime" / "lime_bars.png").stat().st_size > 5000

    result = invoke("export", checkpoint, "--out", tmp_path / "m.onnx")
    diff = float(result.stdout.split("max |diff|")[1])
    assert diff < 1e-4


def one_line_error(args: list[str], pattern: str) -> None:
    result = runner.invoke(app, ["vibration", *map(str, args)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and pattern in lines[0], result.output


def test_bad_inputs_are_one_line_errors(hammer_file, tmp_path):
    one_line_error(["train", tmp_path / "missing.h5"], "missing.h5")
    one_line_error(["train", hammer_file, "--modality", "radar"], "--modality must be one of accel, das, transfer")
    one_line_error(["eval", hammer_file, "--checkpoint", tmp_path / "none.pt"], "none.pt: checkpoint not found")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    one_line_error(["predict", hammer_file, "--checkpoint", garbage], "garbage.pt: not a readable checkpoint")
    das_only = simulate_hammer_tests(repeats=2, seed=0)
    das_only.accel = None
    path = write_hammer_h5(tmp_path / "das_only.h5", das_only)
    for modality in ("accel", "transfer"):
        one_line_error(["train", path, "--modality", modality, "--out", tmp_path / "x"], "no accelerometer records")
    assert not (tmp_path / "x").exists()
