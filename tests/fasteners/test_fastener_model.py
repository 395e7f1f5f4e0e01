"""KD-GAN networks: the shapes of Tables 1-3, the ablation switches of Table 7, CASE (Eq. 1-9) and the losses (Eq. 11-15)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from railwatch.config import FastenerLossConfig, FastenerModelConfig
from railwatch.errors import InputError
from railwatch.fasteners.ganomaly import GANomaly
from railwatch.fasteners.loss import adversarial_loss, discriminator_loss, distillation_loss, generator_loss, reconstruction_loss
from railwatch.fasteners.model import KDGAN, InpaintingBlock, hidden_neighbours, merge_patches, split_patches
from railwatch.nn import CoordinateChannelAttention


@pytest.fixture(scope="module")
def kdgan() -> KDGAN:
    torch.manual_seed(0)
    return KDGAN().eval()


def test_patches_round_trip_in_row_major_order() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    patches = split_patches(x, 2)
    assert patches.shape == (8, 3, 4, 4)
    assert torch.equal(patches[1], x[0, :, :4, 4:])  # image 0, top-right
    assert torch.equal(patches[6], x[1, :, 4:, :4])  # image 1, bottom-left
    assert torch.equal(merge_patches(patches, 2), x)


def test_encoder_levels_follow_table_1(kdgan: KDGAN) -> None:
    x = torch.rand(3, 1, 128, 128)
    levels = kdgan.encoder(split_patches(x, 2))
    assert [tuple(f.shape) for f in levels] == [(12, 32, 32, 32), (12, 64, 16, 16), (12, 128, 8, 8), (12, 256, 4, 4)]


def test_generators_follow_table_2(kdgan: KDGAN) -> None:
    with torch.no_grad():
        out = kdgan(torch.rand(3, 1, 128, 128))
    for image, features in ((out.teacher, out.teacher_features), (out.student, out.student_features)):
        assert image.shape == (3, 1, 128, 128)
        assert 0 <= image.min() and image.max() <= 1
        assert [tuple(f.shape) for f in features] == [(3, 128, 16, 16), (3, 64, 32, 32), (3, 32, 64, 64)]


def test_discriminator_follows_table_3(kdgan: KDGAN) -> None:
    x = torch.rand(2, 1, 128, 128)
    sizes = []
    for level in kdgan.discriminator.levels:
        x = level(x)
        sizes.append(tuple(x.shape[1:]))
    assert sizes == [(16, 64, 64), (64, 32, 32), (128, 16, 16), (128, 8, 8), (128, 4, 4)]
    assert kdgan.discriminator.classifier(x).shape == (2, 1, 1, 1)
    assert kdgan.discriminator(torch.rand(2, 1, 128, 128)).shape == (2,)


def test_ablation_switches_remove_their_modules() -> None:
    counts = {}
    for msac, case, ejpu in ((True, True, True), (False, True, True), (True, False, True), (True, True, False), (False, False, False)):
        net = KDGAN(FastenerModelConfig(msac=msac, case=case, ejpu=ejpu))
        assert (net.msac is not None) == msac
        assert (net.discriminator.ejpu is not None) == ejpu
        if msac:
            assert all(isinstance(a, CoordinateChannelAttention) == case for a in net.msac.attention)
        counts[(msac, case, ejpu)] = sum(p.numel() for p in net.parameters())
        with torch.no_grad():
            out = net.eval()(torch.rand(1, 1, 128, 128))
        assert out.student.shape == (1, 1, 128, 128)
    full = counts[(True, True, True)]
    assert counts[(False, True, True)] < full and counts[(True, False, True)] < full and counts[(True, True, False)] < full
    assert counts[(False, False, False)] == min(counts.values())


@pytest.mark.parametrize("teacher_trains_encoder", [True, False])
def test_teacher_reaches_the_encoder_only_when_told(teacher_trains_encoder: bool) -> None:
    torch.manual_seed(0)
    net = KDGAN(FastenerModelConfig(teacher_trains_encoder=teacher_trains_encoder))
    out = net(torch.rand(2, 1, 128, 128))
    reconstruction_loss(torch.rand(2, 1, 128, 128), out.teacher).backward()
    encoder_grad = sum(p.grad.abs().sum() for p in net.encoder.parameters() if p.grad is not None)
    assert (encoder_grad > 0) == teacher_trains_encoder
    assert all(p.grad is not None for p in net.msac.parameters())  # MSAC learns either way
    assert all(p.grad is None for p in net.inpaint.parameters())


def test_msac_changes_only_the_teacher() -> None:
    torch.manual_seed(1)
    with_msac = KDGAN(FastenerModelConfig(msac=True)).eval()
    torch.manual_seed(1)
    without = KDGAN(FastenerModelConfig(msac=False)).eval()
    without.load_state_dict({k: v for k, v in with_msac.state_dict().items() if not k.startswith("msac.")})
    x = torch.rand(2, 1, 128, 128)
    with torch.no_grad():
        a, b = with_msac(x), without(x)
    assert torch.equal(a.student, b.student)
    assert not torch.allclose(a.teacher, b.teacher)


def test_non_square_or_colour_crops_are_refused(kdgan: KDGAN) -> None:
    with pytest.raises(InputError, match=r"\(N, 1, 128, 128\)"):
        kdgan(torch.rand(1, 1, 128, 96))
    with pytest.raises(InputError, match="square-resize"):
        kdgan.reconstruct(torch.rand(1, 3, 128, 128))
    with pytest.raises(InputError):
        GANomaly()(torch.rand(1, 1, 64, 64))


def test_case_is_coordinate_weights_times_channel_weights() -> None:
    """With constant gates, Eq. 6 and 9 give x * sigmoid(b)^2 * sigmoid(c)."""
    torch.manual_seed(0)
    case = CoordinateChannelAttention(16).eval()
    for conv, bias in ((case.to_row_weights, 0.3), (case.to_col_weights, -0.7)):
        nn.init.zeros_(conv.weight)
        nn.init.constant_(conv.bias, bias)
    last = case.channel_gate.gate[3]
    nn.init.zeros_(last.weight)
    nn.init.constant_(last.bias, 1.1)
    x = torch.randn(2, 16, 6, 9)  # H != W: both directions kept apart
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    expected = x * sig(0.3) * sig(-0.7) * sig(1.1)
    assert torch.allclose(case(x), expected, atol=1e-6)


def test_case_weights_depend_on_row_and_column() -> None:
    torch.manual_seed(0)
    case = CoordinateChannelAttention(8).eval()
    x = torch.ones(1, 8, 5, 7)
    x[..., 2, :] = 4.0  # one bright row
    y = case(x) / x
    assert not torch.allclose(y[..., 0, :], y[..., 2, :])  # rows weighted differently


def test_inpainting_writes_from_memory_only() -> None:
    """With every memory row equal, whatever comes in, the same comes out."""
    block = InpaintingBlock(channels=32, slots=8, grid=2, tokens_per_patch=4).eval()
    with torch.no_grad():
        block.memory.copy_(torch.randn(1, 32).expand(8, 32))
        a = block(torch.randn(4, 32, 2, 2))
        b = block(torch.randn(4, 32, 2, 2) * 10)
    assert a.shape == (4, 32, 2, 2)
    assert torch.allclose(a, b, atol=1e-5)


def test_inpainting_draws_each_token_from_the_others() -> None:
    """Changing one position of one patch changes every other token's output but not its own."""
    torch.manual_seed(0)
    block = InpaintingBlock(channels=32, slots=8, grid=2, tokens_per_patch=4).eval()
    codes = torch.randn(4, 32, 2, 2)  # one crop: 2 x 2 patches of 2 x 2 positions
    changed = codes.clone()
    changed[1, :, 0, 1] = torch.randn(32) * 5  # patch 1, position (0, 1)
    with torch.no_grad():
        a, b = block(codes), block(changed)
    assert torch.allclose(a[1, :, 0, 1], b[1, :, 0, 1], atol=1e-5)  # in-painted without itself
    moved = (a - b).abs().amax(dim=1)  # (patch, y, x)
    moved[1, 0, 1] = 1.0
    assert (moved > 1e-4).all()  # every other token read it
    with pytest.raises(ValueError, match="built for 16 tokens"):
        block(torch.randn(4, 32, 3, 3))


def test_inpainting_hides_the_neighbours_within_its_radius() -> None:
    """With radius 1 a token is drawn only from tokens two or more positions away on the crop's
    grid, across patch borders too; the mask is symmetric and never hides a whole row."""
    torch.manual_seed(0)
    block = InpaintingBlock(channels=32, slots=8, grid=2, tokens_per_patch=9, radius=1).eval()
    codes = torch.randn(4, 32, 3, 3)  # one crop: 2 x 2 patches of 3 x 3 positions, a 6 x 6 token grid
    changed = codes.clone()
    changed[0, :, 2, 2] = torch.randn(32) * 5  # crop row 2, column 2: patch 0's bottom-right token
    with torch.no_grad():
        a, b = block(codes), block(changed)
    moved = (a - b).abs().amax(dim=1)  # (patch, y, x)
    crop = torch.zeros(6, 6)
    for p in range(4):
        crop[p // 2 * 3 : p // 2 * 3 + 3, p % 2 * 3 : p % 2 * 3 + 3] = moved[p]
    near = torch.zeros(6, 6, dtype=torch.bool)
    near[1:4, 1:4] = True  # itself and its eight neighbours, three of them in the other patches
    assert (crop[near] < 1e-5).all()
    assert (crop[~near] > 1e-4).all()
    mask = hidden_neighbours(2, 9, 1)
    assert torch.equal(mask, mask.T) and mask.sum(1).max() == 9 and not mask.all(1).any()
    assert torch.equal(hidden_neighbours(2, 4, 0), torch.eye(16, dtype=torch.bool))
    with pytest.raises(ValueError, match="inpaint_radius"):
        FastenerModelConfig(image_size=64, inpaint_radius=2)  # a 4 x 4 grid: a 5 x 5 window hides all


def test_losses_on_hand_made_tensors() -> None:
    zeros, ones = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)
    assert reconstruction_loss(zeros, ones) == pytest.approx(1.0)
    teacher = [torch.zeros(1, 2, 2, 2, requires_grad=True), torch.zeros(1, 3, 1, 1, requires_grad=True)]
    student = [torch.full((1, 2, 2, 2), 2.0, requires_grad=True), torch.full((1, 3, 1, 1), 1.0, requires_grad=True)]
    dist = distillation_loss(teacher, student)
    assert dist.item() == pytest.approx(4.0 + 1.0)  # Eq. 13: sum over levels
    dist.backward()
    assert teacher[0].grad is None and student[0].grad is not None  # the teacher is the target
    assert adversarial_loss(torch.zeros(4)).item() == pytest.approx(math.log(2))
    assert adversarial_loss(torch.full((4,), 20.0)).item() < 1e-6  # D fooled: no generator loss
    assert discriminator_loss(torch.full((3,), 20.0), torch.full((3,), -20.0)).item() < 1e-6
    assert discriminator_loss(torch.zeros(3), torch.zeros(3)).item() == pytest.approx(2 * math.log(2))


def test_generator_loss_weights_its_terms() -> None:
    x = torch.zeros(1, 1, 4, 4)
    weights = FastenerLossConfig(teacher=2.0, student=3.0, distill=0.0, adversarial=0.5)
    total = generator_loss(x, torch.ones_like(x), torch.ones_like(x), [x], [x], torch.zeros(1), weights)
    assert total.total.item() == pytest.approx(2.0 + 3.0 + 0.5 * math.log(2))
