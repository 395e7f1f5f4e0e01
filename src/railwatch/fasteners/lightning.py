"""Lightning training of the fastener anomaly detectors on normal crops (paper 000, sections 2.4 and 2.5.2).

Each step updates the generators once with Eq. 16 and the discriminator once with Eq. 17 (two
Adam optimisers, lr 1e-4 annealed by a cosine to 2e-5 over the run, weight decay 1e-5).
GANomaly is trained the same way with its own losses. Validation scores the validation crops:
AUC when they include anomalies (for KD-GAN, of each of its four scores), and always the
student's reconstruction error.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torchmetrics.functional.classification import binary_auroc

from railwatch.config import FastenerTrainConfig
from railwatch.fasteners.ganomaly import GANomaly, ganomaly_generator_loss
from railwatch.fasteners.loss import discriminator_loss, generator_loss
from railwatch.fasteners.scoring import SCORE_SOURCES, build_detector, kdgan_scores, reconstruction_error


class FastenerGANTask(L.LightningModule):
    """Adversarial training of KD-GAN or GANomaly; logs ``train/*`` losses and ``val/{auc,recon_mse}``."""

    def __init__(self, train: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = FastenerTrainConfig.model_validate(train)
        self.net = build_detector(self.cfg)
        self.automatic_optimization = False  # one generator and one discriminator update per step
        self._scores: list[Tensor] = []
        self._labels: list[Tensor] = []
        self._errors: list[Tensor] = []
        self.last_val: dict[str, float] = {}

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images = batch[0]
        opt_g, opt_d = self.optimizers()
        net = self.net
        if isinstance(net, GANomaly):
            out = net(images)
            _, real_features = net.discriminator(images)
            _, fake_features = net.discriminator(out.reconstruction)
            logs = ganomaly_generator_loss(images, out, real_features, fake_features)
            fake = out.reconstruction
        else:
            out = net(images)
            terms = generator_loss(
                images, out.teacher, out.student, out.teacher_features, out.student_features,
                net.discriminator(out.student), self.cfg.loss,
            )  # fmt: skip
            logs = terms.logs()
            fake = out.student
        opt_g.zero_grad(set_to_none=True)
        self.manual_backward(logs["loss_g"])
        opt_g.step()

        if isinstance(net, GANomaly):  # its discriminator also returns features
            loss_d = discriminator_loss(net.discriminator(images)[0], net.discriminator(fake.detach())[0])
        else:
            loss_d = self.cfg.loss.discriminator * discriminator_loss(net.discriminator(images), net.discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(loss_d)
        opt_d.step()
        for schedule in self.lr_schedulers():
            schedule.step()
        n = images.shape[0]
        self.log("train/loss_d", loss_d, batch_size=n, prog_bar=True)
        for name, value in logs.items():
            self.log(f"train/{name}", value, batch_size=n, prog_bar=name == "loss_g")

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)  # fresh flips and brightness every epoch

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, labels = batch
        if isinstance(self.net, GANomaly):
            out = self.net(images)
            scores, error = {"latent": out.latent_distance()}, reconstruction_error(out.reconstruction, images)
        else:
            scores = kdgan_scores(self.net, images)
            error = scores["reconstruction"]
        self._scores.append(torch.stack([scores[s].float().cpu() for s in self._sources()], dim=1))
        self._labels.append(labels.cpu())
        self._errors.append(error.cpu())

    def _sources(self) -> tuple[str, ...]:
        """The scores validation computes: all four of KD-GAN's, GANomaly's one."""
        return ("latent",) if isinstance(self.net, GANomaly) else SCORE_SOURCES

    def on_validation_epoch_end(self) -> None:
        scores, labels, errors = torch.cat(self._scores), torch.cat(self._labels), torch.cat(self._errors)
        self._scores, self._labels, self._errors = [], [], []
        normal = labels == 0
        self.last_val = {"recon_mse": float(errors[normal].mean()) if normal.any() else float("nan")}
        if normal.any() and (~normal).any():
            aucs = {source: float(binary_auroc(scores[:, i], labels.long())) for i, source in enumerate(self._sources())}
            self.last_val["auc"] = max(aucs.values()) if self.cfg.score == "auto" else aucs[self.cfg.score]
            if len(aucs) > 1:  # each KD-GAN score, to compare them and for ``score: auto``
                self.last_val |= {f"auc_{source}": auc for source, auc in aucs.items()}
        self.last_val["neg_recon_mse"] = -self.last_val["recon_mse"]
        for name, value in self.last_val.items():
            if np.isfinite(value):
                self.log(f"val/{name}", value, prog_bar=name == "auc")

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list[Any]]:
        cfg = self.cfg
        generator = self.net.generator_parameters()
        discriminator = list(self.net.discriminator.parameters())
        optimisers = [
            torch.optim.Adam(params, lr=cfg.lr, betas=(0.5, 0.999), weight_decay=cfg.weight_decay)
            for params in (generator, discriminator)
        ]
        schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr_min) for opt in optimisers]
        return optimisers, schedules
