"""railwatch.nn: SE and multi-scale dilated attention (shapes, locality, ONNX parity) and the weight EMA."""

from __future__ import annotations

import pytest
import torch

from railwatch.export import export_onnx, onnx_max_abs_diff
from railwatch.nn.attention import MultiScaleDilatedAttention, SqueezeExcite


def test_squeeze_excite_only_rescales_channels():
    torch.manual_seed(0)
    se = SqueezeExcite(16)
    x = torch.rand(2, 16, 5, 7)
    y = se(x)
    ratio = y / x
    assert y.shape == x.shape
    assert torch.all((ratio > 0) & (ratio < 1))
    assert torch.allclose(ratio, ratio[..., :1, :1].expand_as(ratio))  # one factor per channel


def test_msda_keeps_the_shape():
    attn = MultiScaleDilatedAttention(12, dilations=(1, 2, 3))
    assert attn(torch.rand(2, 12, 9, 11)).shape == (2, 12, 9, 11)


@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_each_head_sees_only_its_dilated_window(dilation):
    torch.manual_seed(0)
    attn = MultiScaleDilatedAttention(4, dilations=(dilation,), window=3)
    x = torch.rand(1, 4, 13, 13, requires_grad=True)
    attn(x)[0, :, 6, 6].sum().backward()
    touched = x.grad[0].abs().sum(0) > 0
    expected = torch.zeros(13, 13, dtype=torch.bool)
    for p in (-1, 0, 1):
        for q in (-1, 0, 1):
            expected[6 + p * dilation, 6 + q * dilation] = True
    assert torch.equal(touched, expected)


def msda_by_position(attn: MultiScaleDilatedAttention, x: torch.Tensor) -> torch.Tensor:
    """Eq. 6-8 query by query: each head's softmax over its dilated window (zeros off the map)."""
    q, k, v = attn.qkv(x).chunk(3, dim=1)
    n, c, h, w = q.shape
    d, half = attn.head_dim, attn.window // 2
    out = torch.zeros_like(q)
    for head, r in enumerate(attn.dilations):
        ch = slice(head * d, (head + 1) * d)
        for i in range(h):
            for j in range(w):
                keys, values = [], []
                for p in range(-half, half + 1):
                    for s in range(-half, half + 1):
                        y, z = i + p * r, j + s * r
                        inside = 0 <= y < h and 0 <= z < w
                        keys.append(k[:, ch, y, z] if inside else torch.zeros(n, d))
                        values.append(v[:, ch, y, z] if inside else torch.zeros(n, d))
                logits = torch.stack([(q[:, ch, i, j] * key).sum(1) for key in keys], 1) * d**-0.5
                out[:, ch, i, j] = torch.einsum("nt,ntd->nd", logits.softmax(1), torch.stack(values, 1))
    return attn.proj(out)


def test_msda_matches_eq_6_to_8_query_by_query():
    torch.manual_seed(0)
    attn = MultiScaleDilatedAttention(12, dilations=(1, 3, 1, 2), window=3)  # heads of one dilation apart
    x = torch.randn(2, 12, 6, 7)
    with torch.no_grad():
        assert torch.allclose(attn(x), msda_by_position(attn, x), atol=1e-5)


def test_window_of_one_reduces_to_the_value_projection():
    torch.manual_seed(0)
    attn = MultiScaleDilatedAttention(6, dilations=(1, 2), window=1)
    x = torch.rand(1, 6, 4, 5)
    _, _, v = attn.qkv(x).chunk(3, dim=1)
    assert torch.allclose(attn(x), attn.proj(v), atol=1e-6)  # softmax over one key is 1


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="do not split"):
        MultiScaleDilatedAttention(10, dilations=(1, 2, 3))
    with pytest.raises(ValueError, match="odd"):
        MultiScaleDilatedAttention(9, window=4)


def test_onnx_runtime_agrees_with_torch(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(MultiScaleDilatedAttention(12), SqueezeExcite(12)).eval()
    x = torch.rand(1, 12, 10, 16)
    path = export_onnx(net, x, tmp_path / "attn.onnx", dynamic_batch=False)
    assert onnx_max_abs_diff(net, path, x) < 1e-5


def test_weight_ema_follows_the_weights_with_a_ramped_decay():
    import math

    from railwatch.nn.ema import WeightEMA

    net = torch.nn.BatchNorm1d(2)
    ema = WeightEMA(net, decay=0.5, ramp=1.0)
    with torch.no_grad():
        net.weight.fill_(3.0)  # was 1.0
        net.running_mean.fill_(2.0)  # was 0.0
    ema.update(net)
    d = 0.5 * (1 - math.exp(-1))
    assert torch.allclose(ema.module.weight, torch.full((2,), d * 1.0 + (1 - d) * 3.0))
    assert torch.allclose(ema.module.running_mean, torch.full((2,), (1 - d) * 2.0))
    assert ema.module.num_batches_tracked == net.num_batches_tracked  # integers are copied
    assert not ema.module.weight.requires_grad
