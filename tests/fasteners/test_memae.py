"""MemAE, the memory-augmented baseline: addressing (its Eq. 4), hard shrinkage (Eq. 7), the entropy loss,
shapes, and a tiny run in which a part no normal crop has comes back with a large error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from railwatch.config import FastenerTrainConfig
from railwatch.errors import InputError
from railwatch.fasteners.explain import gradcam
from railwatch.fasteners.infer import FastenerDetector
from railwatch.fasteners.lightning import FastenerGANTask
from railwatch.fasteners.memae import MemAE, Memory, addressing_entropy, hard_shrink_weights, memae_loss
from railwatch.fasteners.scoring import detection_scores
from railwatch.fasteners.train import chosen_source, fit_fasteners
from tests.fasteners.crops import blob_crops


def test_hard_shrinkage_drops_weights_under_the_threshold_and_renormalises() -> None:
    weights = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]])
    shrunk = hard_shrink_weights(weights, threshold=0.1)
    # Eq. 7 keeps w where w > lambda (max(w - l, 0) w / |w - l| = w) and zeroes the rest
    assert torch.allclose(shrunk[0], torch.tensor([0.5, 0.3, 0.15, 0.0]) / 0.95, atol=1e-6)
    assert torch.allclose(shrunk[1], weights[1])  # nothing under the threshold: unchanged
    assert torch.equal(hard_shrink_weights(weights, threshold=0.6)[0], torch.zeros(4))  # all under: nothing read


def test_addressing_entropy_is_zero_for_one_slot_and_log_n_for_all() -> None:
    assert addressing_entropy(torch.tensor([[0.0, 1.0, 0.0, 0.0]])).item() == pytest.approx(0.0, abs=1e-6)
    assert addressing_entropy(torch.full((3, 8), 1 / 8)).item() == pytest.approx(math.log(8), rel=1e-6)


def test_memory_reads_the_slot_a_long_query_points_at() -> None:
    torch.manual_seed(0)
    memory = Memory(slots=10, dim=16)
    slot = memory.slots[3].detach()
    reading, weights = memory((50 * slot).reshape(1, 16, 1, 1))  # inner products: a long code addresses sharply
    assert reading.shape == (1, 16, 1, 1) and weights.shape == (1, 1, 1, 10)
    assert weights[0, 0, 0, 3] > 0.99 and torch.allclose(reading.flatten(), slot, atol=0.02 * slot.abs().max().item())
    _, vague = memory((0.01 * slot).reshape(1, 16, 1, 1))  # a short one weights all slots nearly alike (0.1) ...
    assert vague.argmax().item() == 3 and vague.max() < 0.25 and (vague > 0).sum() >= 3  # ... and reads those above 1/N
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-6) and (weights == 0).sum() > 0  # shrinkage at 1/N


def test_memae_shapes_and_sparse_addressing() -> None:
    torch.manual_seed(0)
    net = MemAE().eval()
    assert [block[0].out_channels for block in net.encoder] == [16, 32, 64, 128, 256]
    with torch.no_grad():
        out = net(torch.rand(2, 1, 128, 128))
    assert out.reconstruction.shape == (2, 1, 128, 128)
    assert 0 <= out.reconstruction.min() and out.reconstruction.max() <= 1
    assert out.weights.shape == (2, 4, 4, 100)  # a query per position of the 4 x 4 code, 100 slots
    assert torch.allclose(out.weights.sum(-1), torch.ones(2, 4, 4), atol=1e-5)
    losses = memae_loss(torch.rand(2, 1, 128, 128), out)
    assert losses["loss_g"].item() == pytest.approx(losses["reconstruction"].item() + 2e-4 * losses["entropy"].item(), rel=1e-5)
    with pytest.raises(InputError, match=r"\(N, 1, 128, 128\)"):
        net(torch.rand(1, 1, 128, 96))
    with pytest.raises(ValueError, match="divisible"):
        MemAE(image_size=48)


def test_memae_trains_with_one_optimiser_the_gans_with_two() -> None:
    """Each optimiser step is a trainer step, so this count sets how many batches a run trains."""
    memae = FastenerGANTask(FastenerTrainConfig(model="memae").model_dump(mode="json"))
    ganomaly = FastenerGANTask(FastenerTrainConfig(model="ganomaly").model_dump(mode="json"))
    assert len(memae.parts()) == 1 and sum(map(len, memae.parts())) == len(list(memae.net.parameters()))
    assert len(ganomaly.parts()) == 2


def test_a_tiny_memae_run_separates_anomalies_and_saves_its_score(tmp_path) -> None:
    rng = np.random.default_rng(0)
    train, val, test = blob_crops(48, 0, rng), blob_crops(12, 6, rng), blob_crops(12, 6, rng)
    cfg = FastenerTrainConfig(model="memae", max_steps=30, val_every_steps=10, batch_size=8, accelerator="cpu", lr=1e-3)
    fit = fit_fasteners(train, val, cfg, tmp_path, progress=False)
    detector = FastenerDetector.from_checkpoint(fit.checkpoint)
    assert detector.stats.source == "reconstruction" == chosen_source(cfg, {})
    assert detection_scores(detector.raw_scores(test), test.labels, fit.stats.threshold).auc > 0.9
    heat = gradcam(detector, test.images[-2:])
    assert heat.shape == (2, 128, 128) and heat.max() == pytest.approx(1.0)
