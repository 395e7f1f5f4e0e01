"""ST-YOLO and YOLOv8s: sizes, shapes, the assigner and losses on hand-made cases, a tiny overfit, export."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torchvision.models.shufflenetv2 import InvertedResidual

from railwatch.checkpoint import save_checkpoint
from railwatch.config import DetInferConfig, DetModelConfig
from railwatch.errors import InputError
from railwatch.export import export_onnx, onnx_max_abs_diff
from railwatch.intrusion.det.assign import TaskAlignedAssigner
from railwatch.intrusion.det.backbones import ShuffleUnit
from railwatch.intrusion.det.head import decode, make_anchors
from railwatch.intrusion.det.infer import Detector, load_detector_net
from railwatch.intrusion.det.loss import DetectionLoss, distribution_focal_loss
from railwatch.intrusion.det.metrics import DetectionMetrics
from railwatch.intrusion.det.model import DecodedDetector, build_detector
from railwatch.intrusion.det.postprocess import select_detections
from railwatch.intrusion.det.train import TASK
from railwatch.intrusion.models import count_gflops, count_params

SMALL = DetModelConfig(input_height=64, input_width=128)
COCO = tuple(f"class{i}" for i in range(80))


def test_yolov8s_matches_the_reference_size_and_cost():
    net = build_detector(DetModelConfig(arch="yolov8s", classes=COCO))
    # YOLOv8s (80 classes) has 11,166,560 parameters and 28.6 GFLOPs at 640x640; 16 of those
    # parameters are its fixed DFL projection, which railwatch computes instead of storing.
    assert count_params(net) == 11_166_560 - 16
    assert count_gflops(net, (640, 640)) == pytest.approx(28.6, abs=0.05)


def test_st_yolo_is_lighter_than_its_baseline():
    ours, base = build_detector(DetModelConfig()), build_detector(DetModelConfig(arch="yolov8s"))
    assert count_params(ours) <= 0.8 * count_params(base)
    assert count_gflops(ours, (320, 320)) <= 0.75 * count_gflops(base, (320, 320))


def test_switches_remove_se_and_msda():
    full = count_params(build_detector(DetModelConfig()))
    no_se = count_params(build_detector(DetModelConfig(se=False)))
    no_msda = count_params(build_detector(DetModelConfig(msda=False)))
    assert no_se < full and no_msda < full
    dilated = build_detector(DetModelConfig(msda_dilations=(1, 2, 3, 4)))
    assert dilated.backbone.context.attn.dilations == (1, 2, 3, 4)
    assert count_params(dilated) == full  # the dilation changes where keys come from, not the weights


@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(24, 116, 2), (116, 116, 1)])
def test_shuffle_unit_is_torchvisions_unit_in_either_layout(c_in, c_out, stride):
    torch.manual_seed(0)
    reference = InvertedResidual(c_in, c_out, stride).eval()
    unit = ShuffleUnit(reference).eval()
    assert unit.state_dict().keys() == reference.state_dict().keys()  # checkpoints load either way
    x = torch.randn(2, c_in, 12, 16)
    with torch.no_grad():
        expected = reference(x)
        assert torch.equal(unit(x), expected)
        unit = unit.to(memory_format=torch.channels_last)
        out = unit(x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("arch", ["st-yolo", "yolov8s"])
def test_backbone_strides_and_head_output_shape(arch):
    net = build_detector(SMALL.model_copy(update={"arch": arch})).eval()
    x = torch.rand(2, 3, 64, 128)
    with torch.no_grad():
        features = net.backbone(x)
        raw = net(x)
        decoded = decode(raw, (64, 128), net.reg_max)
    assert [f.shape[2:] for f in features] == [(8, 16), (4, 8), (2, 4)]
    assert [f.shape[1] for f in features] == list(net.backbone.channels)
    cells = 8 * 16 + 4 * 8 + 2 * 4
    assert raw.shape == (2, 4 * 16 + 4, cells)
    assert decoded.shape == (2, cells, 4 + 4)
    assert ((decoded[..., 4:] >= 0) & (decoded[..., 4:] <= 1)).all()


def test_anchors_are_cell_centres_level_by_level():
    points, strides = make_anchors((64, 64))
    assert points.shape == (64 + 16 + 4, 2)
    assert points[0].tolist() == [4.0, 4.0] and points[1].tolist() == [12.0, 4.0]
    assert points[64].tolist() == [8.0, 8.0] and strides[64].item() == 16
    assert points[-1].tolist() == [48.0, 48.0] and strides[-1].item() == 32


def _cells_64():
    points, _ = make_anchors((64, 64))
    return points[:64]  # the stride-8 level only: an 8x8 grid of centres 4, 12, ..., 60


def test_assigner_takes_topk_cells_inside_the_object():
    points = _cells_64()
    gt = torch.tensor([[0.0, 0.0, 32.0, 32.0]])  # covers the 4x4 cells of the top-left corner
    boxes = gt.expand(64, 4).clone()  # every cell predicts the object perfectly
    scores = torch.full((64, 3), 0.5)
    a = TaskAlignedAssigner(3, topk=10)(scores, boxes, points, gt, torch.tensor([2]))
    inside = (points[:, 0] < 32) & (points[:, 1] < 32)
    assert a.foreground.sum() == 10  # topk of the 16 inside
    assert not (a.foreground & ~inside).any()
    assert torch.allclose(a.scores[a.foreground, 2], torch.ones(10))  # best IoU is 1 -> soft target 1
    assert (a.scores[:, :2] == 0).all() and (a.scores[~a.foreground] == 0).all()
    assert torch.equal(a.boxes[a.foreground], gt.expand(10, 4))


def test_assigner_gives_a_shared_cell_to_the_object_it_overlaps_most():
    points = _cells_64()
    gts = torch.tensor([[0.0, 0.0, 24.0, 24.0], [8.0, 8.0, 40.0, 40.0]])
    boxes = torch.tensor([[8.0, 8.0, 40.0, 40.0]]).expand(64, 4).clone()  # predictions match object 1
    a = TaskAlignedAssigner(2, topk=16)(torch.full((64, 2), 0.5), boxes, points, gts, torch.tensor([0, 1]))
    shared = (points[:, 0] > 8) & (points[:, 0] < 24) & (points[:, 1] > 8) & (points[:, 1] < 24)
    assert a.foreground[shared].all()
    assert torch.equal(a.boxes[shared], gts[1].expand(int(shared.sum()), 4))


def test_assigner_without_objects_marks_everything_background():
    a = TaskAlignedAssigner(2)(torch.rand(64, 2), torch.rand(64, 4), _cells_64(), torch.zeros(0, 4), torch.zeros(0))
    assert not a.foreground.any() and (a.scores == 0).all()


def test_dfl_known_values():
    uniform = torch.zeros(2, 16)
    # uniform logits: cross-entropy is log(16) for any bin, whatever the split between the two bins
    assert torch.allclose(distribution_focal_loss(uniform, torch.tensor([3.0, 7.25])), torch.full((2,), math.log(16)))
    peaked = torch.full((1, 16), -30.0)
    peaked[0, 5] = 30.0
    assert distribution_focal_loss(peaked, torch.tensor([5.0])).item() < 1e-6
    assert distribution_focal_loss(peaked, torch.tensor([5.5])).item() == pytest.approx(30.0, rel=0.01)


def test_loss_without_objects_is_classification_only_and_finite():
    net = build_detector(SMALL)
    loss, parts = DetectionLoss(4, 16)(net(torch.rand(2, 3, 64, 128)), torch.zeros(0, 6), (64, 128))
    assert parts["box"] == 0 and parts["dfl"] == 0 and parts["cls"] > 0
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_nms_keeps_one_of_two_overlapping_boxes_per_class():
    decoded = torch.zeros(1, 3, 4 + 2)
    decoded[0, :, :4] = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], dtype=torch.float)
    decoded[0, 0, 4], decoded[0, 1, 4], decoded[0, 2, 5] = 0.9, 0.8, 0.7
    boxes, scores, labels = select_detections(decoded, 0.25, 0.5)[0]
    assert scores.tolist() == pytest.approx([0.9, 0.7]) and labels.tolist() == [0, 1]


def test_metrics_count_matches_and_misses():
    m = DetectionMetrics(["a", "b"])
    found = [(torch.tensor([[0.0, 0, 10, 10], [50, 50, 60, 60]]), torch.tensor([0.9, 0.8]), torch.tensor([1, 1]))]
    truth = [(torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), torch.tensor([1, 0]))]
    m.update(found, truth)
    r = m.compute()
    assert r["map50"] == pytest.approx(0.5) and r["precision"] == 0.5 and r["recall"] == 0.5
    assert r["per_class"]["b"]["map50"] == pytest.approx(1.0) and r["per_class"]["a"]["recall"] == 0.0


def test_tiny_overfit_finds_the_boxes():
    torch.manual_seed(0)
    net = build_detector(SMALL)
    x = torch.rand(2, 3, 64, 128) * 0.3
    x[0, :, 10:50, 8:40] = 1.0
    x[1, 0, 20:60, 70:120] = 1.0
    targets = torch.tensor([[0, 0, 8, 10, 40, 50], [1, 1, 70, 20, 120, 60]], dtype=torch.float)
    loss_fn = DetectionLoss(4, 16)
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, _ = loss_fn(net(x), targets, (64, 128))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5
    with torch.no_grad():  # batch statistics: two images are too few for running BN statistics
        found = select_detections(decode(net(x), (64, 128), 16), 0.3)
    from torchvision.ops import box_iou

    for (boxes, _, labels), row in zip(found, targets):
        assert labels[0] == row[1]
        assert box_iou(boxes[:1], row[None, 2:]).item() > 0.6


def test_loss_is_float32_under_bfloat16_autocast():
    """Mixed-precision training scores the boxes in float32: the same head output gives the same
    loss inside a bfloat16 autocast as outside it, where bfloat16 box arithmetic would move it."""
    torch.manual_seed(0)
    raw = build_detector(SMALL)(torch.rand(2, 3, 64, 128)).detach().bfloat16()
    targets = torch.tensor([[0, 0, 8, 10, 40, 50], [1, 1, 70, 20, 120, 60]], dtype=torch.float)
    expected, _ = DetectionLoss(4, 16)(raw.float(), targets, (64, 128))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, parts = DetectionLoss(4, 16)(raw, targets, (64, 128))
    assert loss.dtype == torch.float32 and all(p.dtype == torch.float32 for p in parts.values())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("arch", ["st-yolo", "yolov8s"])
def test_onnx_runtime_agrees_with_torch(tmp_path, arch):
    torch.manual_seed(0)
    net = DecodedDetector(build_detector(SMALL.model_copy(update={"arch": arch}))).eval()
    x = torch.rand(2, 3, 64, 128)
    path = export_onnx(net, x[:1], tmp_path / "det.onnx", output_names=("detections",))
    assert onnx_max_abs_diff(net, path, x) < 1e-3  # batch 2 through a batch-1 export: dynamic batch


def test_checkpoint_round_trip_and_detections_in_image_pixels(tmp_path):
    torch.manual_seed(0)
    net = build_detector(SMALL)
    path = save_checkpoint(tmp_path / "det.pt", net.state_dict(), TASK, SMALL.model_dump(mode="json"), {"seed": 0})
    raw = torch.load(path, weights_only=True)
    assert raw["task"] == TASK
    loaded, _, _ = load_detector_net(path)
    for a, b in zip(loaded.net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(a, b)
    detector = Detector.load(path)  # batch norms folded, channels-last: the same detections
    x = torch.rand(1, 3, SMALL.input_height, SMALL.input_width)
    with torch.no_grad():
        assert torch.allclose(detector.net(x), DecodedDetector(net).eval()(x), rtol=1e-4, atol=1e-3)
    image = (np.random.default_rng(0).random((100, 300, 3)) * 255).astype(np.uint8)
    detector.infer = detector.infer.model_copy(update={"conf_threshold": 0.0})
    found = detector.detect(image)
    assert len(found) > 0 and found.boxes[:, [0, 2]].max() <= 300 and found.boxes[:, [1, 3]].max() <= 100
    larger = Detector.load(path, DetInferConfig(conf_threshold=0.0, input_height=96, input_width=288))
    assert larger.input_size == (96, 288)  # fully convolutional: runs at any multiple of 32
    assert larger.detect(image).boxes[:, [0, 2]].max() <= 300


def test_bad_detector_inputs(tmp_path):
    with pytest.raises(InputError, match="missing.pt"):
        Detector.load(tmp_path / "missing.pt")
    path = save_checkpoint(tmp_path / "seg.pt", {}, "track-seg", {}, {})
    with pytest.raises(InputError, match="seg.pt"):
        Detector.load(path)
    net = build_detector(SMALL)
    path = save_checkpoint(tmp_path / "det.pt", net.state_dict(), TASK, SMALL.model_dump(mode="json"))
    with pytest.raises(InputError, match="RGB"):
        Detector.load(path).detect(np.zeros((10, 10), np.uint8))
