"""BiSeNetV2 and the FCN baseline: shapes, the OHEM loss, determinism, checkpoints and ONNX parity."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from railwatch.checkpoint import load_checkpoint, save_checkpoint
from railwatch.config import SegModelConfig
from railwatch.errors import InputError
from railwatch.export import export_onnx, onnx_max_abs_diff
from railwatch.intrusion.models import count_gflops, count_params, list_models
from railwatch.intrusion.seg.loss import IGNORE_INDEX, OhemCrossEntropy, SegmentationLoss, soft_dice_loss
from railwatch.intrusion.seg.model import BiSeNetV2, build_segmenter
from railwatch.intrusion.seg.train import inference_state

SMALL = SegModelConfig(input_height=64, input_width=128, head_channels=32, aux_head_channels=16)


@pytest.mark.parametrize("upsample", ["bilinear", "shuffle"])
def test_bisenetv2_returns_full_resolution_logits_and_four_aux_heads_in_training(upsample):
    torch.manual_seed(0)
    net = build_segmenter(SMALL.model_copy(update={"upsample": upsample}))
    x = torch.rand(2, 3, 64, 128)
    net.train()
    outs = net(x)
    assert len(outs) == 5
    assert all(o.shape == (2, 3, 64, 128) for o in outs)
    net.eval()
    assert net(x).shape == (2, 3, 64, 128)


def test_branch_resolutions_follow_table_1():
    net = BiSeNetV2(3, 32, 16).eval()
    x = torch.rand(1, 3, 512, 1024)
    with torch.no_grad():
        detail = net.detail(x)
        stem, s3, s4, s5, ce = net.semantic(x)
    assert detail.shape == (1, 128, 64, 128)  # 1/8, 128 channels
    assert stem.shape == (1, 16, 128, 256)  # stem: 1/4, 16
    assert s3.shape == (1, 32, 64, 128)
    assert s4.shape == (1, 64, 32, 64)
    assert s5.shape == ce.shape == (1, 128, 16, 32)  # 1/32, 128


def test_fcn_baseline_shapes_and_is_smaller_than_bisenetv2():
    fcn = build_segmenter(SMALL.model_copy(update={"arch": "fcn"})).eval()
    assert fcn(torch.rand(1, 3, 64, 128)).shape == (1, 3, 64, 128)
    assert count_params(fcn) < count_params(build_segmenter(SegModelConfig(), aux=False))


def test_same_seed_same_weights_and_different_seed_different_weights():
    def weights(seed):
        torch.manual_seed(seed)
        return torch.cat([p.flatten() for p in build_segmenter(SMALL).parameters()])

    assert torch.equal(weights(3), weights(3))
    assert not torch.equal(weights(3), weights(4))


def test_ohem_keeps_the_hard_pixels_and_at_least_the_minimum_fraction():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.zeros(1, 2, 4, 4)
    logits[0, 0] = 10.0  # every pixel easy ...
    logits[0, 0, 0, 0] = -10.0  # ... but one
    loss = OhemCrossEntropy(keep_prob=0.7, min_fraction=1 / 16)(logits, target)
    assert loss == pytest.approx(F.cross_entropy(logits[..., :1, :1], target[..., :1, :1]).item(), rel=1e-5)
    all_hard = torch.zeros(1, 2, 4, 4)  # p = 0.5 < 0.7 everywhere: plain cross-entropy
    assert OhemCrossEntropy()(all_hard, target) == pytest.approx(math.log(2), rel=1e-6)


def test_ohem_ignores_unlabelled_pixels():
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.full((1, 2, 2), IGNORE_INDEX)
    assert OhemCrossEntropy()(logits, target) == 0.0
    target[0, 0, 0] = 1
    assert OhemCrossEntropy()(logits, target) == pytest.approx(math.log(2), rel=1e-6)


def test_total_loss_weights_the_auxiliary_heads():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    outs = tuple(torch.zeros(1, 2, 4, 4) for _ in range(5))
    total, parts = SegmentationLoss(aux_weight=0.5, dice_weight=0.0)(outs, target)
    assert parts["main"] == pytest.approx(math.log(2))
    assert parts["aux"] == pytest.approx(4 * math.log(2))
    assert total == pytest.approx(3 * math.log(2))


def test_checkpoint_loads_with_weights_only_and_drops_aux_heads(tmp_path):
    torch.manual_seed(0)
    net = build_segmenter(SMALL)
    path = save_checkpoint(tmp_path / "m.pt", inference_state(net), "track-seg", SMALL.model_dump(mode="json"), {"miou": 0.5})
    raw = torch.load(path, weights_only=True)
    assert not any(k.startswith("aux_heads.") for k in raw["state_dict"])
    payload = load_checkpoint(path, "track-seg")
    plain = build_segmenter(SegModelConfig.model_validate(payload["model"]), aux=False)
    plain.load_state_dict(payload["state_dict"])
    net.eval(), plain.eval()
    x = torch.rand(1, 3, 64, 128)
    assert torch.equal(net(x), plain(x))


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(InputError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt", "track-seg")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(corrupt, "track-seg")
    other = save_checkpoint(tmp_path / "o.pt", {}, "detector", {})
    with pytest.raises(InputError, match="expected 'track-seg'"):
        load_checkpoint(other, "track-seg")


@pytest.mark.parametrize("arch,upsample", [("bisenetv2", "bilinear"), ("bisenetv2", "shuffle"), ("fcn", "bilinear")])
def test_onnx_runtime_agrees_with_torch(tmp_path, arch, upsample):
    torch.manual_seed(0)
    net = build_segmenter(SMALL.model_copy(update={"arch": arch, "upsample": upsample}), aux=False).eval()
    for m in net.modules():  # non-trivial BN statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.rand(1, 3, 64, 128)
    path = export_onnx(net, x, tmp_path / "m.onnx")
    assert onnx_max_abs_diff(net, path, x) < 1e-4
    batch = torch.rand(3, 3, 64, 128)  # the batch axis is dynamic
    assert onnx_max_abs_diff(net, path, batch) < 1e-4


def test_flop_counter_counts_a_known_convolution():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # 8 outputs x 27 multiply-adds x 2 FLOPs at each of 16 x 16 positions
    assert count_gflops(conv, (16, 16)) * 1e9 == pytest.approx(2 * 8 * 27 * 256)


def test_model_list_has_bisenetv2_and_the_baseline():
    names = {m.name: m for m in list_models()}
    assert {"bisenetv2", "fcn"} <= set(names)
    assert names["bisenetv2"].input_size == (512, 1024)
    assert names["bisenetv2"].gflops > names["fcn"].gflops > 0


def test_soft_dice_is_zero_for_a_perfect_prediction_and_one_for_a_disjoint_one():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, :, 1] = 2  # a one-pixel-wide "rail"
    perfect = F.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(perfect, target, eps=1e-6) == pytest.approx(0.0, abs=1e-4)
    wrong = torch.roll(perfect, shifts=2, dims=3)  # the rail predicted two columns off
    assert soft_dice_loss(wrong, target, eps=1e-6) > 0.49  # rail Dice 0 (track absent: Dice 1)
