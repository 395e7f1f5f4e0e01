"""The knowledge-distilled GAN of paper 000 as plain torch modules (section 2, Tables 1-3).

A ``128 x 128`` grey crop is cut into ``2 x 2`` patches of ``64 x 64``:

- :class:`PatchEncoder` (Table 1) encodes each patch through four levels, 32-256 channels,
  down to ``4 x 4``;
- the teacher :class:`Generator` (Table 2) decodes the level-4 codes, merges the patches back
  into one map after level 3 and upsamples to the full crop; with MSAC (:class:`MSAC`, section
  2.2) it also receives the encoder's levels 1-3, fused across scales and weighted by CASE;
- the student :class:`Generator` has the same structure but sees the codes only through the
  :class:`InpaintingBlock`, which rewrites them from a memory of normal patterns, so an
  anomalous crop comes out as a normal-looking one;
- :class:`Discriminator` (Table 3) judges whole crops; with E-JPU (:class:`EJPU`, section 2.3)
  its levels 2-4 are fused through parallel dilated convolutions before the last level.

:class:`KDGAN` holds the five parts; training is in :mod:`railwatch.fasteners.lightning`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from railwatch.config import FastenerModelConfig
from railwatch.errors import InputError
from railwatch.fasteners.squid import SquidInpainting
from railwatch.nn import ConvBNReLU, CoordinateChannelAttention


def split_patches(x: Tensor, grid: int) -> Tensor:
    """``(N, C, H, W)`` -> ``(N * grid^2, C, H/grid, W/grid)``, patches in row-major order per image."""
    n, c, h, w = x.shape
    ph, pw = h // grid, w // grid
    return x.reshape(n, c, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5).reshape(n * grid * grid, c, ph, pw)


def merge_patches(patches: Tensor, grid: int) -> Tensor:
    """Inverse of :func:`split_patches`: ``(N * grid^2, C, h, w)`` -> ``(N, C, grid h, grid w)``."""
    n4, c, ph, pw = patches.shape
    n = n4 // (grid * grid)
    return patches.reshape(n, grid, grid, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, grid * ph, grid * pw)


def check_crops(x: Tensor, size: int) -> None:
    """Raise a one-line :class:`InputError` unless ``x`` is a batch of ``size x size`` single-channel crops."""
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != size or x.shape[3] != size:
        raise InputError(f"expected crops of shape (N, 1, {size}, {size}), got {tuple(x.shape)}; square-resize crops first")


class PatchEncoder(nn.Module):
    """Table 1: per patch, four levels of one stride-2 3x3 ``ConvBNReLU`` each (64 -> 4 px).

    The paper gives each level's channels and size, and "ordinary convolution, batch
    normalisation and ReLU layers" (section 2.5.2); one convolution per level is the least
    that gives Table 1.
    """

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        widths = [1, *channels]
        self.levels = nn.ModuleList(
            ConvBNReLU(c_in, c_out, 3, 2) for c_in, c_out in zip(widths, widths[1:])
        )

    def forward(self, patches: Tensor) -> list[Tensor]:
        """The features of levels 1-4, each ``(N * grid^2, C_l, h_l, w_l)``."""
        features = []
        for level in self.levels:
            patches = level(patches)
            features.append(patches)
        return features


class UpBlock(nn.Sequential):
    """Nearest-neighbour x2 upsampling and a 3x3 ``ConvBNReLU``: one level of Table 2."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), ConvBNReLU(c_in, c_out))


class Generator(nn.Module):
    """Table 2: level-4 codes per patch -> level 3 per patch -> merged -> levels 2, 1 -> the crop.

    ``skips`` (from :class:`MSAC`) are added after levels 3, 2 and 1; the features after each
    of those levels are what knowledge distillation compares (Eq. 13). The output is a grey
    image in ``[0, 1]``.
    """

    def __init__(self, channels: Sequence[int] = (32, 64, 128, 256), grid: int = 2) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.grid = grid
        self.level3 = UpBlock(c4, c3)
        self.level2 = UpBlock(c3, c2)
        self.level1 = UpBlock(c2, c1)
        self.to_image = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c1, 1, 3, padding=1), nn.Sigmoid())

    def forward(self, codes: Tensor, skips: Sequence[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """Returns the reconstructed crops and the features of levels 3, 2, 1."""
        f3 = merge_patches(self.level3(codes), self.grid)
        if skips is not None:
            f3 = f3 + skips[2]
        f2 = self.level2(f3)
        if skips is not None:
            f2 = f2 + skips[1]
        f1 = self.level1(f2)
        if skips is not None:
            f1 = f1 + skips[0]
        return self.to_image(f1), [f3, f2, f1]


class MSAC(nn.Module):
    """Multi-scale attention-coupling feature enhancement (section 2.2, Fig. 3).

    Encoder levels 1-3 (merged back to whole-crop maps) are widened by 1x1 convolutions to
    ``widths`` channels (128, 256, 512) and weighted by CASE (Eq. 1-9). For each teacher level, all three are
    brought to its resolution (average pooling down, bilinear up), adjusted to its channels by
    1x1 convolutions and summed; the sums are the teacher's skip connections. Channels are
    adjusted before upsampling and after pooling, whichever side is smaller, to keep it cheap.
    """

    def __init__(self, encoder_channels: Sequence[int], widths: Sequence[int] = (128, 256, 512), case: bool = True) -> None:
        super().__init__()
        self.convs = nn.ModuleList(ConvBNReLU(c, w, 1) for c, w in zip(encoder_channels, widths))
        self.attention = nn.ModuleList(CoordinateChannelAttention(w) if case else nn.Identity() for w in widths)
        self.adjust = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(w, target, 1) for w in widths) for target in encoder_channels
        )  # adjust[target level][source level]

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Encoder levels 1-3 as whole-crop maps -> skip connections for teacher levels 1-3."""
        refined = [attend(conv(f)) for f, conv, attend in zip(features, self.convs, self.attention)]
        skips = []
        for target, adjusters in enumerate(self.adjust):
            total = None
            for source, (r, adjust) in enumerate(zip(refined, adjusters)):
                scale = 2 ** abs(source - target)  # level l is 2^l times smaller than the crop
                if source < target:
                    term = adjust(F.avg_pool2d(r, scale))
                elif source > target:
                    term = F.interpolate(adjust(r), scale_factor=scale, mode="bilinear", align_corners=False)
                else:
                    term = adjust(r)
                total = term if total is None else total + term
            skips.append(total)
        return skips


def hidden_neighbours(grid: int, tokens_per_patch: int, radius: int) -> Tensor:
    """``(L, L)`` bool, ``L = grid^2 * tokens_per_patch``: True where two tokens lie within ``radius``
    of each other (Chebyshev distance) on the crop's token grid; tokens are ordered patch by patch
    (row-major), then position by position within the patch (row-major), as the block lays them out."""
    side = math.isqrt(tokens_per_patch)
    if side * side != tokens_per_patch:
        raise ValueError(f"tokens_per_patch must be a square number, got {tokens_per_patch}")
    patch, position = torch.arange(grid * grid).repeat_interleave(tokens_per_patch), torch.arange(tokens_per_patch).repeat(grid * grid)
    row = patch // grid * side + position // side
    col = patch % grid * side + position % side
    return ((row[:, None] - row[None, :]).abs() <= radius) & ((col[:, None] - col[None, :]).abs() <= radius)


class InpaintingBlock(nn.Module):
    """The student's in-painting block between encoder and generator (section 2.1, after SQUID).

    Each level-4 feature vector (a token: one of the ``h x w`` positions of one patch) is first
    replaced by its reading from a learnt memory of normal patterns: a softmax over its cosine
    similarities to the ``slots`` memory rows at ``temperature`` (MemAE's addressing; a dot
    product at the features' scale would spread the weights almost evenly over all rows). Then
    every token is in-painted: a learnt query at its position attends to the memory readings of
    the *other* tokens of the crop, followed by a feed-forward layer, so each token is drawn from
    its surroundings as SQUID's in-painting draws a masked patch from its neighbours. An
    attention mask hides the token itself and, with ``radius`` > 0, every token within
    ``radius`` positions of it on the crop's token grid: a level-4 feature sees 31 px of its
    patch, so its neighbours' codes carry much of the 16 px it stands for, and a part that is
    missing would be copied back as missing. Learnt position embeddings tell the tokens apart,
    so parts that are out of place are not in-painted as they came. No shortcut carries the
    input codes past the memory, so what the student draws is built from normal patterns only.

    Args:
        channels: Width of the codes (encoder level 4).
        slots: Memory rows.
        grid: Patches per side of the crop.
        tokens_per_patch: Positions per patch code (``h * w``; 16 for 64 px patches).
        heads: Attention heads.
        temperature: Softness of the memory addressing.
        radius: Chebyshev distance on the crop's token grid within which tokens are hidden from
            each other's in-painting (0: a token is hidden from itself only).
    """

    def __init__(
        self,
        channels: int = 256,
        slots: int = 256,
        grid: int = 2,
        tokens_per_patch: int = 16,
        heads: int = 4,
        temperature: float = 0.1,
        radius: int = 0,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.memory = nn.Parameter(torch.randn(slots, channels))
        self.temperature = temperature
        tokens = grid * grid * tokens_per_patch
        self.position = nn.Parameter(torch.randn(1, tokens, channels) * 0.02)
        self.query = nn.Parameter(torch.zeros(1, 1, channels))
        self.norm_context, self.norm_query, self.norm_ff = (nn.LayerNorm(channels) for _ in range(3))
        self.attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.feed_forward = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))
        # True = may not attend: a token never sees its own reading nor those within `radius`
        self.register_buffer("hidden", hidden_neighbours(grid, tokens_per_patch, radius), persistent=False)

    def read_memory(self, tokens: Tensor) -> Tensor:
        """``(N, L, C)`` tokens -> their soft readings from the memory, same shape."""
        similarity = F.normalize(tokens, dim=-1) @ F.normalize(self.memory, dim=-1).t()
        return torch.softmax(similarity / self.temperature, dim=-1) @ self.memory

    def forward(self, codes: Tensor) -> Tensor:
        n4, c, h, w = codes.shape
        g2 = self.grid * self.grid
        if g2 * h * w != self.position.shape[1]:
            raise ValueError(f"the in-painting block was built for {self.position.shape[1]} tokens, got {g2 * h * w}")
        tokens = codes.reshape(-1, g2, c, h * w).permute(0, 1, 3, 2).reshape(-1, g2 * h * w, c)
        context = self.norm_context(self.read_memory(tokens) + self.position)
        query = (self.query + self.position).expand(len(tokens), -1, -1)
        filled = query + self.attention(self.norm_query(query), context, context, attn_mask=self.hidden, need_weights=False)[0]
        filled = filled + self.feed_forward(self.norm_ff(filled))
        return filled.reshape(-1, g2, h * w, c).permute(0, 1, 3, 2).reshape(n4, c, h, w)


class EJPU(nn.Module):
    """Enhanced joint pyramid upsampling (section 2.3, Fig. 5; after FastFCN's JPU).

    Discriminator levels 2-4 are convolved to ``width`` channels and upsampled to level 2's
    size; their concatenation ``y_a`` is squeezed by a 1x1 convolution and fed to parallel 3x3
    convolutions with dilations 1-4; the concatenated branches ``y_b`` are fused by a 1x1
    convolution into ``y_c``, which a stride-``stride`` convolution brings to level 4's size to
    be added there. JPU's branches are depth-wise separable; on CPUs, the backward pass of
    dilated depth-wise convolutions is several times slower than that of a squeezed dense
    one, so the branches share a 1x1 squeeze instead.
    """

    def __init__(self, in_channels: Sequence[int], width: int, dilations: Sequence[int], out_channels: int, stride: int = 4) -> None:
        super().__init__()
        self.reduce = nn.ModuleList(ConvBNReLU(c, width) for c in in_channels)
        self.squeeze = ConvBNReLU(width * len(in_channels), width, 1)
        branch = max(1, width // 2)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(width, branch, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(branch), nn.ReLU(inplace=True))
            for d in dilations
        )
        self.fuse = ConvBNReLU(branch * len(dilations), out_channels, 1)  # y_c: the Grad-CAM layer
        self.to_level = nn.Conv2d(out_channels, out_channels, stride, stride=stride)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        size = features[0].shape[-2:]
        y_a = [reduce(f) for f, reduce in zip(features, self.reduce)]
        y_a = torch.cat([y_a[0]] + [F.interpolate(f, size=size, mode="bilinear", align_corners=False) for f in y_a[1:]], dim=1)
        squeezed = self.squeeze(y_a)
        y_b = torch.cat([branch(squeezed) for branch in self.branches], dim=1)
        return self.to_level(self.fuse(y_b))


class Discriminator(nn.Module):
    """Table 3: five stride-2 levels (16-128 channels, 128 -> 4 px) and a 4x4 convolution to one logit.

    The logit says "real crop"; with E-JPU, levels 2-4 are fused and added to level 4's output.
    """

    def __init__(
        self,
        channels: Sequence[int] = (16, 64, 128, 128, 128),
        ejpu: bool = True,
        ejpu_channels: int = 64,
        dilations: Sequence[int] = (1, 2, 3, 4),
    ) -> None:
        super().__init__()
        widths = [1, *channels]
        self.levels = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i == 0),
                nn.BatchNorm2d(c_out) if i else nn.Identity(),
                nn.LeakyReLU(0.2, inplace=True),
            )
            for i, (c_in, c_out) in enumerate(zip(widths, widths[1:]))
        )
        self.ejpu = EJPU(channels[1:4], ejpu_channels, dilations, channels[3]) if ejpu else None
        self.classifier = nn.Conv2d(channels[4], 1, 4)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 1, 128, 128)`` -> ``(N,)`` logits of "real"."""
        f1 = self.levels[0](x)
        f2 = self.levels[1](f1)
        f3 = self.levels[2](f2)
        f4 = self.levels[3](f3)
        if self.ejpu is not None:
            f4 = f4 + self.ejpu([f2, f3, f4])
        return self.classifier(self.levels[4](f4)).flatten()

    @property
    def cam_layer(self) -> nn.Module:
        """The finest fused layer, where Grad-CAM reads where the crop looks anomalous."""
        return self.ejpu.fuse if self.ejpu is not None else self.levels[2]


@dataclass
class KDGANOutput:
    """One forward pass: both reconstructions and the generator features distillation compares."""

    teacher: Tensor
    student: Tensor
    teacher_features: list[Tensor]
    student_features: list[Tensor]


class KDGAN(nn.Module):
    """Encoder, teacher and student generators, in-painting block and discriminator (section 2.1, Fig. 2).

    ``MSAC``, ``CASE`` and ``E-JPU`` follow the switches of :class:`FastenerModelConfig`, so the
    four rows of Table 7 are four settings of the same class; with neither module and SQUID's
    in-painting block (``inpainting: squid``) it is the SQUID baseline of Tables 5-6.
    """

    def __init__(self, cfg: FastenerModelConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or FastenerModelConfig()
        channels = cfg.encoder_channels
        self.encoder = PatchEncoder(channels)
        self.msac = MSAC(channels[:3], cfg.msac_channels, cfg.case) if cfg.msac else None
        self.teacher = Generator(channels, cfg.grid)
        code_side = cfg.image_size // cfg.grid // 2 ** len(channels)  # four stride-2 levels: 64 px -> 4
        if cfg.inpainting == "squid":
            self.inpaint = SquidInpainting(
                channels[3], cfg.grid, code_side, cfg.queue_slots, cfg.queue_topk, shortcut_rate=cfg.shortcut_rate
            )
        else:
            self.inpaint = InpaintingBlock(channels[3], cfg.memory_slots, cfg.grid, code_side * code_side, radius=cfg.inpaint_radius)
        self.student = Generator(channels, cfg.grid)
        self.discriminator = Discriminator(cfg.discriminator_channels, cfg.ejpu, cfg.ejpu_channels, cfg.ejpu_dilations)

    def forward(self, x: Tensor) -> KDGANOutput:
        """Both generators' reconstructions of ``x`` ``(N, 1, S, S)`` in ``[0, 1]`` and their features."""
        check_crops(x, self.cfg.image_size)
        features = self.encoder(split_patches(x, self.cfg.grid))
        seen = features if self.cfg.teacher_trains_encoder else [f.detach() for f in features]
        skips = None
        if self.msac is not None:
            skips = self.msac([merge_patches(f, self.cfg.grid) for f in seen[:3]])
        teacher, teacher_features = self.teacher(seen[3], skips)
        student, student_features = self.student(self.inpaint(features[3]))
        return KDGANOutput(teacher, student, teacher_features, student_features)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The inference path ``G_s(E(I))`` of Eq. 10 (the teacher is not needed)."""
        check_crops(x, self.cfg.image_size)
        codes = self.encoder(split_patches(x, self.cfg.grid))[3]
        return self.student(self.inpaint(codes))[0]

    def generator_parameters(self) -> list[nn.Parameter]:
        """Everything the generator loss (Eq. 16) trains: all but the discriminator."""
        return [p for name, p in self.named_parameters() if not name.startswith("discriminator.")]
