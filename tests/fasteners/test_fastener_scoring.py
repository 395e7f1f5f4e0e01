"""Scores, thresholds and metrics (paper 000, Eq. 10, 18-20) and the ONNX scoring path."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.config import FastenerModelConfig, FastenerTrainConfig
from railwatch.errors import InputError
from railwatch.export import export_onnx, onnx_max_abs_diff
from railwatch.fasteners.data import CropSet
from railwatch.fasteners.evaluate import auc_per_kind
from railwatch.fasteners.models import variant_config
from railwatch.fasteners.scoring import (
    SCORE_SOURCES,
    ScoreStats,
    ScoringPath,
    best_f1_threshold,
    build_detector,
    calibrate,
    detection_scores,
    kdgan_scores,
    raw_scores,
    ssim_map,
    structural_dissimilarity,
)


def test_eq10_maps_the_normal_mean_to_one_half() -> None:
    stats = ScoreStats("discriminator", mu=2.0, sigma=0.5, k=3.0)
    assert stats.threshold == pytest.approx(3.5)
    a = stats.normalise(np.array([2.0, 3.5, -10.0]))
    assert a[0] == pytest.approx(0.5)
    assert a[1] == pytest.approx(1 / (1 + np.exp(-3.0)))  # the threshold is A = sigmoid(k)
    assert a[2] < 1e-9
    assert ScoreStats.from_dict(stats.to_dict()) == stats


def test_calibrate_uses_normal_crops_and_finds_the_f1_threshold() -> None:
    normal = np.array([0.0, 1.0, 2.0, 1.0])
    val = np.array([0.0, 1.0, 2.0, 1.0, 5.0, 6.0])
    labels = np.array([0, 0, 0, 0, 1, 1])
    stats = calibrate(normal, 2.0, "discriminator", val, labels)
    assert stats.mu == pytest.approx(1.0)
    assert stats.sigma == pytest.approx(np.std(normal))
    assert 2.0 < stats.f1_threshold < 5.0
    assert calibrate(normal, 2.0, "discriminator").f1_threshold is None
    with pytest.raises(InputError, match="two normal"):
        calibrate(np.array([1.0]), 2.0, "discriminator")
    with pytest.raises(InputError, match="no best-F1"):
        calibrate(normal, 2.0, "discriminator").decision_threshold("f1")


def test_best_f1_threshold_with_overlap() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.4, 0.35, 0.9])
    labels = np.array([0, 0, 0, 0, 1, 1])
    t = best_f1_threshold(scores, labels)
    assert detection_scores(scores, labels, t).f1 == pytest.approx(2 * 2 / (2 * 2 + 1))  # 0.4 can't be cut from 0.35 and 0.9


def test_detection_scores_follow_eq_18_20() -> None:
    scores = np.array([0.1, 0.2, 0.8, 0.3, 0.9, 0.6])
    labels = np.array([0, 0, 0, 1, 1, 1])
    s = detection_scores(scores, labels, 0.5)  # TP 2 (0.9, 0.6), FP 1 (0.8), FN 1 (0.3), TN 2
    assert (s.acc, s.recall, s.precision, s.f1) == pytest.approx((4 / 6, 2 / 3, 2 / 3, 4 / 6))
    assert s.auc == pytest.approx(7 / 9)  # pairs anomalous > normal: 0.3 > 0.1, 0.2; 0.9 > all three; 0.6 > 0.1, 0.2
    with pytest.raises(InputError, match="both"):
        detection_scores(scores[:3], labels[:3], 0.5)


def test_auc_per_kind_compares_each_kind_with_the_normal_crops() -> None:
    crops = CropSet(np.zeros((5, 2, 2), np.uint8), np.array([0, 0, 1, 1, 1]), ("normal", "normal", "a", "b", "b"), ("",) * 5)
    result = auc_per_kind(np.array([0.1, 0.3, 0.2, 0.9, 0.8]), crops)
    assert result == {"a": pytest.approx(0.5), "b": pytest.approx(1.0)}


@pytest.mark.parametrize(
    ("model", "source"),
    [("kd-gan", "discriminator"), ("kd-gan", "reconstruction"), ("kd-gan", "ssim"), ("kd-gan", "distillation"), ("ganomaly", "latent"),
     ("memae", "reconstruction"), ("f-anogan", "izif"), ("squid", "ssim"), ("squid", "distillation")],
)
def test_scoring_path_exports_to_onnx(tmp_path, model: str, source: str) -> None:
    torch.manual_seed(0)
    base = FastenerTrainConfig(arch=FastenerModelConfig(encoder_channels=(8, 16, 32, 64), msac_channels=(16, 32, 64)))
    cfg = variant_config(model, base)
    path = ScoringPath(build_detector(cfg), source, mu=0.3, sigma=2.0).eval()
    example = torch.rand(2, 1, 128, 128)
    export_onnx(path, example, tmp_path / "score.onnx", input_name="crop", output_names=("score", "raw"))
    assert onnx_max_abs_diff(path, tmp_path / "score.onnx", example) < 1e-4
    with torch.no_grad():
        a, raw = path(example)
    assert torch.allclose(a, torch.sigmoid((raw - 0.3) / 2.0))


def test_ssim_map_is_torchmetrics_ssim() -> None:
    from torchmetrics.functional.image import structural_similarity_index_measure

    torch.manual_seed(0)
    a, b = torch.rand(3, 1, 40, 48), torch.rand(3, 1, 40, 48)
    b[0] = a[0] * 0.8 + 0.1  # one pair alike in structure
    _, expected = structural_similarity_index_measure(a, b, data_range=1.0, reduction="none", return_full_image=True)
    assert torch.allclose(ssim_map(a, b), expected, atol=1e-5)
    assert torch.allclose(ssim_map(a, a), torch.ones_like(a), atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in validation under bf16-mixed
        assert torch.allclose(ssim_map(a, b), expected, atol=1e-5)


def test_ssim_score_finds_a_missing_stroke_that_the_squared_error_ranks_below_normal() -> None:
    """The case the score exists for: a reconstruction that draws a stroke the crop lacks is far
    from it in structure, though its squared error is below that of a blurry normal copy."""
    x = torch.zeros(2, 1, 64, 64)
    x[:, :, 8:56, 20:24] = 1.0  # a vertical stroke in both crops
    x[1, :, 8:12, 24:48] = 1.0  # crop 1 also has a short bar: more ink
    blurry = torch.nn.functional.avg_pool2d(x, 5, 1, 2)  # a normal crop comes back blurred
    missing = x[:1].clone()
    missing[:, :, 44:56, 20:24] = 0.0  # a stroke end erased from the crop ...
    reconstruction = x[:1].clone()  # ... and drawn back whole by the model
    errors = torch.stack([(blurry[1:] - x[1:]).pow(2).mean(), (reconstruction - missing).pow(2).mean()])
    assert errors[1] < errors[0]  # squared error: the crop with a missing part looks more normal
    dissimilarity = structural_dissimilarity(torch.cat([blurry[1:], reconstruction]), torch.cat([x[1:], missing]))
    assert dissimilarity[1] > dissimilarity[0]
    assert structural_dissimilarity(x, x).abs().max() < 1e-5


def test_models_lists_every_variant_with_sizes() -> None:
    result = CliRunner().invoke(app, ["fasteners", "models", "--json"])
    assert result.exit_code == 0, result.output
    models = {m["name"]: m for m in json.loads(result.output)}
    assert set(models) == {"kd-gan", "kd-gan-baseline", "kd-gan-msac", "kd-gan-ejpu", "kd-gan-no-case", "squid", "ganomaly", "memae", "f-anogan"}
    assert models["kd-gan-baseline"]["params"] < models["kd-gan-msac"]["params"] < models["kd-gan"]["params"]
    assert models["kd-gan-baseline"]["params"] < models["kd-gan-ejpu"]["params"] < models["kd-gan"]["params"]
    assert all(m["score_gflops"] > 0 for m in models.values())


def test_validation_scores_from_one_pass_match_each_score_alone() -> None:
    torch.manual_seed(0)
    cfg = FastenerTrainConfig(arch=FastenerModelConfig(encoder_channels=(8, 16, 32, 64), msac_channels=(16, 32, 64)))
    net = build_detector(cfg).eval()
    x = torch.rand(3, 1, 128, 128)
    with torch.no_grad():
        together = kdgan_scores(net, x)
        for source in SCORE_SOURCES:
            assert torch.allclose(together[source], raw_scores(net, x, source), atol=1e-5), source
