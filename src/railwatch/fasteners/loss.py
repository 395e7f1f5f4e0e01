"""The KD-GAN losses of paper 000, section 2.4 (Eq. 11-17).

The discriminator outputs logits of "real", so the log-likelihoods of Eq. 14-15 are written
with ``binary_cross_entropy_with_logits``, which is their numerically stable form.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from railwatch.config import FastenerLossConfig


def reconstruction_loss(image: Tensor, reconstruction: Tensor) -> Tensor:
    """Eq. 11 (teacher) and Eq. 12 (student): mean squared difference ``(I - G(E(I)))^2``."""
    return F.mse_loss(reconstruction.float(), image.float())


def distillation_loss(teacher_features: Sequence[Tensor], student_features: Sequence[Tensor]) -> Tensor:
    """Eq. 13: ``sum_i (F_T^i - F_S^i)^2`` over the generator levels, each level's squares averaged.

    The teacher's features are targets: no gradient flows back into the teacher through them.
    """
    return sum(F.mse_loss(s.float(), t.detach().float()) for t, s in zip(teacher_features, student_features))


def adversarial_loss(fake_logits: Tensor) -> Tensor:
    """Eq. 14 for the generator, in the non-saturating form ``-log D(G_s(E(I)))``.

    ``log(1 - D(x))`` of Eq. 14 has the same fixed point but vanishing gradients while the
    discriminator wins, which is most of early training (Goodfellow et al., 2014, section 3).
    """
    return F.binary_cross_entropy_with_logits(fake_logits.float(), torch.ones_like(fake_logits, dtype=torch.float32))


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Eq. 15 as a loss to minimise: ``-[log D(I) + log(1 - D(G_s(E(I))))]``."""
    real = F.binary_cross_entropy_with_logits(real_logits.float(), torch.ones_like(real_logits, dtype=torch.float32))
    fake = F.binary_cross_entropy_with_logits(fake_logits.float(), torch.zeros_like(fake_logits, dtype=torch.float32))
    return real + fake


@dataclass
class GeneratorLoss:
    """Eq. 16 and its terms, for logging."""

    total: Tensor
    teacher: Tensor
    student: Tensor
    distill: Tensor
    adversarial: Tensor

    def logs(self) -> dict[str, Tensor]:
        return {"loss_g": self.total, "teacher": self.teacher, "student": self.student, "distill": self.distill, "adv": self.adversarial}


def generator_loss(
    image: Tensor,
    teacher: Tensor,
    student: Tensor,
    teacher_features: Sequence[Tensor],
    student_features: Sequence[Tensor],
    fake_logits: Tensor,
    weights: FastenerLossConfig,
) -> GeneratorLoss:
    """Eq. 16: ``lambda_t L_T + lambda_s L_S + lambda_dist L_DIST + lambda_gen L_GEN``."""
    l_t = reconstruction_loss(image, teacher)
    l_s = reconstruction_loss(image, student)
    l_dist = distillation_loss(teacher_features, student_features)
    l_gen = adversarial_loss(fake_logits)
    total = weights.teacher * l_t + weights.student * l_s + weights.distill * l_dist + weights.adversarial * l_gen
    return GeneratorLoss(total, l_t, l_s, l_dist, l_gen)
