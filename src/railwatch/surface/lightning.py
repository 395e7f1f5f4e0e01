"""Lightning training of a surface segmenter with the paper's settings (paper 002, section 4.1).

Adam at a constant learning rate (1e-4; optionally cosine-annealed), softmax cross-entropy over background and defect,
and the defect-class scores of :mod:`railwatch.surface.metrics` on validation. The time of each
training step (forward, backward and update) is measured, as in Table 7's "time per step".
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryStatScores

from railwatch.config import SurfaceTrainConfig
from railwatch.surface.metrics import DefectScores
from railwatch.surface.models import build_surface_model


class SurfaceSegmentationTask(L.LightningModule):
    """Trains one surface network; logs ``train/loss``, ``train/step_ms`` and ``val/{loss,accuracy,f1,precision,recall,iou}``."""

    def __init__(self, train: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = SurfaceTrainConfig.model_validate(train)
        self.net = build_surface_model(self.cfg.model_name)
        self.val_stats = BinaryStatScores()
        self.val_loss = MeanMetric()
        self.step_times: list[float] = []
        self._step_start = 0.0
        self.last_val: dict[str, float] = {}

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, masks = batch
        loss = F.cross_entropy(self.net(images).float(), masks)
        self.log("train/loss", loss, prog_bar=True, batch_size=images.shape[0])
        return loss

    def _sync(self) -> None:
        # CUDA runs asynchronously: without waiting, the clock would time kernel launches, not the step
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._sync()
        self._step_start = time.perf_counter()

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        # forward + backward + update, as the paper's "time per step"; stopped here, before the
        # callbacks' batch-end hooks, so that writing a resume point is not counted as training
        self._sync()
        self.step_times.append(time.perf_counter() - self._step_start)
        self.log("train/step_ms", 1000 * self.step_times[-1])

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        images, masks = batch
        logits = self.net(images).float()
        self.val_loss.update(F.cross_entropy(logits, masks), images.shape[0])
        self.val_stats.update(logits.argmax(1), masks)

    def on_validation_epoch_end(self) -> None:
        tp, fp, tn, fn, _ = (int(v) for v in self.val_stats.compute())
        scores = DefectScores(tp, fp, tn, fn).to_dict()
        self.last_val = {"loss": float(self.val_loss.compute()), **{k: scores[k] for k in ("accuracy", "f1", "precision", "recall", "iou")}}
        self.val_stats.reset()
        self.val_loss.reset()
        for name, value in self.last_val.items():
            self.log(f"val/{name}", value, prog_bar=name in ("f1", "iou"))

    def on_train_epoch_start(self) -> None:
        dataset = getattr(self.trainer.train_dataloader, "dataset", None)
        if hasattr(dataset, "epoch"):
            dataset.epoch = self.current_epoch  # new flips every epoch

    def mean_step_ms(self, skip: int = 2) -> float:
        """Mean training-step time in ms, leaving out the first ``skip`` steps (allocator and kernel warm-up)."""
        times = self.step_times[skip:] or self.step_times
        return 1000 * sum(times) / max(1, len(times))

    def configure_optimizers(self) -> Any:
        # fused: one kernel per step instead of a chain of temporaries; on a CPU this takes FCN-8s'
        # Adam update (134 M parameters, 102 M of them in fc6) from about 2.5 s a step to 0.2 s
        optimiser = torch.optim.Adam(self.parameters(), lr=self.cfg.lr, fused=True)
        if self.cfg.lr_schedule == "constant":
            return optimiser
        total = max(1, int(self.trainer.estimated_stepping_batches))
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total, eta_min=self.cfg.lr_min)
        return {"optimizer": optimiser, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
