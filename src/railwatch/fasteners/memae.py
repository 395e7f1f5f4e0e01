"""MemAE (Gong et al., ICCV 2019): the memory-augmented autoencoder, a baseline of paper 000 (Tables 5-6).

The encoder's code at each position of its map is a query that reads a memory of ``N`` learnt
slots; the decoder sees only what was read. Addressing (MemAE's Eq. 4) weights every slot by a
softmax of its similarity to the query; hard shrinkage (Eq. 7) then zeroes the weights
under a threshold ``lambda`` and the rest are renormalised, so each position is rebuilt from a few
normal patterns. A crop with a part no normal crop has comes back as the nearest normal pattern,
and its reconstruction error (the anomaly score) is large. Training minimises the squared
reconstruction error plus ``alpha`` times the entropy of the shrunk weights (``alpha``
0.0002), which sparsens the addressing further.

Sizes: MemAE's MNIST network takes 28 px digits through three stride-2 3 x 3 convolutions (16, 32
and 64 channels, each followed by batch norm and ReLU) to a 4 x 4 map, and mirrors them with
transposed convolutions. For 128 px crops railwatch keeps going to the same 4 x 4 map with five
(16 to 256 channels), so that each query again stands for about a quarter of the crop's side.
The memory holds 100 slots (MemAE's choice for MNIST) and ``lambda`` is ``1 / N``, the low end of
the paper's ``[1/N, 3/N]``. The decoder ends in a sigmoid, as crops here are grey values in
``[0, 1]``.

The similarity is the inner product of query and slot, as in MemAE's published code, not the
cosine of the paper's Eq. 5: a softmax of cosines, which lie in ``[-1, 1]``, can never put more
than a few per cent of the weight on one of 100 slots, and a model trained that way on the MNIST
protocol read 42 slots per query with at most 0.03 of the weight on any, so every position got
nearly the same average pattern. The inner product lets the encoder sharpen its addressing by the
length of its code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from railwatch.fasteners.model import check_crops

MEMAE_CHANNELS: tuple[int, ...] = (16, 32, 64, 128, 256)
"""Encoder widths for 128 px crops: five stride-2 convolutions down to 4 x 4."""
MEMAE_SLOTS = 100
"""Memory slots (MemAE's setting for MNIST)."""
ENTROPY_WEIGHT = 0.0002
"""``alpha`` of MemAE's training objective: the weight of the addressing entropy in the loss."""


def hard_shrink_weights(weights: Tensor, threshold: float, eps: float = 1e-12) -> Tensor:
    """MemAE's Eq. 7 and the renormalisation after it: ``max(w - lambda, 0) w / |w - lambda|``, scaled to sum to 1.

    Written in this continuous form (rather than ``w * (w > lambda)``) so that the weights keep a
    gradient; a row whose weights all fall under the threshold stays all zero.
    """
    shifted = weights - threshold
    shrunk = F.relu(shifted) * weights / (shifted.abs() + eps)
    return F.normalize(shrunk, p=1, dim=-1)


def addressing_entropy(weights: Tensor, eps: float = 1e-12) -> Tensor:
    """MemAE's entropy loss: ``sum_i -w_i log w_i`` per query, averaged over every query of the batch."""
    return -(weights * (weights + eps).log()).sum(-1).mean()


class Memory(nn.Module):
    """``slots`` learnt patterns of ``dim`` channels, read by every position of a feature map.

    Args:
        slots: ``N``, the number of patterns.
        dim: Channels of the encoder's code (one query per position).
        shrink: Hard-shrinkage threshold ``lambda``; ``None`` is ``1 / N``, 0 turns it off.
    """

    def __init__(self, slots: int, dim: int, shrink: float | None = None) -> None:
        super().__init__()
        self.slots = nn.Parameter(torch.empty(slots, dim).uniform_(-1 / math.sqrt(dim), 1 / math.sqrt(dim)))
        self.shrink = 1.0 / slots if shrink is None else float(shrink)

    def forward(self, code: Tensor) -> tuple[Tensor, Tensor]:
        """``(reading (N, C, H, W), weights (N, H, W, slots))`` for a code ``(N, C, H, W)``."""
        n, c, h, w = code.shape
        # float32 even under mixed precision: the shrinkage compares weights near 1/N with 1/N
        with torch.autocast(code.device.type, enabled=False):
            queries = code.float().permute(0, 2, 3, 1).reshape(-1, c)
            similarity = queries @ self.slots.float().T  # inner products (see the module's note on Eq. 5)
            weights = similarity.softmax(dim=1)  # Eq. 4
            if self.shrink > 0:
                weights = hard_shrink_weights(weights, self.shrink)
            reading = weights @ self.slots.float()  # Eq. 3: z_hat = w M
        return reading.reshape(n, h, w, c).permute(0, 3, 1, 2).to(code.dtype), weights.reshape(n, h, w, -1)


@dataclass
class MemAEOutput:
    """One pass: the reconstruction and the shrunk addressing weights of every query."""

    reconstruction: Tensor
    weights: Tensor


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class MemAE(nn.Module):
    """Encoder, memory and decoder of MemAE for square grey crops.

    Args:
        image_size: Side of the crop; it must halve ``len(channels)`` times without remainder.
        channels: Encoder widths, one stride-2 convolution each; the decoder mirrors them.
        slots: Memory slots ``N``.
        shrink: Hard-shrinkage threshold (``None``: ``1 / N``).
    """

    def __init__(
        self,
        image_size: int = 128,
        channels: tuple[int, ...] = MEMAE_CHANNELS,
        slots: int = MEMAE_SLOTS,
        shrink: float | None = None,
    ) -> None:
        super().__init__()
        if image_size % 2 ** len(channels):
            raise ValueError(
                f"image_size {image_size} must be divisible by {2 ** len(channels)} for {len(channels)} stride-2 levels"
            )
        self.image_size = image_size
        self.encoder = nn.Sequential(*(_down(a, b) for a, b in zip((1, *channels), channels)))
        self.memory = Memory(slots, channels[-1], shrink)
        self.decoder = nn.Sequential(
            *(_up(a, b) for a, b in zip(channels[::-1], channels[-2::-1])),
            nn.ConvTranspose2d(channels[0], 1, 3, 2, 1, output_padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> MemAEOutput:
        check_crops(x, self.image_size)
        reading, weights = self.memory(self.encoder(x))
        return MemAEOutput(self.decoder(reading), weights)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The crops rebuilt from the memory's patterns, ``(N, 1, S, S)`` in ``[0, 1]``."""
        return self(x).reconstruction


def memae_loss(image: Tensor, out: MemAEOutput, entropy_weight: float = ENTROPY_WEIGHT) -> dict[str, Tensor]:
    """MemAE's training objective: squared reconstruction error plus ``alpha`` times the addressing entropy, with each term."""
    reconstruction = F.mse_loss(out.reconstruction.float(), image.float())
    entropy = addressing_entropy(out.weights)
    return {"loss_g": reconstruction + entropy_weight * entropy, "reconstruction": reconstruction, "entropy": entropy}
