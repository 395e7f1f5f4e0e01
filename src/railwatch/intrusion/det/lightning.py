"""Lightning training of a detector: TAL + CIoU + DFL loss, AdamW with warm-up and cosine decay, COCO mAP."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor

from railwatch.config import DetInferConfig, DetModelConfig, DetTrainConfig
from railwatch.intrusion.det.head import decode
from railwatch.intrusion.det.loss import DetectionLoss
from railwatch.intrusion.det.metrics import DetectionMetrics
from railwatch.intrusion.det.model import build_detector
from railwatch.nn.ema import WeightEMA


class DetectionTask(L.LightningModule):
    """Trains a detector; validation logs ``val/map50``, ``val/map``, ``val/precision``, ``val/recall``.

    With ``train.ema_decay`` > 0, validation and the saved model use an exponential moving
    average of the weights (:class:`~railwatch.nn.ema.WeightEMA`), as YOLOv8 does.
    """

    def __init__(self, model: dict[str, Any], train: dict[str, Any], infer: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_cfg = DetModelConfig.model_validate(model)
        self.train_cfg = DetTrainConfig.model_validate(train)
        self.infer_cfg = DetInferConfig.model_validate(infer or {})
        self.net = build_detector(self.model_cfg)
        self.loss = DetectionLoss(len(self.model_cfg.classes), self.model_cfg.reg_max, self.train_cfg)
        self.metrics = DetectionMetrics(self.model_cfg.classes, self.infer_cfg.conf_threshold)
        self.ema: WeightEMA | None = None

    @property
    def inference_net(self) -> torch.nn.Module:
        """The weights to validate and save: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.net

    def on_fit_start(self) -> None:
        if self.train_cfg.ema_decay > 0:
            self.ema = WeightEMA(self.net, self.train_cfg.ema_decay, self.train_cfg.ema_ramp_steps)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.net)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor, list], batch_idx: int) -> Tensor:
        images, targets, _ = batch
        loss, parts = self.loss(self.net(images), targets, (images.shape[2], images.shape[3]))
        self.log("train/loss", loss, prog_bar=True, batch_size=images.shape[0])
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, batch_size=images.shape[0])
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor, list], batch_idx: int) -> None:
        images, targets, _ = batch
        decoded = decode(self.inference_net(images), (images.shape[2], images.shape[3]), self.model_cfg.reg_max)
        self.metrics.update_batch(decoded, targets, self.infer_cfg.iou_threshold)

    def on_validation_epoch_end(self) -> None:
        result = self.metrics.compute()
        self.metrics.reset()
        for key in ("map50", "map", "precision", "recall"):
            self.log(f"val/{key}", result[key], prog_bar=key == "map50")

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(self.current_epoch)  # new mosaics and jitter every epoch

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.train_cfg
        decay, no_decay = [], []
        for name, p in self.net.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)  # norms and biases are not decayed
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        optimiser = torch.optim.AdamW(groups, lr=cfg.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(cfg.warmup_steps, total // 4)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return cfg.final_lr_ratio + (1 - cfg.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
