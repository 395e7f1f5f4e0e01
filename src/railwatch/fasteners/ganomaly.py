"""GANomaly (Akcay, Atapour-Abarghouei and Breckon, ACCV 2018): the baseline of paper 000, Tables 5-6.

An encoder-decoder-encoder generator ``x -> z -> x_hat -> z_hat`` and a DCGAN discriminator.
The generator minimises ``w_adv L_adv + w_con L_con + w_enc L_enc`` (feature matching on the
discriminator's last features, L1 reconstruction, L2 between the two latent codes; weights 1, 50
and 1 as in the GANomaly paper); the discriminator learns real crops against reconstructions with
the binary cross-entropy of :func:`railwatch.fasteners.loss.discriminator_loss`; the anomaly
score is ``mean (z - z_hat)^2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from railwatch.fasteners.model import check_crops


def dcgan_encoder(image_size: int, width: int, latent: int, batch_norm: bool = True) -> nn.Sequential:
    """DCGAN encoder: stride-2 4x4 convolutions down to 4x4, then a 4x4 convolution to ``latent`` channels.

    ``batch_norm=False`` leaves out the batch norms, as a critic trained with a gradient penalty
    needs (each crop's gradient must not depend on the others in its batch).
    """
    steps = int(math.log2(image_size // 4))
    layers: list[nn.Module] = [nn.Conv2d(1, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    c = width
    for _ in range(steps - 1):
        norm: list[nn.Module] = [nn.BatchNorm2d(2 * c)] if batch_norm else []
        layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=not batch_norm), *norm, nn.LeakyReLU(0.2, inplace=True)]
        c *= 2
    layers.append(nn.Conv2d(c, latent, 4, 1, 0, bias=False))
    return nn.Sequential(*layers)


def dcgan_decoder(image_size: int, width: int, latent: int) -> nn.Sequential:
    """DCGAN decoder: the mirror of :func:`dcgan_encoder`, ending in a sigmoid (images in ``[0, 1]``)."""
    steps = int(math.log2(image_size // 4))
    c = width * 2 ** (steps - 1)
    layers: list[nn.Module] = [nn.ConvTranspose2d(latent, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
    for _ in range(steps - 1):
        layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True)]
        c //= 2
    layers += [nn.ConvTranspose2d(c, 1, 4, 2, 1, bias=False), nn.Sigmoid()]
    return nn.Sequential(*layers)


class GANomalyDiscriminator(nn.Module):
    """DCGAN discriminator; ``features`` (before the last convolution) feed the adversarial loss.

    ``batch_norm=False``: without batch norms, as f-AnoGAN's critic.
    """

    def __init__(self, image_size: int = 128, width: int = 32, batch_norm: bool = True) -> None:
        super().__init__()
        body = dcgan_encoder(image_size, width, 1, batch_norm)
        self.features = nn.Sequential(*list(body)[:-1])
        self.classifier = body[-1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(logits of "real" (N,), features)``."""
        features = self.features(x)
        return self.classifier(features).flatten(), features


@dataclass
class GANomalyOutput:
    """One pass: the reconstruction and both latent codes."""

    reconstruction: Tensor
    latent: Tensor
    latent_hat: Tensor

    def latent_distance(self) -> Tensor:
        """``mean (z - z_hat)^2`` per crop: GANomaly's anomaly score."""
        return (self.latent - self.latent_hat).float().pow(2).flatten(1).mean(1)


class GANomaly(nn.Module):
    """Encoder ``G_E``, decoder ``G_D``, second encoder ``E`` and discriminator ``D`` of GANomaly."""

    def __init__(self, image_size: int = 128, width: int = 32, latent: int = 100) -> None:
        super().__init__()
        self.image_size = image_size
        self.encoder = dcgan_encoder(image_size, width, latent)
        self.decoder = dcgan_decoder(image_size, width, latent)
        self.encoder_hat = dcgan_encoder(image_size, width, latent)
        self.discriminator = GANomalyDiscriminator(image_size, width)

    def forward(self, x: Tensor) -> GANomalyOutput:
        check_crops(x, self.image_size)
        z = self.encoder(x)
        x_hat = self.decoder(z)
        return GANomalyOutput(x_hat, z, self.encoder_hat(x_hat))

    def reconstruct(self, x: Tensor) -> Tensor:
        """The decoder's reconstruction ``(N, 1, S, S)`` in ``[0, 1]``."""
        return self(x).reconstruction

    def anomaly_score(self, x: Tensor) -> Tensor:
        """``mean (z - z_hat)^2`` per crop: large for crops unlike the training crops."""
        return self(x).latent_distance()

    def generator_parameters(self) -> list[nn.Parameter]:
        return [p for name, p in self.named_parameters() if not name.startswith("discriminator.")]


@dataclass(frozen=True)
class GANomalyWeights:
    """Loss weights of GANomaly (its paper's defaults)."""

    adversarial: float = 1.0
    contextual: float = 50.0
    encoder: float = 1.0


def ganomaly_generator_loss(
    image: Tensor, out: GANomalyOutput, real_features: Tensor, fake_features: Tensor, weights: GANomalyWeights = GANomalyWeights()
) -> dict[str, Tensor]:
    """``w_adv ||f(x) - f(x_hat)||^2 + w_con |x - x_hat|_1 + w_enc ||z - z_hat||^2``, with each term."""
    adv = F.mse_loss(fake_features.float(), real_features.detach().float())
    con = F.l1_loss(out.reconstruction.float(), image.float())
    enc = F.mse_loss(out.latent_hat.float(), out.latent.float())
    total = weights.adversarial * adv + weights.contextual * con + weights.encoder * enc
    return {"loss_g": total, "adv": adv, "contextual": con, "encoder": enc}
