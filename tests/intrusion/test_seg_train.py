"""Training, evaluating and running the segmenter on tiny generated scene sets, through the CLI too."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from railwatch.camera import Camera
from railwatch.cli import app
from railwatch.config import SegModelConfig, SegTrainConfig
from railwatch.data.scenes import write_scene_dataset
from railwatch.errors import InputError
from railwatch.imageio import read_rgb
from railwatch.intrusion.seg.data import SceneSegmentation
from railwatch.intrusion.seg.evaluate import evaluate_segmenter
from railwatch.intrusion.seg.infer import Segmenter
from railwatch.intrusion.seg.train import train_segmenter
from tests.test_cli import one_line_error

# pitched down so the near rails, a few pixels wide, fill most of a small image
CAMERA = Camera(width_px=256, height_px=128, focal_px=187.0, pitch_deg=12.0)
MODEL = SegModelConfig(input_height=128, input_width=256, head_channels=32, aux_head_channels=16, upsample="shuffle")
runner = CliRunner()
STEPS = 80  # of the tiny overfit


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Eight clear-weather scenes at 128x256: six to train on, two to validate."""
    root = tmp_path_factory.mktemp("scenes")
    write_scene_dataset(root, 8, seed=3, camera=CAMERA, weathers=("clear",), val_fraction=0.25, progress=False)
    return root


def _train(scenes, out, steps, seed=0):
    cfg = SegTrainConfig(
        epochs=1000, max_steps=steps, batch_size=3, lr=5e-3, warmup_steps=2, crop_height=0, crop_width=0,
        seed=seed, num_workers=0, accelerator="cpu", val_every_steps=steps,
    )  # fmt: skip
    return train_segmenter(scenes, out, MODEL, cfg, progress=False)


def test_dataset_maps_semantic_ids_to_segmenter_classes(scenes):
    data = SceneSegmentation(scenes, "train", MODEL.classes, size=(128, 256))
    image, mask = data[0]
    assert image.shape == (3, 128, 256) and 0 <= image.min() and image.max() <= 1
    assert set(mask.unique().tolist()) <= {0, 1, 2}
    semantic = np.asarray(Image.open(data.masks[0]))
    assert torch.equal(mask == 2, torch.from_numpy(semantic == 2))  # rails stay rails
    assert not mask[torch.from_numpy(semantic >= 3)].any()  # objects become background


def test_training_crops_can_centre_on_the_rails(scenes):
    focused = SceneSegmentation(scenes, "train", MODEL.classes, (128, 256), crop=(32, 64), focus_class=2, focus_prob=1.0)
    uniform = SceneSegmentation(scenes, "train", MODEL.classes, (128, 256), crop=(32, 64))
    rail_share = [float((d[i][1] == 2).float().mean()) for d in (focused, uniform) for i in range(len(d))]
    n = len(focused)
    assert all(focused[i][1].shape == (32, 64) for i in range(n))
    assert all(share > 0 for share in rail_share[:n])
    assert np.mean(rail_share[:n]) > np.mean(rail_share[n:])


def test_tiny_overfit_loss_falls_and_rail_iou_rises(scenes, tmp_path):
    from railwatch.intrusion.seg.model import build_segmenter

    torch.manual_seed(0)
    before = evaluate_segmenter(Segmenter(build_segmenter(MODEL, aux=False), MODEL), scenes, "train", progress=False)
    result = _train(scenes, tmp_path, steps=STEPS)
    losses = _losses(result.log_dir)
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:2])
    after = evaluate_segmenter(Segmenter.load(result.checkpoint), scenes, "train", progress=False)
    assert after.iou["track"] > before.iou["track"] + 0.3
    assert after.miou > before.miou + 0.2


def _losses(log_dir) -> list[float]:
    rows = (log_dir / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    col = header.index("train/loss")
    return [float(r.split(",")[col]) for r in rows[1:] if r.split(",")[col]]


def test_same_seed_trains_the_same_weights(scenes, tmp_path):
    a = torch.load(_train(scenes, tmp_path / "a", steps=3).checkpoint, weights_only=True)["state_dict"]
    b = torch.load(_train(scenes, tmp_path / "b", steps=3).checkpoint, weights_only=True)["state_dict"]
    c = torch.load(_train(scenes, tmp_path / "c", steps=3, seed=1).checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_predictions_come_back_at_the_image_size():
    torch.manual_seed(0)
    from railwatch.intrusion.seg.model import build_segmenter

    segmenter = Segmenter(build_segmenter(MODEL, aux=False), MODEL)
    image = np.zeros((100, 300, 3), np.uint8)
    assert segmenter.predict([image])[0].shape == (100, 300)
    with pytest.raises(InputError, match="expected an \\(H, W, 3\\) RGB image"):
        segmenter.predict([np.zeros((100, 300), np.uint8)], source="grey.png")


def test_read_rgb_refuses_wrong_channels_and_unreadable_files(tmp_path):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(grey)
    with pytest.raises(InputError, match="grey.png: expected a 3-channel RGB image, got 1 channel"):
        read_rgb(grey)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(rgba)
    with pytest.raises(InputError, match="got 4 channel"):
        read_rgb(rgba)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match="broken.png: not a readable image"):
        read_rgb(broken)


def test_cli_train_eval_segment_export(scenes, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(
        app,
        ["intrusion", "train-seg", str(scenes), "--out", str(out), "--input-size", "128x256", "--crop", "0x0",
         "--head-channels", "16", "--max-steps", "2", "--batch-size", "2", "--num-workers", "0",
         "--accelerator", "cpu", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    weights = out / "best.pt"
    assert weights.is_file()

    result = runner.invoke(app, ["intrusion", "eval-seg", str(scenes), "-w", str(weights), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert set(summary["iou"]) == {"background", "track", "rail"} and summary["images"] == 2

    images = scenes / "images" / "val"
    result = runner.invoke(app, ["intrusion", "segment", str(images), "-w", str(weights), "--out", str(tmp_path / "seg"), "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)["images"]
    assert len(records) == 2
    for r in records:
        for key in ("classes", "rail_mask", "overlay"):
            assert Image.open(r[key]).size == (256, 128)

    onnx_path = tmp_path / "seg.onnx"
    result = runner.invoke(app, ["intrusion", "export-seg", str(weights), "--out", str(onnx_path)])
    assert result.exit_code == 0, result.output
    assert onnx_path.is_file() and "max |diff|" in result.output


def test_cli_bad_inputs_are_one_line_errors(scenes, tmp_path):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(grey)
    weights = _train(scenes, tmp_path / "w", steps=1).checkpoint
    line = one_line_error(runner.invoke(app, ["intrusion", "segment", str(grey), "-w", str(weights)]))
    assert "grey.png" in line and "3-channel" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no images in folder" in one_line_error(runner.invoke(app, ["intrusion", "segment", str(empty), "-w", str(weights)]))
    missing = tmp_path / "none.pt"
    assert "checkpoint not found" in one_line_error(runner.invoke(app, ["intrusion", "segment", str(grey), "-w", str(missing)]))
    assert "data.yaml" in one_line_error(runner.invoke(app, ["intrusion", "train-seg", str(empty), "--out", str(tmp_path / "x")]))
    assert "--input-size" in one_line_error(runner.invoke(app, ["intrusion", "train-seg", str(scenes), "--input-size", "big"]))
