"""SQUID's in-painting block and the ``squid`` baseline: neighbours, memory queue, shortcut, a tiny run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from railwatch.config import FastenerModelConfig, FastenerTrainConfig
from railwatch.fasteners.explain import gradcam
from railwatch.fasteners.infer import FastenerDetector
from railwatch.fasteners.model import KDGAN
from railwatch.fasteners.models import variant_config
from railwatch.fasteners.scoring import detection_scores
from railwatch.fasteners.squid import SquidInpainting, binary_positions, keep_top_k, neighbour_table
from railwatch.fasteners.train import fit_fasteners
from tests.fasteners.crops import blob_crops


def block(grid: int = 2, **kwargs) -> SquidInpainting:
    torch.manual_seed(0)
    return SquidInpainting(channels=32, grid=grid, code_side=2, slots=kwargs.pop("slots", 12), heads=4, **kwargs)


def test_each_patch_has_the_neighbours_of_its_3x3_window() -> None:
    index, outside = neighbour_table(3)
    assert sorted(index[4].tolist()) == [0, 1, 2, 3, 5, 6, 7, 8]  # the centre: all eight, never itself
    assert sorted(index[0][~outside[0]].tolist()) == [1, 3, 4]  # a corner: three
    assert sorted(index[1][~outside[1]].tolist()) == [0, 2, 3, 4, 5]  # an edge: five
    assert (index[outside] == 9).all()
    index, outside = neighbour_table(2)
    for p in range(4):
        assert sorted(index[p][~outside[p]].tolist()) == sorted(set(range(4)) - {p})


def test_positions_are_written_in_binary() -> None:
    assert binary_positions(4).tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 1]]
    assert binary_positions(9).shape == (9, 4)


def test_top_k_keeps_k_weights_summing_to_one_and_passes_the_gradient() -> None:
    logits = torch.randn(3, 10, requires_grad=True)
    weights = logits.softmax(-1)
    kept = keep_top_k(weights, 4)
    assert ((kept > 0).sum(-1) == 4).all()
    assert torch.allclose(kept.sum(-1), torch.ones(3))
    assert torch.equal(kept > 0, weights >= weights.topk(4, -1).values[:, -1:])
    (kept * torch.arange(10.0)).sum().backward()
    assert logits.grad.abs().sum() > 0


def test_training_puts_each_batch_at_the_head_of_its_positions_queue() -> None:
    squid = block(shortcut_rate=0.0).train()
    before = squid.queue.clone()
    codes = torch.randn(2 * 4, 32, 2, 2)  # two crops of 2 x 2 patches
    squid(codes)
    tokens = squid.squeeze(codes).reshape(2, 4, -1).detach()  # what the block queued (BN in training mode: same batch)
    assert torch.allclose(squid.queue[:, :2], tokens.transpose(0, 1), atol=1e-6)
    assert torch.equal(squid.queue[:, 2:], before[:, :-2])  # the rest moved back, the two oldest dropped
    squid.eval()
    queued = squid.queue.clone()
    squid(codes)
    assert torch.equal(squid.queue, queued)  # scoring never writes


def test_a_queue_of_one_pattern_in_paints_every_crop_alike() -> None:
    """Every reading and every value the attention mixes comes from the queues, so with one
    pattern in all of them whatever comes in, the same comes out: the input only steers the weights."""
    squid = block().eval()
    with torch.no_grad():
        squid.queue.copy_(torch.randn(1, 1, squid.dim).expand_as(squid.queue))
        a = squid(torch.randn(4, 32, 2, 2))
        b = squid(torch.randn(4, 32, 2, 2) * 10)
    assert a.shape == (4, 32, 2, 2)
    assert torch.allclose(a, b, atol=1e-5)


def test_a_patch_reaches_only_itself_and_its_neighbours() -> None:
    """On a 3 x 3 grid, changing the top-left patch moves patches 0, 1, 3 and 4 and no other."""
    squid = block(grid=3).eval()
    codes = torch.randn(9, 32, 2, 2)
    changed = codes.clone()
    changed[0] = torch.randn(32, 2, 2) * 5
    with torch.no_grad():
        moved = (squid(codes) - squid(changed)).abs().flatten(1).amax(1)
    assert (moved[[0, 1, 3, 4]] > 1e-4).all()
    assert (moved[[2, 5, 6, 7, 8]] < 1e-6).all()


def test_the_masked_shortcut_works_in_training_only() -> None:
    codes = torch.randn(4, 32, 2, 2)
    assert torch.equal(block(shortcut_rate=1.0).train()(codes), codes)
    assert not torch.allclose(block(shortcut_rate=1.0).eval()(codes), codes)
    with pytest.raises(ValueError, match="grid of at least 2"):
        SquidInpainting(grid=1)
    with pytest.raises(ValueError, match="grid >= 2"):
        FastenerModelConfig(grid=1, inpainting="squid")


def test_the_squid_variant_is_the_baseline_with_squids_block_and_weights() -> None:
    cfg = variant_config("squid")
    assert (cfg.arch.msac, cfg.arch.ejpu, cfg.arch.inpainting, cfg.arch.teacher_trains_encoder) == (False, False, "squid", False)
    assert (cfg.loss.teacher, cfg.loss.distill, cfg.loss.adversarial) == (0.01, 0.001, 0.005)
    net = KDGAN(cfg.arch)
    assert isinstance(net.inpaint, SquidInpainting) and net.msac is None and net.discriminator.ejpu is None
    assert net.inpaint.dim == 64 * 4 * 4  # a 64 px patch's code squeezed to 64 channels: SQUID's 1024


def test_a_tiny_squid_run_separates_anomalies_and_reloads_its_queue(tmp_path) -> None:
    rng = np.random.default_rng(0)
    train, val, test = blob_crops(48, 0, rng), blob_crops(12, 6, rng), blob_crops(12, 6, rng)
    arch = {"encoder_channels": (8, 16, 32, 64), "discriminator_channels": (8, 16, 32, 32, 32), "queue_slots": 16}
    base = FastenerTrainConfig(max_steps=30, val_every_steps=10, batch_size=8, accelerator="cpu", lr=1e-3, score="ssim", arch=arch)
    fit = fit_fasteners(train, val, variant_config("squid", base), tmp_path, progress=False)
    detector = FastenerDetector.from_checkpoint(fit.checkpoint)
    queue = torch.load(fit.checkpoint, weights_only=True)["state_dict"]["inpaint.queue"]
    assert torch.equal(detector.net.inpaint.queue, queue)  # the trained queue, not a fresh random one
    assert detection_scores(detector.raw_scores(test), test.labels, fit.stats.threshold).auc > 0.9
    heat = gradcam(detector, test.images[-2:])
    assert heat.shape == (2, 128, 128) and heat.max() == pytest.approx(1.0)
