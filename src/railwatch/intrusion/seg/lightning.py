"""Lightning training of the track segmenter: steps, optimiser, schedule, IoU metrics."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchmetrics.classification import MulticlassJaccardIndex

from railwatch.config import SegModelConfig, SegTrainConfig
from railwatch.intrusion.seg.loss import IGNORE_INDEX, SegmentationLoss
from railwatch.intrusion.seg.model import build_segmenter


class SegmentationTask(L.LightningModule):
    """Trains a segmenter with OHEM cross-entropy (+ auxiliary heads); validates per-class IoU.

    Logs ``train/loss``, ``val/miou`` and ``val/iou_<class>`` for every class.
    """

    def __init__(self, model: dict[str, Any], train: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_cfg = SegModelConfig.model_validate(model)
        self.train_cfg = SegTrainConfig.model_validate(train)
        self.net = build_segmenter(self.model_cfg)
        cfg = self.train_cfg
        self.loss = SegmentationLoss(cfg.aux_weight, cfg.ohem_keep_prob, cfg.dice_weight)
        n = len(self.model_cfg.classes)
        self.val_iou = MulticlassJaccardIndex(n, average="none", ignore_index=IGNORE_INDEX)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, masks = batch
        loss, parts = self.loss(self.net(images), masks)
        self.log("train/loss", loss, prog_bar=True, batch_size=images.shape[0])
        self.log_dict({f"train/{k}": v for k, v in parts.items()}, batch_size=images.shape[0])
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, masks = batch
        self.val_iou.update(self.net(images).argmax(1), masks)

    def on_validation_epoch_end(self) -> None:
        ious = self.val_iou.compute()
        self.val_iou.reset()
        self.log("val/miou", ious.mean(), prog_bar=True)
        for name, iou in zip(self.model_cfg.classes, ious):
            self.log(f"val/iou_{name}", iou, prog_bar=name == "rail")

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        dataset = getattr(loader, "dataset", None)
        if hasattr(dataset, "epoch"):
            dataset.epoch = self.current_epoch  # new crops and jitter every epoch

    def configure_optimizers(self) -> dict[str, Any]:
        cfg = self.train_cfg
        optimiser = torch.optim.AdamW(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(cfg.warmup_steps, total // 4)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, 1 - (step - warmup) / max(1, total - warmup)) ** 0.9  # "poly" decay

        schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
