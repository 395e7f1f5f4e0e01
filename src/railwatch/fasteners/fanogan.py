"""f-AnoGAN (Schlegl et al., Medical Image Analysis 2019): a baseline of paper 000 (Tables 5-6).

Two stages on normal crops, one optimiser step per batch:

1. A Wasserstein GAN with gradient penalty (Gulrajani et al. 2017). A generator ``G`` maps codes
   ``z`` drawn uniformly from ``[-1, 1]^d`` to crops; a critic ``D`` without batch norms rates
   them and is updated ``N_CRITIC`` = 5 times per generator update, with penalty weight 10.
2. With ``G`` and ``D`` fixed, an encoder ``E`` (ending in tanh, so its codes stay in ``G``'s
   domain) learns to map a crop to the code ``G`` draws it from: the "izi_f" training, which
   minimises ``||x - G(E(x))||^2 / n + kappa ||f(x) - f(G(E(x)))||^2 / n_f`` with ``f`` the
   critic's last features.

The anomaly score of a crop is that same residual (kappa 1): a crop unlike the normal ones has no
code that ``G`` draws it from, so both its image and its feature residual are large.

Sizes: the DCGAN encoder and decoder of :mod:`railwatch.fasteners.ganomaly` (width 32, down to
4 x 4), a 128-dimensional code as in f-AnoGAN. Of a run's batches the first two thirds train the
GAN and the rest the encoder; the paper trains each stage to convergence, which this budget does
not allow.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from railwatch.fasteners.ganomaly import GANomalyDiscriminator, dcgan_decoder, dcgan_encoder
from railwatch.fasteners.model import check_crops

N_CRITIC = 5
"""Critic updates per generator update (WGAN-GP)."""
PENALTY_WEIGHT = 10.0
"""Weight of the gradient penalty (WGAN-GP's lambda)."""
FEATURE_WEIGHT = 1.0
"""``kappa``: weight of the critic-feature residual in the encoder's loss and the anomaly score."""
GAN_SHARE = 2 / 3
"""Share of a run's batches that train the GAN; the encoder trains on the rest."""


@dataclass
class FAnoGANOutput:
    """One pass of a crop through ``E``, ``G`` and the critic's features."""

    reconstruction: Tensor
    features: Tensor
    reconstruction_features: Tensor

    def residual(self, x: Tensor, kappa: float = FEATURE_WEIGHT) -> Tensor:
        """``(N,)`` the izi_f residual per crop: mean squared image difference + kappa * mean squared feature difference."""
        image = (self.reconstruction.float() - x.float()).pow(2).flatten(1).mean(1)
        features = (self.reconstruction_features.float() - self.features.float()).pow(2).flatten(1).mean(1)
        return image + kappa * features


class FAnoGAN(nn.Module):
    """Generator ``G``, critic ``D`` and encoder ``E`` of f-AnoGAN for square grey crops."""

    def __init__(self, image_size: int = 128, width: int = 32, latent: int = 128) -> None:
        super().__init__()
        self.image_size, self.latent = image_size, latent
        self.generator = dcgan_decoder(image_size, width, latent)
        self.critic = GANomalyDiscriminator(image_size, width, batch_norm=False)
        self.encoder = nn.Sequential(dcgan_encoder(image_size, width, latent), nn.Tanh())

    def sample_codes(self, n: int, device: torch.device | str) -> Tensor:
        """``n`` codes drawn uniformly from ``[-1, 1]^d``, shaped for the generator."""
        return torch.rand(n, self.latent, 1, 1, device=device) * 2 - 1

    def forward(self, x: Tensor) -> FAnoGANOutput:
        check_crops(x, self.image_size)
        reconstruction = self.generator(self.encoder(x))
        return FAnoGANOutput(reconstruction, self.critic(x)[1], self.critic(reconstruction)[1])

    def reconstruct(self, x: Tensor) -> Tensor:
        """``G(E(x))``, ``(N, 1, S, S)`` in ``[0, 1]``."""
        check_crops(x, self.image_size)
        return self.generator(self.encoder(x))

    def anomaly_score(self, x: Tensor) -> Tensor:
        """``(N,)`` the izi_f residual: large for crops the generator cannot draw."""
        return self(x).residual(x)


def gradient_penalty(critic: GANomalyDiscriminator, real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP's penalty: ``(||grad D(x_mix)|| - 1)^2`` at random points between real and generated crops."""
    mix = torch.rand(real.shape[0], 1, 1, 1, device=real.device)
    # float32 even under mixed precision: the penalty differentiates the critic's gradient again
    with torch.autocast(real.device.type, enabled=False):
        mixed = (mix * real.float() + (1 - mix) * fake.float()).requires_grad_(True)
        (grad,) = torch.autograd.grad(critic(mixed)[0].sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def critic_loss(net: FAnoGAN, real: Tensor) -> dict[str, Tensor]:
    """The critic's WGAN-GP loss on one batch: ``D(G(z)) - D(x) + lambda * penalty``, with each term."""
    with torch.no_grad():
        fake = net.generator(net.sample_codes(real.shape[0], real.device))
    wasserstein = net.critic(fake)[0].float().mean() - net.critic(real)[0].float().mean()
    penalty = gradient_penalty(net.critic, real, fake)
    return {"loss_d": wasserstein + PENALTY_WEIGHT * penalty, "wasserstein": wasserstein, "penalty": penalty}


def generator_loss(net: FAnoGAN, n: int, device: torch.device | str) -> dict[str, Tensor]:
    """The generator's WGAN loss: ``-D(G(z))``."""
    return {"loss_g": -net.critic(net.generator(net.sample_codes(n, device)))[0].float().mean()}


def encoder_loss(net: FAnoGAN, x: Tensor) -> dict[str, Tensor]:
    """The izi_f loss of the encoder stage, the batch mean of :meth:`FAnoGANOutput.residual`."""
    return {"loss_e": net(x).residual(x).mean()}


STAGES: tuple[str, ...] = ("generator", "critic", "encoder")
"""The parts in the order of their optimisers."""


def fanogan_stage(step: int, total: int) -> str:
    """What batch ``step`` (from 0) of a ``total``-batch run trains: ``"critic"``, ``"generator"`` or ``"encoder"``."""
    if step >= int(GAN_SHARE * total):
        return "encoder"
    return "generator" if step % (N_CRITIC + 1) == N_CRITIC else "critic"


def stage_updates(total: int) -> dict[str, int]:
    """How many batches of a ``total``-batch run each part trains on (each part's schedule spans its own)."""
    stages = [fanogan_stage(step, total) for step in range(total)]
    return {stage: stages.count(stage) for stage in STAGES}


def freeze(module: nn.Module) -> None:
    """Hold a trained part fixed: no gradients, batch norms on their running statistics."""
    module.requires_grad_(False).eval()


def stage_loss(net: FAnoGAN, images: Tensor, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
    """The loss that the optimiser of ``stage``'s part minimises on one batch, and the terms to log.

    In the encoder stage the generator and critic are frozen first (again on every batch, as a
    training loop may put the whole network back in training mode).
    """
    if stage == "critic":
        logs = critic_loss(net, images)
        return logs["loss_d"], logs
    if stage == "generator":
        logs = generator_loss(net, images.shape[0], images.device)
        return logs["loss_g"], logs
    freeze(net.generator)
    freeze(net.critic)
    logs = encoder_loss(net, images)
    return logs["loss_e"], logs
