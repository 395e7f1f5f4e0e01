"""Stored model files: half-precision copies that keep batch-norm statistics intact."""

from __future__ import annotations

import torch
from torch import nn

from railwatch.checkpoint import half_precision, load_checkpoint, save_checkpoint


def _net_with_large_activations() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 2, 1))
    with torch.no_grad():
        net[1].running_var.fill_(7.8e5)  # std ~880, as in a detector's neck: over float16's 65504
        net[1].running_mean.fill_(3.0)
    return net.eval()


def test_half_precision_keeps_batch_norm_statistics_float32(tmp_path):
    net = _net_with_large_activations()
    compact = half_precision(net.state_dict())
    assert compact["0.weight"].dtype == torch.float16 and compact["3.bias"].dtype == torch.float16
    assert compact["1.running_var"].dtype == torch.float32 and torch.isfinite(compact["1.running_var"]).all()
    assert compact["1.num_batches_tracked"].dtype == torch.int64
    assert half_precision({"w": torch.full((2,), 1e5)})["w"].dtype == torch.float32  # float16 would make it inf

    path = save_checkpoint(tmp_path / "net.pt", compact, "toy", {})
    again = _net_with_large_activations()
    again.load_state_dict(load_checkpoint(path, "toy")["state_dict"])
    x = torch.randn(2, 3, 16, 16) * 900
    with torch.no_grad():
        expected, got = net(x), again(x)
        naive = _net_with_large_activations()
        naive.load_state_dict({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()})
        silenced = naive(x)
    assert torch.allclose(got, expected, rtol=1e-2, atol=1e-2 * expected.abs().max().item())
    assert not torch.allclose(silenced, expected, rtol=1e-2, atol=1e-2 * expected.abs().max().item())  # what it prevents
