"""SQUID's in-painting block (Xiang et al., "SQUID: Deep Feature In-painting for Unsupervised
Anomaly Detection", CVPR 2023), the student's block of the ``squid`` baseline of paper 000 (Tables 5-6).

SQUID has KD-GAN's layout without MSAC and E-JPU: a patch encoder, a teacher generator that
decodes the codes as they are, a student generator that decodes them only after this block,
knowledge distillation between the two and a discriminator on the student's crops. What sets it
apart is how the student's codes are in-painted; railwatch's ``squid`` variant is therefore
:class:`~railwatch.fasteners.model.KDGAN` with this block in place of
:class:`~railwatch.fasteners.model.InpaintingBlock`, SQUID's loss weights and the teacher behind
a stop-gradient (see :data:`railwatch.fasteners.models.VARIANTS`).

Per crop, each patch is one token: its level-4 code squeezed to a quarter of the channels by a
1x1 convolution and flattened (``C/4 x h x w``; 64 x 4 x 4 = 1024 for 64 px patches, SQUID's
``memory_channel`` on DigitAnatomy). Then, as SQUID's section 3.2 and its published
``InpaintBlock`` do:

1. **Memory queue.** Each patch position has its own queue of the last ``slots`` normal tokens
   seen there in training (first in, first out; not learnt). A token reads its position's queue
   by inner products, keeps the ``topk`` largest weights of their softmax and renormalises them
   (SQUID's "Gumbel shrinkage"; a straight-through estimator passes the softmax's gradient), so
   what it reads is a blend of a few normal patches that really occurred there.
2. **In-painting.** A transformer layer: the patch's own token is the query, and the keys and
   values are the memory readings of its eight neighbours in the 3x3 window around it (never its
   own), then a feed-forward layer; each with a residual on the patch's own memory reading, layer
   norm and ReLU, in SQUID's order. So a patch is redrawn from normal patterns of its surroundings.
3. **Position.** The patch's index in binary (``log2(grid^2) + 1`` bits) is appended as constant
   channels, and a 1x1 convolution brings the token back to the code's width.
4. **Masked shortcut.** In training, each code position takes the encoder's code unchanged
   with probability ``shortcut_rate`` (SQUID: 1 - 0.95), which eases early training; at
   inference the student sees in-painted codes only.

Differences from SQUID's code, each deliberate: neighbours outside the crop are hidden from the
attention rather than read as zero tokens (a 2 x 2 grid has three neighbours a patch, and five
zeros would dilute them); the queue writes a batch at its head in one step rather than through a
pointer (the same first-in, first-out content); exactly ``topk`` weights are kept (SQUID's shrink
also drops the ``topk``-th, keeping ``topk - 1``); and the student has no skip connections (KD-GAN's
student has none, and the comparison is of the in-painting), where SQUID passes two through
learnt memories.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from railwatch.nn import ConvBNReLU


def neighbour_table(grid: int) -> tuple[Tensor, Tensor]:
    """Each patch's eight neighbours in the 3x3 window around it on a ``grid x grid`` crop.

    Returns:
        ``(index, outside)``, both ``(grid^2, 8)``: row-major patch indices (``grid^2`` where the
        window leaves the crop) and True where it does. The centre is never among them.
    """
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    index = torch.full((grid * grid, 8), grid * grid, dtype=torch.long)
    for p in range(grid * grid):
        row, col = divmod(p, grid)
        for k, (dy, dx) in enumerate(offsets):
            if 0 <= row + dy < grid and 0 <= col + dx < grid:
                index[p, k] = (row + dy) * grid + col + dx
    return index, index == grid * grid


def binary_positions(count: int) -> Tensor:
    """``(count, bits)`` the binary digits of ``0 .. count-1``, most significant first; ``bits = log2(count) + 1``."""
    bits = int(math.log2(count)) + 1
    powers = 2 ** torch.arange(bits - 1, -1, -1)
    return (torch.arange(count)[:, None] // powers % 2).float()


def keep_top_k(weights: Tensor, k: int) -> Tensor:
    """The ``k`` largest of each row of ``weights`` renormalised to sum to 1, the rest zero; the
    gradient is that of ``weights`` (straight-through), as SQUID's shrinkage passes it."""
    k = min(k, weights.shape[-1])
    floor = weights.topk(k, dim=-1).values[..., -1:]
    hard = weights * (weights >= floor)
    hard = hard / hard.sum(-1, keepdim=True)
    return (hard - weights).detach() + weights


class SquidInpainting(nn.Module):
    """SQUID's in-painting block for the level-4 codes of ``grid x grid`` patches (module docstring).

    Args:
        channels: Width of the codes (encoder level 4).
        grid: Patches per side of the crop (at least 2, so every patch has a neighbour).
        code_side: Side of each patch's code (4 for 64 px patches).
        slots: Length of each position's memory queue (SQUID: 200).
        topk: Memory weights kept per reading (SQUID: 5).
        heads: Attention heads (SQUID: 8).
        shortcut_rate: Probability that a code position skips the block in training (SQUID: 0.05).
    """

    def __init__(
        self,
        channels: int = 256,
        grid: int = 2,
        code_side: int = 4,
        slots: int = 200,
        topk: int = 5,
        heads: int = 8,
        shortcut_rate: float = 0.05,
    ) -> None:
        super().__init__()
        if grid < 2:
            raise ValueError(f"SQUID in-paints a patch from its neighbours: it needs a grid of at least 2 x 2, got {grid}")
        self.grid, self.topk, self.shortcut_rate = grid, topk, shortcut_rate
        width = channels // 4
        self.dim = width * code_side * code_side
        self.squeeze = ConvBNReLU(channels, width, 1)
        bound = 1 / math.sqrt(self.dim)
        # (position, slot, token); written in training, not learnt; saved so a checkpoint scores as trained
        self.register_buffer("queue", torch.empty(grid * grid, slots, self.dim).uniform_(-bound, bound))
        self.attention = nn.MultiheadAttention(self.dim, heads, batch_first=True)
        self.norm_attention, self.norm_feed_forward = nn.LayerNorm(self.dim), nn.LayerNorm(self.dim)
        self.feed_forward = nn.Sequential(nn.Linear(self.dim, self.dim // 4), nn.ReLU(), nn.Linear(self.dim // 4, self.dim))
        index, outside = neighbour_table(grid)
        self.register_buffer("neighbours", index, persistent=False)
        self.register_buffer("outside", outside, persistent=False)
        self.register_buffer("position_code", binary_positions(grid * grid), persistent=False)
        self.expand = ConvBNReLU(width + self.position_code.shape[1], channels, 1)

    def read_queue(self, tokens: Tensor) -> Tensor:
        """``(N, grid^2, dim)`` tokens -> their readings from their positions' queues, same shape."""
        # float32 even under mixed precision: the softmax compares inner products of 1024 terms
        with torch.autocast(tokens.device.type, enabled=False):
            queue = self.queue.float()
            weights = keep_top_k(torch.einsum("npd,psd->nps", tokens.float(), queue).softmax(-1), self.topk)
            return torch.einsum("nps,psd->npd", weights, queue)

    @torch.no_grad()
    def enqueue(self, tokens: Tensor) -> None:
        """Put normal tokens ``(N, grid^2, dim)`` at the head of their positions' queues, in batch order; the oldest drop out."""
        fresh = tokens.detach().transpose(0, 1).to(self.queue.dtype)
        self.queue = torch.cat([fresh, self.queue], dim=1)[:, : self.queue.shape[1]]

    def forward(self, codes: Tensor) -> Tensor:
        """In-painted codes ``(N * grid^2, C, h, w)``, patches row-major per crop, as the encoder gives them."""
        n4, _, h, w = codes.shape
        g2 = self.grid * self.grid
        squeezed = self.squeeze(codes)
        width = squeezed.shape[1]
        if width * h * w != self.dim:
            raise ValueError(f"the SQUID block was built for {self.dim}-value tokens, got codes of {h} x {w}")
        tokens = squeezed.reshape(-1, g2, self.dim)
        readings = self.read_queue(tokens).to(tokens.dtype)
        if self.training:
            self.enqueue(tokens)  # after reading: a batch does not read itself
        n = tokens.shape[0]
        padded = torch.cat([readings, readings.new_zeros(n, 1, self.dim)], dim=1)  # index grid^2: outside, hidden below
        keys = padded[:, self.neighbours].reshape(n * g2, 8, self.dim)
        hidden = self.outside.repeat(n, 1)
        attended = self.attention(tokens.reshape(n * g2, 1, self.dim), keys, keys, key_padding_mask=hidden, need_weights=False)[0]
        x = F.relu(self.norm_attention(attended) + readings.reshape(n * g2, 1, self.dim))
        x = F.relu(self.norm_feed_forward(self.feed_forward(x)) + x)
        x = x.reshape(n4, width, h, w)
        position = self.position_code.to(x.dtype).repeat(n, 1)[:, :, None, None].expand(-1, -1, h, w)
        out = self.expand(torch.cat([x, position], dim=1))
        if self.training and self.shortcut_rate > 0:
            keep = torch.bernoulli(torch.full((n4, 1, h, w), 1.0 - self.shortcut_rate, device=codes.device))
            out = keep * out + (1 - keep) * codes
        return out
