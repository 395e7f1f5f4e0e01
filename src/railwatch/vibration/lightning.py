"""Lightning training of the FFI regressor, alone or as cross-modal pre-training (paper 001)."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor, nn

from railwatch.config import VibrationTrainConfig
from railwatch.vibration.metrics import ffi_metrics
from railwatch.vibration.model import CrossModalModel, FFIRegressor, pretrain_loss


class FFITask(L.LightningModule):
    """Trains ``net``: an :class:`FFIRegressor` on MSE, or a :class:`CrossModalModel` on MSE + lambda ED.

    Validation logs ``val/mse`` of the DAS (or single-modality) prediction, its negation for
    best-on-validation checkpointing, and for pre-training the full loss as ``val/neg_loss``.
    Adam's learning rate decays exponentially from ``lr`` to ``lr_min`` over the run
    ("gradually decreased from 1e-3 to 1e-4").
    """

    def __init__(self, net: nn.Module, cfg: VibrationTrainConfig, total_steps: int) -> None:
        super().__init__()
        self.net, self.cfg, self.total_steps = net, cfg, max(1, total_steps)
        self.paired = isinstance(net, CrossModalModel)
        self._val: list[tuple[Tensor, Tensor, Tensor]] = []

    def _losses(self, batch) -> tuple[dict[str, Tensor], Tensor]:
        """The loss terms, and the DAS (or single-modality) prediction they were computed from."""
        if self.paired:
            accel, das, target = batch
            pred_a, pred_d, tokens_a, tokens_d = self.net(accel, das)
            return pretrain_loss(pred_a, pred_d, tokens_a, tokens_d, target, self.cfg.ed_weight), pred_d
        x, target = batch
        pred = self.net(x)
        return {"loss": nn.functional.mse_loss(pred, target)}, pred

    def training_step(self, batch, batch_idx: int) -> Tensor:
        losses, _ = self._losses(batch)
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, on_step=True, on_epoch=False)
        return losses["loss"]

    def validation_step(self, batch, batch_idx: int) -> None:
        losses, pred = self._losses(batch)
        self._val.append((pred.float().cpu(), batch[-1].cpu(), losses["loss"].detach().float().cpu() * len(pred)))

    def on_validation_epoch_end(self) -> None:
        pred = torch.cat([p for p, _, _ in self._val]).numpy()
        target = torch.cat([t for _, t, _ in self._val]).numpy()
        loss = float(sum(s for _, _, s in self._val)) / max(1, len(pred))
        self._val.clear()
        metrics = ffi_metrics(pred, np.rint(target * 3).astype(np.int64))
        self.log_dict(
            {"val/mse": metrics["mse"], "val/neg_mse": -metrics["mse"], "val/accuracy": metrics["accuracy"], "val/neg_loss": -loss},
            prog_bar=True,
        )

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        ratio = self.cfg.lr_min / self.cfg.lr
        decay = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: ratio ** min(1.0, step / self.total_steps))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": decay, "interval": "step"}}


def regressor_for(cfg: VibrationTrainConfig, channels: int, bins: int) -> FFIRegressor:
    """A fresh regressor for ``channels`` x ``bins`` spectra."""
    return FFIRegressor(channels, bins, cfg.arch)
