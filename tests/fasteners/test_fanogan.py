"""f-AnoGAN, the two-stage baseline: WGAN-GP's penalty, the stage schedule, which part each stage trains,
and a tiny run in which crops the generator cannot draw score high."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from railwatch.config import FastenerTrainConfig
from railwatch.fasteners.explain import gradcam
from railwatch.fasteners.fanogan import FAnoGAN, fanogan_stage, gradient_penalty, stage_loss, stage_updates
from railwatch.fasteners.infer import FastenerDetector
from railwatch.fasteners.lightning import FastenerGANTask
from railwatch.fasteners.train import fit_fasteners
from tests.fasteners.crops import blob_crops


class LinearCritic(nn.Module):
    """``D(x) = <w, x>``: its gradient is ``w`` everywhere."""

    def __init__(self, w: Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return (x * self.w).flatten(1).sum(1), x


def test_gradient_penalty_of_a_linear_critic_is_its_slope_off_one() -> None:
    w = torch.full((1, 1, 4, 4), 0.5)  # ||w|| = 0.5 * 4 = 2
    real, fake = torch.rand(3, 1, 4, 4), torch.rand(3, 1, 4, 4)
    assert gradient_penalty(LinearCritic(w), real, fake).item() == pytest.approx(1.0)  # (2 - 1)^2
    assert gradient_penalty(LinearCritic(w / 2), real, fake).item() == pytest.approx(0.0, abs=1e-12)


def test_stage_schedule_is_five_critic_updates_per_generator_then_the_encoder() -> None:
    stages = [fanogan_stage(step, 30) for step in range(30)]
    assert stages[:6] == ["critic"] * 5 + ["generator"]
    assert stages[:20].count("generator") == 3 and stages[20:] == ["encoder"] * 10
    assert stage_updates(30) == {"generator": 3, "critic": 17, "encoder": 10}


@pytest.mark.parametrize("stage", ["critic", "generator", "encoder"])
def test_each_stage_sends_gradients_to_its_part(stage: str) -> None:
    torch.manual_seed(0)
    net = FAnoGAN(image_size=32, width=8, latent=16).train()
    loss, logs = stage_loss(net, torch.rand(4, 1, 32, 32), stage)
    loss.backward()
    trained = {"critic": net.critic, "generator": net.generator, "encoder": net.encoder}[stage]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained.parameters() if p.requires_grad)
    if stage == "critic":  # the generated crops are drawn without gradients
        assert all(p.grad is None for p in net.generator.parameters())
        assert logs["penalty"] >= 0
    if stage == "encoder":  # the GAN is frozen: weights without gradients, batch norms on running statistics
        assert all(p.grad is None for p in [*net.generator.parameters(), *net.critic.parameters()])
        assert not net.generator.training


def test_shapes_and_score() -> None:
    torch.manual_seed(0)
    net = FAnoGAN().eval()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.critic.modules())  # the penalty needs per-crop gradients
    x = torch.rand(2, 1, 128, 128)
    with torch.no_grad():
        out = net(x)
        assert out.reconstruction.shape == (2, 1, 128, 128) and out.features.shape == (2, 512, 4, 4)
        image = (out.reconstruction - x).pow(2).flatten(1).mean(1)
        features = (out.reconstruction_features - out.features).pow(2).flatten(1).mean(1)
        expected = image + features  # kappa 1
        assert torch.allclose(net.anomaly_score(x), expected)
    assert len(FastenerGANTask(FastenerTrainConfig(model="f-anogan").model_dump(mode="json")).parts()) == 3


def test_the_encoder_stage_learns_to_invert_the_generator() -> None:
    """izi_f training on a fixed batch: the residual falls as the encoder finds the codes."""
    torch.manual_seed(0)
    net = FAnoGAN(image_size=32, width=8, latent=16)
    with torch.no_grad():
        for _ in range(30):  # batch-norm statistics of the generator's own output, as after the GAN stage
            net.generator(net.sample_codes(64, "cpu"))
        crops = net.generator.eval()(net.sample_codes(8, "cpu"))  # crops the generator can draw exactly
    optimiser = torch.optim.Adam(net.encoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, _ = stage_loss(net, crops, "encoder")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_a_tiny_run_keeps_an_encoder_stage_checkpoint(tmp_path) -> None:
    rng = np.random.default_rng(0)
    train, val, test = blob_crops(48, 0, rng), blob_crops(12, 6, rng), blob_crops(12, 6, rng)
    cfg = FastenerTrainConfig(model="f-anogan", max_steps=12, val_every_steps=4, batch_size=8, accelerator="cpu", lr=1e-3)
    fit = fit_fasteners(train, val, cfg, tmp_path, progress=False)
    payload = torch.load(fit.checkpoint, weights_only=True)
    assert payload["meta"]["step"] >= 8  # validated at 4, 8 and 12; before the encoder stage (8) there is no score
    detector = FastenerDetector.from_checkpoint(fit.checkpoint)
    assert detector.stats.source == "izif"
    assert np.isfinite(detector.raw_scores(test)).all()
    assert gradcam(detector, test.images[-2:]).shape == (2, 128, 128)
