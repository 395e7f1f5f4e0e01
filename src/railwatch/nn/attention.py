"""Attention blocks: squeeze-and-excitation, coordinate-channel attention and multi-scale dilated attention.

:class:`SqueezeExcite` reweights channels from their global average (SENet). ST-YOLO puts it
after the 1x1 convolutions of its ShuffleNetV2 backbone (paper 003, section 2.2).

:class:`CoordinateChannelAttention` is the CASE block of the fastener KD-GAN (paper 000,
section 2.2, Eq. 1-9): coordinate attention (direction-aware pooling along each axis) followed
by squeeze-and-excitation on its output.

:class:`MultiScaleDilatedAttention` is DilateFormer's MSDA (Eq. 5-8): each head attends from
every query position ``(i, j)`` to the ``w x w`` keys and values at ``(i + p r, j + q r)``,
``-w/2 <= p, q <= w/2``, with its own dilation ``r``; the heads are concatenated and projected.
torch has no sliding-window attention over dilated neighbourhoods, so it is written here: the
map of keys is zero-padded once and each of the ``w x w`` window taps is a shifted slice of it,
so the window is never materialised (``F.unfold`` would copy every key ``w^2`` times, and
exports to ONNX as gathers that cost ONNX Runtime more than the block's convolutions).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SqueezeExcite(nn.Module):
    """Channel attention: ``x * sigmoid(W2 relu(W1 avgpool(x)))`` with a ``reduction`` bottleneck."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)


class CoordinateChannelAttention(nn.Module):
    """CASE: coordinate attention, then squeeze-and-excitation on its output (paper 000, Eq. 1-9).

    Eq. 1-2 pool ``x`` along each spatial axis (a ``C x 1 x W`` and a ``C x H x 1`` profile);
    Eq. 3 concatenates them along the spatial axis and encodes them with a shared 1x1
    convolution ``R1`` (+ BN, ReLU); Eq. 4-5 split the code back and turn each half into
    sigmoid weights with its own 1x1 convolution; Eq. 6 multiplies ``x`` by both. Eq. 7-9 are
    squeeze-and-excitation on that product (:class:`SqueezeExcite`).

    Args:
        channels: Input and output channels.
        reduction: Bottleneck ratio of ``R1`` and of the SE block.
    """

    def __init__(self, channels: int, reduction: int = 8) -> None:
        super().__init__()
        hidden = max(8, channels // reduction)
        self.encode = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True))
        self.to_row_weights = nn.Conv2d(hidden, channels, 1)  # F_h of Eq. 4
        self.to_col_weights = nn.Conv2d(hidden, channels, 1)  # F_w of Eq. 5
        self.channel_gate = SqueezeExcite(channels, reduction)  # Eq. 7-9

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        rows = x.mean(dim=3, keepdim=True)  # (N, C, H, 1): Eq. 2
        cols = x.mean(dim=2, keepdim=True).transpose(2, 3)  # (N, C, W, 1): Eq. 1
        code = self.encode(torch.cat([rows, cols], dim=2))  # Eq. 3
        code_rows, code_cols = torch.split(code, [h, w], dim=2)
        g_rows = torch.sigmoid(self.to_row_weights(code_rows))  # (N, C, H, 1): Eq. 4
        g_cols = torch.sigmoid(self.to_col_weights(code_cols)).transpose(2, 3)  # (N, C, 1, W): Eq. 5
        return self.channel_gate(x * g_rows * g_cols)  # Eq. 6, then Eq. 7-9


class MultiScaleDilatedAttention(nn.Module):
    """Multi-scale dilated attention (DilateFormer's MSDA; paper 003, Eq. 5-8).

    Args:
        channels: Input and output channels; split evenly over the dilations' heads.
        dilations: One dilation ``r_i`` per head group (Eq. 8); ``(1, 2, 3)`` as in DilateFormer.
        window: Side ``w`` of the sliding window of keys around each query (odd).
    """

    def __init__(self, channels: int, dilations: Sequence[int] = (1, 2, 3), window: int = 3) -> None:
        super().__init__()
        if channels % len(dilations):
            raise ValueError(f"{channels} channels do not split into {len(dilations)} dilation heads")
        if window % 2 == 0:
            raise ValueError(f"window must be odd, got {window}")
        self.dilations = tuple(dilations)
        self.window = window
        self.head_dim = channels // len(dilations)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = nn.Conv2d(channels, channels, 1)
        self.scale = self.head_dim**-0.5

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=1)
        heads: dict[int, Tensor] = {}
        for r in dict.fromkeys(self.dilations):  # heads that share a dilation are computed together
            group = [i for i, ri in enumerate(self.dilations) if ri == r]
            out = self._window_attention(*(self._channels(t, group) for t in (q, k, v)), r, len(group))
            heads.update(zip(group, out.chunk(len(group), dim=1)))
        return self.proj(torch.cat([heads[i] for i in range(len(self.dilations))], dim=1))

    def _channels(self, t: Tensor, heads: list[int]) -> Tensor:
        """The channels of ``heads`` in ``t`` (a plain slice when the heads are adjacent)."""
        if heads == list(range(heads[0], heads[-1] + 1)):
            return t[:, heads[0] * self.head_dim : (heads[-1] + 1) * self.head_dim]
        return torch.cat([t[:, i * self.head_dim : (i + 1) * self.head_dim] for i in heads], dim=1)

    def _window_attention(self, q: Tensor, k: Tensor, v: Tensor, r: int, n_heads: int) -> Tensor:
        """Eq. 6-7 for ``n_heads`` heads of dilation ``r``: softmax(q_ij K_r^T / sqrt(d)) V_r per query.

        Computed position-major, ``(N, H, W, heads, d)``: a channels-last map is already laid out
        so, and a window tap's keys at one position are then contiguous, so no tap is copied to
        split it into heads. Keys and values outside the map are zero (a zero logit and a zero
        value), as with zero padding.
        """
        n, c, h, w = q.shape
        pad = r * (self.window // 2)
        keys, values = (F.pad(t, (pad, pad, pad, pad)).permute(0, 2, 3, 1) for t in (k, v))
        per_head = (n, h, w, n_heads, self.head_dim)
        query = q.permute(0, 2, 3, 1).reshape(per_head)
        taps = [(dy * r, dx * r) for dy in range(self.window) for dx in range(self.window)]
        logits = torch.stack([(query * keys[:, y : y + h, x : x + w].reshape(per_head)).sum(-1) for y, x in taps], dim=-1)
        weights = (logits * self.scale).softmax(dim=-1)  # (N, H, W, heads, taps)
        out = torch.zeros_like(query)
        for t, (y, x) in enumerate(taps):
            out = out + weights[..., t : t + 1] * values[:, y : y + h, x : x + w].reshape(per_head)
        return out.reshape(n, h, w, c).permute(0, 3, 1, 2)
