"""The FFI regressor of paper 001: shapes, the transfer losses, metrics, a run that learns, checkpoint and ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from railwatch.checkpoint import read_torch_file
from railwatch.config import VibrationModelConfig, VibrationTrainConfig
from railwatch.vibration.data import SpectraSet, random_split
from railwatch.vibration.metrics import ffi_classes, ffi_metrics
from railwatch.vibration.model import CrossModalModel, FFIRegressor, encoder_discrepancy, pretrain_loss

BINS = 101


def test_regressor_layers_follow_the_paper():
    net = FFIRegressor(6, BINS)
    convs = [m for m in net.encoder.cnn if isinstance(m, torch.nn.Conv1d)]
    assert [c.out_channels for c in convs] == [256, 128, 64] and all(c.kernel_size == (3,) for c in convs)
    assert len(net.encoder.transformer.layers) == 3
    attention = net.encoder.transformer.layers[0].self_attn
    assert attention.embed_dim == 64 and attention.num_heads == 4
    dense = [m.out_features for m in net.head.mlp if isinstance(m, torch.nn.Linear)]
    assert dense == [128, 32, 1]
    assert dense and net.head.mlp[1].in_features == 64 * (BINS // 2)


def test_regressor_maps_spectra_into_unit_interval():
    net = FFIRegressor(3, BINS).eval()
    out = net(torch.rand(5, 3, BINS))
    assert out.shape == (5,) and bool(((out > 0) & (out < 1)).all())


@pytest.mark.parametrize("align", ["cnn", "encoder"])
def test_cross_modal_model_shares_one_head(align):
    pair = CrossModalModel(3, 6, BINS, VibrationModelConfig(conv_channels=(32, 16, 16), heads=2, feedforward=32), align).eval()
    accel, das = torch.rand(4, 3, BINS), torch.rand(4, 6, BINS)
    pred_a, pred_d, tokens_a, tokens_d = pair(accel, das)
    assert pred_a.shape == pred_d.shape == (4,)
    assert tokens_a.shape == tokens_d.shape == (4, BINS // 2, 16)
    compared = pair.das.encoder.local(das) if align == "cnn" else pair.das.encoder(das)
    torch.testing.assert_close(tokens_d, compared)
    torch.testing.assert_close(pred_d, pair.das_regressor()(das))
    assert pair.das_regressor().head is pair.das.head
    assert not any(p is q for p in pair.accel_encoder.parameters() for q in pair.das.encoder.parameters())


def test_encoder_discrepancy_on_hand_made_tokens():
    a = torch.zeros(2, 3, 4)
    d = torch.zeros(2, 3, 4)
    d[0] = 1.0  # event 0: every one of 12 features differs by 1; event 1 identical
    assert encoder_discrepancy(a, d).item() == pytest.approx(0.5)
    assert encoder_discrepancy(a, a).item() == 0.0
    target = torch.tensor([0.0, 1.0])
    terms = pretrain_loss(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 1.0]), a, d, target, ed_weight=2.0)
    assert terms["mse_accel"].item() == 0.0 and terms["mse_das"].item() == pytest.approx(0.5)
    assert terms["loss"].item() == pytest.approx(0.5 + 2.0 * 0.5)


def test_metrics_round_to_the_nearest_ffi():
    assert ffi_classes(np.array([0.0, 0.16, 0.17, 0.5, 0.84, 1.2])).tolist() == [0, 0, 1, 2, 3, 3]
    truth = np.array([0, 1, 2, 3])
    perfect = ffi_metrics(truth / 3.0, truth)
    assert perfect == {"mse": 0.0, "accuracy": 1.0, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    # class 3 predicted as 2: accuracy 3/4; class 2 precision 1/2, recall 1; class 3 P = R = 0
    m = ffi_metrics(np.array([0, 1, 2, 2]) / 3.0, truth)
    assert m["accuracy"] == 0.75
    assert m["precision"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert m["recall"] == pytest.approx(0.75)
    assert m["mse"] == pytest.approx((1 / 3) ** 2 / 4)


def test_random_split_is_seven_one_two_and_disjoint():
    train, val, test = random_split(100, (7, 1, 2), seed=3)
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    assert len(set(train) | set(val) | set(test)) == 100
    again = random_split(100, (7, 1, 2), seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((train, val, test), again))
    assert not np.array_equal(train, random_split(100, (7, 1, 2), seed=4)[0])


def toy_spectra(n_per: int = 20, seed: int = 0) -> SpectraSet:
    """Spectra whose peak moves down 3 bins per loose clip, in noise; accel clean, DAS noisier."""
    rng = np.random.default_rng(seed)
    ffi = np.repeat(np.arange(4), n_per)

    def make(channels: int, noise: float) -> np.ndarray:
        s = rng.random((len(ffi), channels, 41)).astype(np.float32) * noise
        for i, level in enumerate(ffi):
            s[i, :, 30 - 3 * level] += 1.0
        return s / s.max(axis=(1, 2), keepdims=True)

    return SpectraSet(make(6, 0.5), make(3, 0.1), ffi, ffi + 1, np.arange(41) * 5.0)


TINY = VibrationModelConfig(conv_channels=(32, 32, 16), heads=2, feedforward=32, transformer_blocks=1, dense=(32, 16), dropout=0.0)


@pytest.mark.parametrize("modality", ["das", "transfer"])
def test_tiny_training_learns_and_checkpoint_loads_weights_only(tmp_path, modality):
    from railwatch.vibration.infer import load_predictor
    from railwatch.vibration.train import train_vibration

    data = toy_spectra()
    cfg = VibrationTrainConfig(modality=modality, epochs=60, finetune_epochs=20, ed_weight=1.0, accelerator="cpu", arch=TINY, max_freq=200.0)
    result = train_vibration(data, cfg, tmp_path, progress=False)
    assert result.test["accuracy"] >= 0.9, result.test
    payload = read_torch_file(result.checkpoint, "checkpoint")  # weights_only=True
    assert payload["model"]["modality"] == modality and payload["model"]["in_channels"] == 6
    predictor = load_predictor(result.checkpoint)
    ffi = predictor.predict_spectra(data.das)
    assert ffi.shape == (len(data),) and np.mean(np.rint(ffi) == data.ffi) >= 0.9
    if modality == "transfer":
        assert (tmp_path / "pretrain").is_dir()


def test_training_is_deterministic_for_a_seed(tmp_path):
    from railwatch.vibration.train import train_vibration

    data = toy_spectra(8)
    cfg = VibrationTrainConfig(modality="accel", epochs=3, accelerator="cpu", arch=TINY, max_freq=200.0)
    a = train_vibration(data, cfg, tmp_path / "a", progress=False)
    b = train_vibration(data, cfg, tmp_path / "b", progress=False)
    wa = read_torch_file(a.checkpoint, "checkpoint")["state_dict"]
    wb = read_torch_file(b.checkpoint, "checkpoint")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_onnx_export_matches_torch(tmp_path):
    from railwatch.export import export_onnx, onnx_max_abs_diff

    net = FFIRegressor(6, BINS, TINY).eval()
    example = torch.rand(3, 6, BINS, generator=torch.Generator().manual_seed(1))
    export_onnx(net, example, tmp_path / "m.onnx", input_name="spectra", output_names=("ffi_scaled",))
    assert onnx_max_abs_diff(net, tmp_path / "m.onnx", example) < 1e-5
