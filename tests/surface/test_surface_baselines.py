"""FCN-8s and SegNet baselines of paper 002, and `railwatch surface models`."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision.models
from typer.testing import CliRunner

from railwatch.cli import app
from railwatch.export import export_onnx, onnx_max_abs_diff
from railwatch.surface.baselines import FCN8s, SegNet, max_unpool
from railwatch.surface.models import build_surface_model, load_backbone_weights


@pytest.mark.parametrize("cls", [FCN8s, SegNet])
@pytest.mark.parametrize("size", [(100, 160), (100, 55)])
def test_baselines_score_every_pixel_of_both_tile_shapes(cls, size):
    torch.manual_seed(0)
    net = cls().eval()
    for m in net.modules():  # FCN-8s' class-score convolutions start at zero; give them a say
        if isinstance(m, torch.nn.Conv2d) and m.out_channels == 2:
            torch.nn.init.normal_(m.weight, std=0.1)
            torch.nn.init.normal_(m.bias, std=0.1)
    with torch.no_grad():
        scores = net(torch.rand(1, 3, *size))
    assert scores.shape == (1, 2, *size)
    assert (scores[:, 1] != scores[:, 0]).all()  # no pixel left to padding, where no defect could be found


def test_segnet_unpools_to_where_the_maxima_were():
    net = SegNet().eval()
    x = torch.rand(2, 64, 9, 7)
    pooled, indices = torch.nn.functional.max_pool2d(x, 2, 2, return_indices=True)
    restored = max_unpool(pooled, indices, (9, 7))
    kept = restored != 0
    assert torch.equal(restored[kept], x[kept])  # every value back at its own position
    assert torch.equal(torch.nn.functional.max_pool2d(restored, 2, 2), pooled)
    assert (restored != 0).sum() == 2 * 64 * 4 * 3  # one value per pooling window
    assert len(net.encoder) == len(net.decoder) == 5
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    assert convs == 13 + 13 + 1  # encoder, mirrored decoder, classifier


def test_models_command_lists_every_network_with_its_parameters():
    result = CliRunner().invoke(app, ["surface", "models", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r["params"] for r in json.loads(result.output)}
    assert rows == {"fcn-type1": 12_163_110, "fcn-type2": 12_163_042, "fcn-8s": 134_271_430, "segnet": 29_481_218}


def test_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="unet"):
        build_surface_model("unet")


def test_segnet_onnx_runtime_agrees_with_torch(tmp_path):
    torch.manual_seed(0)
    net = SegNet().eval()
    x = torch.rand(1, 3, 64, 96)
    path = export_onnx(net, x, tmp_path / "segnet.onnx")
    assert onnx_max_abs_diff(net, path, x) < 1e-3


@pytest.mark.parametrize("name, reference", [("fcn-8s", "vgg16"), ("segnet", "vgg16_bn")])
def test_imagenet_vgg_weights_map_onto_the_baseline_encoders(name, reference, tmp_path):
    torch.manual_seed(0)
    state = getattr(torchvision.models, reference)(weights=None).state_dict()
    torch.save(state, tmp_path / "vgg.pth")
    net = build_surface_model(name)
    copied = load_backbone_weights(net, name, tmp_path / "vgg.pth")
    assert copied == sum(1 for k in state if k.startswith("features."))  # the whole VGG16 encoder
    own = net.state_dict()
    assert all(torch.equal(own[v], state[k]) for k, v in net.backbone_state_keys().items())
