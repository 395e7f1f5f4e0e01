"""Lightning training of the fastener anomaly detectors on normal crops (paper 000, sections 2.4 and 2.5.2).

Each step updates the generators once with Eq. 16 and the discriminator once with Eq. 17 (two
Adam optimisers, lr 1e-4 annealed by a cosine to 2e-5 over the run, weight decay 1e-5).
GANomaly is trained the same way with its own losses; MemAE, which has no discriminator, with its
one optimiser; f-AnoGAN in its two stages (WGAN-GP, then the encoder), one of its three optimisers
stepping per batch. Validation scores the validation crops: AUC when they include anomalies (for
KD-GAN, of each of its four scores), and always the reconstruction error.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc

from railwatch.config import FastenerTrainConfig
from railwatch.fasteners import fanogan
from railwatch.fasteners.fanogan import FAnoGAN
from railwatch.fasteners.ganomaly import GANomaly, ganomaly_generator_loss
from railwatch.fasteners.loss import discriminator_loss, generator_loss
from railwatch.fasteners.memae import MemAE, memae_loss
from railwatch.fasteners.scoring import BASELINE_SCORES, SCORE_SOURCES, build_detector, kdgan_scores, reconstruction_error

ADAM_BETAS: dict[str, tuple[float, float]] = {
    "kd-gan": (0.5, 0.999),  # beta1 = 0.5 steadies adversarial training (DCGAN)
    "ganomaly": (0.5, 0.999),
    "memae": (0.9, 0.999),  # no adversary: Adam's default
    "f-anogan": (0.0, 0.9),  # WGAN-GP's
}
"""Adam's betas for each detector."""


def _as_list(x: Any) -> list[Any]:
    """Lightning hands back one optimiser (or schedule) bare and several as a list."""
    return x if isinstance(x, list) else [x]


class FastenerGANTask(L.LightningModule):
    """Training of KD-GAN or a baseline (GANomaly, MemAE, f-AnoGAN); logs ``train/*`` losses and ``val/{auc,recon_mse}``."""

    def __init__(self, train: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = FastenerTrainConfig.model_validate(train)
        self.net = build_detector(self.cfg)
        self.automatic_optimization = False  # the detectors step one or two of several optimisers per batch
        self._scores: list[Tensor] = []
        self._labels: list[Tensor] = []
        self._errors: list[Tensor] = []
        self.last_val: dict[str, float] = {}

    def parts(self) -> list[list[torch.nn.Parameter]]:
        """The parameters of each optimiser: the generator(s), then the discriminator if there is one
        (f-AnoGAN: generator, critic, encoder)."""
        net = self.net
        if isinstance(net, MemAE):
            return [list(net.parameters())]
        if isinstance(net, FAnoGAN):
            return [list(getattr(net, part).parameters()) for part in fanogan.STAGES]
        return [net.generator_parameters(), list(net.discriminator.parameters())]

    def updates_per_batch(self) -> int:
        """Optimiser steps per batch (each counts as a trainer step): 2 for KD-GAN and GANomaly, else 1."""
        return 1 if isinstance(self.net, (MemAE, FAnoGAN)) else 2

    def _update(self, optimiser: Any, loss: Tensor) -> None:
        optimiser.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimiser.step()

    def _generator_losses(self, images: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """The loss terms of the generator update (``loss_g`` is their total) and the crops it made."""
        net = self.net
        if isinstance(net, MemAE):
            out = net(images)
            return memae_loss(images, out), out.reconstruction
        if isinstance(net, GANomaly):
            out = net(images)
            _, real_features = net.discriminator(images)
            _, fake_features = net.discriminator(out.reconstruction)
            return ganomaly_generator_loss(images, out, real_features, fake_features), out.reconstruction
        out = net(images)
        terms = generator_loss(
            images, out.teacher, out.student, out.teacher_features, out.student_features,
            net.discriminator(out.student), self.cfg.loss,
        )  # fmt: skip
        return terms.logs(), out.student

    def _discriminator_loss(self, images: Tensor, fake: Tensor) -> Tensor:
        """Eq. 15 (scaled by its weight) for KD-GAN; the plain real-against-fake loss for GANomaly."""
        net = self.net
        if isinstance(net, GANomaly):  # its discriminator also returns features
            return discriminator_loss(net.discriminator(images)[0], net.discriminator(fake.detach())[0])
        return self.cfg.loss.discriminator * discriminator_loss(net.discriminator(images), net.discriminator(fake.detach()))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images = batch[0]
        optimisers = _as_list(self.optimizers())
        if isinstance(self.net, FAnoGAN):  # one part per batch: critic or generator (WGAN-GP), then encoder
            stage = fanogan.fanogan_stage(self.global_step, self.cfg.steps)
            loss, logs = fanogan.stage_loss(self.net, images, stage)
            part = fanogan.STAGES.index(stage)
            self._update(optimisers[part], loss)
            _as_list(self.lr_schedulers())[part].step()
        else:
            opt_g, *opt_d = optimisers
            logs, fake = self._generator_losses(images)
            self._update(opt_g, logs["loss_g"])
            if opt_d:
                logs["loss_d"] = self._discriminator_loss(images, fake)
                self._update(opt_d[0], logs["loss_d"])
            for schedule in _as_list(self.lr_schedulers()):
                schedule.step()
        for name, value in logs.items():
            self.log(f"train/{name}", value, batch_size=images.shape[0], prog_bar=name.startswith("loss_"))

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)  # fresh flips and brightness every epoch

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        if isinstance(self.net, GANomaly):
            out = self.net(images)
            scores, error = {"latent": out.latent_distance()}, reconstruction_error(out.reconstruction, images)
        elif isinstance(self.net, MemAE):
            error = reconstruction_error(self.net.reconstruct(images), images)
            scores = {"reconstruction": error}
        elif isinstance(self.net, FAnoGAN):
            out = self.net(images)
            scores, error = {"izif": out.residual(images)}, reconstruction_error(out.reconstruction, images)
        else:
            scores = kdgan_scores(self.net, images)
            error = scores["reconstruction"]
        self._scores.append(torch.stack([scores[s].float().cpu() for s in self._sources()], dim=1))
        self._labels.append(labels.cpu())
        self._errors.append(error.cpu())

    def _sources(self) -> tuple[str, ...]:
        """The scores validation computes: all four of KD-GAN's, a baseline's one."""
        return (BASELINE_SCORES[self.cfg.model],) if self.cfg.model in BASELINE_SCORES else SCORE_SOURCES

    def on_validation_epoch_end(self) -> None:
        scores, labels, errors = torch.cat(self._scores), torch.cat(self._labels), torch.cat(self._errors)
        self._scores, self._labels, self._errors = [], [], []
        if isinstance(self.net, FAnoGAN) and fanogan.fanogan_stage(self.global_step, self.cfg.steps) != "encoder":
            self.last_val = {}  # no encoder yet, so no score: nothing to keep a checkpoint for
            return
        normal = labels == 0
        self.last_val = {"recon_mse": float(errors[normal].mean()) if normal.any() else float("nan")}
        if normal.any() and (~normal).any():
            aucs = {source: float(binary_auroc(scores[:, i], labels.long())) for i, source in enumerate(self._sources())}
            # a baseline has one score, whatever ``score`` says
            self.last_val["auc"] = aucs[self.cfg.score] if self.cfg.score in aucs else max(aucs.values())
            if len(aucs) > 1:  # each KD-GAN score, to compare them and for ``score: auto``
                self.last_val |= {f"auc_{source}": auc for source, auc in aucs.items()}
        self.last_val["neg_recon_mse"] = -self.last_val["recon_mse"]
        for name, value in self.last_val.items():
            if np.isfinite(value):
                self.log(f"val/{name}", value, prog_bar=name == "auc")

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[Any]]:
        cfg = self.cfg
        betas = ADAM_BETAS[cfg.model]
        optimisers = [torch.optim.Adam(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay) for params in self.parts()]
        # each anneals over the updates it makes: every batch, or for f-AnoGAN's parts their own share
        updates = list(fanogan.stage_updates(cfg.steps).values()) if isinstance(self.net, FAnoGAN) else [cfg.steps] * len(optimisers)
        schedules = [
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n), eta_min=cfg.lr_min) for opt, n in zip(optimisers, updates)
        ]
        return optimisers, schedules
