"""Training on normal crops only: a tiny run that separates anomalies, the saved scorer, heatmaps and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.config import FastenerModelConfig, FastenerTrainConfig
from railwatch.errors import InputError
from railwatch.fasteners.data import CropSet
from railwatch.fasteners.explain import gradcam, write_heatmaps
from railwatch.fasteners.infer import FastenerDetector
from railwatch.fasteners.scoring import detection_scores
from railwatch.fasteners.train import chosen_source, fit_fasteners
from tests.fasteners.crops import blob_crops

TINY = FastenerModelConfig(
    encoder_channels=(8, 16, 32, 64), msac_channels=(16, 32, 64), discriminator_channels=(8, 16, 32, 32, 32), ejpu_channels=16, memory_slots=16
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    rng = np.random.default_rng(0)
    train, val, test = blob_crops(48, 0, rng), blob_crops(12, 6, rng), blob_crops(12, 6, rng)
    # the ssim score: at 30 steps the discriminator's verdict still swings with the thread
    # count's rounding (its AUC here lies anywhere from 0 to 1), and the student in-painting from
    # distant tokens has barely learnt the band, so its squared error hardly moves (AUC 0.83);
    # the structure of a bright square stands out from the first steps (AUC 1.0)
    cfg = FastenerTrainConfig(max_steps=30, val_every_steps=10, batch_size=8, arch=TINY, accelerator="cpu", lr=1e-3, score="ssim")
    fit = fit_fasteners(train, val, cfg, tmp_path_factory.mktemp("fasteners"), progress=False)
    return fit, test


def test_tiny_run_separates_anomalies(trained) -> None:
    fit, test = trained
    detector = FastenerDetector.from_checkpoint(fit.checkpoint)
    raw = detector.raw_scores(test)
    assert detection_scores(raw, test.labels, fit.stats.threshold).auc > 0.95
    verdicts = detector.judge(test, "f1")
    flagged = np.array([v.anomalous for v in verdicts])
    assert (flagged == (test.labels == 1)).mean() > 0.9


def test_checkpoint_keeps_the_scorer_statistics(trained) -> None:
    fit, _ = trained
    payload = torch.load(fit.checkpoint, weights_only=True)
    assert payload["task"] == "fastener-anomaly"
    detector = FastenerDetector.from_checkpoint(fit.checkpoint)
    assert detector.stats == fit.stats
    assert detector.stats.source == "ssim" and detector.stats.f1_threshold is not None
    assert payload["meta"]["train_crops"] == 48


def test_auto_score_takes_the_best_validation_auc() -> None:
    auto = FastenerTrainConfig(score="auto")
    metrics = {"val/auc_discriminator": 0.4, "val/auc_reconstruction": 0.7, "val/auc_ssim": 0.8, "val/auc_distillation": 0.9}
    assert chosen_source(auto, metrics) == "distillation"
    assert chosen_source(auto, {**metrics, "val/auc_ssim": 0.95}) == "ssim"
    assert chosen_source(auto, {"val/neg_recon_mse": -0.1}) == "discriminator"  # no anomalies to choose with: Eq. 10
    assert chosen_source(FastenerTrainConfig(score="reconstruction"), metrics) == "reconstruction"
    assert chosen_source(FastenerTrainConfig(model="ganomaly"), metrics) == "latent"
    assert chosen_source(FastenerTrainConfig(model="memae", score="ssim"), metrics) == "reconstruction"


def test_gradcam_heatmaps(trained, tmp_path) -> None:
    fit, test = trained
    detector = FastenerDetector.from_checkpoint(fit.checkpoint)
    heat = gradcam(detector, test.images[-4:])
    assert heat.shape == (4, 128, 128) and heat.min() >= 0 and heat.max() <= 1
    paths = write_heatmaps(detector, test.images[-2:], ["a.png", "b.png"], tmp_path, heat[-2:])
    assert [p.name for p in paths] == ["a_heatmap.png", "b_heatmap.png"]


def test_training_refuses_anomalies_and_wrong_sizes(tmp_path) -> None:
    rng = np.random.default_rng(1)
    cfg = FastenerTrainConfig(max_steps=1, arch=TINY, accelerator="cpu")
    with pytest.raises(InputError, match="must all be normal"):
        fit_fasteners(blob_crops(8, 2, rng), blob_crops(4, 2, rng), cfg, tmp_path, progress=False)
    small = CropSet(np.zeros((6, 64, 64), np.uint8), np.zeros(6, np.int64), ("normal",) * 6, ("x",) * 6)
    with pytest.raises(InputError, match="128 x 128"):
        fit_fasteners(small, small, cfg, tmp_path, progress=False)


def test_cli_from_synthetic_crops_to_onnx(tmp_path) -> None:
    runner = CliRunner()
    data = tmp_path / "crops"
    result = runner.invoke(app, ["data", "synth", "fasteners", "--out", str(data), "--normal", "12", "--per-kind", "2"])
    assert result.exit_code == 0, result.output
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"fasteners": {"train": {"arch": TINY.model_dump(mode="json"), "batch_size": 4, "accelerator": "cpu"}}}))
    out = tmp_path / "run"
    result = runner.invoke(app, ["fasteners", "train", "--data", str(data), "--out", str(out), "--config", str(config), "--max-steps", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    weights = str(out / "best.pt")
    result = runner.invoke(app, ["fasteners", "score", weights, str(data), "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert len(record["crops"]) == 18 and {"raw", "score", "anomalous", "truth"} <= set(record["crops"][0])
    result = runner.invoke(app, ["fasteners", "eval", weights, "--json"])
    assert result.exit_code == 0, result.output
    assert 0 <= json.loads(result.output)["auc"] <= 1
    result = runner.invoke(app, ["fasteners", "explain", weights, str(data / "abnormal" / "occlusion"), "--out", str(tmp_path / "heat")])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "heat").glob("*_heatmap.png"))) == 2
    result = runner.invoke(app, ["fasteners", "export", weights, "--out", str(tmp_path / "f.onnx")])
    assert result.exit_code == 0, result.output
    raw_diff = float(result.output.split("raw ")[1].split()[0])
    assert raw_diff < 1e-4


def test_cli_errors_are_one_line(tmp_path) -> None:
    runner = CliRunner()
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["fasteners", "train", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "empty folder" in result.output and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["fasteners", "score", str(tmp_path / "missing.pt"), str(tmp_path)])
    assert result.exit_code == 2 and "missing.pt" in result.output
    result = runner.invoke(app, ["fasteners", "train", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--data" in result.output
