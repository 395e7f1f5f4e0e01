"""Training, scoring, running and exporting a detector on a tiny generated scene set, through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from railwatch.camera import Camera
from railwatch.cli import app
from railwatch.config import DetModelConfig, DetTrainConfig
from railwatch.data.scenes import write_scene_dataset
from railwatch.intrusion.det.train import train_detector
from tests.test_cli import one_line_error

CAMERA = Camera(width_px=256, height_px=128, focal_px=187.0, pitch_deg=8.0)
MODEL = DetModelConfig(input_height=128, input_width=256)
runner = CliRunner()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Eight small scenes: six to train on, two to validate."""
    root = tmp_path_factory.mktemp("det_scenes")
    write_scene_dataset(root, 8, seed=5, camera=CAMERA, weathers=("clear",), val_fraction=0.25, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory):
    """A detector after four steps (the pipeline, not its accuracy, is under test here)."""
    out = tmp_path_factory.mktemp("det_run")
    cfg = DetTrainConfig(epochs=100, max_steps=4, batch_size=3, warmup_steps=1, num_workers=0, accelerator="cpu", val_every_steps=4)
    return train_detector(scenes, out, MODEL, cfg, progress=False)


def test_training_writes_a_weights_only_checkpoint_with_validation_metrics(trained):
    payload = torch.load(trained.checkpoint, weights_only=True)
    assert payload["task"] == "object-det" and payload["model"]["arch"] == "st-yolo"
    assert {"val/map50", "val/map", "val/precision", "val/recall"} <= set(payload["meta"]["metrics"])
    assert (trained.log_dir / "metrics.csv").is_file()


def test_same_seed_trains_the_same_detector(scenes, trained, tmp_path):
    cfg = DetTrainConfig(epochs=100, max_steps=4, batch_size=3, warmup_steps=1, num_workers=0, accelerator="cpu", val_every_steps=4)
    again = train_detector(scenes, tmp_path, MODEL, cfg, progress=False)
    a = torch.load(trained.checkpoint, weights_only=True)["state_dict"]
    b = torch.load(again.checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_eval_det_prints_the_metrics_per_class(scenes, trained):
    result = runner.invoke(app, ["intrusion", "eval-det", str(scenes), "--weights", str(trained.checkpoint), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["per_class"]) == {"person", "car", "animal", "stone"}
    assert 0 <= report["map50"] <= 1 and 0 <= report["map"] <= report["map50"] + 1e-9
    assert report["images"] == 2


def test_detect_writes_pictures_and_json(scenes, trained, tmp_path):
    image = next((scenes / "images" / "val").iterdir())
    result = runner.invoke(app, ["intrusion", "detect", str(image), "--weights", str(trained.checkpoint), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{image.stem}_boxes.png").is_file()
    record = json.loads((tmp_path / f"{image.stem}.json").read_text())
    assert record["image"] == str(image) and isinstance(record["detections"], list)


def test_export_det_reports_parity(trained, tmp_path):
    out = tmp_path / "det.onnx"
    result = runner.invoke(app, ["intrusion", "export-det", str(trained.checkpoint), "--out", str(out)])
    assert result.exit_code == 0, result.output
    diff = float(result.output.rsplit("=", 1)[1])
    assert out.is_file() and diff < 1e-3


@pytest.mark.parametrize(
    "args, expected",
    [
        (["train-det", "{scenes}", "--model", "yolov9"], "arch"),
        (["train-det", "{missing}"], "missing"),
        (["train-det", "{scenes}", "--dilations", "1,two"], "--dilations"),
        (["eval-det", "{scenes}", "--weights", "{missing}/x.pt"], "x.pt"),
        (["detect", "{grey}", "--weights", "{ckpt}"], "grey.png"),
    ],
)
def test_bad_inputs_give_one_line_errors(scenes, trained, tmp_path, args, expected):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(grey)
    names = {"scenes": scenes, "missing": tmp_path / "missing", "grey": grey, "ckpt": trained.checkpoint}
    result = runner.invoke(app, ["intrusion", *[a.format(**names) for a in args]])
    assert result.exit_code != 0
    assert expected in one_line_error(result)
