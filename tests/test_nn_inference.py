"""railwatch.nn.inference: folding batch norms and the channels-last layout leave the outputs as they were."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from railwatch.nn.blocks import ConvBNReLU
from railwatch.nn.inference import fold_batch_norms, prepare_for_inference


def trained_like(net: nn.Module) -> nn.Module:
    """``net`` in eval mode with batch-norm statistics and affine terms away from their defaults."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                for t in (m.running_mean, m.weight, m.bias):
                    t.copy_(torch.randn(t.shape, generator=gen))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return net.eval()


def test_folding_keeps_the_outputs_and_removes_the_norms():
    torch.manual_seed(0)
    net = trained_like(nn.Sequential(ConvBNReLU(3, 8), nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8)), nn.BatchNorm2d(8)))
    x = torch.randn(2, 3, 9, 11)
    expected = net(x)
    assert fold_batch_norms(net) == 2
    assert torch.allclose(net(x), expected, atol=1e-5)
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms == [net[2]]  # a norm without a convolution before it stays
    assert isinstance(net[0][0], nn.Conv2d) and net[0][0].bias is not None and isinstance(net[0][1], nn.Identity)


def test_folding_refuses_a_network_in_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(ConvBNReLU(3, 4).train())


@pytest.mark.parametrize("arch", ["bisenetv2", "st-yolo"])
def test_prepared_networks_agree_with_the_trained_ones(arch):
    from railwatch.config import DetModelConfig, SegModelConfig
    from railwatch.intrusion.det.model import DecodedDetector, build_detector
    from railwatch.intrusion.seg.model import build_segmenter

    torch.manual_seed(0)
    if arch == "st-yolo":
        net = DecodedDetector(build_detector(DetModelConfig(input_height=64, input_width=128)))
    else:
        net = build_segmenter(SegModelConfig(input_height=64, input_width=128), aux=False)
    net = trained_like(net)
    x = torch.rand(2, 3, 64, 128)
    with torch.no_grad():
        expected = net(x)
        prepared = prepare_for_inference(copy.deepcopy(net))
        assert not any(p.requires_grad for p in prepared.parameters())
        assert any(p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in prepared.parameters())
        assert torch.allclose(prepared(x), expected, rtol=1e-3, atol=1e-3)
